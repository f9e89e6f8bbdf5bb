//! The shared back-end test suite: every [`Store`] implementation runs these cases against
//! a fresh, empty store (see `tests/sqlite.rs`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::as_conversions,
    missing_docs,
    reason = "test code: failing loudly is the point"
)]

pub mod access;
pub mod keys;
pub mod secrets;

use crate::{
    AccessKey, AccessKeyStatus, HsmCluster, HsmNode, Instance, InstanceStatus, Page, Store,
    StoreError, Vpc,
};

/// A sample instance with the given id.
pub fn instance(id: &str) -> Instance {
    Instance {
        id: id.to_owned(),
        name: format!("name of {id}"),
        region: "cn-hangzhou".to_owned(),
        status: InstanceStatus::Uninitialized,
        vpc_quota: 2,
        key_quota: 1000,
        secret_quota: 100,
        spec: 1000,
        term_months: 12,
        start_time: None,
        end_time: Some(1_800_000_000),
        auto_renew: false,
        hsm_cluster_id: None,
        ca_certificate_chain_pem: String::new(),
        status_reason: String::new(),
        hsm_credentials: None,
        ca_keys: None,
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
        version: 1,
    }
}

/// A sample cluster with two nodes.
pub fn cluster(id: &str) -> HsmCluster {
    HsmCluster {
        id: id.to_owned(),
        name: format!("cluster {id}"),
        nodes: vec![
            HsmNode {
                address: "10.0.0.1:8020".to_owned(),
                zone: "cn-hangzhou-h".to_owned(),
            },
            HsmNode {
                address: "10.0.0.2:8020".to_owned(),
                zone: "cn-hangzhou-i".to_owned(),
            },
        ],
        created_at: 1_700_000_000,
    }
}

/// A sample VPC with two CIDR blocks.
pub fn vpc(id: &str) -> Vpc {
    Vpc {
        id: id.to_owned(),
        name: format!("vpc {id}"),
        cidr_blocks: vec!["192.168.0.0/16".to_owned(), "10.1.0.0/24".to_owned()],
        created_at: 1_700_000_000,
    }
}

/// A sample access key.
pub fn access_key(id: &str) -> AccessKey {
    AccessKey {
        id: id.to_owned(),
        secret_ciphertext: vec![0, 1, 2, 255, 254],
        status: AccessKeyStatus::Active,
        description: "admin".to_owned(),
        created_at: 1_700_000_000,
    }
}

fn all() -> Page {
    Page {
        number: 1,
        size: 100,
    }
}

pub async fn health<S: Store>(s: &S) {
    s.health().await.unwrap();
}

