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
            let (_dir, s) = fresh().await;
            $case(&s).await;
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

/// The file holds `needle` (the database and its WAL, whichever exist).
fn file_contains(path: &std::path::Path, needle: &[u8]) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    [path.to_path_buf(), wal.into()]
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
}

#[tokio::test]
async fn destroyed_material_is_overwritten_in_the_file() {
    let (_dir, s) = fresh().await;
    let path = s.path().to_path_buf();
    let marker = b"sealed-material-marker-7f3a9c".repeat(3);
    s.create_instance(&testsuite::instance("kst-sd"))
        .await
        .unwrap();
    let key = strongroom_store::Key {
        state: strongroom_store::KeyState::PendingDeletion,
        delete_date: Some(1),
        ..testsuite::keys::key("key-sd", "kst-sd")
    };
    let version = strongroom_store::KeyVersion {
        blob: Some(marker.clone()),
        ..testsuite::keys::version("key-sd", &key.primary_version, 1)
    };
    s.create_key(&key, &version, 10).await.unwrap();
    assert!(
        file_contains(&path, &marker),
        "the test cannot see the blob"
    );
    assert_eq!(s.destroy_due_keys(1, 10).await.unwrap(), ["key-sd"]);
    // Closing checkpoints the WAL into the file and removes it.
    drop(s);
    assert!(!file_contains(&path, &marker));
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
    assert_eq!(next.into_inner(), 52);
}
