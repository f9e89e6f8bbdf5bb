//! The shared cases for secrets, their versions and stages.

use super::keys::{key, version};
use super::{all, instance};
use crate::{
    Key, KeyState, Page, Secret, SecretFilter, SecretVersion, StageOn, Store, StoreError, Tag,
};

/// A sample secret of `instance_id` encrypted under `key_id`: two tags, not scheduled
/// for deletion.
pub fn secret(name: &str, instance_id: &str, key_id: &str) -> Secret {
    Secret {
        name: name.to_owned(),
        instance_id: instance_id.to_owned(),
        secret_type: "Generic".to_owned(),
        encryption_key_id: key_id.to_owned(),
        description: format!("secret {name}"),
        extended_config: String::new(),
        tags: vec![tag("team", "payments"), tag("env", "prod")],
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
        planned_delete_at: None,
        version: 1,
    }
}

/// A version of secret `name` with a ciphertext derived from its id.
pub fn secret_version(name: &str, version_id: &str, created_at: i64) -> SecretVersion {
    SecretVersion {
        secret_name: name.to_owned(),
        version_id: version_id.to_owned(),
        data_type: "text".to_owned(),
        ciphertext: format!("sealed {version_id}").into_bytes(),
        stages: Vec::new(),
        created_at,
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

fn on(stage: &str, version_id: &str) -> StageOn {
    StageOn {
        stage: stage.to_owned(),
        version_id: version_id.to_owned(),
    }
}

fn is_not_found<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound(_)))
}

fn is_conflict<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

/// Makes instance `instance_id` with key `key_id`.
async fn setup<S: Store>(s: &S, instance_id: &str, key_id: &str) {
    s.create_instance(&instance(instance_id)).await.unwrap();
    put_key(s, &key(key_id, instance_id)).await;
}

async fn put_key<S: Store>(s: &S, k: &Key) {
    s.create_key(k, &version(&k.id, &k.primary_version, k.created_at), 1000)
        .await
        .unwrap();
}

/// Stores `sec` with its first version `<name>-v1`.
async fn put<S: Store>(s: &S, sec: &Secret) {
    s.create_secret(
        sec,
        &secret_version(&sec.name, &format!("{}-v1", sec.name), sec.created_at),
        1000,
    )
    .await
    .unwrap();
}

fn names(secrets: &[Secret]) -> Vec<&str> {
    secrets.iter().map(|s| s.name.as_str()).collect()
}

fn version_ids(versions: &[SecretVersion]) -> Vec<&str> {
    versions.iter().map(|v| v.version_id.as_str()).collect()
}