pub async fn access_key_crud<S: Store>(s: &S) {
    let k = access_key("LTAI0001");
    s.create_access_key(&k).await.unwrap();
    assert_eq!(s.get_access_key("LTAI0001").await.unwrap(), k);
    assert!(matches!(
        s.create_access_key(&k).await,
        Err(StoreError::Conflict(_))
    ));
    s.set_access_key_status("LTAI0001", AccessKeyStatus::Inactive)
        .await
        .unwrap();
    assert_eq!(
        s.get_access_key("LTAI0001").await.unwrap().status,
        AccessKeyStatus::Inactive
    );
    let listed = s.list_access_keys(all()).await.unwrap();
    assert_eq!(listed.total, 1);
    s.delete_access_key("LTAI0001").await.unwrap();
    assert!(matches!(
        s.get_access_key("LTAI0001").await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn instance_crud<S: Store>(s: &S) {
    let mut i = instance("kst-a");
    i.start_time = Some(1_700_000_100);
    i.ca_certificate_chain_pem = "-----BEGIN CERTIFICATE-----\n...".to_owned();
    i.ca_keys = Some(vec![1, 0, 255, 7]);
    s.create_instance(&i).await.unwrap();
    assert_eq!(s.get_instance("kst-a").await.unwrap(), i);
    assert!(matches!(
        s.create_instance(&i).await,
        Err(StoreError::Conflict(_))
    ));
    let mut changed = i.clone();
    changed.status = InstanceStatus::Connected;
    changed.auto_renew = true;
    changed.key_quota = 2000;
    changed.updated_at = 1_700_000_200;
    changed.status_reason = "HSM node 10.0.0.2:8020 is sealed".to_owned();
    changed.hsm_credentials = Some(vec![0; 3000]);
    let stored = s.update_instance(&changed).await.unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.status, InstanceStatus::Connected);
    assert_eq!(
        stored,
        Instance {
            version: 2,
            ..changed
        }
    );
    assert_eq!(s.get_instance("kst-a").await.unwrap(), stored);
    // An instance with keys can be deleted: its keys go with it.
    let k = keys::key("key-a", "kst-a");
    s.create_key(&k, &keys::version("key-a", "key-a-v1", 1), 10)
        .await
        .unwrap();
    s.delete_instance("kst-a").await.unwrap();
    assert!(matches!(
        s.get_instance("kst-a").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.get_key("key-a").await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn cluster_crud<S: Store>(s: &S) {
    let c = cluster("hsmc-1");
    s.create_cluster(&c).await.unwrap();
    assert_eq!(s.get_cluster("hsmc-1").await.unwrap(), c);
    assert!(matches!(
        s.create_cluster(&c).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.list_clusters(all()).await.unwrap().items, vec![c]);
    s.delete_cluster("hsmc-1").await.unwrap();
    assert!(matches!(
        s.get_cluster("hsmc-1").await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn vpc_crud_and_bindings<S: Store>(s: &S) {
    let v = vpc("vpc-1");
    s.create_vpc(&v).await.unwrap();
    s.create_vpc(&vpc("vpc-2")).await.unwrap();
    assert_eq!(s.get_vpc("vpc-1").await.unwrap(), v);
    assert!(matches!(
        s.create_vpc(&v).await,
        Err(StoreError::Conflict(_))
    ));
    s.create_instance(&instance("kst-v")).await.unwrap();
    assert_eq!(s.count_instance_vpcs("kst-v").await.unwrap(), 0);
    s.bind_vpc("kst-v", "vpc-2").await.unwrap();
    s.bind_vpc("kst-v", "vpc-1").await.unwrap();
    assert!(matches!(
        s.bind_vpc("kst-v", "vpc-1").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.bind_vpc("kst-v", "vpc-x").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.bind_vpc("kst-x", "vpc-1").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.count_instance_vpcs("kst-v").await.unwrap(), 2);
    assert_eq!(
        s.instance_vpcs("kst-v").await.unwrap(),
        vec!["vpc-1", "vpc-2"]
    );
    assert!(matches!(
        s.delete_vpc("vpc-1").await,
        Err(StoreError::Conflict(_))
    ));
    s.unbind_vpc("kst-v", "vpc-1").await.unwrap();
    assert!(matches!(
        s.unbind_vpc("kst-v", "vpc-1").await,
        Err(StoreError::NotFound(_))
    ));
    s.delete_vpc("vpc-1").await.unwrap();
    // Deleting the instance removes its bindings, so the VPC can go too.
    s.delete_instance("kst-v").await.unwrap();
    s.delete_vpc("vpc-2").await.unwrap();
    assert_eq!(s.list_vpcs(all()).await.unwrap().total, 0);
}

pub async fn pagination<S: Store>(s: &S) {
    for n in 0..7 {
        s.create_instance(&instance(&format!("kst-{n:02}")))
            .await
            .unwrap();
        s.create_access_key(&access_key(&format!("LTAI{n:02}")))
            .await
            .unwrap();
        s.create_vpc(&vpc(&format!("vpc-{n:02}"))).await.unwrap();
        s.create_cluster(&cluster(&format!("hsmc-{n:02}")))
            .await
            .unwrap();
    }
    let p = |number| Page { number, size: 3 };
    let ids = |v: Vec<Instance>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
    let first = s.list_instances(p(1)).await.unwrap();
    assert_eq!(first.total, 7);
    assert_eq!(ids(first.items), ["kst-00", "kst-01", "kst-02"]);
    assert_eq!(ids(s.list_instances(p(3)).await.unwrap().items), ["kst-06"]);
    let beyond = s.list_instances(p(4)).await.unwrap();
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.total, 7);
    let keys = s.list_access_keys(p(2)).await.unwrap();
    assert_eq!((keys.total, keys.items.len()), (7, 3));
    assert_eq!(keys.items[0].id, "LTAI03");
    let vpcs = s.list_vpcs(p(3)).await.unwrap();
    assert_eq!((vpcs.total, vpcs.items.len()), (7, 1));
    let clusters = s.list_clusters(p(1)).await.unwrap();
    assert_eq!((clusters.total, clusters.items.len()), (7, 3));
    assert_eq!(clusters.items[2].nodes.len(), 2);
}

pub async fn optimistic_concurrency<S: Store>(s: &S) {
    s.create_instance(&instance("kst-occ")).await.unwrap();
    let a = s.get_instance("kst-occ").await.unwrap();
    let b = a.clone();
    let a2 = s
        .update_instance(&Instance {
            status: InstanceStatus::Connecting,
            ..a
        })
        .await
        .unwrap();
    assert_eq!(a2.version, 2);
    let err = s
        .update_instance(&Instance {
            status: InstanceStatus::Error,
            ..b
        })
        .await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert_eq!(
        s.get_instance("kst-occ").await.unwrap().status,
        InstanceStatus::Connecting
    );
    let ghost = s.update_instance(&instance("kst-ghost")).await;
    assert!(matches!(ghost, Err(StoreError::NotFound(_))), "{ghost:?}");
}

pub async fn one_cluster_one_instance<S: Store>(s: &S) {
    s.create_cluster(&cluster("hsmc-a")).await.unwrap();
    s.create_cluster(&cluster("hsmc-b")).await.unwrap();
    s.create_instance(&instance("kst-1")).await.unwrap();
    s.create_instance(&instance("kst-2")).await.unwrap();
    let bound = s.bind_cluster("kst-1", "hsmc-a").await.unwrap();
    assert_eq!(bound.hsm_cluster_id.as_deref(), Some("hsmc-a"));
    assert_eq!(bound.version, 2);
    // Idempotent for the same pair.
    assert_eq!(s.bind_cluster("kst-1", "hsmc-a").await.unwrap(), bound);
    let second = s.bind_cluster("kst-2", "hsmc-a").await;
    assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");
    let rebind = s.bind_cluster("kst-1", "hsmc-b").await;
    assert!(matches!(rebind, Err(StoreError::Conflict(_))), "{rebind:?}");
    // The schema enforces it even through a plain update.
    let mut two = s.get_instance("kst-2").await.unwrap();
    two.hsm_cluster_id = Some("hsmc-a".to_owned());
    assert!(matches!(
        s.update_instance(&two).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.bind_cluster("kst-2", "hsmc-x").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.bind_cluster("kst-x", "hsmc-b").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.delete_cluster("hsmc-a").await,
        Err(StoreError::Conflict(_))
    ));
    s.bind_cluster("kst-2", "hsmc-b").await.unwrap();
}

pub async fn nonces<S: Store>(s: &S) {
    assert!(s.insert_nonce("LTAI1", "n-1", 100).await.unwrap());
    assert!(!s.insert_nonce("LTAI1", "n-1", 100).await.unwrap());
    assert!(s.insert_nonce("LTAI2", "n-1", 200).await.unwrap());
    assert!(s.insert_nonce("LTAI1", "n-2", 300).await.unwrap());
    assert_eq!(s.purge_expired_nonces(200).await.unwrap(), 2);
    assert!(s.insert_nonce("LTAI1", "n-1", 400).await.unwrap());
    assert!(!s.insert_nonce("LTAI1", "n-2", 400).await.unwrap());
    assert_eq!(s.purge_expired_nonces(0).await.unwrap(), 0);
}

pub async fn not_found<S: Store>(s: &S) {
    let nf =
        |r: Result<(), StoreError>| assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    nf(s.get_instance("kst-none").await.map(drop));
    nf(s.get_access_key("LTAInone").await.map(drop));
    nf(s.get_cluster("hsmc-none").await.map(drop));
    nf(s.get_vpc("vpc-none").await.map(drop));
    nf(s.delete_instance("kst-none").await);
    nf(s.delete_access_key("LTAInone").await);
    nf(s.delete_cluster("hsmc-none").await);
    nf(s.delete_vpc("vpc-none").await);
    nf(s.set_access_key_status("LTAInone", AccessKeyStatus::Active)
        .await);
}

pub async fn concurrent_writers<S: Store + Clone>(s: &S) {
    let mut tasks = Vec::new();
    for t in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..10 {
                s.create_instance(&instance(&format!("kst-t{t}-{n}")))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = s
        .list_instances(Page {
            number: 1,
            size: 100,
        })
        .await
        .unwrap();
    assert_eq!(all.total, 80);
    let mut ids: Vec<_> = all.items.into_iter().map(|i| i.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 80);
}

pub async fn replace_vpcs<S: Store>(s: &S) {
    s.create_instance(&instance("kst-r")).await.unwrap();
    for id in ["vpc-1", "vpc-2", "vpc-3"] {
        s.create_vpc(&vpc(id)).await.unwrap();
    }
    let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    s.replace_instance_vpcs("kst-r", &ids(&["vpc-2", "vpc-1"]))
        .await
        .unwrap();
    assert_eq!(
        s.instance_vpcs("kst-r").await.unwrap(),
        ids(&["vpc-1", "vpc-2"])
    );
    // An unknown VPC changes nothing.
    assert!(matches!(
        s.replace_instance_vpcs("kst-r", &ids(&["vpc-3", "vpc-nope"]))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        s.instance_vpcs("kst-r").await.unwrap(),
        ids(&["vpc-1", "vpc-2"])
    );
    s.replace_instance_vpcs("kst-r", &ids(&["vpc-3", "vpc-3"]))
        .await
        .unwrap();
    assert_eq!(s.instance_vpcs("kst-r").await.unwrap(), ids(&["vpc-3"]));
    s.replace_instance_vpcs("kst-r", &[]).await.unwrap();
    assert_eq!(s.count_instance_vpcs("kst-r").await.unwrap(), 0);
    assert!(matches!(
        s.replace_instance_vpcs("kst-nope", &[]).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn settings<S: Store + Clone>(s: &S) {
    assert_eq!(s.get_setting("node-key-check").await.unwrap(), None);
    assert!(s.insert_setting("node-key-check", b"first").await.unwrap());
    assert!(!s.insert_setting("node-key-check", b"second").await.unwrap());
    assert_eq!(
        s.get_setting("node-key-check").await.unwrap().as_deref(),
        Some(&b"first"[..])
    );
    // Racing initialisers: exactly one wins and every reader sees its value.
    let mut tasks = Vec::new();
    for n in 0..16u8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.insert_setting("race", &[n]).await.unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(
        s.get_setting("race").await.unwrap().map(|v| v.len()),
        Some(1)
    );
}

/// Instance ports: assigned once, distinct (also when assigned concurrently), freed
/// with the instance, bounded by the range.
pub async fn instance_ports<S: Store + Clone>(s: &S) {
    let range = 18_000..=18_009;
    assert!(matches!(
        s.instance_port("kst-missing", range.clone()).await,
        Err(StoreError::NotFound(_))
    ));
    let mut ids = Vec::new();
    for n in 0..10 {
        let id = format!("kst-port{n}");
        s.create_instance(&instance(&id)).await.unwrap();
        ids.push(id);
    }
    let mut tasks = Vec::new();
    for id in ids.clone() {
        let (s, range) = (s.clone(), range.clone());
        tasks.push(tokio::spawn(async move {
            s.instance_port(&id, range).await.unwrap()
        }));
    }
    let mut ports = Vec::new();
    for t in tasks {
        ports.push(t.await.unwrap());
    }
    let mut sorted = ports.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, range.clone().collect::<Vec<_>>(), "distinct ports");
    for (id, port) in ids.iter().zip(&ports) {
        assert_eq!(s.instance_port(id, range.clone()).await.unwrap(), *port);
    }
    s.create_instance(&instance("kst-port-extra"))
        .await
        .unwrap();
    assert!(matches!(
        s.instance_port("kst-port-extra", range.clone()).await,
        Err(StoreError::QuotaExceeded(_))
    ));
    s.delete_instance(&ids[3]).await.unwrap();
    assert_eq!(
        s.instance_port("kst-port-extra", range).await.unwrap(),
        ports[3],
        "a released instance's port is free again"
    );
}

/// Every back-end-independent case, each on a fresh store from `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    S: Store + Clone,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    health(&make().await).await;
    access_key_crud(&make().await).await;
    instance_crud(&make().await).await;
    cluster_crud(&make().await).await;
    vpc_crud_and_bindings(&make().await).await;
    pagination(&make().await).await;
    optimistic_concurrency(&make().await).await;
    one_cluster_one_instance(&make().await).await;
    nonces(&make().await).await;
    not_found(&make().await).await;
    concurrent_writers(&make().await).await;
    replace_vpcs(&make().await).await;
    settings(&make().await).await;
    instance_ports(&make().await).await;
    keys::key_crud(&make().await).await;
    keys::key_not_found(&make().await).await;
    keys::key_list_filters(&make().await).await;
    keys::version_order_and_additional_usage(&make().await).await;
    keys::key_compare_and_set(&make().await).await;
    keys::key_quota(&make().await).await;
    keys::key_quota_race(&make().await).await;
    keys::add_key_version_updates_key(&make().await).await;
    keys::key_material(&make().await).await;
    keys::destroy_due_keys(&make().await).await;
    keys::destroy_due_keys_concurrently(&make().await).await;
    keys::keys_due_for_rotation(&make().await).await;
    keys::keys_with_expired_material(&make().await).await;
    keys::aliases(&make().await).await;
    keys::import_params_lifecycle(&make().await).await;
    keys::delete_instance_with_keys(&make().await).await;
    access::network_rule_crud(&make().await).await;
    access::policy_crud(&make().await).await;
    access::access_point_crud(&make().await).await;
    access::client_key_crud(&make().await).await;
    access::access_pagination(&make().await).await;
    access::access_references(&make().await).await;
    access::client_key_limit(&make().await).await;
    access::client_key_limit_race(&make().await).await;
    access::access_snapshot_contents(&make().await).await;
    access::delete_instance_refused_while_a_policy_names_it(&make().await).await;
    secrets::secret_crud(&make().await).await;
    secrets::secret_not_found_and_conflicts(&make().await).await;
    secrets::secret_quota(&make().await).await;
    secrets::secret_quota_race(&make().await).await;
    secrets::secret_list_filters(&make().await).await;
    secrets::secret_stage_moves(&make().await).await;
    secrets::secret_version_eviction(&make().await).await;
    secrets::destroy_due_secrets(&make().await).await;
    secrets::destroy_due_secrets_concurrently(&make().await).await;
    secrets::secret_counts(&make().await).await;
    secrets::destroy_due_keys_spares_keys_of_secrets(&make().await).await;
    secrets::delete_instance_with_secrets(&make().await).await;
}
