//! The PostgreSQL back end: tokio-postgres behind a deadpool connection pool.
//!
//! Several KMS nodes may share one database, so every read-then-write runs in a
//! transaction that locks the rows it read (`SELECT … FOR UPDATE`) at the default READ
//! COMMITTED level; single-statement writes rely on PostgreSQL re-checking their `WHERE`
//! clause after a concurrent update (the compare-and-set of [`Store::update_instance`]).
//! Multi-statement reads (a page and its total, a cluster and its nodes) run in a
//! read-only REPEATABLE READ transaction, so they see one snapshot.
//!
//! Text is ordered with `COLLATE "C"` (byte order), as SQLite orders it, whatever the
//! database's locale.
//!
//! Connections are made without TLS: the database is expected on loopback or a private
//! network (a URL asking for `sslmode=require` fails to connect rather than fall back).

mod access;
mod keys;
mod secrets;
mod support;
mod tags;

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

use crate::migrations::{MIGRATIONS, latest};
use crate::{
    AccessKey, AccessKeyStatus, AccessPoint, AccessSnapshot, Alias, ClientKey, HsmCluster,
    ImportParams, Instance, Key, KeyFilter, KeyVersion, NetworkRule, Page, PageOf, Policy, Result,
    Secret, SecretFilter, SecretVersion, StageOn, Store, StoreError, VersionMaterial, Vpc,
};
use support::*;

/// Connections in the pool.
const POOL_SIZE: usize = 16;

/// Key of the transaction-scoped advisory lock that serialises migrations when several
/// nodes start at once against one database (the ASCII bytes of `strongrm`).
const MIGRATION_LOCK: i64 = 0x7374_726f_6e67_726d;

/// How long to wait for a new connection, and for a free one from the pool.
const TIMEOUT: Duration = Duration::from_secs(30);

/// PostgreSQL-backed [`Store`]. Cloning shares the pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// `user@host:port/dbname`, for messages: never the password.
    target: String,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .field("pool_size", &status.size)
            .field("pool_max_size", &status.max_size)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `postgres://user:password@host:port/dbname` (or `postgresql://…`),
    /// opens a pool of 16 connections and applies pending migrations; nodes starting at
    /// once against one database take turns. [`StoreError::SchemaTooNew`] if the database
    /// was written by newer code.
    pub async fn connect(url: &str) -> Result<Self> {
        let store = Self::with_pool(url)?;
        store.migrate().await?;
        Ok(store)
    }

    /// Builds the pool without connecting (connections are opened on first use).
    fn with_pool(url: &str) -> Result<Self> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Backend(
                "the PostgreSQL store needs a postgres:// or postgresql:// URL".to_owned(),
            ));
        }
        // The driver's messages never repeat the URL, so the password cannot leak here.
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(TIMEOUT);
        }
        let target = describe(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(TIMEOUT))
            .create_timeout(Some(TIMEOUT))
            .build()
            .map_err(|e| StoreError::Backend(format!("PostgreSQL pool for {target}: {e}")))?;
        Ok(Self { pool, target })
    }

    /// Highest applied migration version.
    pub async fn schema_version(&self) -> Result<i64> {
        let conn = self.conn().await?;
        let row = conn
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(map_err("schema_migrations"))?;
        get(&row, 0, "schema_migrations")
    }

    /// Closes the pool: idle connections are dropped and further calls fail. Clones share
    /// the pool, so this closes theirs too.
    pub fn close(&self) {
        self.pool.close();
    }

    /// A pooled connection.
    async fn conn(&self) -> Result<Object> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Backend(format!("PostgreSQL at {}: {e}", self.target)))
    }

    /// Applies pending migrations, each in its own transaction, under an advisory lock so
    /// that concurrent starters apply each one exactly once.
    async fn migrate(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        loop {
            let tx = begin(&mut conn).await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(map_err("migration lock"))?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    BIGINT PRIMARY KEY,
                    name       TEXT NOT NULL,
                    applied_at BIGINT NOT NULL
                )",
            )
            .await
            .map_err(map_err("schema_migrations"))?;
            let row = tx
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                    &[],
                )
                .await
                .map_err(map_err("schema_migrations"))?;
            let current: i64 = get(&row, 0, "schema_migrations")?;
            if current > latest() {
                return Err(StoreError::SchemaTooNew {
                    found: current,
                    supported: latest(),
                });
            }
            let Some(m) = MIGRATIONS.iter().find(|m| m.version > current) else {
                tx.commit().await.map_err(map_err("commit migration"))?;
                return Ok(());
            };
            tx.batch_execute(&postgres_sql(m.sql))
                .await
                .map_err(map_err(m.name))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) \
                 VALUES ($1, $2, CAST(EXTRACT(EPOCH FROM now()) AS BIGINT))",
                &[&m.version, &m.name],
            )
            .await
            .map_err(map_err("schema_migrations"))?;
            tx.commit().await.map_err(map_err("commit migration"))?;
        }
    }
}

