//! Keys, key versions, aliases and import parameters on SQLite.
//!
//! Every function runs on a connection the caller holds: writes inside
//! [`SqliteStore::tx`](super::SqliteStore), whose `BEGIN IMMEDIATE` takes the database's
//! write lock first, so a check and the write it guards (the key quota, a key's version)
//! cannot interleave with another writer.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{expect_one, instance_exists, map_err, to_u64};
use crate::key_sql::{KEY_COLS, key_where};
use crate::listing::Listing;
use crate::tag_sql::KEY_TAGS;
use crate::{
    Alias, ImportParams, Key, KeyFilter, KeyState, KeyVersion, Page, PageOf, Result, StoreError,
    VersionMaterial,
};

/// Decodes a row of [`KEY_COLS`] (without tags); the inner error is an unknown state.
fn key_row(r: &Row<'_>) -> rusqlite::Result<Result<Key>> {
    let state = match KeyState::parse(&r.get::<_, String>(9)?) {
        Ok(state) => state,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(Key {
        id: r.get(0)?,
        instance_id: r.get(1)?,
        spec: r.get(2)?,
        usage: r.get(3)?,
        additional_usage: r.get(4)?,
        origin: r.get(5)?,
        protection_level: r.get(6)?,
        description: r.get(7)?,
        creator: r.get(8)?,
        state,
        created_at: r.get(10)?,
        delete_date: r.get(11)?,
        deletion_protection: r.get(12)?,
        deletion_protection_description: r.get(13)?,
        automatic_rotation: r.get(14)?,
        rotation_interval_secs: r.get(15)?,
        last_rotation: r.get(16)?,
        next_rotation: r.get(17)?,
        primary_version: r.get(18)?,
        material_expires_at: r.get(19)?,
        tags: Vec::new(),
        updated_at: r.get(20)?,
        version: r.get(21)?,
    }))
}

/// Runs a query of [`KEY_COLS`] and attaches each key's tags.
fn query_keys(c: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Key>> {
    let mut stmt = c.prepare(sql).map_err(map_err("keys"))?;
    let keys: Vec<Result<Key>> = stmt
        .query_map(args, key_row)
        .and_then(Iterator::collect)
        .map_err(map_err("keys"))?;
    keys.into_iter()
        .map(|k| {
            let mut k = k?;
            k.tags = super::tags::load(c, &KEY_TAGS, &k.id)?;
            Ok(k)
        })
        .collect()
}

pub(super) fn get_key(c: &Connection, id: &str) -> Result<Key> {
    query_keys(
        c,
        &format!("SELECT {KEY_COLS} FROM keys k WHERE k.id = ?1"),
        [id],
    )?
    .pop()
    .ok_or_else(|| StoreError::NotFound(format!("key {id}")))
}

fn key_exists(c: &Connection, id: &str) -> Result<bool> {
    c.query_row("SELECT 1 FROM keys WHERE id = ?1", [id], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
        .map_err(map_err("key"))
}

/// [`StoreError::QuotaExceeded`] if the instance already holds `key_quota` versions.
fn check_quota(c: &Connection, instance_id: &str, key_quota: u64) -> Result<()> {
    let held = count_instance_key_versions(c, instance_id)?;
    if held >= key_quota {
        return Err(StoreError::QuotaExceeded(format!(
            "instance {instance_id} holds {held} key versions, its quota is {key_quota}"
        )));
    }
    Ok(())
}

/// Inserts a version of `key_id`; `instance_id` is the key's instance (what the quota
/// counts).
fn insert_version(c: &Connection, key_id: &str, instance_id: &str, v: &KeyVersion) -> Result<()> {
    c.execute(
        "INSERT INTO key_versions \
         (key_id, version_id, position, instance_id, created_at, sealed_blob, public_key) \
         VALUES (?1, ?2, \
         (SELECT COALESCE(MAX(position), 0) + 1 FROM key_versions WHERE key_id = ?1), \
         ?3, ?4, ?5, ?6)",
        params![
            key_id,
            v.version_id,
            instance_id,
            v.created_at,
            v.blob,
            v.public_key
        ],
    )
    .map_err(|e| match map_err("key version")(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("key version {} exists", v.version_id))
        }
        other => other,
    })?;
    Ok(())
}