/// Every field round-trips; tags keep their order; the first version gets `ACSCurrent`
/// whatever stages it was given; update is compare-and-set; delete removes everything.
pub async fn secret_crud<S: Store>(s: &S) {
    setup(s, "kst-sec", "key-sec").await;
    let sec = Secret {
        extended_config: r#"{"SecretSubType":"Generic"}"#.to_owned(),
        tags: vec![tag("z", "1"), tag("a", "2"), tag("m", "3")],
        ..secret("db-password", "kst-sec", "key-sec")
    };
    let first = SecretVersion {
        stages: vec!["Ignored".to_owned()],
        data_type: "binary".to_owned(),
        ciphertext: vec![0, 255, 1, 254],
        ..secret_version("db-password", "v1", 1_700_000_000)
    };
    s.create_secret(&sec, &first, 10).await.unwrap();
    assert_eq!(s.get_secret("db-password").await.unwrap(), sec);
    let stored = s.get_secret_version("db-password", "v1").await.unwrap();
    assert_eq!(
        stored,
        SecretVersion {
            stages: vec!["ACSCurrent".to_owned()],
            ..first.clone()
        }
    );
    assert_eq!(
        s.get_secret_version_by_stage("db-password", "ACSCurrent")
            .await
            .unwrap(),
        stored
    );
    assert_eq!(
        s.list_secret_versions("db-password").await.unwrap(),
        vec![stored]
    );

    // Update: every mutable field, Some planned deletion, then back to None.
    let changed = Secret {
        description: "rotated by hand".to_owned(),
        extended_config: String::new(),
        tags: vec![tag("b", "x"), tag("a", "y")],
        updated_at: 1_700_000_500,
        planned_delete_at: Some(1_700_600_000),
        ..sec.clone()
    };
    let updated = s.update_secret(&changed).await.unwrap();
    assert_eq!(
        updated,
        Secret {
            version: 2,
            ..changed.clone()
        }
    );
    assert_eq!(s.get_secret("db-password").await.unwrap(), updated);
    // Fields fixed at creation are not changed by an update.
    let restored = s
        .update_secret(&Secret {
            planned_delete_at: None,
            tags: Vec::new(),
            instance_id: "kst-other".to_owned(),
            secret_type: "Other".to_owned(),
            encryption_key_id: "key-other".to_owned(),
            created_at: 5,
            ..updated.clone()
        })
        .await
        .unwrap();
    assert_eq!(restored.planned_delete_at, None);
    assert!(restored.tags.is_empty());
    assert_eq!(restored.instance_id, "kst-sec");
    assert_eq!(restored.secret_type, "Generic");
    assert_eq!(restored.encryption_key_id, "key-sec");
    assert_eq!(restored.created_at, 1_700_000_000);
    assert_eq!(restored.version, 3);

    s.delete_secret("db-password").await.unwrap();
    assert!(is_not_found(&s.get_secret("db-password").await));
    assert!(is_not_found(&s.list_secret_versions("db-password").await));
    assert!(is_not_found(
        &s.get_secret_version("db-password", "v1").await
    ));
    assert!(is_not_found(
        &s.get_secret_version_by_stage("db-password", "ACSCurrent")
            .await
    ));
    assert_eq!(s.count_instance_secrets("kst-sec").await.unwrap(), 0);
    // The name is free again, and tags of the old secret are gone.
    let again = Secret {
        tags: Vec::new(),
        ..secret("db-password", "kst-sec", "key-sec")
    };
    put(s, &again).await;
    assert_eq!(s.get_secret("db-password").await.unwrap(), again);
}

/// Missing instance, key, secret, version or stage: `NotFound`; a taken name, a stale
/// version or a taken version id: `Conflict`.
pub async fn secret_not_found_and_conflicts<S: Store>(s: &S) {
    setup(s, "kst-nf", "key-nf").await;
    let v1 = secret_version("s", "s-v1", 1);
    assert!(is_not_found(
        &s.create_secret(&secret("s", "kst-missing", "key-nf"), &v1, 10)
            .await
    ));
    assert!(is_not_found(
        &s.create_secret(&secret("s", "kst-nf", "key-missing"), &v1, 10)
            .await
    ));
    assert_eq!(s.count_instance_secrets("kst-nf").await.unwrap(), 0);
    assert!(is_not_found(&s.get_secret("s").await));
    assert!(is_not_found(&s.delete_secret("s").await));
    assert!(is_not_found(&s.list_secret_versions("s").await));
    assert!(is_not_found(
        &s.update_secret(&secret("s", "kst-nf", "key-nf")).await
    ));
    assert!(is_not_found(
        &s.write_secret_versions(&secret("s", "kst-nf", "key-nf"), None, &[], 10)
            .await
    ));

    let sec = secret("s", "kst-nf", "key-nf");
    s.create_secret(&sec, &v1, 10).await.unwrap();
    assert!(is_conflict(
        &s.create_secret(
            &secret("s", "kst-nf", "key-nf"),
            &secret_version("s", "other", 1),
            10
        )
        .await
    ));
    assert!(is_not_found(&s.get_secret_version("s", "nope").await));
    assert!(is_not_found(
        &s.get_secret_version_by_stage("s", "ACSPrevious").await
    ));

    // Compare-and-set.
    let updated = s.update_secret(&sec).await.unwrap();
    assert_eq!(updated.version, 2);
    assert!(is_conflict(&s.update_secret(&sec).await));
    assert!(is_conflict(
        &s.write_secret_versions(&sec, None, &[on("ACSCurrent", "s-v1")], 10)
            .await
    ));
    // A taken version id: nothing changes.
    assert!(is_conflict(
        &s.write_secret_versions(
            &updated,
            Some(&secret_version("s", "s-v1", 2)),
            &[on("ACSCurrent", "s-v1")],
            10
        )
        .await
    ));
    assert_eq!(s.get_secret("s").await.unwrap(), updated);
    assert_eq!(
        version_ids(&s.list_secret_versions("s").await.unwrap()),
        ["s-v1"]
    );
}

