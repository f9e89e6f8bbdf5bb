#![allow(clippy::unwrap_used, reason = "tests")]

use super::*;

const NOW: i64 = 1_800_000_000;
const KEY_ID: &str = "KAAP.0b6c1a8e-1f7c-4d1e-9a52-5f2b8e4d7c10";
const INSTANCE: &str = "kst-hzz634e67d126u9p9abcd";

fn cidrs(list: &[&str]) -> Vec<Cidr> {
    list.iter().map(|c| c.parse().unwrap()).collect()
}

fn rule(name: &str, list: &[&str]) -> NetworkRule {
    NetworkRule {
        name: name.to_owned(),
        sources: cidrs(list),
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn policy(name: &str, permissions: &[Permission], resources: &[&str], rules: &[&str]) -> Policy {
    Policy {
        name: name.to_owned(),
        instance_id: INSTANCE.to_owned(),
        permissions: permissions.to_vec(),
        resources: strings(resources),
        network_rules: strings(rules),
    }
}

const KEY_USER: Permission = Permission::CryptoServiceKeyUser;
const SECRET_USER: Permission = Permission::CryptoServiceSecretUser;

/// One access point `app` with the given policies, one client key valid ±1000 s around
/// `NOW`, and the rules `office` (10.0.0.0/8) and `v6` (fd00::/8).
fn snapshot(policies: Vec<Policy>, names: &[&str]) -> Snapshot {
    Snapshot::new(
        vec![rule("office", &["10.0.0.0/8"]), rule("v6", &["fd00::/8"])],
        policies,
        vec![AccessPoint {
            name: "app".to_owned(),
            policies: strings(names),
        }],
        vec![ClientKey {
            id: KEY_ID.to_owned(),
            access_point: "app".to_owned(),
            not_before: NOW - 1000,
            not_after: NOW + 1000,
        }],
    )
}

fn key_request(id: &str, source: &str) -> Request {
    Request {
        client_key_id: KEY_ID.to_owned(),
        source: source.parse().unwrap(),
        instance_id: INSTANCE.to_owned(),
        resource: Resource::Key { id: id.to_owned() },
        action: KEY_USER,
        now: NOW,
    }
}

fn allow(policy: &str) -> Decision {
    Decision::Allow {
        policy: policy.to_owned(),
    }
}

/// The reason's variant name, for tests that do not care about the fields.
fn kind(decision: &Decision) -> &'static str {
    match decision {
        Decision::Allow { .. } => "Allow",
        Decision::Deny(reason) => match reason {
            Reason::UnknownClientKey => "UnknownClientKey",
            Reason::ClientKeyNotYetValid { .. } => "ClientKeyNotYetValid",
            Reason::ClientKeyExpired { .. } => "ClientKeyExpired",
            Reason::UnknownAccessPoint { .. } => "UnknownAccessPoint",
            Reason::NoPolicyForInstance { .. } => "NoPolicyForInstance",
            Reason::PermissionNotGranted { .. } => "PermissionNotGranted",
            Reason::ResourceNotGranted { .. } => "ResourceNotGranted",
            Reason::SourceNotAllowed { .. } => "SourceNotAllowed",
        },
    }
}

fn all_keys() -> Snapshot {
    snapshot(
        vec![policy("p", &[KEY_USER], &["key/*"], &["office", "v6"])],
        &["p"],
    )
}

#[test]
fn allows_a_granted_request() {
    let snap = all_keys();
    assert_eq!(
        evaluate(&snap, &key_request("key-abc", "10.1.2.3")),
        allow("p")
    );
    assert!(evaluate(&snap, &key_request("key-abc", "fd12::1")).is_allowed());
}

#[test]
fn unknown_client_key() {
    let snap = all_keys();
    let mut request = key_request("key-abc", "10.1.2.3");
    request.client_key_id = "KAAP.00000000-0000-0000-0000-000000000000".to_owned();
    assert_eq!(
        evaluate(&snap, &request),
        Decision::Deny(Reason::UnknownClientKey)
    );
    // Ids are compared exactly.
    request.client_key_id = KEY_ID.to_lowercase();
    assert_eq!(
        evaluate(&snap, &request),
        Decision::Deny(Reason::UnknownClientKey)
    );
}

#[test]
fn client_key_validity_is_inclusive_at_both_ends() {
    let snap = all_keys();
    let mut request = key_request("key-abc", "10.1.2.3");
    for (now, expected) in [
        (NOW - 1001, "ClientKeyNotYetValid"),
        (NOW - 1000, "Allow"),
        (NOW + 1000, "Allow"),
        (NOW + 1001, "ClientKeyExpired"),
    ] {
        request.now = now;
        assert_eq!(kind(&evaluate(&snap, &request)), expected, "at {now}");
    }
    request.now = NOW - 5000;
    assert_eq!(
        evaluate(&snap, &request),
        Decision::Deny(Reason::ClientKeyNotYetValid {
            not_before: NOW - 1000
        })
    );
    request.now = NOW + 5000;
    assert_eq!(
        evaluate(&snap, &request),
        Decision::Deny(Reason::ClientKeyExpired {
            not_after: NOW + 1000
        })
    );
}

#[test]
fn an_empty_validity_period_reports_not_before_first() {
    let snap = Snapshot::new(
        vec![],
        vec![],
        vec![],
        vec![ClientKey {
            id: KEY_ID.to_owned(),
            access_point: "app".to_owned(),
            not_before: NOW + 10,
            not_after: NOW - 10,
        }],
    );
    let mut request = key_request("key-abc", "10.1.2.3");
    assert_eq!(kind(&evaluate(&snap, &request)), "ClientKeyNotYetValid");
    request.now = NOW + 20;
    assert_eq!(kind(&evaluate(&snap, &request)), "ClientKeyExpired");
}

#[test]
fn unknown_access_point() {
    let snap = Snapshot::new(
        vec![rule("office", &["10.0.0.0/8"])],
        vec![policy("p", &[KEY_USER], &["key/*"], &["office"])],
        vec![],
        vec![ClientKey {
            id: KEY_ID.to_owned(),
            access_point: "gone".to_owned(),
            not_before: NOW - 1,
            not_after: NOW + 1,
        }],
    );
    assert_eq!(
        evaluate(&snap, &key_request("key-abc", "10.1.2.3")),
        Decision::Deny(Reason::UnknownAccessPoint {
            access_point: "gone".to_owned()
        })
    );
}

#[test]
fn no_policy_for_the_instance() {
    let mut other = policy("other", &[KEY_USER], &["key/*"], &["office"]);
    other.instance_id = "kst-other".to_owned();
    // "missing" is listed by the access point but does not exist.
    let snap = snapshot(vec![other], &["other", "missing"]);
    assert_eq!(
        evaluate(&snap, &key_request("key-abc", "10.1.2.3")),
        Decision::Deny(Reason::NoPolicyForInstance {
            access_point: "app".to_owned(),
            policies: strings(&["other", "missing"]),
        })
    );
    // An access point with no policies at all.
    let snap = snapshot(vec![], &[]);
    assert_eq!(
        kind(&evaluate(&snap, &key_request("key-abc", "10.1.2.3"))),
        "NoPolicyForInstance"
    );
}

#[test]
fn permission_not_granted() {
    let snap = snapshot(
        vec![policy(
            "secrets",
            &[SECRET_USER],
            &["key/*", "secret/*"],
            &["office"],
        )],
        &["secrets"],
    );
    assert_eq!(
        evaluate(&snap, &key_request("key-abc", "10.1.2.3")),
        Decision::Deny(Reason::PermissionNotGranted {
            access_point: "app".to_owned(),
            policies: strings(&["secrets"]),
        })
    );
    // A policy with no permission at all grants nothing.
    let snap = snapshot(
        vec![policy("none", &[], &["key/*"], &["office"])],
        &["none"],
    );
    assert_eq!(
        kind(&evaluate(&snap, &key_request("key-abc", "10.1.2.3"))),
        "PermissionNotGranted"
    );
}

#[test]
fn resource_not_granted() {
    let snap = snapshot(
        vec![policy(
            "one",
            &[KEY_USER],
            &["key/key-one", "secret/*"],
            &["office"],
        )],
        &["one"],
    );
    assert_eq!(
        evaluate(&snap, &key_request("key-two", "10.1.2.3")),
        Decision::Deny(Reason::ResourceNotGranted {
            access_point: "app".to_owned(),
            policies: strings(&["one"]),
        })
    );
}

#[test]
fn source_not_allowed() {
    let snap = all_keys();
    assert_eq!(
        evaluate(&snap, &key_request("key-abc", "192.168.1.1")),
        Decision::Deny(Reason::SourceNotAllowed {
            access_point: "app".to_owned(),
            policies: strings(&["p"]),
        })
    );
}

#[test]
fn missing_or_no_network_rules_allow_no_source() {
    let snap = snapshot(
        vec![
            policy("ghost", &[KEY_USER], &["key/*"], &["no-such-rule"]),
            policy("bare", &[KEY_USER], &["key/*"], &[]),
        ],
        &["ghost", "bare"],
    );
    for source in ["10.1.2.3", "0.0.0.0", "::", "fd00::1"] {
        assert_eq!(
            kind(&evaluate(&snap, &key_request("key-abc", source))),
            "SourceNotAllowed",
            "{source}"
        );
    }
    // With an existing rule beside the missing one, that rule's networks count.
    let snap = snapshot(
        vec![policy(
            "mixed",
            &[KEY_USER],
            &["key/*"],
            &["no-such-rule", "office"],
        )],
        &["mixed"],
    );
    assert_eq!(
        evaluate(&snap, &key_request("key-abc", "10.9.9.9")),
        allow("mixed")
    );
}

#[test]
fn the_furthest_failure_is_reported() {
    let permission_only = policy("secrets", &[SECRET_USER], &["key/*"], &["office"]);
    let resource_only = policy("other-key", &[KEY_USER], &["key/key-other"], &["office"]);
    let network_only = policy("far", &[KEY_USER], &["key/*"], &["v6"]);

    // Permission < resource < source, whatever the order of the policies.
    let snap = snapshot(
        vec![
            permission_only.clone(),
            resource_only.clone(),
            network_only.clone(),
        ],
        &["secrets", "other-key", "far"],
    );
    assert_eq!(
        evaluate(&snap, &key_request("key-abc", "10.1.2.3")),
        Decision::Deny(Reason::SourceNotAllowed {
            access_point: "app".to_owned(),
            policies: strings(&["secrets", "other-key", "far"]),
        })
    );
    let snap = snapshot(
        vec![permission_only.clone(), resource_only.clone()],
        &["other-key", "secrets"],
    );
    assert_eq!(
        evaluate(&snap, &key_request("key-abc", "10.1.2.3")),
        Decision::Deny(Reason::ResourceNotGranted {
            access_point: "app".to_owned(),
            policies: strings(&["other-key", "secrets"]),
        })
    );
    // Any policy that allows wins over the failures of the others, and the first one
    // that allows is named.
    let snap = snapshot(
        vec![
            permission_only,
            resource_only,
            network_only,
            policy("ok", &[KEY_USER], &["key/key-abc"], &["office"]),
            policy("ok-too", &[KEY_USER], &["key/*"], &["office"]),
        ],
        &["secrets", "other-key", "far", "ok", "ok-too"],
    );
    assert_eq!(
        evaluate(&snap, &key_request("key-abc", "10.1.2.3")),
        allow("ok")
    );
}

#[test]
fn client_key_checks_come_before_policy_checks() {
    // Everything is wrong: the key is expired, and nothing would be granted anyway.
    let snap = snapshot(vec![], &["missing"]);
    let mut request = key_request("key-abc", "192.168.1.1");
    request.now = NOW + 5000;
    assert_eq!(kind(&evaluate(&snap, &request)), "ClientKeyExpired");
}

#[test]
fn policies_of_other_instances_are_not_considered() {
    let mut elsewhere = policy("elsewhere", &[KEY_USER], &["key/*"], &["office"]);
    elsewhere.instance_id = "kst-other".to_owned();
    let here = policy("here", &[KEY_USER], &["key/key-one"], &["office"]);
    let snap = snapshot(vec![elsewhere, here], &["elsewhere", "here"]);
    assert_eq!(
        evaluate(&snap, &key_request("key-abc", "10.1.2.3")),
        Decision::Deny(Reason::ResourceNotGranted {
            access_point: "app".to_owned(),
            policies: strings(&["here"]),
        })
    );
}

#[test]
fn resource_patterns() {
    let key = |id: &str| Resource::Key { id: id.to_owned() };
    let secret = |name: &str| Resource::Secret {
        name: name.to_owned(),
    };
    let cases: &[(&str, Resource, bool)] = &[
        ("key/*", key("key-hzz62f1cb66fa42qo1234"), true),
        ("key/*", key(""), true),
        ("key/key-hzz*", key("key-hzz62f1cb66fa42qo1234"), true),
        ("key/key-hzz*", key("key-hzz"), true),
        ("key/key-hzz*", key("key-hz"), false),
        ("key/key-hzz*", key("key-shh1"), false),
        ("key/key-abc", key("key-abc"), true),
        ("key/key-abc", key("key-abcd"), false),
        ("key/key-abc", key("key-ab"), false),
        ("key/key-abc", key("KEY-ABC"), false),
        ("key/*", secret("db"), false),
        ("secret/*", key("key-abc"), false),
        ("secret/*", secret("acs/ram/user/ram-secret"), true),
        ("secret/acs/ram/*", secret("acs/ram/user/ram-secret"), true),
        (
            "secret/acs/ram/user/ram-secret",
            secret("acs/ram/user/ram-secret"),
            true,
        ),
        ("secret/db", secret("db-pass"), false),
        ("secret/db*", secret("db-pass"), true),
        // Only a trailing `*` is a wildcard.
        ("key/*abc", key("key-abc"), false),
        ("key/*abc", key("*abc"), true),
        ("key/a**", key("a*b"), true),
        ("key/a**", key("ab"), false),
        // Other forms match nothing.
        ("*", key("key-abc"), false),
        ("*", secret("db"), false),
        ("key*", key("key-abc"), false),
        ("alias/*", key("key-abc"), false),
        ("alias/my-key", key("key-abc"), false),
        ("", key(""), false),
        ("keys/*", key("key-abc"), false),
        ("KEY/*", key("key-abc"), false),
    ];
    for (pattern, resource, expected) in cases {
        assert_eq!(
            resource.matches(pattern),
            *expected,
            "{pattern} against {resource}"
        );
    }
    assert!(Resource::Instance.matches("secret/x"));
    assert!(Resource::Instance.matches(""));
}

#[test]
fn instance_resource_needs_permission_and_network_only() {
    let snap = snapshot(
        vec![policy(
            "one-key",
            &[KEY_USER],
            &["key/key-one"],
            &["office"],
        )],
        &["one-key"],
    );
    let mut request = key_request("unused", "10.1.2.3");
    request.resource = Resource::Instance;
    assert_eq!(evaluate(&snap, &request), allow("one-key"));
    request.source = "11.0.0.1".parse().unwrap();
    assert_eq!(kind(&evaluate(&snap, &request)), "SourceNotAllowed");
    request.action = SECRET_USER;
    assert_eq!(kind(&evaluate(&snap, &request)), "PermissionNotGranted");
}

#[test]
fn secrets_need_the_secret_permission() {
    let snap = snapshot(
        vec![
            policy("keys", &[KEY_USER], &["secret/*"], &["office"]),
            policy("secrets", &[SECRET_USER], &["secret/db*"], &["office"]),
        ],
        &["keys", "secrets"],
    );
    let mut request = key_request("unused", "10.1.2.3");
    request.resource = Resource::Secret {
        name: "db-pass".to_owned(),
    };
    request.action = SECRET_USER;
    assert_eq!(evaluate(&snap, &request), allow("secrets"));
    request.resource = Resource::Secret {
        name: "web".to_owned(),
    };
    assert_eq!(kind(&evaluate(&snap, &request)), "ResourceNotGranted");
}

fn network_snapshot(list: &[&str]) -> Snapshot {
    Snapshot::new(
        vec![rule("net", list)],
        vec![policy("p", &[KEY_USER], &["key/*"], &["net"])],
        vec![AccessPoint {
            name: "app".to_owned(),
            policies: strings(&["p"]),
        }],
        vec![ClientKey {
            id: KEY_ID.to_owned(),
            access_point: "app".to_owned(),
            not_before: NOW,
            not_after: NOW,
        }],
    )
}

fn allowed_from(list: &[&str], source: &str) -> bool {
    evaluate(&network_snapshot(list), &key_request("key-abc", source)).is_allowed()
}

#[test]
fn ipv4_cidr_edges() {
    let cases: &[(&[&str], &str, bool)] = &[
        (&["0.0.0.0/0"], "0.0.0.0", true),
        (&["0.0.0.0/0"], "255.255.255.255", true),
        (&["0.0.0.0/0"], "::1", false),
        (&["192.168.1.7/32"], "192.168.1.7", true),
        (&["192.168.1.7/32"], "192.168.1.6", false),
        (&["192.168.1.7/32"], "192.168.1.8", false),
        (&["192.168.1.7"], "192.168.1.7", true),
        (&["192.168.1.0/24"], "192.168.1.0", true),
        (&["192.168.1.0/24"], "192.168.1.255", true),
        (&["192.168.1.0/24"], "192.168.0.255", false),
        (&["192.168.1.0/24"], "192.168.2.0", false),
        (&["10.0.0.0/31"], "10.0.0.1", true),
        (&["10.0.0.0/31"], "10.0.0.2", false),
        (&["128.0.0.0/1"], "127.255.255.255", false),
        (&["128.0.0.0/1"], "128.0.0.0", true),
        (&["172.16.0.0/12"], "172.31.255.255", true),
        (&["172.16.0.0/12"], "172.32.0.0", false),
        // An IPv4-mapped IPv6 source is its IPv4 address.
        (&["192.168.1.0/24"], "::ffff:192.168.1.9", true),
        (&["192.168.1.0/24"], "::ffff:192.168.2.9", false),
        // Several blocks in one rule.
        (&["192.168.1.7", "10.0.0.0/24"], "10.0.0.200", true),
        (&["192.168.1.7", "10.0.0.0/24"], "10.0.1.0", false),
        (&[], "10.0.0.1", false),
    ];
    for (list, source, expected) in cases {
        assert_eq!(
            allowed_from(list, source),
            *expected,
            "{source} in {list:?}"
        );
    }
}

#[test]
fn ipv6_cidr_edges() {
    let cases: &[(&[&str], &str, bool)] = &[
        (&["::/0"], "::", true),
        (&["::/0"], "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
        (&["::/0"], "10.0.0.1", false),
        (&["fd00::1/128"], "fd00::1", true),
        (&["fd00::1/128"], "fd00::2", false),
        (&["fd00::1/128"], "fd00::", false),
        (&["fd00::1"], "fd00::1", true),
        (&["fd00:1:2:3::/64"], "fd00:1:2:3::", true),
        (&["fd00:1:2:3::/64"], "fd00:1:2:3:ffff:ffff:ffff:ffff", true),
        (&["fd00:1:2:3::/64"], "fd00:1:2:4::", false),
        (
            &["fd00:1:2:3::/64"],
            "fd00:1:2:2:ffff:ffff:ffff:ffff",
            false,
        ),
        (&["fd00::/8"], "fdff::1", true),
        (&["fd00::/8"], "fe00::1", false),
        (&["fd00::/8"], "fc00::1", false),
        (&["fe80::/10"], "febf:ffff::1", true),
        (&["fe80::/10"], "fec0::1", false),
        (&["::1/128"], "::1", true),
    ];
    for (list, source, expected) in cases {
        assert_eq!(
            allowed_from(list, source),
            *expected,
            "{source} in {list:?}"
        );
    }
}

#[test]
fn duplicate_names_keep_the_first_record() {
    let snap = Snapshot::new(
        vec![rule("net", &["10.0.0.0/8"]), rule("net", &["0.0.0.0/0"])],
        vec![
            policy("p", &[KEY_USER], &["key/*"], &["net"]),
            policy("p", &[], &[], &[]),
        ],
        vec![
            AccessPoint {
                name: "app".to_owned(),
                policies: strings(&["p"]),
            },
            AccessPoint {
                name: "app".to_owned(),
                policies: vec![],
            },
        ],
        vec![ClientKey {
            id: KEY_ID.to_owned(),
            access_point: "app".to_owned(),
            not_before: NOW,
            not_after: NOW,
        }],
    );
    assert!(evaluate(&snap, &key_request("key-abc", "10.0.0.1")).is_allowed());
    assert_eq!(
        kind(&evaluate(&snap, &key_request("key-abc", "11.0.0.1"))),
        "SourceNotAllowed"
    );
}

#[test]
fn wire_codes() {
    let ap = || "app".to_owned();
    let cases = [
        (Reason::UnknownClientKey, "Unauthorized", 404),
        (
            Reason::ClientKeyNotYetValid { not_before: 0 },
            "Unauthorized",
            404,
        ),
        (
            Reason::ClientKeyExpired { not_after: 0 },
            "Unauthorized",
            404,
        ),
        (
            Reason::UnknownAccessPoint { access_point: ap() },
            "Forbidden.NoPermission",
            403,
        ),
        (
            Reason::NoPolicyForInstance {
                access_point: ap(),
                policies: vec![],
            },
            "Forbidden.NoPermission",
            403,
        ),
        (
            Reason::PermissionNotGranted {
                access_point: ap(),
                policies: vec![],
            },
            "Forbidden.NoPermission",
            403,
        ),
        (
            Reason::ResourceNotGranted {
                access_point: ap(),
                policies: vec![],
            },
            "Forbidden.NoPermission",
            403,
        ),
        (
            Reason::SourceNotAllowed {
                access_point: ap(),
                policies: strings(&["p1", "p2"]),
            },
            "Forbidden.NoPermission",
            403,
        ),
    ];
    for (reason, code, status) in cases {
        assert_eq!(reason.wire_code(), code, "{reason}");
        assert_eq!(reason.http_status(), status, "{reason}");
        assert!(!reason.to_string().is_empty());
    }
}

#[test]
fn permission_names() {
    for permission in [KEY_USER, SECRET_USER] {
        assert_eq!(
            permission.as_str().parse::<Permission>().unwrap(),
            permission
        );
        assert_eq!(permission.to_string(), permission.as_str());
    }
    assert_eq!(
        "RbacPermission/Template/CryptoServiceKeyUser"
            .parse::<Permission>()
            .unwrap(),
        KEY_USER
    );
    for bad in [
        "SecretUser",
        "CryptoServiceKeyUser",
        "",
        "rbacpermission/template/cryptoservicekeyuser",
    ] {
        assert!(bad.parse::<Permission>().is_err(), "{bad}");
    }
}

#[test]
fn resource_display() {
    assert_eq!(
        Resource::Key {
            id: "key-abc".to_owned()
        }
        .to_string(),
        "key/key-abc"
    );
    assert_eq!(
        Resource::Secret {
            name: "db".to_owned()
        }
        .to_string(),
        "secret/db"
    );
    assert_eq!(Resource::Instance.to_string(), "instance");
}