pub(super) fn create_key(
    c: &Connection,
    k: &Key,
    first: &KeyVersion,
    key_quota: u64,
) -> Result<()> {
    if !instance_exists(c, &k.instance_id)? {
        return Err(StoreError::NotFound(format!("instance {}", k.instance_id)));
    }
    check_quota(c, &k.instance_id, key_quota)?;
    c.execute(
        &format!(
            "INSERT INTO keys ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
             ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
            KEY_COLS.replace("k.", "")
        ),
        params![
            k.id,
            k.instance_id,
            k.spec,
            k.usage,
            k.additional_usage,
            k.origin,
            k.protection_level,
            k.description,
            k.creator,
            k.state.as_str(),
            k.created_at,
            k.delete_date,
            k.deletion_protection,
            k.deletion_protection_description,
            k.automatic_rotation,
            k.rotation_interval_secs,
            k.last_rotation,
            k.next_rotation,
            k.primary_version,
            k.material_expires_at,
            k.updated_at,
            k.version,
        ],
    )
    .map_err(|e| match map_err("key")(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("key {} exists", k.id)),
        other => other,
    })?;
    super::tags::store(c, &KEY_TAGS, &k.id, &k.tags)?;
    insert_version(c, &k.id, &k.instance_id, first)
}

pub(super) fn list_keys(c: &Connection, filter: &KeyFilter, page: Page) -> Result<PageOf<Key>> {
    let w = key_where(filter, |n| format!("?{n}"));
    let list = Listing {
        cols: KEY_COLS,
        from: "keys k",
        where_sql: &w.sql,
        order: "k.created_at, k.id",
        args: w.args.len(),
        what: "keys",
    };
    super::listing::page(c, &list, &w.args, page, query_keys)
}