/// Quota N: N secrets fit, the next one is refused; a deleted one frees its unit.
pub async fn secret_quota<S: Store>(s: &S) {
    setup(s, "kst-q", "key-q").await;
    for n in 0..3 {
        let name = format!("q-{n}");
        s.create_secret(
            &secret(&name, "kst-q", "key-q"),
            &secret_version(&name, "v1", 1),
            3,
        )
        .await
        .unwrap();
    }
    let r = s
        .create_secret(
            &secret("q-3", "kst-q", "key-q"),
            &secret_version("q-3", "v1", 1),
            3,
        )
        .await;
    assert!(matches!(r, Err(StoreError::QuotaExceeded(_))), "{r:?}");
    assert!(is_not_found(&s.get_secret("q-3").await));
    assert_eq!(s.count_instance_secrets("kst-q").await.unwrap(), 3);
    // Scheduled for deletion still counts.
    let q0 = s.get_secret("q-0").await.unwrap();
    s.update_secret(&Secret {
        planned_delete_at: Some(10),
        ..q0
    })
    .await
    .unwrap();
    assert!(matches!(
        s.create_secret(
            &secret("q-3", "kst-q", "key-q"),
            &secret_version("q-3", "v1", 1),
            3
        )
        .await,
        Err(StoreError::QuotaExceeded(_))
    ));
    s.delete_secret("q-1").await.unwrap();
    s.create_secret(
        &secret("q-3", "kst-q", "key-q"),
        &secret_version("q-3", "v1", 1),
        3,
    )
    .await
    .unwrap();
    // Another instance has its own quota.
    setup(s, "kst-q2", "key-q2").await;
    s.create_secret(
        &secret("q2-0", "kst-q2", "key-q2"),
        &secret_version("q2-0", "v1", 1),
        1,
    )
    .await
    .unwrap();
}

