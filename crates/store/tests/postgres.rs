//! Runs the shared suite against PostgreSQL, plus the server-specific cases.
//!
//! Needs a server: `STRONGROOM_TEST_POSTGRES` names one whose user may create databases
//! (scripts/test.sh starts one with scripts/postgres.sh and sets it). Every test makes a
//! fresh database `sr_test_<random>` on it and drops the database when it passes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::as_conversions,
    reason = "tests"
)]

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};

use strongroom_store::{MIGRATIONS, PostgresStore, Store, StoreError, testsuite};
use tokio_postgres::NoTls;

const ENV: &str = "STRONGROOM_TEST_POSTGRES";

/// The server's URL; a test without a server fails, it never passes silently.
fn server_url() -> String {
    match std::env::var(ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{ENV} is not set: run scripts/test.sh, which starts a PostgreSQL server and sets \
             it, or start one with `scripts/postgres.sh start DIR PORT` and export the URL it \
             prints as {ENV}"
        ),
    }
}

/// `url` with its database name replaced by `dbname` (any `?query` is kept).
fn with_dbname(url: &str, dbname: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").expect("a URL with a scheme");
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    match query {
        Some(q) => format!("{scheme}://{authority}/{dbname}?{q}"),
        None => format!("{scheme}://{authority}/{dbname}"),
    }
}

async fn admin() -> tokio_postgres::Client {
    let url = server_url();
    let (client, conn) = tokio_postgres::connect(&url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {ENV}={url}: {e}"));
    tokio::spawn(conn);
    client
}

/// A fresh, empty database on the test server.
struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    async fn create() -> Self {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let random =
            RandomState::new().hash_one((std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        let name = format!("sr_test_{random:016x}");
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = with_dbname(&server_url(), &name);
        Self { name, url }
    }

    async fn connect(&self) -> PostgresStore {
        PostgresStore::connect(&self.url).await.unwrap()
    }

    /// A direct connection to this database, for poking at it behind the store's back.
    async fn raw(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url, NoTls).await.unwrap();
        tokio::spawn(conn);
        client
    }

    /// Drops the database (only reached when the test passed, so a failure can be examined).
    async fn drop_db(self) {
        admin()
            .await
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .unwrap();
    }
}

/// `cases!(a, b)` runs `testsuite::a` and `testsuite::b`; `cases!(mod m: a)` runs
/// `testsuite::m::a`.
macro_rules! cases {
    ($($name:ident),* $(,)?) => {$( cases!(@one $name, testsuite::$name); )*};
    (mod $module:ident: $($name:ident),* $(,)?) => {$(
        cases!(@one $name, testsuite::$module::$name);
    )*};
    (@one $name:ident, $case:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let db = TestDb::create().await;
            let s = db.connect().await;
            $case(&s).await;
            s.close();
            db.drop_db().await;
        }
    };
}

cases!(
    health,
    access_key_crud,
    instance_crud,
    cluster_crud,
    vpc_crud_and_bindings,
    pagination,
    optimistic_concurrency,
    one_cluster_one_instance,
    nonces,
    not_found,
    concurrent_writers,
    replace_vpcs,
    settings,
);

cases!(
    mod keys:
    key_crud,
    key_not_found,
    key_list_filters,
    version_order_and_additional_usage,
    key_compare_and_set,
    key_quota,
    key_quota_race,
    add_key_version_updates_key,
    key_material,
    destroy_due_keys,
    destroy_due_keys_concurrently,
    keys_due_for_rotation,
    keys_with_expired_material,
    aliases,
    import_params_lifecycle,
    delete_instance_with_keys,
);

cases!(
    mod access:
    network_rule_crud,
    policy_crud,
    access_point_crud,
    client_key_crud,
    access_pagination,
    access_references,
    client_key_limit,
    client_key_limit_race,
    access_snapshot_contents,
    delete_instance_refused_while_a_policy_names_it,
);

