//! The shared cases for application access: network rules, policies, access points,
//! client keys and the snapshot the instance API judges requests by.

use super::{all, instance};
use crate::{AccessPoint, AccessSnapshot, ClientKey, NetworkRule, Page, Policy, Store, StoreError};

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// A sample network rule with two sources.
pub fn rule(name: &str) -> NetworkRule {
    NetworkRule {
        name: name.to_owned(),
        rule_type: "Private".to_owned(),
        source_private_ip: strings(&["192.168.1.1", "10.0.0.0/24"]),
        description: format!("rule {name}"),
        created_at: 1_700_000_000,
        updated_at: 1_700_000_001,
    }
}

/// A sample policy of `instance_id` naming `rules`.
pub fn policy(name: &str, instance_id: &str, rules: &[&str]) -> Policy {
    Policy {
        name: name.to_owned(),
        kms_instance_id: instance_id.to_owned(),
        permissions: strings(&["RbacPermission/Template/CryptoServiceKeyUser"]),
        resources: strings(&["key/*", "secret/db-*"]),
        network_rules: strings(rules),
        description: format!("policy {name}"),
        created_at: 1_700_000_010,
        updated_at: 1_700_000_011,
    }
}

/// A sample access point naming `policies`.
pub fn access_point(name: &str, policies: &[&str]) -> AccessPoint {
    AccessPoint {
        name: name.to_owned(),
        authentication_method: "ClientKey".to_owned(),
        policies: strings(policies),
        description: format!("aap {name}"),
        created_at: 1_700_000_020,
        updated_at: 1_700_000_021,
    }
}

/// A sample client key of `aap_name`.
pub fn client_key(id: &str, aap_name: &str, created_at: i64) -> ClientKey {
    ClientKey {
        id: id.to_owned(),
        aap_name: aap_name.to_owned(),
        key_algorithm: "RSA_2048".to_owned(),
        key_origin: "KMS_PROVIDED".to_owned(),
        certificate_pem: format!("-----BEGIN CERTIFICATE-----\n{id}\n-----END CERTIFICATE-----\n"),
        not_before: created_at,
        not_after: created_at + 5 * 365 * 86_400,
        created_at,
    }
}

fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
}

fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
}

/// An instance `kst-acc`, rules `r-1` and `r-2`, policy `p-1` naming both, access point
/// `aap-1` naming `p-1`.
async fn fixture<S: Store>(s: &S) {
    s.create_instance(&instance("kst-acc")).await.unwrap();
    s.create_network_rule(&rule("r-1")).await.unwrap();
    s.create_network_rule(&rule("r-2")).await.unwrap();
    s.create_policy(&policy("p-1", "kst-acc", &["r-1", "r-2"]))
        .await
        .unwrap();
    s.create_access_point(&access_point("aap-1", &["p-1"]))
        .await
        .unwrap();
}

pub async fn network_rule_crud<S: Store>(s: &S) {
    let r = NetworkRule {
        source_private_ip: strings(&["10.0.0.1", "fd00::/8", "192.168.0.0/16"]),
        ..rule("rule-a")
    };
    s.create_network_rule(&r).await.unwrap();
    assert_eq!(s.get_network_rule("rule-a").await.unwrap(), r);
    assert_conflict(s.create_network_rule(&rule("rule-a")).await);
    assert_eq!(s.get_network_rule("rule-a").await.unwrap(), r);
    // An empty list round-trips too.
    let empty = NetworkRule {
        source_private_ip: Vec::new(),
        description: String::new(),
        ..rule("rule-b")
    };
    s.create_network_rule(&empty).await.unwrap();
    assert_eq!(s.get_network_rule("rule-b").await.unwrap(), empty);

    // Update replaces the addresses, the description and the update time only.
    let update = NetworkRule {
        rule_type: "Public".to_owned(),
        source_private_ip: strings(&["172.16.0.0/12"]),
        description: "moved".to_owned(),
        created_at: 1,
        updated_at: 1_700_000_500,
        ..r.clone()
    };
    s.update_network_rule(&update).await.unwrap();
    assert_eq!(
        s.get_network_rule("rule-a").await.unwrap(),
        NetworkRule {
            source_private_ip: strings(&["172.16.0.0/12"]),
            description: "moved".to_owned(),
            updated_at: 1_700_000_500,
            ..r
        }
    );
    assert_not_found(s.update_network_rule(&rule("rule-none")).await);
    assert_not_found(s.get_network_rule("rule-none").await);

    s.delete_network_rule("rule-a").await.unwrap();
    assert_not_found(s.get_network_rule("rule-a").await);
    assert_not_found(s.delete_network_rule("rule-a").await);
    let left = s.list_network_rules(all()).await.unwrap();
    assert_eq!((left.total, left.items), (1, vec![empty]));
}