/// The compare-and-set of [`crate::Store::update_key`]: writes the mutable fields and
/// tags if the stored version is `k.version`. Returns the key's instance.
fn cas_update(c: &Connection, k: &Key) -> Result<String> {
    let instance_id = c
        .query_row(
            "UPDATE keys SET additional_usage = ?1, protection_level = ?2, description = ?3, \
             state = ?4, delete_date = ?5, deletion_protection = ?6, \
             deletion_protection_description = ?7, automatic_rotation = ?8, \
             rotation_interval_secs = ?9, last_rotation = ?10, next_rotation = ?11, \
             primary_version = ?12, material_expires_at = ?13, updated_at = ?14, \
             version = version + 1 WHERE id = ?15 AND version = ?16 RETURNING instance_id",
            params![
                k.additional_usage,
                k.protection_level,
                k.description,
                k.state.as_str(),
                k.delete_date,
                k.deletion_protection,
                k.deletion_protection_description,
                k.automatic_rotation,
                k.rotation_interval_secs,
                k.last_rotation,
                k.next_rotation,
                k.primary_version,
                k.material_expires_at,
                k.updated_at,
                k.id,
                k.version,
            ],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(map_err("key"))?;
    let Some(instance_id) = instance_id else {
        return Err(if key_exists(c, &k.id)? {
            StoreError::Conflict(format!("key {} version {} is stale", k.id, k.version))
        } else {
            StoreError::NotFound(format!("key {}", k.id))
        });
    };
    super::tags::store(c, &KEY_TAGS, &k.id, &k.tags)?;
    Ok(instance_id)
}

pub(super) fn update_key(c: &Connection, k: &Key) -> Result<Key> {
    cas_update(c, k)?;
    get_key(c, &k.id)
}

pub(super) fn add_key_version(
    c: &Connection,
    k: &Key,
    v: &KeyVersion,
    key_quota: u64,
) -> Result<Key> {
    // The stored instance, not the caller's copy, is what the quota counts.
    let instance_id = cas_update(c, k)?;
    check_quota(c, &instance_id, key_quota)?;
    insert_version(c, &k.id, &instance_id, v)?;
    get_key(c, &k.id)
}

const VERSION_COLS: &str = "key_id, version_id, created_at, sealed_blob, public_key";

fn version_row(r: &Row<'_>) -> rusqlite::Result<KeyVersion> {
    Ok(KeyVersion {
        key_id: r.get(0)?,
        version_id: r.get(1)?,
        created_at: r.get(2)?,
        blob: r.get(3)?,
        public_key: r.get(4)?,
    })
}

pub(super) fn get_key_version(
    c: &Connection,
    key_id: &str,
    version_id: &str,
) -> Result<KeyVersion> {
    c.query_row(
        &format!("SELECT {VERSION_COLS} FROM key_versions WHERE key_id = ?1 AND version_id = ?2"),
        [key_id, version_id],
        version_row,
    )
    .optional()
    .map_err(map_err("key version"))?
    .ok_or_else(|| StoreError::NotFound(format!("version {version_id} of key {key_id}")))
}

pub(super) fn find_key_version(c: &Connection, version_id: &str) -> Result<KeyVersion> {
    c.query_row(
        &format!("SELECT {VERSION_COLS} FROM key_versions WHERE version_id = ?1"),
        [version_id],
        version_row,
    )
    .optional()
    .map_err(map_err("key version"))?
    .ok_or_else(|| StoreError::NotFound(format!("key version {version_id}")))
}

pub(super) fn list_key_versions(
    c: &Connection,
    key_id: &str,
    page: Page,
) -> Result<PageOf<KeyVersion>> {
    let (limit, offset) = page.limit_offset();
    let mut stmt = c
        .prepare(&format!(
            "SELECT {VERSION_COLS} FROM key_versions WHERE key_id = ?1 \
             ORDER BY position LIMIT ?2 OFFSET ?3"
        ))
        .map_err(map_err("key versions"))?;
    let items = stmt
        .query_map(params![key_id, limit, offset], version_row)
        .and_then(Iterator::collect)
        .map_err(map_err("key versions"))?;
    let total: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM key_versions WHERE key_id = ?1",
            [key_id],
            |r| r.get(0),
        )
        .map_err(map_err("key versions"))?;
    Ok(PageOf {
        items,
        total: to_u64(total, "count")?,
    })
}

pub(super) fn set_key_material(
    c: &Connection,
    k: &Key,
    versions: &[VersionMaterial],
) -> Result<Key> {
    cas_update(c, k)?;
    for v in versions {
        let (blob, public_key) = match &v.blob {
            Some((blob, public_key)) => (Some(blob), public_key.as_ref()),
            None => (None, None),
        };
        let n = c
            .execute(
                "UPDATE key_versions SET sealed_blob = ?1, public_key = COALESCE(?2, public_key) \
                 WHERE key_id = ?3 AND version_id = ?4",
                params![blob, public_key, k.id, v.version_id],
            )
            .map_err(map_err("key version"))?;
        // Returning before the commit rolls back the key update too.
        expect_one(n, &format!("version {} of key {}", v.version_id, k.id))?;
    }
    get_key(c, &k.id)
}

pub(super) fn count_instance_key_versions(c: &Connection, instance_id: &str) -> Result<u64> {
    let n: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM key_versions WHERE instance_id = ?1",
            [instance_id],
            |r| r.get(0),
        )
        .map_err(map_err("key versions"))?;
    to_u64(n, "count")
}