cases!(
    mod secrets:
    secret_crud,
    secret_not_found_and_conflicts,
    secret_quota,
    secret_quota_race,
    secret_list_filters,
    secret_stage_moves,
    secret_version_eviction,
    destroy_due_secrets,
    destroy_due_secrets_concurrently,
    secret_counts,
    destroy_due_keys_spares_keys_of_secrets,
    delete_instance_with_secrets,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_fresh_databases() {
    let made = std::sync::Mutex::new(Vec::new());
    let stores = std::sync::Mutex::new(Vec::new());
    testsuite::run_all(|| async {
        let db = TestDb::create().await;
        let s = db.connect().await;
        made.lock().unwrap().push(db);
        stores.lock().unwrap().push(s.clone());
        s
    })
    .await;
    for s in stores.into_inner().unwrap() {
        s.close();
    }
    let made = made.into_inner().unwrap();
    assert_eq!(made.len(), 52);
    for db in made {
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_at_once_migrate_once() {
    let db = TestDb::create().await;
    let starters: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { PostgresStore::connect(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for t in starters {
        stores.push(t.await.unwrap().unwrap());
    }
    let latest = MIGRATIONS.last().unwrap().version;
    for s in &stores {
        assert_eq!(s.schema_version().await.unwrap(), latest);
        s.health().await.unwrap();
    }
    let raw = db.raw().await;
    let rows = raw
        .query(
            "SELECT version, name FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    let recorded: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let expected: Vec<(i64, String)> = MIGRATIONS
        .iter()
        .map(|m| (m.version, m.name.to_owned()))
        .collect();
    assert_eq!(recorded, expected);
    // BLOB columns became BYTEA.
    let kind: String = raw
        .query_one(
            "SELECT data_type FROM information_schema.columns \
             WHERE table_name = 'settings' AND column_name = 'value'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kind, "bytea");
    // A later start finds nothing to do and keeps the data.
    stores[0]
        .create_instance(&testsuite::instance("kst-keep"))
        .await
        .unwrap();
    let again = db.connect().await;
    assert_eq!(again.schema_version().await.unwrap(), latest);
    assert_eq!(
        again.get_instance("kst-keep").await.unwrap(),
        testsuite::instance("kst-keep")
    );
    for s in stores.iter().chain([&again]) {
        s.close();
    }
    drop(raw);
    db.drop_db().await;
}

#[tokio::test]
async fn database_from_the_future_is_refused() {
    let db = TestDb::create().await;
    db.connect().await.close();
    let raw = db.raw().await;
    raw.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
        &[],
    )
    .await
    .unwrap();
    drop(raw);
    let err = PostgresStore::connect(&db.url).await.unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 999, .. }),
        "{err:?}"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn corrupt_rows_are_reported_as_corrupt() {
    let db = TestDb::create().await;
    let s = db.connect().await;
    s.create_instance(&testsuite::instance("kst-bad"))
        .await
        .unwrap();
    let raw = db.raw().await;
    raw.execute(
        "UPDATE instances SET vpc_quota = -1 WHERE id = 'kst-bad'",
        &[],
    )
    .await
    .unwrap();
    let err = s.get_instance("kst-bad").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    raw.execute(
        "UPDATE instances SET vpc_quota = 1, status = 'Sideways' WHERE id = 'kst-bad'",
        &[],
    )
    .await
    .unwrap();
    let err = s.get_instance("kst-bad").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    s.close();
    drop(raw);
    db.drop_db().await;
}

#[tokio::test]
async fn unreachable_server_is_a_backend_error_without_the_password() {
    // Port 1 on loopback: nothing listens there.
    let err = PostgresStore::connect("postgresql://kms:s3cret-pw@127.0.0.1:1/kms")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(shown.contains("127.0.0.1"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_binds_of_one_cluster_have_one_winner() {
    let db = TestDb::create().await;
    let s = db.connect().await;
    s.create_cluster(&testsuite::cluster("hsmc-r"))
        .await
        .unwrap();
    for n in 0..8 {
        s.create_instance(&testsuite::instance(&format!("kst-{n}")))
            .await
            .unwrap();
    }
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move { s.bind_cluster(&format!("kst-{n}"), "hsmc-r").await })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(i) => {
                assert_eq!(i.hsm_cluster_id.as_deref(), Some("hsmc-r"));
                winners += 1;
            }
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(winners, 1);
    s.close();
    db.drop_db().await;
}

/// Two nodes (two stores, two pools) on one database: racing for the last units of an
/// instance's key quota, exactly the quota succeeds; destroying due keys at once, each key
/// is reported by exactly one node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_the_key_quota_and_destruction() {
    use strongroom_store::{Key, KeyState};
    use testsuite::keys::{key, version};

    let db = TestDb::create().await;
    let nodes = [db.connect().await, db.connect().await];
    nodes[0]
        .create_instance(&testsuite::instance("kst-q"))
        .await
        .unwrap();
    let quota = 7;
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let s = nodes[n % 2].clone();
            tokio::spawn(async move {
                let id = format!("key-q{n}");
                s.create_key(
                    &key(&id, "kst-q"),
                    &version(&id, &format!("{id}-v1"), 1),
                    quota,
                )
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
    assert_eq!(won, quota);
    assert_eq!(
        nodes[1].count_instance_key_versions("kst-q").await.unwrap(),
        quota
    );

    nodes[0]
        .create_instance(&testsuite::instance("kst-d"))
        .await
        .unwrap();
    let mut expected = Vec::new();
    for n in 0..30 {
        let id = format!("key-d{n:02}");
        let k = Key {
            state: KeyState::PendingDeletion,
            delete_date: Some(n),
            ..key(&id, "kst-d")
        };
        nodes[0]
            .create_key(&k, &version(&id, &k.primary_version, 1), 1000)
            .await
            .unwrap();
        expected.push(id);
    }
    let tasks: Vec<_> = (0..6)
        .map(|n| {
            let s = nodes[n % 2].clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = s.destroy_due_keys(100, 2).await.unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch);
                }
            })
        })
        .collect();
    let mut reported = Vec::new();
    for t in tasks {
        reported.extend(t.await.unwrap());
    }
    reported.sort();
    assert_eq!(reported, expected);
    for s in &nodes {
        s.close();
    }
    db.drop_db().await;
}

#[test]
fn dbname_is_replaced_in_the_url() {
    assert_eq!(
        with_dbname("postgres://u@h:1/postgres", "x"),
        "postgres://u@h:1/x"
    );
    assert_eq!(
        with_dbname("postgresql://u:p@h", "x"),
        "postgresql://u:p@h/x"
    );
    assert_eq!(
        with_dbname("postgres://u@h/db?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
}