pub async fn policy_crud<S: Store>(s: &S) {
    s.create_instance(&instance("kst-p")).await.unwrap();
    s.create_instance(&instance("kst-q")).await.unwrap();
    for name in ["r-a", "r-b", "r-c"] {
        s.create_network_rule(&rule(name)).await.unwrap();
    }
    let p = Policy {
        permissions: strings(&[
            "RbacPermission/Template/CryptoServiceKeyUser",
            "RbacPermission/Template/CryptoServiceSecretUser",
        ]),
        ..policy("pol-a", "kst-p", &["r-b", "r-a"])
    };
    s.create_policy(&p).await.unwrap();
    assert_eq!(s.get_policy("pol-a").await.unwrap(), p);
    assert_conflict(s.create_policy(&policy("pol-a", "kst-p", &[])).await);
    assert_eq!(s.get_policy("pol-a").await.unwrap(), p);
    let bare = policy("pol-b", "kst-q", &[]);
    s.create_policy(&bare).await.unwrap();
    assert_eq!(s.get_policy("pol-b").await.unwrap(), bare);

    // Update replaces permissions, resources, rules, description and update time; the
    // instance and the creation time stay.
    let update = Policy {
        kms_instance_id: "kst-q".to_owned(),
        permissions: strings(&["RbacPermission/Template/CryptoServiceSecretUser"]),
        resources: strings(&["secret/*"]),
        network_rules: strings(&["r-c"]),
        description: "narrowed".to_owned(),
        created_at: 5,
        updated_at: 1_700_000_900,
        ..p.clone()
    };
    s.update_policy(&update).await.unwrap();
    let stored = s.get_policy("pol-a").await.unwrap();
    assert_eq!(
        stored,
        Policy {
            kms_instance_id: "kst-p".to_owned(),
            created_at: p.created_at,
            ..update
        }
    );
    // r-a and r-b are no longer named by pol-a.
    s.delete_network_rule("r-a").await.unwrap();
    s.delete_network_rule("r-b").await.unwrap();
    assert_not_found(s.update_policy(&policy("pol-none", "kst-p", &[])).await);
    assert_not_found(s.get_policy("pol-none").await);

    s.delete_policy("pol-a").await.unwrap();
    assert_not_found(s.get_policy("pol-a").await);
    assert_not_found(s.delete_policy("pol-a").await);
    // Its references went with it: r-c can be deleted now.
    s.delete_network_rule("r-c").await.unwrap();
    assert_eq!(s.list_policies(all()).await.unwrap().items, vec![bare]);
}

pub async fn access_point_crud<S: Store>(s: &S) {
    s.create_instance(&instance("kst-a")).await.unwrap();
    for name in ["pol-1", "pol-2", "pol-3"] {
        s.create_policy(&policy(name, "kst-a", &[])).await.unwrap();
    }
    let a = access_point("aap-a", &["pol-2", "pol-1"]);
    s.create_access_point(&a).await.unwrap();
    assert_eq!(s.get_access_point("aap-a").await.unwrap(), a);
    assert_conflict(s.create_access_point(&access_point("aap-a", &[])).await);
    assert_eq!(s.get_access_point("aap-a").await.unwrap(), a);

    // Update replaces the policies, description and update time; the authentication
    // method and the creation time stay.
    let update = AccessPoint {
        authentication_method: "RAMRole".to_owned(),
        policies: strings(&["pol-3"]),
        description: "other".to_owned(),
        created_at: 9,
        updated_at: 1_700_001_000,
        ..a.clone()
    };
    s.update_access_point(&update).await.unwrap();
    assert_eq!(
        s.get_access_point("aap-a").await.unwrap(),
        AccessPoint {
            authentication_method: "ClientKey".to_owned(),
            created_at: a.created_at,
            ..update
        }
    );
    s.delete_policy("pol-1").await.unwrap();
    s.delete_policy("pol-2").await.unwrap();
    assert_not_found(s.update_access_point(&access_point("aap-none", &[])).await);
    assert_not_found(s.get_access_point("aap-none").await);

    s.delete_access_point("aap-a").await.unwrap();
    assert_not_found(s.get_access_point("aap-a").await);
    assert_not_found(s.delete_access_point("aap-a").await);
    s.delete_policy("pol-3").await.unwrap();
    assert_eq!(s.list_access_points(all()).await.unwrap().total, 0);
}