/// One statement inside the caller's write transaction: no other writer runs between
/// choosing the keys and deleting them, so each destroyed id is reported once. The
/// foreign keys cascade to versions, tags, aliases and import parameters. A key that still
/// encrypts a secret is left alone.
pub(super) fn destroy_due_keys(c: &Connection, now: i64, limit: u32) -> Result<Vec<String>> {
    let mut stmt = c
        .prepare(
            "DELETE FROM keys WHERE id IN (SELECT id FROM keys \
             WHERE state = ?1 AND delete_date <= ?2 \
             AND NOT EXISTS (SELECT 1 FROM secrets s WHERE s.encryption_key_id = keys.id) \
             ORDER BY delete_date, id LIMIT ?3) \
             RETURNING id",
        )
        .map_err(map_err("keys"))?;
    let mut ids: Vec<String> = stmt
        .query_map(
            params![KeyState::PendingDeletion.as_str(), now, limit],
            |r| r.get(0),
        )
        .and_then(Iterator::collect)
        .map_err(map_err("keys"))?;
    ids.sort();
    Ok(ids)
}

pub(super) fn keys_due_for_rotation(c: &Connection, now: i64, limit: u32) -> Result<Vec<Key>> {
    query_keys(
        c,
        &format!(
            "SELECT {KEY_COLS} FROM keys k WHERE k.automatic_rotation AND k.state = ?1 \
             AND k.next_rotation <= ?2 ORDER BY k.next_rotation, k.id LIMIT ?3"
        ),
        params![KeyState::Enabled.as_str(), now, limit],
    )
}

pub(super) fn keys_with_expired_material(c: &Connection, now: i64, limit: u32) -> Result<Vec<Key>> {
    query_keys(
        c,
        &format!(
            "SELECT {KEY_COLS} FROM keys k WHERE k.material_expires_at <= ?1 \
             AND (k.state IN (?2, ?3) OR (k.state = ?4 AND EXISTS (SELECT 1 FROM key_versions v \
             WHERE v.key_id = k.id AND v.sealed_blob IS NOT NULL))) \
             ORDER BY k.material_expires_at, k.id LIMIT ?5"
        ),
        params![
            now,
            KeyState::Enabled.as_str(),
            KeyState::Disabled.as_str(),
            KeyState::PendingDeletion.as_str(),
            limit
        ],
    )
}

/// Deletes an instance's keys (cascading to everything that hangs off them).
pub(super) fn delete_instance_keys(c: &Connection, instance_id: &str) -> Result<()> {
    c.execute("DELETE FROM keys WHERE instance_id = ?1", [instance_id])
        .map_err(map_err("keys"))?;
    Ok(())
}

// ---- aliases ----

const ALIAS_COLS: &str = "name, key_id, created_at, updated_at";

fn alias_row(r: &Row<'_>) -> rusqlite::Result<Alias> {
    Ok(Alias {
        name: r.get(0)?,
        key_id: r.get(1)?,
        created_at: r.get(2)?,
        updated_at: r.get(3)?,
    })
}

pub(super) fn create_alias(c: &Connection, a: &Alias) -> Result<()> {
    if !key_exists(c, &a.key_id)? {
        return Err(StoreError::NotFound(format!("key {}", a.key_id)));
    }
    c.execute(
        &format!("INSERT INTO aliases ({ALIAS_COLS}) VALUES (?1, ?2, ?3, ?4)"),
        params![a.name, a.key_id, a.created_at, a.updated_at],
    )
    .map_err(|e| match map_err("alias")(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("alias {} exists", a.name)),
        other => other,
    })?;
    Ok(())
}

pub(super) fn get_alias(c: &Connection, name: &str) -> Result<Alias> {
    c.query_row(
        &format!("SELECT {ALIAS_COLS} FROM aliases WHERE name = ?1"),
        [name],
        alias_row,
    )
    .optional()
    .map_err(map_err("alias"))?
    .ok_or_else(|| StoreError::NotFound(format!("alias {name}")))
}