impl Store for PostgresStore {
    async fn health(&self) -> Result<()> {
        let conn = self.conn().await?;
        conn.execute("SELECT 1", &[])
            .await
            .map_err(map_err("health"))?;
        Ok(())
    }

    async fn create_access_key(&self, key: &AccessKey) -> Result<()> {
        let conn = self.conn().await?;
        conn.execute(
            &format!("INSERT INTO access_keys ({ACCESS_KEY_COLS}) VALUES ($1, $2, $3, $4, $5)"),
            &[
                &key.id,
                &key.secret_ciphertext,
                &key.status.as_str(),
                &key.description,
                &key.created_at,
            ],
        )
        .await
        .map_err(map_conflict("access key", || {
            format!("access key {} exists", key.id)
        }))?;
        Ok(())
    }

    async fn get_access_key(&self, id: &str) -> Result<AccessKey> {
        let conn = self.conn().await?;
        let row = conn
            .query_opt(
                &format!("SELECT {ACCESS_KEY_COLS} FROM access_keys WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(map_err("access key"))?
            .ok_or_else(|| StoreError::NotFound(format!("access key {id}")))?;
        access_key_from(&row)
    }

    async fn list_access_keys(&self, page: Page) -> Result<PageOf<AccessKey>> {
        let mut conn = self.conn().await?;
        let tx = snapshot(&mut conn).await?;
        let [limit, offset] = page_params(page);
        let rows = tx
            .query(
                &format!(
                    "SELECT {ACCESS_KEY_COLS} FROM access_keys ORDER BY id COLLATE \"C\" \
                     LIMIT $1 OFFSET $2"
                ),
                &[&limit, &offset],
            )
            .await
            .map_err(map_err("access keys"))?;
        let items = rows.iter().map(access_key_from).collect::<Result<_>>()?;
        let total = count(&tx, "access_keys").await?;
        commit(tx).await?;
        Ok(PageOf { items, total })
    }

    async fn set_access_key_status(&self, id: &str, status: AccessKeyStatus) -> Result<()> {
        let conn = self.conn().await?;
        let n = conn
            .execute(
                "UPDATE access_keys SET status = $1 WHERE id = $2",
                &[&status.as_str(), &id],
            )
            .await
            .map_err(map_err("access key"))?;
        expect_one(n, format!("access key {id}"))
    }

    async fn delete_access_key(&self, id: &str) -> Result<()> {
        let conn = self.conn().await?;
        let n = conn
            .execute("DELETE FROM access_keys WHERE id = $1", &[&id])
            .await
            .map_err(map_err("access key"))?;
        expect_one(n, format!("access key {id}"))
    }

    async fn create_instance(&self, i: &Instance) -> Result<()> {
        let conn = self.conn().await?;
        let params: [&(dyn ToSql + Sync); 20] = [
            &i.id,
            &i.name,
            &i.region,
            &i.status.as_str(),
            &i64::from(i.vpc_quota),
            &i64::from(i.key_quota),
            &i64::from(i.secret_quota),
            &i64::from(i.spec),
            &i64::from(i.term_months),
            &i.start_time,
            &i.end_time,
            &i.auto_renew,
            &i.hsm_cluster_id,
            &i.ca_certificate_chain_pem,
            &i.created_at,
            &i.updated_at,
            &i.version,
            &i.status_reason,
            &i.hsm_credentials,
            &i.ca_keys,
        ];
        conn.execute(
            &format!(
                "INSERT INTO instances ({INSTANCE_COLS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                 $18, $19, $20)"
            ),
            &params,
        )
        .await
        .map_err(map_err("instance"))?;
        Ok(())
    }

    async fn get_instance(&self, id: &str) -> Result<Instance> {
        let conn = self.conn().await?;
        load_instance(&**conn, id, false).await
    }

    async fn list_instances(&self, page: Page) -> Result<PageOf<Instance>> {
        let mut conn = self.conn().await?;
        let tx = snapshot(&mut conn).await?;
        let [limit, offset] = page_params(page);
        let rows = tx
            .query(
                &format!(
                    "SELECT {INSTANCE_COLS} FROM instances ORDER BY id COLLATE \"C\" \
                     LIMIT $1 OFFSET $2"
                ),
                &[&limit, &offset],
            )
            .await
            .map_err(map_err("instances"))?;
        let items = rows.iter().map(instance_from).collect::<Result<_>>()?;
        let total = count(&tx, "instances").await?;
        commit(tx).await?;
        Ok(PageOf { items, total })
    }

    async fn update_instance(&self, i: &Instance) -> Result<Instance> {
        let conn = self.conn().await?;
        let params: [&(dyn ToSql + Sync); 19] = [
            &i.name,
            &i.region,
            &i.status.as_str(),
            &i64::from(i.vpc_quota),
            &i64::from(i.key_quota),
            &i64::from(i.secret_quota),
            &i64::from(i.spec),
            &i64::from(i.term_months),
            &i.start_time,
            &i.end_time,
            &i.auto_renew,
            &i.hsm_cluster_id,
            &i.ca_certificate_chain_pem,
            &i.updated_at,
            &i.id,
            &i.version,
            &i.status_reason,
            &i.hsm_credentials,
            &i.ca_keys,
        ];
        // One statement: PostgreSQL re-evaluates `version = $16` on the newest row version
        // after waiting for a concurrent writer, so the compare-and-set cannot lose an update.
        let row = conn
            .query_opt(
                &format!(
                    "UPDATE instances SET name = $1, region = $2, status = $3, vpc_quota = $4, \
                     key_quota = $5, secret_quota = $6, spec = $7, term_months = $8, \
                     start_time = $9, end_time = $10, auto_renew = $11, hsm_cluster_id = $12, \
                     ca_certificate_chain_pem = $13, updated_at = $14, status_reason = $17, \
                     hsm_credentials = $18, ca_keys = $19, version = version + 1 \
                     WHERE id = $15 AND version = $16 RETURNING {INSTANCE_COLS}"
                ),
                &params,
            )
            .await
            .map_err(map_err("instance"))?;
        match row {
            Some(row) => instance_from(&row),
            None if instance_exists(&**conn, &i.id, false).await? => Err(StoreError::Conflict(
                format!("instance {} version {} is stale", i.id, i.version),
            )),
            None => Err(StoreError::NotFound(format!("instance {}", i.id))),
        }
    }

    async fn delete_instance(&self, id: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        let tx = begin(&mut conn).await?;
        // The instance's lock first: a key being created in it either committed before
        // (and is deleted here) or waits and then finds no instance.
        if !instance_exists(&tx, id, true).await? {
            return Err(StoreError::NotFound(format!("instance {id}")));
        }
        // Access granted to the instance is withdrawn explicitly, never as a side effect
        // of releasing it. A policy being created for it holds a key-share lock on the
        // instance, so it committed before the lock above was granted and is seen here.
        if access::instance_has_policies(&tx, id).await? {
            return Err(StoreError::Conflict(format!(
                "instance {id} is named by a policy"
            )));
        }
        // Releasing an instance releases its secrets and keys; they reference the
        // instance (and secrets the keys), so they go first.
        secrets::delete_instance_secrets(&tx, id).await?;
        keys::delete_instance_keys(&tx, id).await?;
        let n = tx
            .execute("DELETE FROM instances WHERE id = $1", &[&id])
            .await
            .map_err(map_err("instance"))?;
        expect_one(n, format!("instance {id}"))?;
        commit(tx).await
    }

    async fn bind_cluster(&self, instance_id: &str, cluster_id: &str) -> Result<Instance> {
        let mut conn = self.conn().await?;
        let tx = begin(&mut conn).await?;
        let inst = load_instance(&tx, instance_id, true).await?;
        if !row_exists(&tx, "hsm_clusters", cluster_id).await? {
            return Err(StoreError::NotFound(format!("hsm cluster {cluster_id}")));
        }
        match inst.hsm_cluster_id.as_deref() {
            Some(bound) if bound == cluster_id => return Ok(inst),
            Some(bound) => {
                return Err(StoreError::Conflict(format!(
                    "instance {instance_id} is already bound to cluster {bound}"
                )));
            }
            None => {}
        }
        // The unique index on hsm_cluster_id settles a race with another instance: the
        // loser waits for the winner's commit and then fails here.
        let row = tx
            .query_one(
                &format!(
                    "UPDATE instances SET hsm_cluster_id = $1, version = version + 1 \
                     WHERE id = $2 RETURNING {INSTANCE_COLS}"
                ),
                &[&cluster_id, &instance_id],
            )
            .await
            .map_err(map_conflict("instance", || {
                format!("cluster {cluster_id} is bound to another instance")
            }))?;
        let updated = instance_from(&row)?;
        commit(tx).await?;
        Ok(updated)
    }

    async fn create_cluster(&self, cluster: &HsmCluster) -> Result<()> {
        let mut conn = self.conn().await?;
        let tx = begin(&mut conn).await?;
        tx.execute(
            "INSERT INTO hsm_clusters (id, name, created_at) VALUES ($1, $2, $3)",
            &[&cluster.id, &cluster.name, &cluster.created_at],
        )
        .await
        .map_err(map_conflict("hsm cluster", || {
            format!("hsm cluster {} exists", cluster.id)
        }))?;
        for (i, n) in cluster.nodes.iter().enumerate() {
            tx.execute(
                "INSERT INTO hsm_nodes (cluster_id, position, address, zone) \
                 VALUES ($1, $2, $3, $4)",
                &[&cluster.id, &position(i)?, &n.address, &n.zone],
            )
            .await
            .map_err(map_err("hsm node"))?;
        }
        commit(tx).await
    }

    async fn get_cluster(&self, id: &str) -> Result<HsmCluster> {
        let conn = self.conn().await?;
        let rows = conn
            .query(&CLUSTER_QUERY.replace("{filter}", BY_ID), &[&id])
            .await
            .map_err(map_err("hsm cluster"))?;
        clusters_from(&rows)?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("hsm cluster {id}")))
    }

