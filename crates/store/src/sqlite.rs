//! The embedded SQLite back end: rusqlite on `spawn_blocking`, one connection behind a mutex.

mod access;
mod infra;
mod keys;
mod listing;
mod secrets;
mod tags;

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{
    Connection, ErrorCode, OptionalExtension, Row, Transaction, TransactionBehavior, params,
};

use crate::migrations::{MIGRATIONS, latest};
use crate::{
    AccessKey, AccessKeyStatus, AccessPoint, AccessSnapshot, Alias, ClientKey, HsmCluster,
    ImportParams, Instance, InstanceStatus, Key, KeyFilter, KeyVersion, NetworkRule, Page, PageOf,
    Policy, Result, Secret, SecretFilter, SecretVersion, StageOn, Store, StoreError,
    VersionMaterial, Vpc,
};

/// SQLite-backed [`Store`]: WAL journal, `synchronous=FULL`, foreign keys on, secure delete,
/// busy timeout.
/// Cloning shares the connection.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Maps driver errors: constraint violations are conflicts, missing rows not-found,
/// undecodable values corrupt.
fn map_err(what: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| match &e {
        rusqlite::Error::SqliteFailure(f, msg) if f.code == ErrorCode::ConstraintViolation => {
            StoreError::Conflict(format!(
                "{what}: {}",
                msg.as_deref().unwrap_or("constraint")
            ))
        }
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound(what.to_owned()),
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => {
            StoreError::Corrupt(format!("{what}: {e}"))
        }
        _ => StoreError::Backend(format!("{what}: {e}")),
    }
}

fn to_u32(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} out of range: {v}")))
}

fn to_u64(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} out of range: {v}")))
}

fn expect_one(n: usize, what: &str) -> Result<()> {
    if n == 0 {
        Err(StoreError::NotFound(what.to_owned()))
    } else {
        Ok(())
    }
}

impl SqliteStore {
    /// Opens (creating if absent) the database file and applies pending migrations.
    /// [`StoreError::SchemaTooNew`] if the file was written by newer code.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection> {
            let mut conn = Connection::open(&p).map_err(map_err("open"))?;
            conn.busy_timeout(Duration::from_secs(5))
                .map_err(map_err("busy_timeout"))?;
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(map_err("journal_mode"))?;
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(map_err("synchronous"))?;
            conn.pragma_update(None, "foreign_keys", "ON")
                .map_err(map_err("foreign_keys"))?;
            // Destroyed keys must not linger in the file: without this, SQLite only marks
            // the space of deleted rows free and the old version blobs stay readable until
            // reused. With it, deleted content is overwritten with zeros. (The WAL still
            // holds the pages until the next checkpoint; they are zeroed in the file then.)
            conn.pragma_update(None, "secure_delete", "ON")
                .map_err(map_err("secure_delete"))?;
            migrate(&mut conn)?;
            Ok(conn)
        })
        .await
        .map_err(backend)??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Highest applied migration version.
    pub async fn schema_version(&self) -> Result<i64> {
        self.call(|c| {
            c.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )
            .map_err(map_err("schema_migrations"))
        })
        .await
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| backend("connection mutex poisoned"))?;
            f(&mut guard)
        })
        .await
        .map_err(backend)?
    }

    /// Runs `f` inside a transaction, committing on success.
    async fn tx<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.call(move |c| {
            // IMMEDIATE takes the write lock up front, so a read-then-write transaction
            // waits on the busy timeout instead of failing to upgrade its lock.
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err("begin"))?;
            let out = f(&tx)?;
            tx.commit().map_err(map_err("commit"))?;
            Ok(out)
        })
        .await
    }

    /// Runs `f` inside a deferred (read) transaction: its reads see one snapshot, and it
    /// takes no write lock.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.call(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .map_err(map_err("begin"))?;
            let out = f(&tx)?;
            tx.commit().map_err(map_err("commit"))?;
            Ok(out)
        })
        .await
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    BIGINT PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )
    .map_err(map_err("schema_migrations"))?;
    let current: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(map_err("schema_migrations"))?;
    if current > latest() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: latest(),
        });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err("begin migration"))?;
        tx.execute_batch(m.sql).map_err(map_err(m.name))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, unixepoch())",
            params![m.version, m.name],
        )
        .map_err(map_err("schema_migrations"))?;
        tx.commit().map_err(map_err("commit migration"))?;
    }
    Ok(())
}