pub async fn client_key_crud<S: Store>(s: &S) {
    fixture(s).await;
    s.create_access_point(&access_point("aap-2", &["p-1"]))
        .await
        .unwrap();
    let k1 = client_key("KAAP.0003", "aap-1", 1_700_000_100);
    let k2 = client_key("KAAP.0002", "aap-1", 1_700_000_200);
    // Same creation time as k2, smaller id: listed before it.
    let k3 = client_key("KAAP.0001", "aap-1", 1_700_000_200);
    for k in [&k2, &k1, &k3] {
        s.create_client_key(k, 10).await.unwrap();
    }
    s.create_client_key(&client_key("KAAP.0009", "aap-2", 1), 10)
        .await
        .unwrap();
    assert_eq!(s.get_client_key("KAAP.0003").await.unwrap(), k1);
    assert_eq!(
        s.list_client_keys("aap-1").await.unwrap(),
        vec![k1.clone(), k3.clone(), k2.clone()]
    );
    assert_eq!(s.list_client_keys("aap-2").await.unwrap().len(), 1);
    assert_not_found(s.list_client_keys("aap-none").await);
    // A duplicate id, even for another access point, is a conflict.
    assert_conflict(
        s.create_client_key(&client_key("KAAP.0003", "aap-2", 5), 10)
            .await,
    );
    assert_eq!(s.get_client_key("KAAP.0003").await.unwrap(), k1);
    assert_not_found(
        s.create_client_key(&client_key("KAAP.0100", "aap-none", 5), 10)
            .await,
    );
    assert_not_found(s.get_client_key("KAAP.0100").await);

    s.delete_client_key("KAAP.0001").await.unwrap();
    assert_not_found(s.get_client_key("KAAP.0001").await);
    assert_not_found(s.delete_client_key("KAAP.0001").await);
    assert_eq!(s.list_client_keys("aap-1").await.unwrap(), vec![k1, k2]);
}

pub async fn access_pagination<S: Store>(s: &S) {
    s.create_instance(&instance("kst-page")).await.unwrap();
    // Created out of order; listed by name.
    for n in [4, 0, 6, 2, 1, 5, 3] {
        s.create_network_rule(&rule(&format!("rule-{n:02}")))
            .await
            .unwrap();
        s.create_policy(&policy(
            &format!("pol-{n:02}"),
            "kst-page",
            &[&format!("rule-{n:02}")],
        ))
        .await
        .unwrap();
        s.create_access_point(&access_point(
            &format!("aap-{n:02}"),
            &[&format!("pol-{n:02}")],
        ))
        .await
        .unwrap();
    }
    let p = |number| Page { number, size: 3 };

    let rules = s.list_network_rules(p(1)).await.unwrap();
    assert_eq!(rules.total, 7);
    let names: Vec<_> = rules.items.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["rule-00", "rule-01", "rule-02"]);
    assert_eq!(rules.items[1], rule("rule-01"));
    let last = s.list_network_rules(p(3)).await.unwrap();
    assert_eq!((last.total, last.items), (7, vec![rule("rule-06")]));
    let beyond = s.list_network_rules(p(4)).await.unwrap();
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.total, 7);

    let policies = s.list_policies(p(2)).await.unwrap();
    assert_eq!(policies.total, 7);
    assert_eq!(
        policies.items,
        vec![
            policy("pol-03", "kst-page", &["rule-03"]),
            policy("pol-04", "kst-page", &["rule-04"]),
            policy("pol-05", "kst-page", &["rule-05"]),
        ]
    );

    let points = s.list_access_points(p(3)).await.unwrap();
    assert_eq!(
        (points.total, points.items),
        (7, vec![access_point("aap-06", &["pol-06"])])
    );
    let first = s.list_access_points(p(1)).await.unwrap();
    assert_eq!(first.items[0], access_point("aap-00", &["pol-00"]));
}

