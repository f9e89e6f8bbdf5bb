//! The shared cases for keys, key versions, aliases and import parameters.

use super::{all, instance};
use crate::{
    Alias, ImportParams, Key, KeyFilter, KeyState, KeyVersion, Page, Store, StoreError, Tag,
    VersionMaterial,
};

/// A sample key of `instance_id`: enabled, one tag, every optional field empty.
pub fn key(id: &str, instance_id: &str) -> Key {
    Key {
        id: id.to_owned(),
        instance_id: instance_id.to_owned(),
        spec: "Aliyun_AES_256".to_owned(),
        usage: "ENCRYPT/DECRYPT".to_owned(),
        additional_usage: String::new(),
        origin: "Aliyun_KMS".to_owned(),
        protection_level: "HSM".to_owned(),
        description: format!("key {id}"),
        creator: "1234567890".to_owned(),
        state: KeyState::Enabled,
        created_at: 1_700_000_000,
        delete_date: None,
        deletion_protection: false,
        deletion_protection_description: String::new(),
        automatic_rotation: false,
        rotation_interval_secs: 0,
        last_rotation: 1_700_000_000,
        next_rotation: None,
        primary_version: format!("{id}-v1"),
        material_expires_at: None,
        tags: vec![tag("env", "prod")],
        updated_at: 1_700_000_000,
        version: 1,
    }
}

/// A version of `key_id` with a blob derived from its id.
pub fn version(key_id: &str, version_id: &str, created_at: i64) -> KeyVersion {
    KeyVersion {
        key_id: key_id.to_owned(),
        version_id: version_id.to_owned(),
        created_at,
        blob: Some(format!("blob of {version_id}").into_bytes()),
        public_key: None,
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

fn alias(name: &str, key_id: &str) -> Alias {
    Alias {
        name: name.to_owned(),
        key_id: key_id.to_owned(),
        created_at: 1_700_000_100,
        updated_at: 1_700_000_100,
    }
}

fn import_params(token: &str, key_id: &str, expires_at: i64) -> ImportParams {
    ImportParams {
        token: token.to_owned(),
        key_id: key_id.to_owned(),
        wrapping_key_spec: "RSA_2048".to_owned(),
        wrapping_algorithm: "RSAES_OAEP_SHA_256".to_owned(),
        wrapping_blob: vec![9, 8, 7, 0, 255],
        public_key: vec![0x30, 0x82, 1, 2],
        created_at: 1_700_000_000,
        expires_at,
    }
}

/// Stores `k` with its first version (`primary_version`, created with the key).
async fn put<S: Store>(s: &S, k: &Key) {
    s.create_key(k, &version(&k.id, &k.primary_version, k.created_at), 1000)
        .await
        .unwrap();
}

fn ids(keys: &[Key]) -> Vec<&str> {
    keys.iter().map(|k| k.id.as_str()).collect()
}

fn is_not_found<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound(_)))
}

pub async fn key_crud<S: Store>(s: &S) {
    s.create_instance(&instance("kst-k")).await.unwrap();
    // Every optional field set, on a second key every one empty.
    let full = Key {
        additional_usage: "SIGN/VERIFY".to_owned(),
        origin: "EXTERNAL".to_owned(),
        state: KeyState::PendingDeletion,
        delete_date: Some(1_700_600_000),
        deletion_protection: true,
        deletion_protection_description: "keep it".to_owned(),
        automatic_rotation: true,
        rotation_interval_secs: 86_400 * 30,
        next_rotation: Some(1_702_592_000),
        material_expires_at: Some(1_710_000_000),
        tags: vec![tag("env", "prod"), tag("team", "a"), tag("env", "dup-key")],
        ..key("key-full", "kst-k")
    };
    let bare = Key {
        tags: Vec::new(),
        ..key("key-bare", "kst-k")
    };
    let v1 = KeyVersion {
        public_key: Some(vec![0x30, 0x59, 0, 1]),
        ..version("key-full", "key-full-v1", 1_700_000_000)
    };
    s.create_key(&full, &v1, 10).await.unwrap();
    put(s, &bare).await;
    assert_eq!(s.get_key("key-full").await.unwrap(), full);
    assert_eq!(s.get_key("key-bare").await.unwrap(), bare);
    assert_eq!(
        s.get_key_version("key-full", "key-full-v1").await.unwrap(),
        v1
    );
    let dup = s
        .create_key(&full, &version("key-full", "other", 1), 10)
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let orphan = s
        .create_key(
            &key("key-o", "kst-none"),
            &version("key-o", "key-o-v1", 1),
            10,
        )
        .await;
    assert!(is_not_found(&orphan), "{orphan:?}");

    // Every mutable field changes; the immutable ones the caller changed do not.
    let changed = Key {
        spec: "RSA_2048".to_owned(),
        usage: "SIGN/VERIFY".to_owned(),
        origin: "Aliyun_KMS".to_owned(),
        creator: "someone else".to_owned(),
        created_at: 1,
        additional_usage: String::new(),
        protection_level: "SOFTWARE".to_owned(),
        description: "changed".to_owned(),
        state: KeyState::Enabled,
        delete_date: None,
        deletion_protection: false,
        deletion_protection_description: String::new(),
        automatic_rotation: false,
        rotation_interval_secs: 0,
        last_rotation: 1_700_000_500,
        next_rotation: None,
        primary_version: "key-full-v9".to_owned(),
        material_expires_at: None,
        tags: vec![tag("team", "b")],
        updated_at: 1_700_000_500,
        ..full.clone()
    };
    let stored = s.update_key(&changed).await.unwrap();
    let expected = Key {
        spec: full.spec.clone(),
        usage: full.usage.clone(),
        origin: full.origin.clone(),
        creator: full.creator.clone(),
        created_at: full.created_at,
        version: 2,
        ..changed.clone()
    };
    assert_eq!(stored, expected);
    assert_eq!(s.get_key("key-full").await.unwrap(), expected);
    // And back: the options filled in again, the tags emptied.
    let again = s
        .update_key(&Key {
            tags: vec![],
            version: 2,
            ..full
        })
        .await
        .unwrap();
    assert_eq!(again.version, 3);
    assert!(again.tags.is_empty());
    assert_eq!(again.delete_date, Some(1_700_600_000));
    assert_eq!(s.get_key("key-full").await.unwrap(), again);

    let versions = s.list_key_versions("key-full", all()).await.unwrap();
    assert_eq!((versions.total, versions.items), (1, vec![v1]));
    assert_eq!(s.count_instance_key_versions("kst-k").await.unwrap(), 2);
}