    async fn list_clusters(&self, page: Page) -> Result<PageOf<HsmCluster>> {
        let mut conn = self.conn().await?;
        let tx = snapshot(&mut conn).await?;
        let [limit, offset] = page_params(page);
        let rows = tx
            .query(
                &CLUSTER_QUERY.replace("{filter}", BY_PAGE),
                &[&limit, &offset],
            )
            .await
            .map_err(map_err("hsm clusters"))?;
        let items = clusters_from(&rows)?;
        let total = count(&tx, "hsm_clusters").await?;
        commit(tx).await?;
        Ok(PageOf { items, total })
    }

    async fn delete_cluster(&self, id: &str) -> Result<()> {
        let conn = self.conn().await?;
        let n = conn
            .execute("DELETE FROM hsm_clusters WHERE id = $1", &[&id])
            .await
            .map_err(map_conflict("hsm cluster", || {
                format!("cluster {id} is bound to an instance")
            }))?;
        expect_one(n, format!("hsm cluster {id}"))
    }

    async fn create_vpc(&self, vpc: &Vpc) -> Result<()> {
        let mut conn = self.conn().await?;
        let tx = begin(&mut conn).await?;
        tx.execute(
            "INSERT INTO vpcs (id, name, created_at) VALUES ($1, $2, $3)",
            &[&vpc.id, &vpc.name, &vpc.created_at],
        )
        .await
        .map_err(map_conflict("vpc", || format!("vpc {} exists", vpc.id)))?;
        for (i, cidr) in vpc.cidr_blocks.iter().enumerate() {
            tx.execute(
                "INSERT INTO vpc_cidr_blocks (vpc_id, position, cidr) VALUES ($1, $2, $3)",
                &[&vpc.id, &position(i)?, cidr],
            )
            .await
            .map_err(map_err("vpc cidr block"))?;
        }
        commit(tx).await
    }