fn count(tx: &Connection, table: &str) -> Result<u64> {
    let n: i64 = tx
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .map_err(map_err(table))?;
    to_u64(n, "count")
}

// ---- access keys ----

type AccessKeyRow = (String, Vec<u8>, String, String, i64);

fn access_key_row(r: &Row<'_>) -> rusqlite::Result<AccessKeyRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn access_key_from(
    (id, secret_ciphertext, status, description, created_at): AccessKeyRow,
) -> Result<AccessKey> {
    Ok(AccessKey {
        id,
        secret_ciphertext,
        status: AccessKeyStatus::parse(&status)?,
        description,
        created_at,
    })
}

const ACCESS_KEY_COLS: &str = "id, secret_ciphertext, status, description, created_at";

// ---- instances ----

const INSTANCE_COLS: &str = "id, name, region, status, vpc_quota, key_quota, secret_quota, spec, \
    term_months, start_time, end_time, auto_renew, hsm_cluster_id, ca_certificate_chain_pem, \
    created_at, updated_at, version, status_reason, hsm_credentials, ca_keys";

struct InstanceRow {
    id: String,
    name: String,
    region: String,
    status: String,
    nums: [i64; 5],
    start_time: Option<i64>,
    end_time: Option<i64>,
    auto_renew: bool,
    hsm_cluster_id: Option<String>,
    ca: String,
    created_at: i64,
    updated_at: i64,
    version: i64,
    status_reason: String,
    hsm_credentials: Option<Vec<u8>>,
    ca_keys: Option<Vec<u8>>,
}

fn instance_row(r: &Row<'_>) -> rusqlite::Result<InstanceRow> {
    Ok(InstanceRow {
        id: r.get(0)?,
        name: r.get(1)?,
        region: r.get(2)?,
        status: r.get(3)?,
        nums: [r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?],
        start_time: r.get(9)?,
        end_time: r.get(10)?,
        auto_renew: r.get(11)?,
        hsm_cluster_id: r.get(12)?,
        ca: r.get(13)?,
        created_at: r.get(14)?,
        updated_at: r.get(15)?,
        version: r.get(16)?,
        status_reason: r.get(17)?,
        hsm_credentials: r.get(18)?,
        ca_keys: r.get(19)?,
    })
}

fn instance_from(r: InstanceRow) -> Result<Instance> {
    let [vpc, key, secret, spec, term] = r.nums;
    Ok(Instance {
        id: r.id,
        name: r.name,
        region: r.region,
        status: InstanceStatus::parse(&r.status)?,
        vpc_quota: to_u32(vpc, "vpc_quota")?,
        key_quota: to_u32(key, "key_quota")?,
        secret_quota: to_u32(secret, "secret_quota")?,
        spec: to_u32(spec, "spec")?,
        term_months: to_u32(term, "term_months")?,
        start_time: r.start_time,
        end_time: r.end_time,
        auto_renew: r.auto_renew,
        hsm_cluster_id: r.hsm_cluster_id,
        ca_certificate_chain_pem: r.ca,
        created_at: r.created_at,
        updated_at: r.updated_at,
        version: r.version,
        status_reason: r.status_reason,
        hsm_credentials: r.hsm_credentials,
        ca_keys: r.ca_keys,
    })
}

fn load_instance(c: &Connection, id: &str) -> Result<Instance> {
    let row = c
        .query_row(
            &format!("SELECT {INSTANCE_COLS} FROM instances WHERE id = ?1"),
            [id],
            instance_row,
        )
        .map_err(map_err("instance"))?;
    instance_from(row)
}