pub(super) fn update_alias(
    c: &Connection,
    name: &str,
    key_id: &str,
    updated_at: i64,
) -> Result<Alias> {
    if !key_exists(c, key_id)? {
        return Err(StoreError::NotFound(format!("key {key_id}")));
    }
    c.query_row(
        &format!(
            "UPDATE aliases SET key_id = ?1, updated_at = ?2 WHERE name = ?3 \
             RETURNING {ALIAS_COLS}"
        ),
        params![key_id, updated_at, name],
        alias_row,
    )
    .optional()
    .map_err(map_err("alias"))?
    .ok_or_else(|| StoreError::NotFound(format!("alias {name}")))
}

pub(super) fn delete_alias(c: &Connection, name: &str) -> Result<()> {
    let n = c
        .execute("DELETE FROM aliases WHERE name = ?1", [name])
        .map_err(map_err("alias"))?;
    expect_one(n, &format!("alias {name}"))
}

/// Aliases ordered by name: all of them, or one key's.
pub(super) fn list_aliases(
    c: &Connection,
    key_id: Option<&str>,
    page: Page,
) -> Result<PageOf<Alias>> {
    let (limit, offset) = page.limit_offset();
    // `?1 IS NULL` keeps one statement for both cases.
    let mut stmt = c
        .prepare(&format!(
            "SELECT {ALIAS_COLS} FROM aliases WHERE ?1 IS NULL OR key_id = ?1 \
             ORDER BY name LIMIT ?2 OFFSET ?3"
        ))
        .map_err(map_err("aliases"))?;
    let items = stmt
        .query_map(params![key_id, limit, offset], alias_row)
        .and_then(Iterator::collect)
        .map_err(map_err("aliases"))?;
    let total: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM aliases WHERE ?1 IS NULL OR key_id = ?1",
            [key_id],
            |r| r.get(0),
        )
        .map_err(map_err("aliases"))?;
    Ok(PageOf {
        items,
        total: to_u64(total, "count")?,
    })
}

// ---- import parameters ----

const IMPORT_COLS: &str = "token, key_id, wrapping_key_spec, wrapping_algorithm, wrapping_blob, \
    public_key, created_at, expires_at";

pub(super) fn create_import_params(c: &Connection, p: &ImportParams) -> Result<()> {
    if !key_exists(c, &p.key_id)? {
        return Err(StoreError::NotFound(format!("key {}", p.key_id)));
    }
    c.execute(
        &format!(
            "INSERT INTO import_params ({IMPORT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ),
        params![
            p.token,
            p.key_id,
            p.wrapping_key_spec,
            p.wrapping_algorithm,
            p.wrapping_blob,
            p.public_key,
            p.created_at,
            p.expires_at
        ],
    )
    .map_err(|e| match map_err("import parameters")(e) {
        StoreError::Conflict(_) => StoreError::Conflict("import token exists".to_owned()),
        other => other,
    })?;
    Ok(())
}

pub(super) fn get_import_params(c: &Connection, token: &str) -> Result<ImportParams> {
    c.query_row(
        &format!("SELECT {IMPORT_COLS} FROM import_params WHERE token = ?1"),
        [token],
        |r| {
            Ok(ImportParams {
                token: r.get(0)?,
                key_id: r.get(1)?,
                wrapping_key_spec: r.get(2)?,
                wrapping_algorithm: r.get(3)?,
                wrapping_blob: r.get(4)?,
                public_key: r.get(5)?,
                created_at: r.get(6)?,
                expires_at: r.get(7)?,
            })
        },
    )
    .optional()
    .map_err(map_err("import parameters"))?
    .ok_or_else(|| StoreError::NotFound("import parameters for that token".to_owned()))
}

pub(super) fn purge_expired_import_params(c: &Connection, now: i64) -> Result<u64> {
    let n = c
        .execute("DELETE FROM import_params WHERE expires_at <= ?1", [now])
        .map_err(map_err("import parameters"))?;
    u64::try_from(n).map_err(super::backend)
}
