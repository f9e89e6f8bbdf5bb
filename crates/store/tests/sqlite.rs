//! Runs the shared suite against SQLite, plus the file-specific cases.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::as_conversions,
    reason = "tests"
)]

use strongroom_store::{SqliteStore, Store, StoreError, testsuite};
use tempfile::TempDir;

async fn fresh() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("kms.db")).await.unwrap();
    (dir, store)
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_dir, s) = fresh().await;
            testsuite::$name(&s).await;
        }
    )*};
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

#[tokio::test]
async fn persists_across_reopen_and_migrations_are_idempotent() {
    let (dir, s) = fresh().await;
    let path = s.path().to_path_buf();
    s.create_instance(&testsuite::instance("kst-keep"))
        .await
        .unwrap();
    s.create_cluster(&testsuite::cluster("hsmc-keep"))
        .await
        .unwrap();
    s.bind_cluster("kst-keep", "hsmc-keep").await.unwrap();
    let version = s.schema_version().await.unwrap();
    drop(s);
    for _ in 0..2 {
        let s = SqliteStore::open(&path).await.unwrap();
        assert_eq!(s.schema_version().await.unwrap(), version);
        let i = s.get_instance("kst-keep").await.unwrap();
        assert_eq!(i.hsm_cluster_id.as_deref(), Some("hsmc-keep"));
        assert_eq!(
            s.get_cluster("hsmc-keep").await.unwrap(),
            testsuite::cluster("hsmc-keep")
        );
    }
    let rows: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, strongroom_store::MIGRATIONS.len() as i64);
    drop(dir);
}

#[tokio::test]
async fn database_from_the_future_is_refused() {
    let (dir, s) = fresh().await;
    let path = s.path().to_path_buf();
    drop(s);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
            [],
        )
        .unwrap();
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 999, .. }),
        "{err:?}"
    );
    drop(dir);
}

#[tokio::test]
async fn pragmas_are_set() {
    let (_dir, s) = fresh().await;
    let c = rusqlite::Connection::open(s.path()).unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_fresh_files() {
    let dir = tempfile::tempdir().unwrap();
    let next = std::sync::atomic::AtomicUsize::new(0);
    testsuite::run_all(|| {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.path().join(format!("kms-{n}.db"));
        async move { SqliteStore::open(path).await.unwrap() }
    })
    .await;
    assert_eq!(next.into_inner(), 13);
}