/// Eight tasks race for the last unit of quota: exactly one wins.
pub async fn secret_quota_race<S: Store + Clone>(s: &S) {
    setup(s, "kst-qr", "key-qr").await;
    for n in 0..4 {
        put(s, &secret(&format!("held-{n}"), "kst-qr", "key-qr")).await;
    }
    let mut tasks = Vec::new();
    for n in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("racer-{n}");
            s.create_secret(
                &secret(&name, "kst-qr", "key-qr"),
                &secret_version(&name, "v1", 1),
                5,
            )
            .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::QuotaExceeded(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(s.count_instance_secrets("kst-qr").await.unwrap(), 5);
}

/// Filters by instance, name and description substrings, tag key and value, combined;
/// pages in creation order with the total.
pub async fn secret_list_filters<S: Store>(s: &S) {
    setup(s, "kst-la", "key-la").await;
    setup(s, "kst-lb", "key-lb").await;
    let mk = |name: &str, inst: &str, key: &str, created: i64, desc: &str, tags: Vec<Tag>| Secret {
        created_at: created,
        description: desc.to_owned(),
        tags,
        ..secret(name, inst, key)
    };
    let all_secrets = [
        mk(
            "prod/db",
            "kst-la",
            "key-la",
            10,
            "the main database",
            vec![tag("env", "prod")],
        ),
        mk(
            "prod/api-token",
            "kst-la",
            "key-la",
            20,
            "API token for partner",
            vec![tag("env", "prod"), tag("owner", "alice")],
        ),
        mk(
            "test/db",
            "kst-la",
            "key-la",
            20,
            "test database 100%_",
            vec![tag("env", "test")],
        ),
        mk(
            "b-secret",
            "kst-lb",
            "key-lb",
            5,
            "other instance",
            Vec::new(),
        ),
    ];
    for sec in &all_secrets {
        put(s, sec).await;
    }
    let list = |f: SecretFilter| async move { s.list_secrets(&f, all()).await.unwrap() };
    let everything = list(SecretFilter::default()).await;
    assert_eq!(everything.total, 4);
    // Creation time, then name.
    assert_eq!(
        names(&everything.items),
        ["b-secret", "prod/db", "prod/api-token", "test/db"]
    );
    assert_eq!(everything.items[2], all_secrets[1]);
    let by_instance = list(SecretFilter {
        instance_id: Some("kst-la".to_owned()),
        ..SecretFilter::default()
    })
    .await;
    assert_eq!(
        names(&by_instance.items),
        ["prod/db", "prod/api-token", "test/db"]
    );
    assert_eq!(by_instance.total, 3);
    let by_name = list(SecretFilter {
        name_contains: vec!["/db".to_owned(), "token".to_owned()],
        ..SecretFilter::default()
    })
    .await;
    assert_eq!(
        names(&by_name.items),
        ["prod/db", "prod/api-token", "test/db"]
    );
    // Substrings are literal: `%` and `_` are no wildcards, and case matters.
    let literal = list(SecretFilter {
        description_contains: vec!["100%_".to_owned()],
        ..SecretFilter::default()
    })
    .await;
    assert_eq!(names(&literal.items), ["test/db"]);
    let wildcard = list(SecretFilter {
        description_contains: vec!["%".to_owned(), "_".to_owned(), "Database".to_owned()],
        ..SecretFilter::default()
    })
    .await;
    assert_eq!(names(&wildcard.items), ["test/db"]);
    let by_description = list(SecretFilter {
        description_contains: vec!["database".to_owned()],
        ..SecretFilter::default()
    })
    .await;
    assert_eq!(names(&by_description.items), ["prod/db", "test/db"]);
    let by_tag_key = list(SecretFilter {
        tag_keys: vec!["owner".to_owned()],
        ..SecretFilter::default()
    })
    .await;
    assert_eq!(names(&by_tag_key.items), ["prod/api-token"]);
    let by_tag_value = list(SecretFilter {
        tag_values: vec!["prod".to_owned(), "test".to_owned()],
        ..SecretFilter::default()
    })
    .await;
    assert_eq!(by_tag_value.total, 3);
    let combined = list(SecretFilter {
        instance_id: Some("kst-la".to_owned()),
        name_contains: vec!["db".to_owned()],
        description_contains: vec!["database".to_owned()],
        tag_keys: vec!["env".to_owned()],
        tag_values: vec!["prod".to_owned()],
    })
    .await;
    assert_eq!(names(&combined.items), ["prod/db"]);
    assert_eq!(combined.total, 1);
    let none = list(SecretFilter {
        instance_id: Some("kst-lb".to_owned()),
        tag_values: vec!["prod".to_owned()],
        ..SecretFilter::default()
    })
    .await;
    assert_eq!(none.total, 0);
    assert!(none.items.is_empty());

    // Paging.
    let filter = SecretFilter {
        instance_id: Some("kst-la".to_owned()),
        ..SecretFilter::default()
    };
    let page = |number| Page { number, size: 2 };
    let p1 = s.list_secrets(&filter, page(1)).await.unwrap();
    assert_eq!(names(&p1.items), ["prod/db", "prod/api-token"]);
    assert_eq!(p1.total, 3);
    let p2 = s.list_secrets(&filter, page(2)).await.unwrap();
    assert_eq!(names(&p2.items), ["test/db"]);
    assert_eq!(p2.total, 3);
    let p3 = s.list_secrets(&filter, page(3)).await.unwrap();
    assert!(p3.items.is_empty());
    assert_eq!(p3.total, 3);
}

/// Stage moves replace the whole map atomically; stages are read back on every version,
/// sorted by name; the secret row is updated as by `update_secret`.
pub async fn secret_stage_moves<S: Store>(s: &S) {
    setup(s, "kst-st", "key-st").await;
    let sec = secret("st", "kst-st", "key-st");
    s.create_secret(&sec, &secret_version("st", "v1", 1), 10)
        .await
        .unwrap();
    let w1 = s
        .write_secret_versions(
            &Secret {
                description: "second".to_owned(),
                tags: vec![tag("k", "v")],
                updated_at: 1_700_000_100,
                planned_delete_at: Some(99),
                ..sec.clone()
            },
            Some(&SecretVersion {
                stages: vec!["Ignored".to_owned()],
                ..secret_version("st", "v2", 2)
            }),
            &[
                on("ACSCurrent", "v2"),
                on("ACSPrevious", "v1"),
                on("Custom", "v2"),
            ],
            10,
        )
        .await
        .unwrap();
    assert_eq!(w1.version, 2);
    assert_eq!(w1.description, "second");
    assert_eq!(w1.tags, vec![tag("k", "v")]);
    assert_eq!(w1.updated_at, 1_700_000_100);
    assert_eq!(w1.planned_delete_at, Some(99));
    assert_eq!(s.get_secret("st").await.unwrap(), w1);
    let versions = s.list_secret_versions("st").await.unwrap();
    assert_eq!(version_ids(&versions), ["v1", "v2"]);
    assert_eq!(versions[0].stages, ["ACSPrevious"]);
    assert_eq!(versions[1].stages, ["ACSCurrent", "Custom"]);
    assert_eq!(versions[1].ciphertext, b"sealed v2".to_vec());
    assert_eq!(
        s.get_secret_version_by_stage("st", "Custom")
            .await
            .unwrap()
            .version_id,
        "v2"
    );
    assert_eq!(
        s.get_secret_version_by_stage("st", "ACSPrevious")
            .await
            .unwrap(),
        versions[0]
    );

    // A move without a new version: the map is replaced, not merged.
    let w2 = s
        .write_secret_versions(&w1, None, &[on("ACSCurrent", "v1")], 10)
        .await
        .unwrap();
    assert_eq!(w2.version, 3);
    let versions = s.list_secret_versions("st").await.unwrap();
    assert_eq!(versions[0].stages, ["ACSCurrent"]);
    assert!(versions[1].stages.is_empty());
    assert!(is_not_found(
        &s.get_secret_version_by_stage("st", "ACSPrevious").await
    ));
    assert!(is_not_found(
        &s.get_secret_version_by_stage("st", "Custom").await
    ));

    // A stage naming a missing version: NotFound, and nothing changes (not the row, not
    // the new version, not the map).
    let r = s
        .write_secret_versions(
            &Secret {
                description: "never".to_owned(),
                ..w2.clone()
            },
            Some(&secret_version("st", "v3", 3)),
            &[on("ACSCurrent", "v3"), on("ACSPrevious", "missing")],
            10,
        )
        .await;
    assert!(is_not_found(&r), "{r:?}");
    assert_eq!(s.get_secret("st").await.unwrap(), w2);
    let after = s.list_secret_versions("st").await.unwrap();
    assert_eq!(version_ids(&after), ["v1", "v2"]);
    assert_eq!(after[0].stages, ["ACSCurrent"]);
    assert!(is_not_found(&s.get_secret_version("st", "v3").await));
    // A stage may name a version of another secret by id only if this secret has it.
    put(s, &secret("other", "kst-st", "key-st")).await;
    assert!(is_not_found(
        &s.write_secret_versions(&w2, None, &[on("ACSCurrent", "other-v1")], 10)
            .await
    ));
    assert_eq!(s.get_secret("st").await.unwrap(), w2);
    // Stages of one secret do not leak into another's.
    assert_eq!(
        s.get_secret_version("other", "other-v1")
            .await
            .unwrap()
            .stages,
        ["ACSCurrent"]
    );
}

/// Beyond `max_versions`, the oldest unstaged versions go; staged ones never do.
pub async fn secret_version_eviction<S: Store>(s: &S) {
    setup(s, "kst-ev", "key-ev").await;
    let mut sec = secret("ev", "kst-ev", "key-ev");
    s.create_secret(&sec, &secret_version("ev", "v1", 1), 10)
        .await
        .unwrap();
    // v1 keeps a custom stage throughout; each new version becomes current, the one
    // before it previous. All in the same second: the order is insertion order.
    let mut previous = "v1".to_owned();
    for n in 2..=6 {
        let id = format!("v{n}");
        sec = s
            .write_secret_versions(
                &sec,
                Some(&secret_version("ev", &id, 5)),
                &[
                    on("ACSCurrent", &id),
                    on("ACSPrevious", &previous),
                    on("Pinned", "v1"),
                ],
                3,
            )
            .await
            .unwrap();
        previous = id;
    }
    // Six added, at most three kept: v1 (pinned), v5 (previous), v6 (current).
    let versions = s.list_secret_versions("ev").await.unwrap();
    assert_eq!(version_ids(&versions), ["v1", "v5", "v6"]);
    assert_eq!(versions[0].stages, ["Pinned"]);
    assert_eq!(versions[1].stages, ["ACSPrevious"]);
    assert_eq!(versions[2].stages, ["ACSCurrent"]);
    assert!(is_not_found(&s.get_secret_version("ev", "v2").await));

    // Every version staged: more than the maximum stay.
    sec = s
        .write_secret_versions(
            &sec,
            Some(&secret_version("ev", "v7", 5)),
            &[
                on("ACSCurrent", "v7"),
                on("ACSPrevious", "v6"),
                on("Pinned", "v1"),
                on("Keep", "v5"),
            ],
            2,
        )
        .await
        .unwrap();
    assert_eq!(
        version_ids(&s.list_secret_versions("ev").await.unwrap()),
        ["v1", "v5", "v6", "v7"]
    );
    // Dropping stages lets eviction take the oldest unstaged ones first.
    sec = s
        .write_secret_versions(
            &sec,
            None,
            &[on("ACSCurrent", "v7"), on("ACSPrevious", "v1")],
            2,
        )
        .await
        .unwrap();
    assert_eq!(
        version_ids(&s.list_secret_versions("ev").await.unwrap()),
        ["v1", "v7"]
    );
    assert_eq!(sec.version, 8);
}

/// Secrets due for deletion are destroyed with their versions, stages and tags; others
/// stay; the limit is honoured.
pub async fn destroy_due_secrets<S: Store>(s: &S) {
    setup(s, "kst-dd", "key-dd").await;
    for (name, at) in [("d-1", Some(100)), ("d-2", Some(200)), ("d-3", Some(300))] {
        put(
            s,
            &Secret {
                planned_delete_at: at,
                ..secret(name, "kst-dd", "key-dd")
            },
        )
        .await;
    }
    put(s, &secret("keep", "kst-dd", "key-dd")).await;
    assert!(s.destroy_due_secrets(50, 10).await.unwrap().is_empty());
    assert_eq!(s.destroy_due_secrets(250, 1).await.unwrap(), ["d-1"]);
    assert_eq!(s.destroy_due_secrets(250, 10).await.unwrap(), ["d-2"]);
    assert!(is_not_found(&s.get_secret("d-2").await));
    assert!(is_not_found(&s.get_secret_version("d-2", "d-2-v1").await));
    assert!(is_not_found(
        &s.get_secret_version_by_stage("d-2", "ACSCurrent").await
    ));
    assert_eq!(s.destroy_due_secrets(i64::MAX, 10).await.unwrap(), ["d-3"]);
    assert_eq!(
        names(
            &s.list_secrets(&SecretFilter::default(), all())
                .await
                .unwrap()
                .items
        ),
        ["keep"]
    );
    // No tag of a destroyed secret is left to match.
    assert_eq!(
        s.list_secrets(
            &SecretFilter {
                tag_values: vec!["payments".to_owned()],
                ..SecretFilter::default()
            },
            all()
        )
        .await
        .unwrap()
        .total,
        1
    );
    // A destroyed name can be used again.
    put(s, &secret("d-1", "kst-dd", "key-dd")).await;
    assert_eq!(
        s.list_secret_versions("d-1").await.unwrap()[0].stages,
        ["ACSCurrent"]
    );
}

/// Four callers destroy forty due secrets at once: each is reported exactly once.
pub async fn destroy_due_secrets_concurrently<S: Store + Clone>(s: &S) {
    setup(s, "kst-dsc", "key-dsc").await;
    let mut expected = Vec::new();
    for n in 0..40 {
        let name = format!("sec-{n:02}");
        put(
            s,
            &Secret {
                planned_delete_at: Some(100 + n),
                ..secret(&name, "kst-dsc", "key-dsc")
            },
        )
        .await;
        expected.push(name);
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = s.destroy_due_secrets(1000, 3).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch);
            }
        }));
    }
    let mut reported = Vec::new();
    for t in tasks {
        reported.extend(t.await.unwrap());
    }
    reported.sort();
    assert_eq!(reported, expected);
    assert_eq!(s.count_instance_secrets("kst-dsc").await.unwrap(), 0);
}