pub async fn key_not_found<S: Store>(s: &S) {
    assert!(is_not_found(&s.get_key("key-none").await));
    assert!(is_not_found(&s.get_key_version("key-none", "v").await));
    assert!(is_not_found(&s.find_key_version("v-none").await));
    assert!(is_not_found(&s.get_alias("alias/none").await));
    assert!(is_not_found(&s.delete_alias("alias/none").await));
    assert!(is_not_found(
        &s.update_alias("alias/none", "key-none", 1).await
    ));
    assert!(is_not_found(&s.get_import_params("token-none").await));
    assert!(is_not_found(
        &s.create_import_params(&import_params("t", "key-none", 1))
            .await
    ));
    assert!(is_not_found(
        &s.create_alias(&alias("alias/a", "key-none")).await
    ));
    let empty = s.list_key_versions("key-none", all()).await.unwrap();
    assert_eq!((empty.total, empty.items.len()), (0, 0));
    assert_eq!(s.count_instance_key_versions("kst-none").await.unwrap(), 0);
}

pub async fn key_list_filters<S: Store>(s: &S) {
    s.create_instance(&instance("kst-a")).await.unwrap();
    s.create_instance(&instance("kst-b")).await.unwrap();
    let mk = |id: &str, inst: &str, created_at: i64| Key {
        created_at,
        ..key(id, inst)
    };
    put(s, &mk("key-1", "kst-a", 10)).await;
    put(
        s,
        &Key {
            spec: "RSA_2048".to_owned(),
            usage: "SIGN/VERIFY".to_owned(),
            state: KeyState::Disabled,
            origin: "EXTERNAL".to_owned(),
            creator: "200".to_owned(),
            tags: vec![tag("env", "dev"), tag("team", "x")],
            ..mk("key-2", "kst-a", 20)
        },
    )
    .await;
    put(
        s,
        &Key {
            state: KeyState::PendingDeletion,
            delete_date: Some(99),
            protection_level: "SOFTWARE".to_owned(),
            tags: Vec::new(),
            ..mk("key-3", "kst-b", 30)
        },
    )
    .await;
    put(
        s,
        &Key {
            spec: "EC_P256".to_owned(),
            usage: "SIGN/VERIFY".to_owned(),
            tags: vec![tag("team", "y")],
            ..mk("key-4", "kst-b", 5)
        },
    )
    .await;
    // Same creation time as key-2: the id breaks the tie.
    put(s, &mk("key-5", "kst-a", 20)).await;
    for (name, key_id) in [
        ("alias/one", "key-1"),
        ("alias/three", "key-3"),
        ("alias/four", "key-4"),
    ] {
        s.create_alias(&alias(name, key_id)).await.unwrap();
    }

    let list = |f: KeyFilter| async move {
        let page = s.list_keys(&f, all()).await.unwrap();
        assert_eq!(page.total as usize, page.items.len());
        ids(&page.items)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let v = |xs: &[&str]| xs.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let f = KeyFilter::default;

    assert_eq!(
        list(f()).await,
        ["key-4", "key-1", "key-2", "key-5", "key-3"]
    );
    assert_eq!(
        list(KeyFilter {
            instance_id: Some("kst-a".to_owned()),
            ..f()
        })
        .await,
        ["key-1", "key-2", "key-5"]
    );
    assert_eq!(
        list(KeyFilter {
            states: vec![KeyState::Disabled, KeyState::PendingDeletion],
            ..f()
        })
        .await,
        ["key-2", "key-3"]
    );
    assert_eq!(
        list(KeyFilter {
            specs: v(&["RSA_2048", "EC_P256"]),
            ..f()
        })
        .await,
        ["key-4", "key-2"]
    );
    assert_eq!(
        list(KeyFilter {
            usages: v(&["SIGN/VERIFY"]),
            ..f()
        })
        .await,
        ["key-4", "key-2"]
    );
    assert_eq!(
        list(KeyFilter {
            protection_levels: v(&["SOFTWARE"]),
            ..f()
        })
        .await,
        ["key-3"]
    );
    assert_eq!(
        list(KeyFilter {
            origins: v(&["EXTERNAL"]),
            ..f()
        })
        .await,
        ["key-2"]
    );
    assert_eq!(
        list(KeyFilter {
            key_ids: v(&["key-5", "key-1", "key-none"]),
            ..f()
        })
        .await,
        ["key-1", "key-5"]
    );
    assert_eq!(
        list(KeyFilter {
            creators: v(&["200", "nobody"]),
            ..f()
        })
        .await,
        ["key-2"]
    );
    assert_eq!(
        list(KeyFilter {
            alias_names: v(&["alias/one", "alias/four", "alias/none"]),
            ..f()
        })
        .await,
        ["key-4", "key-1"]
    );
    assert_eq!(
        list(KeyFilter {
            tag_keys: v(&["team"]),
            ..f()
        })
        .await,
        ["key-4", "key-2"]
    );
    assert_eq!(
        list(KeyFilter {
            tag_values: v(&["prod", "y"]),
            ..f()
        })
        .await,
        ["key-4", "key-1", "key-5"]
    );
    // Across lists: AND.
    assert_eq!(
        list(KeyFilter {
            instance_id: Some("kst-a".to_owned()),
            states: vec![KeyState::Enabled],
            tag_values: v(&["prod"]),
            ..f()
        })
        .await,
        ["key-1", "key-5"]
    );
    assert_eq!(
        list(KeyFilter {
            specs: v(&["Aliyun_AES_256"]),
            creators: v(&["200"]),
            ..f()
        })
        .await,
        Vec::<String>::new()
    );
    // Tag key and tag value are separate conditions (each some tag of the key).
    assert_eq!(
        list(KeyFilter {
            tag_keys: v(&["team"]),
            tag_values: v(&["dev"]),
            ..f()
        })
        .await,
        ["key-2"]
    );
    assert_eq!(
        list(KeyFilter {
            alias_names: v(&["alias/three"]),
            states: vec![KeyState::Enabled],
            ..f()
        })
        .await,
        Vec::<String>::new()
    );

    // Pagination: totals count every match, across pages.
    let page = |number, size, filter: KeyFilter| async move {
        let p = s.list_keys(&filter, Page { number, size }).await.unwrap();
        (
            p.total,
            ids(&p.items)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(page(1, 2, f()).await, (5, v(&["key-4", "key-1"])));
    assert_eq!(page(2, 2, f()).await, (5, v(&["key-2", "key-5"])));
    assert_eq!(page(3, 2, f()).await, (5, v(&["key-3"])));
    assert_eq!(page(4, 2, f()).await, (5, v(&[])));
    let in_a = || KeyFilter {
        instance_id: Some("kst-a".to_owned()),
        ..f()
    };
    assert_eq!(page(2, 1, in_a()).await, (3, v(&["key-2"])));
    // Listed keys carry their tags.
    let listed = s.list_keys(&in_a(), all()).await.unwrap();
    assert_eq!(listed.items[1], s.get_key("key-2").await.unwrap());
    assert_eq!(listed.items[1].tags.len(), 2);
}

pub async fn key_compare_and_set<S: Store>(s: &S) {
    s.create_instance(&instance("kst-c")).await.unwrap();
    put(s, &key("key-c", "kst-c")).await;
    let a = s.get_key("key-c").await.unwrap();
    let b = a.clone();
    let a2 = s
        .update_key(&Key {
            description: "first writer".to_owned(),
            ..a
        })
        .await
        .unwrap();
    assert_eq!(a2.version, 2);
    let stale = |r: &Result<Key, StoreError>| matches!(r, Err(StoreError::Conflict(m)) if m.contains("stale"));
    let r = s
        .update_key(&Key {
            description: "lost".to_owned(),
            ..b.clone()
        })
        .await;
    assert!(stale(&r), "{r:?}");
    let r = s
        .add_key_version(&b, &version("key-c", "key-c-v2", 2), 1000)
        .await;
    assert!(stale(&r), "{r:?}");
    let r = s
        .set_key_material(
            &b,
            &[VersionMaterial {
                version_id: "key-c-v1".to_owned(),
                blob: None,
            }],
        )
        .await;
    assert!(stale(&r), "{r:?}");
    // Nothing the losers did stuck.
    assert_eq!(s.get_key("key-c").await.unwrap(), a2);
    assert_eq!(s.list_key_versions("key-c", all()).await.unwrap().total, 1);
    assert!(
        s.get_key_version("key-c", "key-c-v1")
            .await
            .unwrap()
            .blob
            .is_some()
    );

    let ghost = key("key-ghost", "kst-c");
    assert!(is_not_found(&s.update_key(&ghost).await));
    assert!(is_not_found(
        &s.add_key_version(&ghost, &version("key-ghost", "g2", 2), 1000)
            .await
    ));
    assert!(is_not_found(&s.set_key_material(&ghost, &[]).await));
}

pub async fn key_quota<S: Store>(s: &S) {
    s.create_instance(&instance("kst-q")).await.unwrap();
    s.create_instance(&instance("kst-other")).await.unwrap();
    let quota = 3;
    let k1 = key("key-1", "kst-q");
    s.create_key(&k1, &version("key-1", "key-1-v1", 1), quota)
        .await
        .unwrap();
    s.create_key(
        &key("key-2", "kst-q"),
        &version("key-2", "key-2-v1", 1),
        quota,
    )
    .await
    .unwrap();
    let k1 = s
        .add_key_version(&k1, &version("key-1", "key-1-v2", 2), quota)
        .await
        .unwrap();
    // Exactly `quota` versions fit.
    assert_eq!(s.count_instance_key_versions("kst-q").await.unwrap(), 3);
    let over = s
        .create_key(
            &key("key-3", "kst-q"),
            &version("key-3", "key-3-v1", 1),
            quota,
        )
        .await;
    assert!(
        matches!(over, Err(StoreError::QuotaExceeded(_))),
        "{over:?}"
    );
    assert!(is_not_found(&s.get_key("key-3").await));
    let over = s
        .add_key_version(&k1, &version("key-1", "key-1-v3", 3), quota)
        .await;
    assert!(
        matches!(over, Err(StoreError::QuotaExceeded(_))),
        "{over:?}"
    );
    assert_eq!(s.get_key("key-1").await.unwrap(), k1);
    assert_eq!(s.list_key_versions("key-1", all()).await.unwrap().total, 2);
    // Versions of keys in any state count.
    s.update_key(&Key {
        state: KeyState::PendingDeletion,
        delete_date: Some(5),
        ..k1
    })
    .await
    .unwrap();
    assert_eq!(s.count_instance_key_versions("kst-q").await.unwrap(), 3);
    // The quota is per instance.
    s.create_key(
        &key("key-x", "kst-other"),
        &version("key-x", "key-x-v1", 1),
        1,
    )
    .await
    .unwrap();
    let zero = s
        .create_key(
            &key("key-y", "kst-other"),
            &version("key-y", "key-y-v1", 1),
            1,
        )
        .await;
    assert!(
        matches!(zero, Err(StoreError::QuotaExceeded(_))),
        "{zero:?}"
    );
    assert_eq!(s.count_instance_key_versions("kst-q").await.unwrap(), 3);
    assert_eq!(s.count_instance_key_versions("kst-other").await.unwrap(), 1);
}

pub async fn key_quota_race<S: Store + Clone>(s: &S) {
    s.create_instance(&instance("kst-race")).await.unwrap();
    for n in 0..6 {
        put(s, &key(&format!("key-{n}"), "kst-race")).await;
    }
    // Six tasks add a version to their own key, six create a new key: three units of quota
    // are left, so exactly three of the twelve succeed.
    let quota = 9;
    let mut tasks = Vec::new();
    for n in 0..6 {
        let adder = s.clone();
        tasks.push(tokio::spawn(async move {
            let k = adder.get_key(&format!("key-{n}")).await.unwrap();
            adder
                .add_key_version(&k, &version(&k.id, &format!("key-{n}-v2"), 2), quota)
                .await
                .map(drop)
        }));
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("key-new-{n}");
            s.create_key(
                &key(&id, "kst-race"),
                &version(&id, &format!("{id}-v1"), 1),
                quota,
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
    assert_eq!(won, 3);
    assert_eq!(s.count_instance_key_versions("kst-race").await.unwrap(), 9);
}

pub async fn add_key_version_updates_key<S: Store>(s: &S) {
    s.create_instance(&instance("kst-r")).await.unwrap();
    let k = Key {
        automatic_rotation: true,
        rotation_interval_secs: 100,
        next_rotation: Some(1_700_000_100),
        ..key("key-r", "kst-r")
    };
    put(s, &k).await;
    let next = Key {
        primary_version: "key-r-v2".to_owned(),
        last_rotation: 1_700_000_100,
        next_rotation: Some(1_700_000_200),
        updated_at: 1_700_000_100,
        ..k.clone()
    };
    let v2 = version("key-r", "key-r-v2", 1_700_000_100);
    let stored = s.add_key_version(&next, &v2, 1000).await.unwrap();
    assert_eq!(
        stored,
        Key {
            version: 2,
            ..next.clone()
        }
    );
    assert_eq!(s.get_key("key-r").await.unwrap(), stored);
    let versions = s.list_key_versions("key-r", all()).await.unwrap();
    assert_eq!(versions.total, 2);
    assert_eq!(
        versions
            .items
            .iter()
            .map(|v| v.version_id.as_str())
            .collect::<Vec<_>>(),
        ["key-r-v1", "key-r-v2"]
    );
    let second = s
        .list_key_versions("key-r", Page { number: 2, size: 1 })
        .await
        .unwrap();
    assert_eq!((second.total, second.items), (2, vec![v2.clone()]));
    assert_eq!(s.get_key_version("key-r", "key-r-v2").await.unwrap(), v2);
    assert_eq!(s.find_key_version("key-r-v2").await.unwrap(), v2);
    assert!(is_not_found(&s.find_key_version("key-r-v9").await));
    // Version ids are unique across keys.
    put(s, &key("key-other", "kst-r")).await;
    let taken = s
        .add_key_version(
            &s.get_key("key-other").await.unwrap(),
            &version("key-other", "key-r-v2", 5),
            1000,
        )
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    // A version id that exists: conflict, and the key is left as it was.
    let dup = s.add_key_version(&stored, &v2, 1000).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert_eq!(s.get_key("key-r").await.unwrap(), stored);
}

pub async fn key_material<S: Store>(s: &S) {
    s.create_instance(&instance("kst-m")).await.unwrap();
    let k = Key {
        origin: "EXTERNAL".to_owned(),
        state: KeyState::PendingImport,
        ..key("key-m", "kst-m")
    };
    let empty = KeyVersion {
        blob: None,
        public_key: None,
        ..version("key-m", "key-m-v1", 1)
    };
    s.create_key(&k, &empty, 1000).await.unwrap();
    assert_eq!(s.get_key_version("key-m", "key-m-v1").await.unwrap(), empty);

    let imported = Key {
        state: KeyState::Enabled,
        material_expires_at: Some(1_800_000_000),
        ..k
    };
    let set = [VersionMaterial {
        version_id: "key-m-v1".to_owned(),
        blob: Some((vec![1, 2, 3], Some(vec![4, 5]))),
    }];
    let stored = s.set_key_material(&imported, &set).await.unwrap();
    assert_eq!(
        stored,
        Key {
            version: 2,
            ..imported.clone()
        }
    );
    let v = s.get_key_version("key-m", "key-m-v1").await.unwrap();
    assert_eq!(
        (v.blob, v.public_key),
        (Some(vec![1, 2, 3]), Some(vec![4, 5]))
    );

    // A missing version: not found, and neither the key nor the other version changes.
    let r = s
        .set_key_material(
            &Key {
                state: KeyState::PendingImport,
                ..stored.clone()
            },
            &[
                VersionMaterial {
                    version_id: "key-m-v1".to_owned(),
                    blob: None,
                },
                VersionMaterial {
                    version_id: "key-m-none".to_owned(),
                    blob: None,
                },
            ],
        )
        .await;
    assert!(is_not_found(&r), "{r:?}");
    assert_eq!(s.get_key("key-m").await.unwrap(), stored);
    let v = s.get_key_version("key-m", "key-m-v1").await.unwrap();
    assert_eq!(v.blob, Some(vec![1, 2, 3]));

    // Deleting the material clears the blob and keeps the public key.
    let cleared = s
        .set_key_material(
            &Key {
                state: KeyState::PendingImport,
                material_expires_at: None,
                ..stored
            },
            &[VersionMaterial {
                version_id: "key-m-v1".to_owned(),
                blob: None,
            }],
        )
        .await
        .unwrap();
    assert_eq!(cleared.version, 3);
    assert_eq!(cleared.state, KeyState::PendingImport);
    assert_eq!(
        s.get_key_version("key-m", "key-m-v1").await.unwrap(),
        KeyVersion {
            public_key: Some(vec![4, 5]),
            ..empty
        }
    );
}

pub async fn destroy_due_keys<S: Store>(s: &S) {
    s.create_instance(&instance("kst-d")).await.unwrap();
    let pending = |id: &str, delete_date: Option<i64>| Key {
        state: KeyState::PendingDeletion,
        delete_date,
        ..key(id, "kst-d")
    };
    let d1 = pending("key-d1", Some(100));
    put(s, &d1).await;
    s.add_key_version(&d1, &version("key-d1", "key-d1-v2", 2), 1000)
        .await
        .unwrap();
    s.create_alias(&alias("alias/d1", "key-d1")).await.unwrap();
    s.create_import_params(&import_params("tok-d1", "key-d1", i64::MAX))
        .await
        .unwrap();
    put(s, &pending("key-d2", Some(200))).await;
    put(s, &pending("key-d3", Some(300))).await;
    put(s, &pending("key-nodate", None)).await;
    put(
        s,
        &Key {
            delete_date: Some(50),
            ..key("key-enabled", "kst-d")
        },
    )
    .await;
    assert_eq!(s.count_instance_key_versions("kst-d").await.unwrap(), 6);

    // Oldest due first, at most `limit`.
    assert_eq!(s.destroy_due_keys(250, 1).await.unwrap(), ["key-d1"]);
    assert_eq!(s.destroy_due_keys(250, 10).await.unwrap(), ["key-d2"]);
    assert!(s.destroy_due_keys(250, 10).await.unwrap().is_empty());

    // Everything hanging off key-d1 went with it.
    assert!(is_not_found(&s.get_key("key-d1").await));
    assert!(is_not_found(
        &s.get_key_version("key-d1", "key-d1-v1").await
    ));
    assert!(is_not_found(
        &s.get_key_version("key-d1", "key-d1-v2").await
    ));
    assert!(is_not_found(&s.get_alias("alias/d1").await));
    assert!(is_not_found(&s.get_import_params("tok-d1").await));
    assert_eq!(s.list_aliases(all()).await.unwrap().total, 0);
    assert_eq!(s.count_instance_key_versions("kst-d").await.unwrap(), 3);
    // Its tags too: a new key with the same id starts without any.
    put(
        s,
        &Key {
            tags: Vec::new(),
            ..key("key-d1", "kst-d")
        },
    )
    .await;
    assert!(s.get_key("key-d1").await.unwrap().tags.is_empty());

    let left = s.list_keys(&KeyFilter::default(), all()).await.unwrap();
    let mut left = ids(&left.items);
    left.sort_unstable();
    assert_eq!(left, ["key-d1", "key-d3", "key-enabled", "key-nodate"]);
    assert_eq!(s.destroy_due_keys(300, 10).await.unwrap(), ["key-d3"]);
}

pub async fn destroy_due_keys_concurrently<S: Store + Clone>(s: &S) {
    s.create_instance(&instance("kst-dc")).await.unwrap();
    let mut expected = Vec::new();
    for n in 0..40 {
        let id = format!("key-{n:02}");
        put(
            s,
            &Key {
                state: KeyState::PendingDeletion,
                delete_date: Some(100 + n),
                ..key(&id, "kst-dc")
            },
        )
        .await;
        expected.push(id);
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = s.destroy_due_keys(1000, 3).await.unwrap();
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
    assert_eq!(
        s.list_keys(&KeyFilter::default(), all())
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(s.count_instance_key_versions("kst-dc").await.unwrap(), 0);
}

pub async fn keys_due_for_rotation<S: Store>(s: &S) {
    s.create_instance(&instance("kst-rot")).await.unwrap();
    let rotating = |id: &str, next: Option<i64>| Key {
        automatic_rotation: true,
        rotation_interval_secs: 3600,
        next_rotation: next,
        ..key(id, "kst-rot")
    };
    put(s, &rotating("key-due", Some(100))).await;
    put(
        s,
        &Key {
            tags: vec![tag("a", "1"), tag("b", "2")],
            ..rotating("key-first", Some(50))
        },
    )
    .await;
    put(s, &rotating("key-exactly-now", Some(150))).await;
    put(s, &rotating("key-later", Some(151))).await;
    put(s, &rotating("key-no-date", None)).await;
    put(
        s,
        &Key {
            state: KeyState::Disabled,
            ..rotating("key-disabled", Some(10))
        },
    )
    .await;
    put(
        s,
        &Key {
            automatic_rotation: false,
            ..rotating("key-off", Some(10))
        },
    )
    .await;
    let due = s.keys_due_for_rotation(150, 10).await.unwrap();
    assert_eq!(ids(&due), ["key-first", "key-due", "key-exactly-now"]);
    assert_eq!(due[0], s.get_key("key-first").await.unwrap());
    assert_eq!(due[0].tags.len(), 2);
    assert_eq!(
        ids(&s.keys_due_for_rotation(150, 1).await.unwrap()),
        ["key-first"]
    );
    assert!(s.keys_due_for_rotation(49, 10).await.unwrap().is_empty());
}

pub async fn keys_with_expired_material<S: Store>(s: &S) {
    s.create_instance(&instance("kst-exp")).await.unwrap();
    let expiring = |id: &str, state: KeyState, at: Option<i64>| Key {
        origin: "EXTERNAL".to_owned(),
        state,
        material_expires_at: at,
        ..key(id, "kst-exp")
    };
    put(s, &expiring("key-enabled", KeyState::Enabled, Some(100))).await;
    put(s, &expiring("key-disabled", KeyState::Disabled, Some(50))).await;
    put(
        s,
        &expiring("key-pending-blob", KeyState::PendingDeletion, Some(60)),
    )
    .await;
    // Pending deletion, material already gone: nothing to expire.
    let gone = expiring("key-pending-empty", KeyState::PendingDeletion, Some(70));
    s.create_key(
        &gone,
        &KeyVersion {
            blob: None,
            ..version(&gone.id, &gone.primary_version, 1)
        },
        1000,
    )
    .await
    .unwrap();
    put(
        s,
        &expiring("key-pending-import", KeyState::PendingImport, Some(10)),
    )
    .await;
    put(s, &expiring("key-later", KeyState::Enabled, Some(151))).await;
    put(s, &expiring("key-never", KeyState::Enabled, None)).await;
    let expired = s.keys_with_expired_material(150, 10).await.unwrap();
    assert_eq!(
        ids(&expired),
        ["key-disabled", "key-pending-blob", "key-enabled"]
    );
    assert_eq!(expired[0], s.get_key("key-disabled").await.unwrap());
    assert_eq!(
        ids(&s.keys_with_expired_material(150, 2).await.unwrap()),
        ["key-disabled", "key-pending-blob"]
    );
    assert!(
        s.keys_with_expired_material(49, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn aliases<S: Store>(s: &S) {
    s.create_instance(&instance("kst-al")).await.unwrap();
    put(s, &key("key-a", "kst-al")).await;
    put(s, &key("key-b", "kst-al")).await;
    let x = alias("alias/x", "key-a");
    s.create_alias(&x).await.unwrap();
    assert_eq!(s.get_alias("alias/x").await.unwrap(), x);
    let dup = s.create_alias(&alias("alias/x", "key-b")).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert!(is_not_found(
        &s.create_alias(&alias("alias/y", "key-none")).await
    ));
    assert!(is_not_found(&s.get_alias("alias/y").await));

    let moved = s
        .update_alias("alias/x", "key-b", 1_700_000_900)
        .await
        .unwrap();
    let expected = Alias {
        key_id: "key-b".to_owned(),
        updated_at: 1_700_000_900,
        ..x.clone()
    };
    assert_eq!(moved, expected);
    assert_eq!(s.get_alias("alias/x").await.unwrap(), expected);
    assert!(is_not_found(
        &s.update_alias("alias/none", "key-a", 1).await
    ));
    assert!(is_not_found(
        &s.update_alias("alias/x", "key-none", 1).await
    ));
    assert_eq!(s.get_alias("alias/x").await.unwrap(), expected);

    for name in ["alias/c", "alias/a", "alias/b"] {
        s.create_alias(&alias(name, "key-a")).await.unwrap();
    }
    let names = |p: crate::PageOf<Alias>| {
        (
            p.total,
            p.items.into_iter().map(|a| a.name).collect::<Vec<_>>(),
        )
    };
    let page = |number| Page { number, size: 2 };
    assert_eq!(
        names(s.list_aliases(page(1)).await.unwrap()),
        (4, vec!["alias/a".to_owned(), "alias/b".to_owned()])
    );
    assert_eq!(
        names(s.list_aliases(page(2)).await.unwrap()),
        (4, vec!["alias/c".to_owned(), "alias/x".to_owned()])
    );
    assert_eq!(
        names(s.list_aliases_by_key("key-a", all()).await.unwrap()),
        (
            3,
            vec![
                "alias/a".to_owned(),
                "alias/b".to_owned(),
                "alias/c".to_owned()
            ]
        )
    );
    assert_eq!(
        names(
            s.list_aliases_by_key("key-a", Page { number: 2, size: 1 })
                .await
                .unwrap()
        ),
        (3, vec!["alias/b".to_owned()])
    );
    assert_eq!(
        names(s.list_aliases_by_key("key-b", all()).await.unwrap()),
        (1, vec!["alias/x".to_owned()])
    );
    assert_eq!(
        names(s.list_aliases_by_key("key-none", all()).await.unwrap()),
        (0, vec![])
    );

    s.delete_alias("alias/x").await.unwrap();
    assert!(is_not_found(&s.get_alias("alias/x").await));
    assert!(is_not_found(&s.delete_alias("alias/x").await));
    assert_eq!(s.list_aliases(all()).await.unwrap().total, 3);
    // Deleting an alias leaves its key alone.
    assert_eq!(s.get_key("key-b").await.unwrap().id, "key-b");
}

pub async fn import_params_lifecycle<S: Store>(s: &S) {
    s.create_instance(&instance("kst-ip")).await.unwrap();
    put(s, &key("key-ip", "kst-ip")).await;
    let early = import_params("tok-early", "key-ip", 100);
    let late = import_params("tok-late", "key-ip", 200);
    s.create_import_params(&early).await.unwrap();
    s.create_import_params(&late).await.unwrap();
    assert_eq!(s.get_import_params("tok-early").await.unwrap(), early);
    assert_eq!(s.get_import_params("tok-late").await.unwrap(), late);
    let dup = s.create_import_params(&early).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert!(is_not_found(
        &s.create_import_params(&import_params("tok-x", "key-none", 100))
            .await
    ));
    assert_eq!(s.purge_expired_import_params(99).await.unwrap(), 0);
    assert_eq!(s.purge_expired_import_params(100).await.unwrap(), 1);
    assert!(is_not_found(&s.get_import_params("tok-early").await));
    assert_eq!(s.get_import_params("tok-late").await.unwrap(), late);
    assert_eq!(s.purge_expired_import_params(100).await.unwrap(), 0);
    assert_eq!(s.purge_expired_import_params(1000).await.unwrap(), 1);
    assert!(is_not_found(&s.get_import_params("tok-late").await));
}

pub async fn delete_instance_with_keys<S: Store>(s: &S) {
    s.create_instance(&instance("kst-gone")).await.unwrap();
    s.create_instance(&instance("kst-stays")).await.unwrap();
    let k = key("key-g1", "kst-gone");
    put(s, &k).await;
    s.add_key_version(&k, &version("key-g1", "key-g1-v2", 2), 1000)
        .await
        .unwrap();
    put(
        s,
        &Key {
            state: KeyState::PendingDeletion,
            delete_date: Some(1),
            ..key("key-g2", "kst-gone")
        },
    )
    .await;
    s.create_alias(&alias("alias/g1", "key-g1")).await.unwrap();
    s.create_import_params(&import_params("tok-g2", "key-g2", i64::MAX))
        .await
        .unwrap();
    put(s, &key("key-s", "kst-stays")).await;
    s.create_alias(&alias("alias/s", "key-s")).await.unwrap();

    s.delete_instance("kst-gone").await.unwrap();
    assert!(is_not_found(&s.get_instance("kst-gone").await));
    assert!(is_not_found(&s.get_key("key-g1").await));
    assert!(is_not_found(&s.get_key("key-g2").await));
    assert!(is_not_found(
        &s.get_key_version("key-g1", "key-g1-v2").await
    ));
    assert!(is_not_found(&s.get_alias("alias/g1").await));
    assert!(is_not_found(&s.get_import_params("tok-g2").await));
    assert_eq!(s.count_instance_key_versions("kst-gone").await.unwrap(), 0);
    // The other instance keeps everything.
    assert_eq!(s.get_key("key-s").await.unwrap(), key("key-s", "kst-stays"));
    assert_eq!(s.get_alias("alias/s").await.unwrap().key_id, "key-s");
    assert_eq!(s.count_instance_key_versions("kst-stays").await.unwrap(), 1);
    assert!(is_not_found(&s.delete_instance("kst-gone").await));
}

/// Versions list in the order they were added, even within one second; a usage filter
/// also finds keys that have it as their additional usage.
pub async fn version_order_and_additional_usage<S: Store>(s: &S) {
    s.create_instance(&instance("kst-o")).await.unwrap();
    let mut k = Key {
        spec: "RSA_2048".to_owned(),
        usage: "SIGN/VERIFY".to_owned(),
        additional_usage: "ENCRYPT/DECRYPT".to_owned(),
        primary_version: "v-9".to_owned(),
        ..key("key-o", "kst-o")
    };
    s.create_key(&k, &version("key-o", "v-9", 5), 100)
        .await
        .unwrap();
    // Ids that sort the other way round, all made in the same second.
    for id in ["v-8", "v-7", "v-1"] {
        k.primary_version = id.to_owned();
        k = s
            .add_key_version(&k, &version("key-o", id, 5), 100)
            .await
            .unwrap();
    }
    let listed: Vec<String> = s
        .list_key_versions(
            "key-o",
            Page {
                number: 1,
                size: 10,
            },
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|v| v.version_id)
        .collect();
    assert_eq!(listed, ["v-9", "v-8", "v-7", "v-1"]);
    let second_page = s
        .list_key_versions("key-o", Page { number: 2, size: 3 })
        .await
        .unwrap();
    assert_eq!(second_page.items[0].version_id, "v-1");
    for usage in ["SIGN/VERIFY", "ENCRYPT/DECRYPT"] {
        let found = s
            .list_keys(
                &KeyFilter {
                    usages: vec![usage.to_owned()],
                    ..KeyFilter::default()
                },
                Page {
                    number: 1,
                    size: 10,
                },
            )
            .await
            .unwrap();
        assert_eq!(found.total, 1, "{usage}");
    }
}
