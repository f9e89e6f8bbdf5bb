//! Keys, key versions, aliases and import parameters on PostgreSQL.
//!
//! Several nodes share the database, so every check that guards a write happens in the
//! write's transaction under a row lock:
//!
//! - the key quota: the instance row is locked (`FOR UPDATE`) before its versions are
//!   counted, so two nodes racing for the last unit take turns and the second one counts
//!   the first one's version;
//! - a key's version (compare-and-set): one `UPDATE … WHERE version = $n`, which
//!   PostgreSQL re-checks on the newest row after waiting for a concurrent writer;
//! - the key an alias or import parameters name: key-share locked until the insert
//!   commits, so it cannot be destroyed in between.
//!
//! Locks are always taken instance first, then key, as in `delete_instance`, so these
//! transactions cannot deadlock one another.

use tokio_postgres::{GenericClient, Row};

use super::{
    Param, PostgresStore, begin, commit, counted_page, expect_one, get, get_one, map_conflict,
    map_err, page_params, row_exists, snapshot, to_u64,
};
use crate::key_sql::{KEY_COLS, key_where};
use crate::listing::Listing;
use crate::tag_sql::KEY_TAGS;
use crate::{
    Alias, ImportParams, Key, KeyFilter, KeyState, KeyVersion, Page, PageOf, Result, StoreError,
    VersionMaterial,
};

/// Decodes a row of [`KEY_COLS`] (without tags).
fn key_from(r: &Row) -> Result<Key> {
    const W: &str = "key";
    Ok(Key {
        id: get(r, 0, W)?,
        instance_id: get(r, 1, W)?,
        spec: get(r, 2, W)?,
        usage: get(r, 3, W)?,
        additional_usage: get(r, 4, W)?,
        origin: get(r, 5, W)?,
        protection_level: get(r, 6, W)?,
        description: get(r, 7, W)?,
        creator: get(r, 8, W)?,
        state: KeyState::parse(get(r, 9, W)?)?,
        created_at: get(r, 10, W)?,
        delete_date: get(r, 11, W)?,
        deletion_protection: get(r, 12, W)?,
        deletion_protection_description: get(r, 13, W)?,
        automatic_rotation: get(r, 14, W)?,
        rotation_interval_secs: get(r, 15, W)?,
        last_rotation: get(r, 16, W)?,
        next_rotation: get(r, 17, W)?,
        primary_version: get(r, 18, W)?,
        material_expires_at: get(r, 19, W)?,
        tags: Vec::new(),
        updated_at: get(r, 20, W)?,
        version: get(r, 21, W)?,
    })
}