/// Counts by instance and by key, in any state.
pub async fn secret_counts<S: Store>(s: &S) {
    setup(s, "kst-c1", "key-c1").await;
    put_key(s, &key("key-c1b", "kst-c1")).await;
    setup(s, "kst-c2", "key-c2").await;
    assert_eq!(s.count_instance_secrets("kst-c1").await.unwrap(), 0);
    assert_eq!(s.count_key_secrets("key-c1").await.unwrap(), 0);
    put(s, &secret("c-1", "kst-c1", "key-c1")).await;
    put(
        s,
        &Secret {
            planned_delete_at: Some(1),
            ..secret("c-2", "kst-c1", "key-c1")
        },
    )
    .await;
    put(s, &secret("c-3", "kst-c1", "key-c1b")).await;
    put(s, &secret("c-4", "kst-c2", "key-c2")).await;
    assert_eq!(s.count_instance_secrets("kst-c1").await.unwrap(), 3);
    assert_eq!(s.count_instance_secrets("kst-c2").await.unwrap(), 1);
    assert_eq!(s.count_instance_secrets("kst-none").await.unwrap(), 0);
    assert_eq!(s.count_key_secrets("key-c1").await.unwrap(), 2);
    assert_eq!(s.count_key_secrets("key-c1b").await.unwrap(), 1);
    assert_eq!(s.count_key_secrets("key-c2").await.unwrap(), 1);
    assert_eq!(s.count_key_secrets("key-none").await.unwrap(), 0);
}