pub async fn access_references<S: Store>(s: &S) {
    fixture(s).await;
    s.create_client_key(&client_key("KAAP.r1", "aap-1", 1_700_000_100), 3)
        .await
        .unwrap();

    // Whatever is named cannot be deleted, and stays as it was.
    assert_conflict(s.delete_network_rule("r-1").await);
    assert_eq!(s.get_network_rule("r-1").await.unwrap(), rule("r-1"));
    assert_conflict(s.delete_policy("p-1").await);
    assert_eq!(
        s.get_policy("p-1").await.unwrap(),
        policy("p-1", "kst-acc", &["r-1", "r-2"])
    );
    assert_conflict(s.delete_access_point("aap-1").await);
    assert_eq!(
        s.get_access_point("aap-1").await.unwrap(),
        access_point("aap-1", &["p-1"])
    );

    // A create naming something missing is refused and stores nothing.
    assert_not_found(s.create_policy(&policy("p-x", "kst-none", &[])).await);
    assert_not_found(s.get_policy("p-x").await);
    assert_not_found(
        s.create_policy(&policy("p-y", "kst-acc", &["r-2", "r-none"]))
            .await,
    );
    assert_not_found(s.get_policy("p-y").await);
    assert_not_found(
        s.create_access_point(&access_point("aap-x", &["p-1", "p-none"]))
            .await,
    );
    assert_not_found(s.get_access_point("aap-x").await);
    assert_eq!(s.list_policies(all()).await.unwrap().total, 1);
    assert_eq!(s.list_access_points(all()).await.unwrap().total, 1);

    // An update naming something missing changes nothing.
    let mut p = policy("p-1", "kst-acc", &["r-1", "r-none"]);
    p.description = "changed".to_owned();
    assert_not_found(s.update_policy(&p).await);
    assert_eq!(
        s.get_policy("p-1").await.unwrap(),
        policy("p-1", "kst-acc", &["r-1", "r-2"])
    );
    let mut a = access_point("aap-1", &["p-none"]);
    a.description = "changed".to_owned();
    assert_not_found(s.update_access_point(&a).await);
    assert_eq!(
        s.get_access_point("aap-1").await.unwrap(),
        access_point("aap-1", &["p-1"])
    );

    // Unreferenced, each can go, from the client key up.
    s.update_policy(&policy("p-1", "kst-acc", &["r-2"]))
        .await
        .unwrap();
    s.delete_network_rule("r-1").await.unwrap();
    assert_conflict(s.delete_network_rule("r-2").await);
    s.delete_client_key("KAAP.r1").await.unwrap();
    s.delete_access_point("aap-1").await.unwrap();
    s.delete_policy("p-1").await.unwrap();
    s.delete_network_rule("r-2").await.unwrap();
    assert_eq!(s.list_network_rules(all()).await.unwrap().total, 0);
}

pub async fn client_key_limit<S: Store>(s: &S) {
    fixture(s).await;
    s.create_access_point(&access_point("aap-2", &["p-1"]))
        .await
        .unwrap();
    for n in 0..3 {
        s.create_client_key(&client_key(&format!("KAAP.l{n}"), "aap-1", n), 3)
            .await
            .unwrap();
    }
    let over = s
        .create_client_key(&client_key("KAAP.l3", "aap-1", 3), 3)
        .await;
    assert!(
        matches!(over, Err(StoreError::QuotaExceeded(_))),
        "{over:?}"
    );
    assert_not_found(s.get_client_key("KAAP.l3").await);
    assert_eq!(s.list_client_keys("aap-1").await.unwrap().len(), 3);
    // The limit is per access point.
    s.create_client_key(&client_key("KAAP.m0", "aap-2", 0), 3)
        .await
        .unwrap();
    // A freed slot can be used again; a limit of 0 admits nothing.
    s.delete_client_key("KAAP.l1").await.unwrap();
    s.create_client_key(&client_key("KAAP.l3", "aap-1", 3), 3)
        .await
        .unwrap();
    let zero = s
        .create_client_key(&client_key("KAAP.z", "aap-2", 4), 0)
        .await;
    assert!(
        matches!(zero, Err(StoreError::QuotaExceeded(_))),
        "{zero:?}"
    );
    let ids: Vec<_> = s
        .list_client_keys("aap-1")
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, ["KAAP.l0", "KAAP.l2", "KAAP.l3"]);
}