fn instance_exists(c: &Connection, id: &str) -> Result<bool> {
    c.query_row("SELECT 1 FROM instances WHERE id = ?1", [id], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
        .map_err(map_err("instance"))
}

fn page_ids(c: &Connection, table: &str, page: Page) -> Result<Vec<String>> {
    let (limit, offset) = page.limit_offset();
    let mut stmt = c
        .prepare(&format!(
            "SELECT id FROM {table} ORDER BY id LIMIT ?1 OFFSET ?2"
        ))
        .map_err(map_err(table))?;
    stmt.query_map([limit, offset], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(map_err(table))
}

fn position(i: usize) -> Result<i64> {
    i64::try_from(i).map_err(backend)
}

impl Store for SqliteStore {
    async fn health(&self) -> Result<()> {
        self.call(|c| {
            c.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(map_err("health"))
        })
        .await
    }

    async fn create_access_key(&self, key: &AccessKey) -> Result<()> {
        let k = key.clone();
        self.call(move |c| {
            c.execute(
                &format!("INSERT INTO access_keys ({ACCESS_KEY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                params![
                    k.id,
                    k.secret_ciphertext,
                    k.status.as_str(),
                    k.description,
                    k.created_at
                ],
            )
            .map_err(map_err("access key"))?;
            Ok(())
        })
        .await
    }

    async fn get_access_key(&self, id: &str) -> Result<AccessKey> {
        let id = id.to_owned();
        self.call(move |c| {
            let row = c
                .query_row(
                    &format!("SELECT {ACCESS_KEY_COLS} FROM access_keys WHERE id = ?1"),
                    [&id],
                    access_key_row,
                )
                .map_err(map_err("access key"))?;
            access_key_from(row)
        })
        .await
    }

    async fn list_access_keys(&self, page: Page) -> Result<PageOf<AccessKey>> {
        self.tx(move |c| {
            let (limit, offset) = page.limit_offset();
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {ACCESS_KEY_COLS} FROM access_keys ORDER BY id LIMIT ?1 OFFSET ?2"
                ))
                .map_err(map_err("access keys"))?;
            let rows: Vec<AccessKeyRow> = stmt
                .query_map([limit, offset], access_key_row)
                .and_then(Iterator::collect)
                .map_err(map_err("access keys"))?;
            let items = rows
                .into_iter()
                .map(access_key_from)
                .collect::<Result<_>>()?;
            Ok(PageOf {
                items,
                total: count(c, "access_keys")?,
            })
        })
        .await
    }

    async fn set_access_key_status(&self, id: &str, status: AccessKeyStatus) -> Result<()> {
        let id = id.to_owned();
        self.call(move |c| {
            let n = c
                .execute(
                    "UPDATE access_keys SET status = ?1 WHERE id = ?2",
                    params![status.as_str(), id],
                )
                .map_err(map_err("access key"))?;
            expect_one(n, "access key")
        })
        .await
    }

    async fn delete_access_key(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.call(move |c| {
            let n = c
                .execute("DELETE FROM access_keys WHERE id = ?1", [&id])
                .map_err(map_err("access key"))?;
            expect_one(n, "access key")
        })
        .await
    }

    async fn create_instance(&self, instance: &Instance) -> Result<()> {
        let i = instance.clone();
        self.call(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO instances ({INSTANCE_COLS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
                     ?18, ?19, ?20)"
                ),
                params![
                    i.id,
                    i.name,
                    i.region,
                    i.status.as_str(),
                    i64::from(i.vpc_quota),
                    i64::from(i.key_quota),
                    i64::from(i.secret_quota),
                    i64::from(i.spec),
                    i64::from(i.term_months),
                    i.start_time,
                    i.end_time,
                    i.auto_renew,
                    i.hsm_cluster_id,
                    i.ca_certificate_chain_pem,
                    i.created_at,
                    i.updated_at,
                    i.version,
                    i.status_reason,
                    i.hsm_credentials,
                    i.ca_keys,
                ],
            )
            .map_err(map_err("instance"))?;
            Ok(())
        })
        .await
    }

    async fn get_instance(&self, id: &str) -> Result<Instance> {
        let id = id.to_owned();
        self.call(move |c| load_instance(c, &id)).await
    }

    async fn list_instances(&self, page: Page) -> Result<PageOf<Instance>> {
        self.tx(move |c| {
            let (limit, offset) = page.limit_offset();
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {INSTANCE_COLS} FROM instances ORDER BY id LIMIT ?1 OFFSET ?2"
                ))
                .map_err(map_err("instances"))?;
            let rows: Vec<InstanceRow> = stmt
                .query_map([limit, offset], instance_row)
                .and_then(Iterator::collect)
                .map_err(map_err("instances"))?;
            let items = rows.into_iter().map(instance_from).collect::<Result<_>>()?;
            Ok(PageOf {
                items,
                total: count(c, "instances")?,
            })
        })
        .await
    }

    async fn update_instance(&self, instance: &Instance) -> Result<Instance> {
        let i = instance.clone();
        self.tx(move |c| infra::update_instance(c, &i)).await
    }

    async fn delete_instance(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.tx(move |c| {
            // Access granted to the instance is withdrawn explicitly, never as a side
            // effect of releasing it.
            if access::instance_has_policies(c, &id)? {
                return Err(StoreError::Conflict(format!(
                    "instance {id} is named by a policy"
                )));
            }
            // Releasing an instance releases its secrets and keys; they reference the
            // instance (and secrets the keys), so they go first, in the same transaction.
            secrets::delete_instance_secrets(c, &id)?;
            keys::delete_instance_keys(c, &id)?;
            let n = c
                .execute("DELETE FROM instances WHERE id = ?1", [&id])
                .map_err(map_err("instance"))?;
            expect_one(n, "instance")
        })
        .await
    }

    async fn bind_cluster(&self, instance_id: &str, cluster_id: &str) -> Result<Instance> {
        let (iid, cid) = (instance_id.to_owned(), cluster_id.to_owned());
        self.tx(move |c| {
            let inst = load_instance(c, &iid)?;
            infra::load_cluster(c, &cid)?;
            match inst.hsm_cluster_id.as_deref() {
                Some(bound) if bound == cid => return Ok(inst),
                Some(bound) => {
                    return Err(StoreError::Conflict(format!(
                        "instance {iid} is already bound to cluster {bound}"
                    )));
                }
                None => {}
            }
            c.execute(
                "UPDATE instances SET hsm_cluster_id = ?1, version = version + 1 WHERE id = ?2",
                params![cid, iid],
            )
            .map_err(|e| match map_err("instance")(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("cluster {cid} is bound to another instance"))
                }
                other => other,
            })?;
            load_instance(c, &iid)
        })
        .await
    }

    async fn create_cluster(&self, cluster: &HsmCluster) -> Result<()> {
        let k = cluster.clone();
        self.tx(move |c| infra::create_cluster(c, &k)).await
    }

    async fn get_cluster(&self, id: &str) -> Result<HsmCluster> {
        let id = id.to_owned();
        self.tx(move |c| infra::load_cluster(c, &id)).await
    }

    async fn list_clusters(&self, page: Page) -> Result<PageOf<HsmCluster>> {
        self.tx(move |c| infra::list_clusters(c, page)).await
    }

    async fn delete_cluster(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.call(move |c| infra::delete_cluster(c, &id)).await
    }

    async fn create_vpc(&self, vpc: &Vpc) -> Result<()> {
        let v = vpc.clone();
        self.tx(move |c| infra::create_vpc(c, &v)).await
    }

    async fn get_vpc(&self, id: &str) -> Result<Vpc> {
        let id = id.to_owned();
        self.tx(move |c| infra::load_vpc(c, &id)).await
    }

    async fn list_vpcs(&self, page: Page) -> Result<PageOf<Vpc>> {
        self.tx(move |c| infra::list_vpcs(c, page)).await
    }

    async fn delete_vpc(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.call(move |c| infra::delete_vpc(c, &id)).await
    }

    async fn bind_vpc(&self, instance_id: &str, vpc_id: &str) -> Result<()> {
        let (iid, vid) = (instance_id.to_owned(), vpc_id.to_owned());
        self.tx(move |c| infra::bind_vpc(c, &iid, &vid)).await
    }

    async fn unbind_vpc(&self, instance_id: &str, vpc_id: &str) -> Result<()> {
        let (iid, vid) = (instance_id.to_owned(), vpc_id.to_owned());
        self.call(move |c| infra::unbind_vpc(c, &iid, &vid)).await
    }

    async fn instance_vpcs(&self, instance_id: &str) -> Result<Vec<String>> {
        let iid = instance_id.to_owned();
        self.call(move |c| infra::instance_vpcs(c, &iid)).await
    }

    async fn replace_instance_vpcs(&self, instance_id: &str, vpc_ids: &[String]) -> Result<()> {
        let (iid, vids) = (instance_id.to_owned(), vpc_ids.to_vec());
        self.tx(move |c| infra::replace_instance_vpcs(c, &iid, &vids))
            .await
    }

    async fn count_instance_vpcs(&self, instance_id: &str) -> Result<u64> {
        let iid = instance_id.to_owned();
        self.call(move |c| infra::count_instance_vpcs(c, &iid))
            .await
    }

    async fn insert_nonce(
        &self,
        access_key_id: &str,
        nonce: &str,
        expires_at: i64,
    ) -> Result<bool> {
        let (ak, nonce) = (access_key_id.to_owned(), nonce.to_owned());
        self.call(move |c| {
            let n = c
                .execute(
                    "INSERT INTO nonces (access_key_id, nonce, expires_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (access_key_id, nonce) DO NOTHING",
                    params![ak, nonce, expires_at],
                )
                .map_err(map_err("nonce"))?;
            Ok(n == 1)
        })
        .await
    }

    async fn purge_expired_nonces(&self, now: i64) -> Result<u64> {
        self.call(move |c| {
            let n = c
                .execute("DELETE FROM nonces WHERE expires_at <= ?1", [now])
                .map_err(map_err("nonces"))?;
            u64::try_from(n).map_err(backend)
        })
        .await
    }

    async fn get_setting(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let name = name.to_owned();
        self.call(move |c| {
            c.query_row("SELECT value FROM settings WHERE name = ?1", [&name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(map_err("setting"))
        })
        .await
    }

    async fn insert_setting(&self, name: &str, value: &[u8]) -> Result<bool> {
        let (name, value) = (name.to_owned(), value.to_vec());
        self.call(move |c| {
            let n = c
                .execute(
                    "INSERT INTO settings (name, value) VALUES (?1, ?2) \
                     ON CONFLICT (name) DO NOTHING",
                    params![name, value],
                )
                .map_err(map_err("setting"))?;
            Ok(n == 1)
        })
        .await
    }

    async fn create_key(&self, key: &Key, first: &KeyVersion, key_quota: u64) -> Result<()> {
        let (k, v) = (key.clone(), first.clone());
        self.tx(move |c| keys::create_key(c, &k, &v, key_quota))
            .await
    }

    async fn get_key(&self, id: &str) -> Result<Key> {
        let id = id.to_owned();
        self.tx(move |c| keys::get_key(c, &id)).await
    }

    async fn list_keys(&self, filter: &KeyFilter, page: Page) -> Result<PageOf<Key>> {
        let f = filter.clone();
        self.tx(move |c| keys::list_keys(c, &f, page)).await
    }

    async fn update_key(&self, key: &Key) -> Result<Key> {
        let k = key.clone();
        self.tx(move |c| keys::update_key(c, &k)).await
    }

    async fn add_key_version(
        &self,
        key: &Key,
        version: &KeyVersion,
        key_quota: u64,
    ) -> Result<Key> {
        let (k, v) = (key.clone(), version.clone());
        self.tx(move |c| keys::add_key_version(c, &k, &v, key_quota))
            .await
    }

    async fn get_key_version(&self, key_id: &str, version_id: &str) -> Result<KeyVersion> {
        let (kid, vid) = (key_id.to_owned(), version_id.to_owned());
        self.call(move |c| keys::get_key_version(c, &kid, &vid))
            .await
    }

    async fn find_key_version(&self, version_id: &str) -> Result<KeyVersion> {
        let vid = version_id.to_owned();
        self.call(move |c| keys::find_key_version(c, &vid)).await
    }

    async fn list_key_versions(&self, key_id: &str, page: Page) -> Result<PageOf<KeyVersion>> {
        let kid = key_id.to_owned();
        self.tx(move |c| keys::list_key_versions(c, &kid, page))
            .await
    }

    async fn set_key_material(&self, key: &Key, versions: &[VersionMaterial]) -> Result<Key> {
        let (k, vs) = (key.clone(), versions.to_vec());
        self.tx(move |c| keys::set_key_material(c, &k, &vs)).await
    }

    async fn count_instance_key_versions(&self, instance_id: &str) -> Result<u64> {
        let iid = instance_id.to_owned();
        self.call(move |c| keys::count_instance_key_versions(c, &iid))
            .await
    }

    async fn destroy_due_keys(&self, now: i64, limit: u32) -> Result<Vec<String>> {
        self.tx(move |c| keys::destroy_due_keys(c, now, limit))
            .await
    }

    async fn keys_due_for_rotation(&self, now: i64, limit: u32) -> Result<Vec<Key>> {
        self.tx(move |c| keys::keys_due_for_rotation(c, now, limit))
            .await
    }

    async fn keys_with_expired_material(&self, now: i64, limit: u32) -> Result<Vec<Key>> {
        self.tx(move |c| keys::keys_with_expired_material(c, now, limit))
            .await
    }

    async fn create_alias(&self, alias: &Alias) -> Result<()> {
        let a = alias.clone();
        self.tx(move |c| keys::create_alias(c, &a)).await
    }

    async fn get_alias(&self, name: &str) -> Result<Alias> {
        let name = name.to_owned();
        self.call(move |c| keys::get_alias(c, &name)).await
    }

    async fn update_alias(&self, name: &str, key_id: &str, updated_at: i64) -> Result<Alias> {
        let (name, kid) = (name.to_owned(), key_id.to_owned());
        self.tx(move |c| keys::update_alias(c, &name, &kid, updated_at))
            .await
    }

    async fn delete_alias(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.call(move |c| keys::delete_alias(c, &name)).await
    }

    async fn list_aliases(&self, page: Page) -> Result<PageOf<Alias>> {
        self.tx(move |c| keys::list_aliases(c, None, page)).await
    }

    async fn list_aliases_by_key(&self, key_id: &str, page: Page) -> Result<PageOf<Alias>> {
        let kid = key_id.to_owned();
        self.tx(move |c| keys::list_aliases(c, Some(&kid), page))
            .await
    }

    async fn create_import_params(&self, params: &ImportParams) -> Result<()> {
        let p = params.clone();
        self.tx(move |c| keys::create_import_params(c, &p)).await
    }

    async fn get_import_params(&self, token: &str) -> Result<ImportParams> {
        let token = token.to_owned();
        self.call(move |c| keys::get_import_params(c, &token)).await
    }

    async fn purge_expired_import_params(&self, now: i64) -> Result<u64> {
        self.call(move |c| keys::purge_expired_import_params(c, now))
            .await
    }

    async fn create_network_rule(&self, rule: &NetworkRule) -> Result<()> {
        let r = rule.clone();
        self.tx(move |c| access::create_network_rule(c, &r)).await
    }

    async fn get_network_rule(&self, name: &str) -> Result<NetworkRule> {
        let name = name.to_owned();
        self.call(move |c| access::get_network_rule(c, &name)).await
    }

    async fn list_network_rules(&self, page: Page) -> Result<PageOf<NetworkRule>> {
        self.read(move |c| access::list_network_rules(c, page))
            .await
    }

    async fn update_network_rule(&self, rule: &NetworkRule) -> Result<()> {
        let r = rule.clone();
        self.tx(move |c| access::update_network_rule(c, &r)).await
    }

    async fn delete_network_rule(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.tx(move |c| access::delete_network_rule(c, &name))
            .await
    }

    async fn create_policy(&self, policy: &Policy) -> Result<()> {
        let p = policy.clone();
        self.tx(move |c| access::create_policy(c, &p)).await
    }

    async fn get_policy(&self, name: &str) -> Result<Policy> {
        let name = name.to_owned();
        self.read(move |c| access::get_policy(c, &name)).await
    }

    async fn list_policies(&self, page: Page) -> Result<PageOf<Policy>> {
        self.read(move |c| access::list_policies(c, page)).await
    }

    async fn update_policy(&self, policy: &Policy) -> Result<()> {
        let p = policy.clone();
        self.tx(move |c| access::update_policy(c, &p)).await
    }

    async fn delete_policy(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.tx(move |c| access::delete_policy(c, &name)).await
    }

    async fn create_access_point(&self, point: &AccessPoint) -> Result<()> {
        let a = point.clone();
        self.tx(move |c| access::create_access_point(c, &a)).await
    }

    async fn get_access_point(&self, name: &str) -> Result<AccessPoint> {
        let name = name.to_owned();
        self.read(move |c| access::get_access_point(c, &name)).await
    }

    async fn list_access_points(&self, page: Page) -> Result<PageOf<AccessPoint>> {
        self.read(move |c| access::list_access_points(c, page))
            .await
    }

    async fn update_access_point(&self, point: &AccessPoint) -> Result<()> {
        let a = point.clone();
        self.tx(move |c| access::update_access_point(c, &a)).await
    }

    async fn delete_access_point(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.tx(move |c| access::delete_access_point(c, &name))
            .await
    }

    async fn instance_port(&self, instance_id: &str, range: RangeInclusive<u16>) -> Result<u16> {
        let id = instance_id.to_owned();
        self.tx(move |c| infra::instance_port(c, &id, &range)).await
    }

    async fn create_client_key(&self, key: &ClientKey, max_per_aap: u32) -> Result<()> {
        let k = key.clone();
        self.tx(move |c| access::create_client_key(c, &k, max_per_aap))
            .await
    }

    async fn get_client_key(&self, id: &str) -> Result<ClientKey> {
        let id = id.to_owned();
        self.call(move |c| access::get_client_key(c, &id)).await
    }

    async fn list_client_keys(&self, aap_name: &str) -> Result<Vec<ClientKey>> {
        let name = aap_name.to_owned();
        self.read(move |c| access::list_client_keys(c, &name)).await
    }

    async fn delete_client_key(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.call(move |c| access::delete_client_key(c, &id)).await
    }

    async fn access_snapshot(&self, client_key_id: &str) -> Result<Option<AccessSnapshot>> {
        let id = client_key_id.to_owned();
        self.read(move |c| access::access_snapshot(c, &id)).await
    }

    async fn create_secret(
        &self,
        secret: &Secret,
        first: &SecretVersion,
        quota: u64,
    ) -> Result<()> {
        let (s, v) = (secret.clone(), first.clone());
        self.tx(move |c| secrets::create_secret(c, &s, &v, quota))
            .await
    }

    async fn get_secret(&self, name: &str) -> Result<Secret> {
        let name = name.to_owned();
        self.read(move |c| secrets::get_secret(c, &name)).await
    }

    async fn list_secrets(&self, filter: &SecretFilter, page: Page) -> Result<PageOf<Secret>> {
        let f = filter.clone();
        self.read(move |c| secrets::list_secrets(c, &f, page)).await
    }

    async fn update_secret(&self, secret: &Secret) -> Result<Secret> {
        let s = secret.clone();
        self.tx(move |c| secrets::update_secret(c, &s)).await
    }

    async fn write_secret_versions(
        &self,
        secret: &Secret,
        new_version: Option<&SecretVersion>,
        stages: &[StageOn],
        max_versions: u32,
    ) -> Result<Secret> {
        let (s, v, st) = (secret.clone(), new_version.cloned(), stages.to_vec());
        self.tx(move |c| secrets::write_secret_versions(c, &s, v.as_ref(), &st, max_versions))
            .await
    }

    async fn get_secret_version(&self, name: &str, version_id: &str) -> Result<SecretVersion> {
        let (name, vid) = (name.to_owned(), version_id.to_owned());
        self.read(move |c| secrets::get_secret_version(c, &name, &vid))
            .await
    }

    async fn get_secret_version_by_stage(&self, name: &str, stage: &str) -> Result<SecretVersion> {
        let (name, stage) = (name.to_owned(), stage.to_owned());
        self.read(move |c| secrets::get_secret_version_by_stage(c, &name, &stage))
            .await
    }

    async fn list_secret_versions(&self, name: &str) -> Result<Vec<SecretVersion>> {
        let name = name.to_owned();
        self.read(move |c| secrets::list_secret_versions(c, &name))
            .await
    }

    async fn delete_secret(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.tx(move |c| secrets::delete_secret(c, &name)).await
    }

    async fn destroy_due_secrets(&self, now: i64, limit: u32) -> Result<Vec<String>> {
        self.tx(move |c| secrets::destroy_due_secrets(c, now, limit))
            .await
    }

    async fn count_instance_secrets(&self, instance_id: &str) -> Result<u64> {
        let iid = instance_id.to_owned();
        self.call(move |c| secrets::count_instance_secrets(c, &iid))
            .await
    }

    async fn count_key_secrets(&self, key_id: &str) -> Result<u64> {
        let kid = key_id.to_owned();
        self.call(move |c| secrets::count_key_secrets(c, &kid))
            .await
    }
}