    async fn get_vpc(&self, id: &str) -> Result<Vpc> {
        let conn = self.conn().await?;
        let rows = conn
            .query(&VPC_QUERY.replace("{filter}", BY_ID), &[&id])
            .await
            .map_err(map_err("vpc"))?;
        vpcs_from(&rows)?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("vpc {id}")))
    }

    async fn list_vpcs(&self, page: Page) -> Result<PageOf<Vpc>> {
        let mut conn = self.conn().await?;
        let tx = snapshot(&mut conn).await?;
        let [limit, offset] = page_params(page);
        let rows = tx
            .query(&VPC_QUERY.replace("{filter}", BY_PAGE), &[&limit, &offset])
            .await
            .map_err(map_err("vpcs"))?;
        let items = vpcs_from(&rows)?;
        let total = count(&tx, "vpcs").await?;
        commit(tx).await?;
        Ok(PageOf { items, total })
    }

    async fn delete_vpc(&self, id: &str) -> Result<()> {
        let conn = self.conn().await?;
        let n = conn
            .execute("DELETE FROM vpcs WHERE id = $1", &[&id])
            .await
            .map_err(map_conflict("vpc", || {
                format!("vpc {id} is bound to an instance")
            }))?;
        expect_one(n, format!("vpc {id}"))
    }

    async fn bind_vpc(&self, instance_id: &str, vpc_id: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        let tx = begin(&mut conn).await?;
        if !row_exists(&tx, "instances", instance_id).await? {
            return Err(StoreError::NotFound(format!("instance {instance_id}")));
        }
        if !row_exists(&tx, "vpcs", vpc_id).await? {
            return Err(StoreError::NotFound(format!("vpc {vpc_id}")));
        }
        tx.execute(
            "INSERT INTO instance_vpcs (instance_id, vpc_id) VALUES ($1, $2)",
            &[&instance_id, &vpc_id],
        )
        .await
        .map_err(map_conflict("instance vpc", || {
            format!("vpc {vpc_id} is already bound to instance {instance_id}")
        }))?;
        commit(tx).await
    }

    async fn unbind_vpc(&self, instance_id: &str, vpc_id: &str) -> Result<()> {
        let conn = self.conn().await?;
        let n = conn
            .execute(
                "DELETE FROM instance_vpcs WHERE instance_id = $1 AND vpc_id = $2",
                &[&instance_id, &vpc_id],
            )
            .await
            .map_err(map_err("instance vpc"))?;
        expect_one(
            n,
            format!("binding of vpc {vpc_id} to instance {instance_id}"),
        )
    }

    async fn instance_vpcs(&self, instance_id: &str) -> Result<Vec<String>> {
        let conn = self.conn().await?;
        let rows = conn
            .query(
                "SELECT vpc_id FROM instance_vpcs WHERE instance_id = $1 \
                 ORDER BY vpc_id COLLATE \"C\"",
                &[&instance_id],
            )
            .await
            .map_err(map_err("instance vpcs"))?;
        rows.iter().map(|r| get(r, 0, "instance vpcs")).collect()
    }

    async fn replace_instance_vpcs(&self, instance_id: &str, vpc_ids: &[String]) -> Result<()> {
        let mut conn = self.conn().await?;
        let tx = begin(&mut conn).await?;
        // The instance's row lock serialises concurrent replacements of its set.
        if !instance_exists(&tx, instance_id, true).await? {
            return Err(StoreError::NotFound(format!("instance {instance_id}")));
        }
        tx.execute(
            "DELETE FROM instance_vpcs WHERE instance_id = $1",
            &[&instance_id],
        )
        .await
        .map_err(map_err("instance vpcs"))?;
        for vpc_id in vpc_ids {
            // An unknown VPC returns before the commit, so nothing changes.
            if !row_exists(&tx, "vpcs", vpc_id).await? {
                return Err(StoreError::NotFound(format!("vpc {vpc_id}")));
            }
            tx.execute(
                "INSERT INTO instance_vpcs (instance_id, vpc_id) VALUES ($1, $2) \
                 ON CONFLICT (instance_id, vpc_id) DO NOTHING",
                &[&instance_id, vpc_id],
            )
            .await
            .map_err(map_err("instance vpc"))?;
        }
        commit(tx).await
    }

    async fn count_instance_vpcs(&self, instance_id: &str) -> Result<u64> {
        let conn = self.conn().await?;
        let row = conn
            .query_one(
                "SELECT COUNT(*) FROM instance_vpcs WHERE instance_id = $1",
                &[&instance_id],
            )
            .await
            .map_err(map_err("instance vpcs"))?;
        to_u64(get(&row, 0, "instance vpcs")?, "count")
    }

    async fn insert_nonce(
        &self,
        access_key_id: &str,
        nonce: &str,
        expires_at: i64,
    ) -> Result<bool> {
        let conn = self.conn().await?;
        let n = conn
            .execute(
                "INSERT INTO nonces (access_key_id, nonce, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (access_key_id, nonce) DO NOTHING",
                &[&access_key_id, &nonce, &expires_at],
            )
            .await
            .map_err(map_err("nonce"))?;
        Ok(n == 1)
    }

    async fn purge_expired_nonces(&self, now: i64) -> Result<u64> {
        let conn = self.conn().await?;
        conn.execute("DELETE FROM nonces WHERE expires_at <= $1", &[&now])
            .await
            .map_err(map_err("nonces"))
    }

    async fn get_setting(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let conn = self.conn().await?;
        let row = conn
            .query_opt("SELECT value FROM settings WHERE name = $1", &[&name])
            .await
            .map_err(map_err("setting"))?;
        row.map(|r| get(&r, 0, "setting")).transpose()
    }

    async fn insert_setting(&self, name: &str, value: &[u8]) -> Result<bool> {
        let conn = self.conn().await?;
        // A racing insert of the same name waits for the first one's commit, then does
        // nothing: exactly one caller stores its value.
        let n = conn
            .execute(
                "INSERT INTO settings (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &value],
            )
            .await
            .map_err(map_err("setting"))?;
        Ok(n == 1)
    }

    async fn create_key(&self, key: &Key, first: &KeyVersion, key_quota: u64) -> Result<()> {
        keys::create_key(self, key, first, key_quota).await
    }

    async fn get_key(&self, id: &str) -> Result<Key> {
        keys::get_key(self, id).await
    }

    async fn list_keys(&self, filter: &KeyFilter, page: Page) -> Result<PageOf<Key>> {
        keys::list_keys(self, filter, page).await
    }

    async fn update_key(&self, key: &Key) -> Result<Key> {
        keys::update_key(self, key).await
    }

    async fn add_key_version(
        &self,
        key: &Key,
        version: &KeyVersion,
        key_quota: u64,
    ) -> Result<Key> {
        keys::add_key_version(self, key, version, key_quota).await
    }

    async fn get_key_version(&self, key_id: &str, version_id: &str) -> Result<KeyVersion> {
        keys::get_key_version(self, key_id, version_id).await
    }

    async fn find_key_version(&self, version_id: &str) -> Result<KeyVersion> {
        keys::find_key_version(self, version_id).await
    }

    async fn list_key_versions(&self, key_id: &str, page: Page) -> Result<PageOf<KeyVersion>> {
        keys::list_key_versions(self, key_id, page).await
    }

    async fn set_key_material(&self, key: &Key, versions: &[VersionMaterial]) -> Result<Key> {
        keys::set_key_material(self, key, versions).await
    }

    async fn count_instance_key_versions(&self, instance_id: &str) -> Result<u64> {
        keys::count_instance_key_versions(self, instance_id).await
    }

    async fn destroy_due_keys(&self, now: i64, limit: u32) -> Result<Vec<String>> {
        keys::destroy_due_keys(self, now, limit).await
    }

    async fn keys_due_for_rotation(&self, now: i64, limit: u32) -> Result<Vec<Key>> {
        keys::keys_due_for_rotation(self, now, limit).await
    }

    async fn keys_with_expired_material(&self, now: i64, limit: u32) -> Result<Vec<Key>> {
        keys::keys_with_expired_material(self, now, limit).await
    }

    async fn create_alias(&self, alias: &Alias) -> Result<()> {
        keys::create_alias(self, alias).await
    }

    async fn get_alias(&self, name: &str) -> Result<Alias> {
        keys::get_alias(self, name).await
    }

    async fn update_alias(&self, name: &str, key_id: &str, updated_at: i64) -> Result<Alias> {
        keys::update_alias(self, name, key_id, updated_at).await
    }

    async fn delete_alias(&self, name: &str) -> Result<()> {
        keys::delete_alias(self, name).await
    }

    async fn list_aliases(&self, page: Page) -> Result<PageOf<Alias>> {
        keys::list_aliases(self, None, page).await
    }

    async fn list_aliases_by_key(&self, key_id: &str, page: Page) -> Result<PageOf<Alias>> {
        keys::list_aliases(self, Some(key_id), page).await
    }

    async fn create_import_params(&self, params: &ImportParams) -> Result<()> {
        keys::create_import_params(self, params).await
    }

    async fn get_import_params(&self, token: &str) -> Result<ImportParams> {
        keys::get_import_params(self, token).await
    }

    async fn purge_expired_import_params(&self, now: i64) -> Result<u64> {
        keys::purge_expired_import_params(self, now).await
    }
    async fn create_network_rule(&self, rule: &NetworkRule) -> Result<()> {
        access::create_network_rule(self, rule).await
    }

    async fn get_network_rule(&self, name: &str) -> Result<NetworkRule> {
        access::get_network_rule(self, name).await
    }

    async fn list_network_rules(&self, page: Page) -> Result<PageOf<NetworkRule>> {
        access::list_network_rules(self, page).await
    }

    async fn update_network_rule(&self, rule: &NetworkRule) -> Result<()> {
        access::update_network_rule(self, rule).await
    }

    async fn delete_network_rule(&self, name: &str) -> Result<()> {
        access::delete_network_rule(self, name).await
    }

    async fn create_policy(&self, policy: &Policy) -> Result<()> {
        access::create_policy(self, policy).await
    }

    async fn get_policy(&self, name: &str) -> Result<Policy> {
        access::get_policy(self, name).await
    }

    async fn list_policies(&self, page: Page) -> Result<PageOf<Policy>> {
        access::list_policies(self, page).await
    }

    async fn update_policy(&self, policy: &Policy) -> Result<()> {
        access::update_policy(self, policy).await
    }

    async fn delete_policy(&self, name: &str) -> Result<()> {
        access::delete_policy(self, name).await
    }

    async fn create_access_point(&self, point: &AccessPoint) -> Result<()> {
        access::create_access_point(self, point).await
    }

    async fn get_access_point(&self, name: &str) -> Result<AccessPoint> {
        access::get_access_point(self, name).await
    }

    async fn list_access_points(&self, page: Page) -> Result<PageOf<AccessPoint>> {
        access::list_access_points(self, page).await
    }

    async fn update_access_point(&self, point: &AccessPoint) -> Result<()> {
        access::update_access_point(self, point).await
    }

    async fn delete_access_point(&self, name: &str) -> Result<()> {
        access::delete_access_point(self, name).await
    }

    async fn instance_port(&self, instance_id: &str, range: RangeInclusive<u16>) -> Result<u16> {
        instance_port(self, instance_id, range).await
    }

    async fn create_client_key(&self, key: &ClientKey, max_per_aap: u32) -> Result<()> {
        access::create_client_key(self, key, max_per_aap).await
    }

    async fn get_client_key(&self, id: &str) -> Result<ClientKey> {
        access::get_client_key(self, id).await
    }

    async fn list_client_keys(&self, aap_name: &str) -> Result<Vec<ClientKey>> {
        access::list_client_keys(self, aap_name).await
    }

    async fn delete_client_key(&self, id: &str) -> Result<()> {
        access::delete_client_key(self, id).await
    }

    async fn access_snapshot(&self, client_key_id: &str) -> Result<Option<AccessSnapshot>> {
        access::access_snapshot(self, client_key_id).await
    }

    async fn create_secret(
        &self,
        secret: &Secret,
        first: &SecretVersion,
        quota: u64,
    ) -> Result<()> {
        secrets::create_secret(self, secret, first, quota).await
    }

    async fn get_secret(&self, name: &str) -> Result<Secret> {
        secrets::get_secret(self, name).await
    }

    async fn list_secrets(&self, filter: &SecretFilter, page: Page) -> Result<PageOf<Secret>> {
        secrets::list_secrets(self, filter, page).await
    }

    async fn update_secret(&self, secret: &Secret) -> Result<Secret> {
        secrets::update_secret(self, secret).await
    }

    async fn write_secret_versions(
        &self,
        secret: &Secret,
        new_version: Option<&SecretVersion>,
        stages: &[StageOn],
        max_versions: u32,
    ) -> Result<Secret> {
        secrets::write_secret_versions(self, secret, new_version, stages, max_versions).await
    }

    async fn get_secret_version(&self, name: &str, version_id: &str) -> Result<SecretVersion> {
        secrets::get_secret_version(self, name, version_id).await
    }

    async fn get_secret_version_by_stage(&self, name: &str, stage: &str) -> Result<SecretVersion> {
        secrets::get_secret_version_by_stage(self, name, stage).await
    }

    async fn list_secret_versions(&self, name: &str) -> Result<Vec<SecretVersion>> {
        secrets::list_secret_versions(self, name).await
    }

    async fn delete_secret(&self, name: &str) -> Result<()> {
        secrets::delete_secret(self, name).await
    }

    async fn destroy_due_secrets(&self, now: i64, limit: u32) -> Result<Vec<String>> {
        secrets::destroy_due_secrets(self, now, limit).await
    }

    async fn count_instance_secrets(&self, instance_id: &str) -> Result<u64> {
        secrets::count_instance_secrets(self, instance_id).await
    }

    async fn count_key_secrets(&self, key_id: &str) -> Result<u64> {
        secrets::count_key_secrets(self, key_id).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn blob_becomes_bytea_as_a_whole_word_only() {
        assert_eq!(
            postgres_sql("a BLOB NOT NULL, b blob, c BLOBS, d blob_id, e xBLOB, f BLOB;"),
            "a BYTEA NOT NULL, b BYTEA, c BLOBS, d blob_id, e xBLOB, f BYTEA;"
        );
        for m in MIGRATIONS {
            assert!(!postgres_sql(m.sql).contains("BLOB"), "{}", m.name);
        }
    }

    #[test]
    fn no_column_is_named_blob() {
        // The rewrite above would turn such a column's name into `BYTEA` on PostgreSQL
        // only, and the back ends' SQL would then disagree about it.
        for m in MIGRATIONS {
            for line in m.sql.lines() {
                let first = line.split_whitespace().next().unwrap_or("");
                assert!(!first.eq_ignore_ascii_case("blob"), "{}: {line}", m.name);
            }
        }
    }

    #[tokio::test]
    async fn debug_never_shows_the_password() {
        let s = PostgresStore::with_pool("postgres://kms:hunter2-secret@db.example:5433/strong")
            .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("kms@db.example:5433/strong"), "{shown}");
    }

    #[test]
    fn other_schemes_are_refused() {
        assert!(matches!(
            PostgresStore::with_pool("mysql://u:p@h/db"),
            Err(StoreError::Backend(_))
        ));
        assert!(PostgresStore::with_pool("postgresql://u:p@h:1/db").is_ok());
    }
}