pub async fn client_key_limit_race<S: Store + Clone>(s: &S) {
    fixture(s).await;
    s.create_client_key(&client_key("KAAP.first", "aap-1", 0), 3)
        .await
        .unwrap();
    // Two slots are left; twelve tasks race for them.
    let tasks: Vec<_> = (0..12)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move {
                s.create_client_key(&client_key(&format!("KAAP.race{n:02}"), "aap-1", n), 3)
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::QuotaExceeded(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(won, 2);
    assert_eq!(s.list_client_keys("aap-1").await.unwrap().len(), 3);
}

pub async fn access_snapshot_contents<S: Store>(s: &S) {
    fixture(s).await;
    s.create_instance(&instance("kst-other")).await.unwrap();
    s.create_network_rule(&rule("r-3")).await.unwrap();
    s.create_network_rule(&rule("r-unused")).await.unwrap();
    // p-2 shares r-2 with p-1: the snapshot lists it once.
    s.create_policy(&policy("p-2", "kst-other", &["r-3", "r-2"]))
        .await
        .unwrap();
    s.create_policy(&policy("p-unused", "kst-acc", &["r-unused"]))
        .await
        .unwrap();
    s.update_access_point(&access_point("aap-1", &["p-2", "p-1"]))
        .await
        .unwrap();
    let key = client_key("KAAP.snap", "aap-1", 1_700_000_300);
    s.create_client_key(&key, 3).await.unwrap();

    let snap = s.access_snapshot("KAAP.snap").await.unwrap();
    assert_eq!(
        snap,
        Some(AccessSnapshot {
            client_key: key.clone(),
            access_point: access_point("aap-1", &["p-2", "p-1"]),
            policies: vec![
                policy("p-2", "kst-other", &["r-3", "r-2"]),
                policy("p-1", "kst-acc", &["r-1", "r-2"]),
            ],
            network_rules: vec![rule("r-1"), rule("r-2"), rule("r-3")],
        })
    );
    assert_eq!(s.access_snapshot("KAAP.none").await.unwrap(), None);

    // Changes show in the next snapshot.
    let narrowed = NetworkRule {
        source_private_ip: strings(&["10.9.9.9"]),
        ..rule("r-1")
    };
    s.update_network_rule(&narrowed).await.unwrap();
    s.update_access_point(&access_point("aap-1", &["p-1"]))
        .await
        .unwrap();
    let snap = s.access_snapshot("KAAP.snap").await.unwrap().unwrap();
    assert_eq!(
        snap.policies,
        vec![policy("p-1", "kst-acc", &["r-1", "r-2"])]
    );
    assert_eq!(snap.network_rules, vec![narrowed, rule("r-2")]);
    // An access point without policies grants nothing, but its key is still known.
    s.update_access_point(&access_point("aap-1", &[]))
        .await
        .unwrap();
    let snap = s.access_snapshot("KAAP.snap").await.unwrap().unwrap();
    assert_eq!(snap.client_key, key);
    assert!(snap.policies.is_empty());
    assert!(snap.network_rules.is_empty());
}

pub async fn delete_instance_refused_while_a_policy_names_it<S: Store>(s: &S) {
    fixture(s).await;
    let k = super::keys::key("key-acc", "kst-acc");
    s.create_key(&k, &super::keys::version("key-acc", "key-acc-v1", 1), 10)
        .await
        .unwrap();
    assert_conflict(s.delete_instance("kst-acc").await);
    // Nothing went: neither the instance nor its key.
    assert_eq!(
        s.get_instance("kst-acc").await.unwrap(),
        instance("kst-acc")
    );
    assert_eq!(s.get_key("key-acc").await.unwrap(), k);
    // Once no policy names it, it can be released.
    s.delete_access_point("aap-1").await.unwrap();
    s.delete_policy("p-1").await.unwrap();
    s.delete_instance("kst-acc").await.unwrap();
    assert_not_found(s.get_instance("kst-acc").await);
    assert_not_found(s.get_key("key-acc").await);
}