/// Runs a query of [`KEY_COLS`] and attaches the keys' tags (one more query for all).
async fn query_keys(
    c: &(impl GenericClient + Sync),
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<Key>> {
    let rows = c.query(sql, params).await.map_err(map_err("keys"))?;
    let mut keys = rows.iter().map(key_from).collect::<Result<Vec<_>>>()?;
    if keys.is_empty() {
        return Ok(keys);
    }
    let owners: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
    let mut tags = super::tags::load_all(c, &KEY_TAGS, &owners).await?;
    for k in &mut keys {
        k.tags = tags.remove(&k.id).unwrap_or_default();
    }
    Ok(keys)
}

async fn load_key(c: &(impl GenericClient + Sync), id: &str) -> Result<Key> {
    query_keys(
        c,
        &format!("SELECT {KEY_COLS} FROM keys k WHERE k.id = $1"),
        &[&id],
    )
    .await?
    .pop()
    .ok_or_else(|| StoreError::NotFound(format!("key {id}")))
}

/// Locks the instance row until the transaction ends; [`StoreError::NotFound`] if absent.
async fn lock_instance(c: &(impl GenericClient + Sync), instance_id: &str) -> Result<()> {
    c.query_opt(
        "SELECT 1 FROM instances WHERE id = $1 FOR UPDATE",
        &[&instance_id],
    )
    .await
    .map_err(map_err("instance"))?
    .map(drop)
    .ok_or_else(|| StoreError::NotFound(format!("instance {instance_id}")))
}

/// [`StoreError::QuotaExceeded`] if the instance already holds `key_quota` versions; the
/// caller holds the instance's row lock.
async fn check_quota(
    c: &(impl GenericClient + Sync),
    instance_id: &str,
    key_quota: u64,
) -> Result<()> {
    let held = count_versions(c, instance_id).await?;
    if held >= key_quota {
        return Err(StoreError::QuotaExceeded(format!(
            "instance {instance_id} holds {held} key versions, its quota is {key_quota}"
        )));
    }
    Ok(())
}

async fn count_versions(c: &(impl GenericClient + Sync), instance_id: &str) -> Result<u64> {
    let row = c
        .query_one(
            "SELECT COUNT(*) FROM key_versions WHERE instance_id = $1",
            &[&instance_id],
        )
        .await
        .map_err(map_err("key versions"))?;
    to_u64(get(&row, 0, "key versions")?, "count")
}

/// Inserts a version of `key_id`; `instance_id` is the key's instance (what the quota
/// counts).
async fn insert_version(
    c: &(impl GenericClient + Sync),
    key_id: &str,
    instance_id: &str,
    v: &KeyVersion,
) -> Result<()> {
    c.execute(
        "INSERT INTO key_versions \
         (key_id, version_id, position, instance_id, created_at, sealed_blob, public_key) \
         VALUES ($1, $2, \
         (SELECT COALESCE(MAX(position), 0) + 1 FROM key_versions WHERE key_id = $1), \
         $3, $4, $5, $6)",
        &[
            &key_id,
            &v.version_id,
            &instance_id,
            &v.created_at,
            &v.blob,
            &v.public_key,
        ],
    )
    .await
    .map_err(map_conflict("key version", || {
        format!("key version {} exists", v.version_id)
    }))?;
    Ok(())
}

/// The compare-and-set of [`crate::Store::update_key`]: writes the mutable fields and
/// tags if the stored version is `k.version`. Returns the key's instance.
async fn cas_update(c: &(impl GenericClient + Sync), k: &Key) -> Result<String> {
    let row = c
        .query_opt(
            "UPDATE keys SET additional_usage = $1, protection_level = $2, description = $3, \
             state = $4, delete_date = $5, deletion_protection = $6, \
             deletion_protection_description = $7, automatic_rotation = $8, \
             rotation_interval_secs = $9, last_rotation = $10, next_rotation = $11, \
             primary_version = $12, material_expires_at = $13, updated_at = $14, \
             version = version + 1 WHERE id = $15 AND version = $16 RETURNING instance_id",
            &[
                &k.additional_usage,
                &k.protection_level,
                &k.description,
                &k.state.as_str(),
                &k.delete_date,
                &k.deletion_protection,
                &k.deletion_protection_description,
                &k.automatic_rotation,
                &k.rotation_interval_secs,
                &k.last_rotation,
                &k.next_rotation,
                &k.primary_version,
                &k.material_expires_at,
                &k.updated_at,
                &k.id,
                &k.version,
            ],
        )
        .await
        .map_err(map_err("key"))?;
    let Some(row) = row else {
        let exists = c
            .query_opt("SELECT 1 FROM keys WHERE id = $1", &[&k.id])
            .await
            .map_err(map_err("key"))?
            .is_some();
        return Err(if exists {
            StoreError::Conflict(format!("key {} version {} is stale", k.id, k.version))
        } else {
            StoreError::NotFound(format!("key {}", k.id))
        });
    };
    super::tags::store(c, &KEY_TAGS, &k.id, &k.tags).await?;
    get(&row, 0, "key")
}

pub(super) async fn create_key(
    s: &PostgresStore,
    k: &Key,
    first: &KeyVersion,
    key_quota: u64,
) -> Result<()> {
    let mut conn = s.conn().await?;
    let tx = begin(&mut conn).await?;
    lock_instance(&tx, &k.instance_id).await?;
    check_quota(&tx, &k.instance_id, key_quota).await?;
    let insert = format!(
        "INSERT INTO keys ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16, $17, $18, $19, $20, $21, $22)",
        KEY_COLS.replace("k.", "")
    );
    let params: [Param<'_>; 22] = [
        &k.id,
        &k.instance_id,
        &k.spec,
        &k.usage,
        &k.additional_usage,
        &k.origin,
        &k.protection_level,
        &k.description,
        &k.creator,
        &k.state.as_str(),
        &k.created_at,
        &k.delete_date,
        &k.deletion_protection,
        &k.deletion_protection_description,
        &k.automatic_rotation,
        &k.rotation_interval_secs,
        &k.last_rotation,
        &k.next_rotation,
        &k.primary_version,
        &k.material_expires_at,
        &k.updated_at,
        &k.version,
    ];
    tx.execute(&insert, &params)
        .await
        .map_err(map_conflict("key", || format!("key {} exists", k.id)))?;
    super::tags::store(&tx, &KEY_TAGS, &k.id, &k.tags).await?;
    insert_version(&tx, &k.id, &k.instance_id, first).await?;
    commit(tx).await
}

pub(super) async fn get_key(s: &PostgresStore, id: &str) -> Result<Key> {
    let mut conn = s.conn().await?;
    let tx = snapshot(&mut conn).await?;
    let key = load_key(&tx, id).await?;
    commit(tx).await?;
    Ok(key)
}

pub(super) async fn list_keys(
    s: &PostgresStore,
    filter: &KeyFilter,
    page: Page,
) -> Result<PageOf<Key>> {
    let w = key_where(filter, |n| format!("${n}"));
    let list = Listing {
        cols: KEY_COLS,
        from: "keys k",
        where_sql: &w.sql,
        order: "k.created_at, k.id COLLATE \"C\"",
        args: w.args.len(),
        what: "keys",
    };
    let limit_offset = page_params(page);
    let mut conn = s.conn().await?;
    let tx = snapshot(&mut conn).await?;
    let (total, params, sql) = counted_page(&tx, &list, &w.args, &limit_offset).await?;
    let items = query_keys(&tx, &sql, &params).await?;
    commit(tx).await?;
    Ok(PageOf { items, total })
}

pub(super) async fn update_key(s: &PostgresStore, k: &Key) -> Result<Key> {
    let mut conn = s.conn().await?;
    let tx = begin(&mut conn).await?;
    cas_update(&tx, k).await?;
    let key = load_key(&tx, &k.id).await?;
    commit(tx).await?;
    Ok(key)
}

pub(super) async fn add_key_version(
    s: &PostgresStore,
    k: &Key,
    v: &KeyVersion,
    key_quota: u64,
) -> Result<Key> {
    let mut conn = s.conn().await?;
    let tx = begin(&mut conn).await?;
    // The stored instance, not the caller's copy, is what the quota counts; its lock comes
    // before the key's (see the module docs).
    let instance_id: String = match tx
        .query_opt("SELECT instance_id FROM keys WHERE id = $1", &[&k.id])
        .await
        .map_err(map_err("key"))?
    {
        Some(row) => get(&row, 0, "key")?,
        None => return Err(StoreError::NotFound(format!("key {}", k.id))),
    };
    lock_instance(&tx, &instance_id).await?;
    cas_update(&tx, k).await?;
    check_quota(&tx, &instance_id, key_quota).await?;
    insert_version(&tx, &k.id, &instance_id, v).await?;
    let key = load_key(&tx, &k.id).await?;
    commit(tx).await?;
    Ok(key)
}

const VERSION_COLS: &str = "key_id, version_id, created_at, sealed_blob, public_key";

fn version_from(r: &Row) -> Result<KeyVersion> {
    const W: &str = "key version";
    Ok(KeyVersion {
        key_id: get(r, 0, W)?,
        version_id: get(r, 1, W)?,
        created_at: get(r, 2, W)?,
        blob: get(r, 3, W)?,
        public_key: get(r, 4, W)?,
    })
}

pub(super) async fn get_key_version(
    s: &PostgresStore,
    key_id: &str,
    version_id: &str,
) -> Result<KeyVersion> {
    get_one(
        s,
        &format!("SELECT {VERSION_COLS} FROM key_versions WHERE key_id = $1 AND version_id = $2"),
        &[&key_id, &version_id],
        "key version",
        || format!("version {version_id} of key {key_id}"),
        version_from,
    )
    .await
}

pub(super) async fn find_key_version(s: &PostgresStore, version_id: &str) -> Result<KeyVersion> {
    get_one(
        s,
        &format!("SELECT {VERSION_COLS} FROM key_versions WHERE version_id = $1"),
        &[&version_id],
        "key version",
        || format!("key version {version_id}"),
        version_from,
    )
    .await
}

pub(super) async fn list_key_versions(
    s: &PostgresStore,
    key_id: &str,
    page: Page,
) -> Result<PageOf<KeyVersion>> {
    let [limit, offset] = page_params(page);
    let mut conn = s.conn().await?;
    let tx = snapshot(&mut conn).await?;
    let rows = tx
        .query(
            &format!(
                "SELECT {VERSION_COLS} FROM key_versions WHERE key_id = $1 \
                 ORDER BY position LIMIT $2 OFFSET $3"
            ),
            &[&key_id, &limit, &offset],
        )
        .await
        .map_err(map_err("key versions"))?;
    let items = rows.iter().map(version_from).collect::<Result<_>>()?;
    let row = tx
        .query_one(
            "SELECT COUNT(*) FROM key_versions WHERE key_id = $1",
            &[&key_id],
        )
        .await
        .map_err(map_err("key versions"))?;
    let total = to_u64(get(&row, 0, "key versions")?, "count")?;
    commit(tx).await?;
    Ok(PageOf { items, total })
}

pub(super) async fn set_key_material(
    s: &PostgresStore,
    k: &Key,
    versions: &[VersionMaterial],
) -> Result<Key> {
    let mut conn = s.conn().await?;
    let tx = begin(&mut conn).await?;
    cas_update(&tx, k).await?;
    for v in versions {
        let (blob, public_key) = match &v.blob {
            Some((blob, public_key)) => (Some(blob), public_key.as_ref()),
            None => (None, None),
        };
        let n = tx
            .execute(
                "UPDATE key_versions SET sealed_blob = $1, public_key = COALESCE($2, public_key) \
                 WHERE key_id = $3 AND version_id = $4",
                &[&blob, &public_key, &k.id, &v.version_id],
            )
            .await
            .map_err(map_err("key version"))?;
        // Returning before the commit rolls the key update back too.
        expect_one(n, format!("version {} of key {}", v.version_id, k.id))?;
    }
    let key = load_key(&tx, &k.id).await?;
    commit(tx).await?;
    Ok(key)
}

pub(super) async fn count_instance_key_versions(
    s: &PostgresStore,
    instance_id: &str,
) -> Result<u64> {
    let conn = s.conn().await?;
    count_versions(&**conn, instance_id).await
}

pub(super) async fn destroy_due_keys(
    s: &PostgresStore,
    now: i64,
    limit: u32,
) -> Result<Vec<String>> {
    let conn = s.conn().await?;
    // One statement. `SKIP LOCKED` makes a second node running this at the same time pass
    // over the rows the first one has locked, and a row the first one deleted and
    // committed is not returned by the second one's `FOR UPDATE`: each destroyed id is in
    // exactly one answer. The CTE is MATERIALIZED so the locking select runs once. The
    // foreign keys cascade to versions, tags, aliases and import parameters. A key that
    // still encrypts a secret is left alone; one a secret being created names is
    // key-share locked by that transaction, so it is skipped. (Should such a secret commit
    // after this statement's snapshot but before its lock, the secrets' foreign key, which
    // does not cascade, fails the statement rather than orphan the secret.)
    let rows = conn
        .query(
            "WITH due AS MATERIALIZED (SELECT id FROM keys \
             WHERE state = $1 AND delete_date <= $2 \
             AND NOT EXISTS (SELECT 1 FROM secrets s WHERE s.encryption_key_id = keys.id) \
             ORDER BY delete_date, id COLLATE \"C\" \
             LIMIT $3 FOR UPDATE SKIP LOCKED) \
             DELETE FROM keys k USING due WHERE k.id = due.id RETURNING k.id",
            &[&KeyState::PendingDeletion.as_str(), &now, &i64::from(limit)],
        )
        .await
        .map_err(map_err("keys"))?;
    let mut ids = rows
        .iter()
        .map(|r| get(r, 0, "keys"))
        .collect::<Result<Vec<String>>>()?;
    ids.sort();
    Ok(ids)
}

pub(super) async fn keys_due_for_rotation(
    s: &PostgresStore,
    now: i64,
    limit: u32,
) -> Result<Vec<Key>> {
    let mut conn = s.conn().await?;
    let tx = snapshot(&mut conn).await?;
    let keys = query_keys(
        &tx,
        &format!(
            "SELECT {KEY_COLS} FROM keys k WHERE k.automatic_rotation AND k.state = $1 \
             AND k.next_rotation <= $2 ORDER BY k.next_rotation, k.id COLLATE \"C\" LIMIT $3"
        ),
        &[&KeyState::Enabled.as_str(), &now, &i64::from(limit)],
    )
    .await?;
    commit(tx).await?;
    Ok(keys)
}

pub(super) async fn keys_with_expired_material(
    s: &PostgresStore,
    now: i64,
    limit: u32,
) -> Result<Vec<Key>> {
    let mut conn = s.conn().await?;
    let tx = snapshot(&mut conn).await?;
    let keys = query_keys(
        &tx,
        &format!(
            "SELECT {KEY_COLS} FROM keys k WHERE k.material_expires_at <= $1 \
             AND (k.state IN ($2, $3) OR (k.state = $4 AND EXISTS (SELECT 1 FROM key_versions v \
             WHERE v.key_id = k.id AND v.sealed_blob IS NOT NULL))) \
             ORDER BY k.material_expires_at, k.id COLLATE \"C\" LIMIT $5"
        ),
        &[
            &now,
            &KeyState::Enabled.as_str(),
            &KeyState::Disabled.as_str(),
            &KeyState::PendingDeletion.as_str(),
            &i64::from(limit),
        ],
    )
    .await?;
    commit(tx).await?;
    Ok(keys)
}

/// Deletes an instance's keys (cascading to everything that hangs off them); the caller
/// holds the instance's row lock.
pub(super) async fn delete_instance_keys(
    c: &(impl GenericClient + Sync),
    instance_id: &str,
) -> Result<()> {
    c.execute("DELETE FROM keys WHERE instance_id = $1", &[&instance_id])
        .await
        .map_err(map_err("keys"))?;
    Ok(())
}

// ---- aliases ----

const ALIAS_COLS: &str = "name, key_id, created_at, updated_at";

fn alias_from(r: &Row) -> Result<Alias> {
    const W: &str = "alias";
    Ok(Alias {
        name: get(r, 0, W)?,
        key_id: get(r, 1, W)?,
        created_at: get(r, 2, W)?,
        updated_at: get(r, 3, W)?,
    })
}

pub(super) async fn create_alias(s: &PostgresStore, a: &Alias) -> Result<()> {
    let mut conn = s.conn().await?;
    let tx = begin(&mut conn).await?;
    if !row_exists(&tx, "keys", &a.key_id).await? {
        return Err(StoreError::NotFound(format!("key {}", a.key_id)));
    }
    tx.execute(
        &format!("INSERT INTO aliases ({ALIAS_COLS}) VALUES ($1, $2, $3, $4)"),
        &[&a.name, &a.key_id, &a.created_at, &a.updated_at],
    )
    .await
    .map_err(map_conflict("alias", || format!("alias {} exists", a.name)))?;
    commit(tx).await
}

pub(super) async fn get_alias(s: &PostgresStore, name: &str) -> Result<Alias> {
    get_one(
        s,
        &format!("SELECT {ALIAS_COLS} FROM aliases WHERE name = $1"),
        &[&name],
        "alias",
        || format!("alias {name}"),
        alias_from,
    )
    .await
}

pub(super) async fn update_alias(
    s: &PostgresStore,
    name: &str,
    key_id: &str,
    updated_at: i64,
) -> Result<Alias> {
    let mut conn = s.conn().await?;
    let tx = begin(&mut conn).await?;
    if !row_exists(&tx, "keys", key_id).await? {
        return Err(StoreError::NotFound(format!("key {key_id}")));
    }
    let row = tx
        .query_opt(
            &format!(
                "UPDATE aliases SET key_id = $1, updated_at = $2 WHERE name = $3 \
                 RETURNING {ALIAS_COLS}"
            ),
            &[&key_id, &updated_at, &name],
        )
        .await
        .map_err(map_err("alias"))?
        .ok_or_else(|| StoreError::NotFound(format!("alias {name}")))?;
    let alias = alias_from(&row)?;
    commit(tx).await?;
    Ok(alias)
}

pub(super) async fn delete_alias(s: &PostgresStore, name: &str) -> Result<()> {
    let conn = s.conn().await?;
    let n = conn
        .execute("DELETE FROM aliases WHERE name = $1", &[&name])
        .await
        .map_err(map_err("alias"))?;
    expect_one(n, format!("alias {name}"))
}

/// Aliases ordered by name: all of them, or one key's.
pub(super) async fn list_aliases(
    s: &PostgresStore,
    key_id: Option<&str>,
    page: Page,
) -> Result<PageOf<Alias>> {
    let [limit, offset] = page_params(page);
    let mut conn = s.conn().await?;
    let tx = snapshot(&mut conn).await?;
    // `$1 IS NULL` keeps one statement for both cases.
    let rows = tx
        .query(
            &format!(
                "SELECT {ALIAS_COLS} FROM aliases WHERE $1::TEXT IS NULL OR key_id = $1 \
                 ORDER BY name COLLATE \"C\" LIMIT $2 OFFSET $3"
            ),
            &[&key_id, &limit, &offset],
        )
        .await
        .map_err(map_err("aliases"))?;
    let items = rows.iter().map(alias_from).collect::<Result<_>>()?;
    let row = tx
        .query_one(
            "SELECT COUNT(*) FROM aliases WHERE $1::TEXT IS NULL OR key_id = $1",
            &[&key_id],
        )
        .await
        .map_err(map_err("aliases"))?;
    let total = to_u64(get(&row, 0, "aliases")?, "count")?;
    commit(tx).await?;
    Ok(PageOf { items, total })
}

// ---- import parameters ----

const IMPORT_COLS: &str = "token, key_id, wrapping_key_spec, wrapping_algorithm, wrapping_blob, \
    public_key, created_at, expires_at";

pub(super) async fn create_import_params(s: &PostgresStore, p: &ImportParams) -> Result<()> {
    let mut conn = s.conn().await?;
    let tx = begin(&mut conn).await?;
    if !row_exists(&tx, "keys", &p.key_id).await? {
        return Err(StoreError::NotFound(format!("key {}", p.key_id)));
    }
    tx.execute(
        &format!(
            "INSERT INTO import_params ({IMPORT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ),
        &[
            &p.token,
            &p.key_id,
            &p.wrapping_key_spec,
            &p.wrapping_algorithm,
            &p.wrapping_blob,
            &p.public_key,
            &p.created_at,
            &p.expires_at,
        ],
    )
    .await
    .map_err(map_conflict("import parameters", || {
        "import token exists".to_owned()
    }))?;
    commit(tx).await
}

pub(super) async fn get_import_params(s: &PostgresStore, token: &str) -> Result<ImportParams> {
    const W: &str = "import parameters";
    let conn = s.conn().await?;
    let r = conn
        .query_opt(
            &format!("SELECT {IMPORT_COLS} FROM import_params WHERE token = $1"),
            &[&token],
        )
        .await
        .map_err(map_err(W))?
        .ok_or_else(|| StoreError::NotFound("import parameters for that token".to_owned()))?;
    Ok(ImportParams {
        token: get(&r, 0, W)?,
        key_id: get(&r, 1, W)?,
        wrapping_key_spec: get(&r, 2, W)?,
        wrapping_algorithm: get(&r, 3, W)?,
        wrapping_blob: get(&r, 4, W)?,
        public_key: get(&r, 5, W)?,
        created_at: get(&r, 6, W)?,
        expires_at: get(&r, 7, W)?,
    })
}

pub(super) async fn purge_expired_import_params(s: &PostgresStore, now: i64) -> Result<u64> {
    let conn = s.conn().await?;
    conn.execute("DELETE FROM import_params WHERE expires_at <= $1", &[&now])
        .await
        .map_err(map_err("import parameters"))
}