/// A key due for destruction that still encrypts a secret is left alone until the
/// secret is gone.
pub async fn destroy_due_keys_spares_keys_of_secrets<S: Store>(s: &S) {
    s.create_instance(&instance("kst-dk")).await.unwrap();
    let due = |id: &str| Key {
        state: KeyState::PendingDeletion,
        delete_date: Some(100),
        ..key(id, "kst-dk")
    };
    put_key(s, &due("key-used")).await;
    put_key(s, &due("key-free")).await;
    put(s, &secret("uses-key", "kst-dk", "key-used")).await;
    assert_eq!(s.destroy_due_keys(1000, 10).await.unwrap(), ["key-free"]);
    assert!(s.destroy_due_keys(1000, 10).await.unwrap().is_empty());
    assert_eq!(
        s.get_key("key-used").await.unwrap().state,
        KeyState::PendingDeletion
    );
    assert_eq!(s.count_key_secrets("key-used").await.unwrap(), 1);
    s.delete_secret("uses-key").await.unwrap();
    assert_eq!(s.destroy_due_keys(1000, 10).await.unwrap(), ["key-used"]);
}

/// Releasing an instance deletes its secrets (before its keys), not other instances'.
pub async fn delete_instance_with_secrets<S: Store>(s: &S) {
    setup(s, "kst-sg", "key-sg").await;
    setup(s, "kst-ss", "key-ss").await;
    let gone = secret("gone", "kst-sg", "key-sg");
    put(s, &gone).await;
    s.write_secret_versions(
        &gone,
        Some(&secret_version("gone", "gone-v2", 2)),
        &[on("ACSCurrent", "gone-v2"), on("ACSPrevious", "gone-v1")],
        10,
    )
    .await
    .unwrap();
    put(s, &secret("stays", "kst-ss", "key-ss")).await;

    s.delete_instance("kst-sg").await.unwrap();
    assert!(is_not_found(&s.get_instance("kst-sg").await));
    assert!(is_not_found(&s.get_secret("gone").await));
    assert!(is_not_found(&s.get_secret_version("gone", "gone-v2").await));
    assert!(is_not_found(&s.get_key("key-sg").await));
    assert_eq!(s.count_instance_secrets("kst-sg").await.unwrap(), 0);
    assert_eq!(s.count_key_secrets("key-sg").await.unwrap(), 0);
    assert_eq!(
        s.get_secret("stays").await.unwrap(),
        secret("stays", "kst-ss", "key-ss")
    );
    assert_eq!(
        s.list_secrets(&SecretFilter::default(), all())
            .await
            .unwrap()
            .total,
        1
    );
    // The name of a released secret is free again.
    setup(s, "kst-sg2", "key-sg2").await;
    put(s, &secret("gone", "kst-sg2", "key-sg2")).await;
}
