//! Secrets, their versions and stages on SQLite.
//!
//! Every function runs on a connection the caller holds: writes inside
//! [`SqliteStore::tx`](super::SqliteStore), whose `BEGIN IMMEDIATE` takes the database's
//! write lock first, so a check and the write it guards (the secret quota, a secret's
//! version, the stage map) cannot interleave with another writer.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{expect_one, instance_exists, map_err, to_u64};
use crate::listing::Listing;
use crate::secret_sql::{CURRENT_STAGE, SECRET_COLS, SECRET_VERSION_COLS, secret_where};
use crate::tag_sql::SECRET_TAGS;
use crate::{Page, PageOf, Result, Secret, SecretFilter, SecretVersion, StageOn, StoreError};

fn secret_row(r: &Row<'_>) -> rusqlite::Result<Secret> {
    Ok(Secret {
        name: r.get(0)?,
        instance_id: r.get(1)?,
        secret_type: r.get(2)?,
        encryption_key_id: r.get(3)?,
        description: r.get(4)?,
        extended_config: r.get(5)?,
        tags: Vec::new(),
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        planned_delete_at: r.get(8)?,
        version: r.get(9)?,
    })
}

/// Runs a query of [`SECRET_COLS`] and attaches each secret's tags.
fn query_secrets(c: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Secret>> {
    let mut stmt = c.prepare(sql).map_err(map_err("secrets"))?;
    let secrets: Vec<Secret> = stmt
        .query_map(args, secret_row)
        .and_then(Iterator::collect)
        .map_err(map_err("secrets"))?;
    secrets
        .into_iter()
        .map(|mut s| {
            s.tags = super::tags::load(c, &SECRET_TAGS, &s.name)?;
            Ok(s)
        })
        .collect()
}

fn exists(c: &Connection, sql: &str, args: impl rusqlite::Params, what: &str) -> Result<bool> {
    c.query_row(sql, args, |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
        .map_err(map_err(what))
}

fn secret_exists(c: &Connection, name: &str) -> Result<bool> {
    exists(c, "SELECT 1 FROM secrets WHERE name = ?1", [name], "secret")
}

fn version_exists(c: &Connection, name: &str, version_id: &str) -> Result<bool> {
    exists(
        c,
        "SELECT 1 FROM secret_versions WHERE secret_name = ?1 AND version_id = ?2",
        [name, version_id],
        "secret version",
    )
}

pub(super) fn get_secret(c: &Connection, name: &str) -> Result<Secret> {
    query_secrets(
        c,
        &format!("SELECT {SECRET_COLS} FROM secrets s WHERE s.name = ?1"),
        [name],
    )?
    .pop()
    .ok_or_else(|| StoreError::NotFound(format!("secret {name}")))
}

/// Inserts a version of secret `name` after its others (`seq`); its stages are not
/// written here.
fn insert_version(c: &Connection, name: &str, v: &SecretVersion) -> Result<()> {
    c.execute(
        "INSERT INTO secret_versions \
         (secret_name, version_id, data_type, ciphertext, created_at, seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, \
         (SELECT COALESCE(MAX(seq), 0) + 1 FROM secret_versions WHERE secret_name = ?1))",
        params![name, v.version_id, v.data_type, v.ciphertext, v.created_at],
    )
    .map_err(|e| match map_err("secret version")(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("version {} of secret {name} exists", v.version_id))
        }
        other => other,
    })?;
    Ok(())
}

fn insert_stage(c: &Connection, name: &str, stage: &str, version_id: &str) -> Result<()> {
    if !version_exists(c, name, version_id)? {
        return Err(StoreError::NotFound(format!(
            "version {version_id} of secret {name} (for stage {stage})"
        )));
    }
    c.execute(
        "INSERT INTO secret_stages (secret_name, stage, version_id) VALUES (?1, ?2, ?3)",
        params![name, stage, version_id],
    )
    .map_err(|e| match map_err("secret stage")(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("stage {stage} of secret {name} given twice"))
        }
        other => other,
    })?;
    Ok(())
}

pub(super) fn create_secret(
    c: &Connection,
    s: &Secret,
    first: &SecretVersion,
    secret_quota: u64,
) -> Result<()> {
    if !instance_exists(c, &s.instance_id)? {
        return Err(StoreError::NotFound(format!("instance {}", s.instance_id)));
    }
    let key = &s.encryption_key_id;
    if !exists(c, "SELECT 1 FROM keys WHERE id = ?1", [key], "key")? {
        return Err(StoreError::NotFound(format!("key {key}")));
    }
    let held = count_instance_secrets(c, &s.instance_id)?;
    if held >= secret_quota {
        return Err(StoreError::QuotaExceeded(format!(
            "instance {} holds {held} secrets, its quota is {secret_quota}",
            s.instance_id
        )));
    }
    c.execute(
        &format!(
            "INSERT INTO secrets ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            SECRET_COLS.replace("s.", "")
        ),
        params![
            s.name,
            s.instance_id,
            s.secret_type,
            s.encryption_key_id,
            s.description,
            s.extended_config,
            s.created_at,
            s.updated_at,
            s.planned_delete_at,
            s.version,
        ],
    )
    .map_err(|e| match map_err("secret")(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("secret {} exists", s.name)),
        other => other,
    })?;
    super::tags::store(c, &SECRET_TAGS, &s.name, &s.tags)?;
    insert_version(c, &s.name, first)?;
    insert_stage(c, &s.name, CURRENT_STAGE, &first.version_id)
}

pub(super) fn list_secrets(
    c: &Connection,
    filter: &SecretFilter,
    page: Page,
) -> Result<PageOf<Secret>> {
    let w = secret_where(
        filter,
        |n| format!("?{n}"),
        |h, n| format!("instr({h}, {n}) > 0"),
    );
    let list = Listing {
        cols: SECRET_COLS,
        from: "secrets s",
        where_sql: &w.sql,
        order: "s.created_at, s.name",
        args: w.args.len(),
        what: "secrets",
    };
    super::listing::page(c, &list, &w.args, page, |c, sql, p| {
        query_secrets(c, sql, p)
    })
}

/// The compare-and-set of [`crate::Store::update_secret`]: writes the mutable fields and
/// tags if the stored version is `s.version`.
fn cas_update(c: &Connection, s: &Secret) -> Result<()> {
    let n = c
        .execute(
            "UPDATE secrets SET description = ?1, extended_config = ?2, planned_delete_at = ?3, \
             updated_at = ?4, version = version + 1 WHERE name = ?5 AND version = ?6",
            params![
                s.description,
                s.extended_config,
                s.planned_delete_at,
                s.updated_at,
                s.name,
                s.version
            ],
        )
        .map_err(map_err("secret"))?;
    if n == 0 {
        return Err(if secret_exists(c, &s.name)? {
            StoreError::Conflict(format!("secret {} version {} is stale", s.name, s.version))
        } else {
            StoreError::NotFound(format!("secret {}", s.name))
        });
    }
    super::tags::store(c, &SECRET_TAGS, &s.name, &s.tags)
}

pub(super) fn update_secret(c: &Connection, s: &Secret) -> Result<Secret> {
    cas_update(c, s)?;
    get_secret(c, &s.name)
}

pub(super) fn write_secret_versions(
    c: &Connection,
    s: &Secret,
    new_version: Option<&SecretVersion>,
    stages: &[StageOn],
    max_versions: u32,
) -> Result<Secret> {
    // Any error returns before the caller's commit, which rolls every step back.
    cas_update(c, s)?;
    if let Some(v) = new_version {
        insert_version(c, &s.name, v)?;
    }
    c.execute(
        "DELETE FROM secret_stages WHERE secret_name = ?1",
        [&s.name],
    )
    .map_err(map_err("secret stages"))?;
    for st in stages {
        insert_stage(c, &s.name, &st.stage, &st.version_id)?;
    }
    let held: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM secret_versions WHERE secret_name = ?1",
            [&s.name],
            |r| r.get(0),
        )
        .map_err(map_err("secret versions"))?;
    let excess = held.saturating_sub(i64::from(max_versions));
    if excess > 0 {
        c.execute(
            "DELETE FROM secret_versions WHERE secret_name = ?1 AND version_id IN \
             (SELECT v.version_id FROM secret_versions v WHERE v.secret_name = ?1 \
             AND NOT EXISTS (SELECT 1 FROM secret_stages st WHERE st.secret_name = ?1 \
             AND st.version_id = v.version_id) ORDER BY v.seq LIMIT ?2)",
            params![s.name, excess],
        )
        .map_err(map_err("secret versions"))?;
    }
    get_secret(c, &s.name)
}

/// Reads versions of secret `name` (`filter` selects them by `?2`) in insertion order,
/// with their stages.
fn query_versions(
    c: &Connection,
    name: &str,
    filter: &str,
    arg: Option<&str>,
) -> Result<Vec<SecretVersion>> {
    let mut stmt = c
        .prepare(&format!(
            "SELECT {SECRET_VERSION_COLS} FROM secret_versions \
             WHERE secret_name = ?1 {filter} ORDER BY seq"
        ))
        .map_err(map_err("secret versions"))?;
    let rows = match arg {
        Some(a) => stmt.query_map(params![name, a], version_row),
        None => stmt.query_map(params![name], version_row),
    };
    let mut versions: Vec<SecretVersion> = rows
        .and_then(Iterator::collect)
        .map_err(map_err("secret versions"))?;
    let mut stmt = c
        .prepare_cached(
            "SELECT version_id, stage FROM secret_stages WHERE secret_name = ?1 ORDER BY stage",
        )
        .map_err(map_err("secret stages"))?;
    let stages: Vec<(String, String)> = stmt
        .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(Iterator::collect)
        .map_err(map_err("secret stages"))?;
    for v in &mut versions {
        v.stages = stages
            .iter()
            .filter(|(vid, _)| *vid == v.version_id)
            .map(|(_, stage)| stage.clone())
            .collect();
    }
    Ok(versions)
}

fn version_row(r: &Row<'_>) -> rusqlite::Result<SecretVersion> {
    Ok(SecretVersion {
        secret_name: r.get(0)?,
        version_id: r.get(1)?,
        data_type: r.get(2)?,
        ciphertext: r.get(3)?,
        stages: Vec::new(),
        created_at: r.get(4)?,
    })
}

pub(super) fn get_secret_version(
    c: &Connection,
    name: &str,
    version_id: &str,
) -> Result<SecretVersion> {
    query_versions(c, name, "AND version_id = ?2", Some(version_id))?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("version {version_id} of secret {name}")))
}

pub(super) fn get_secret_version_by_stage(
    c: &Connection,
    name: &str,
    stage: &str,
) -> Result<SecretVersion> {
    query_versions(
        c,
        name,
        "AND version_id = (SELECT version_id FROM secret_stages \
         WHERE secret_name = ?1 AND stage = ?2)",
        Some(stage),
    )?
    .pop()
    .ok_or_else(|| StoreError::NotFound(format!("stage {stage} of secret {name}")))
}

pub(super) fn list_secret_versions(c: &Connection, name: &str) -> Result<Vec<SecretVersion>> {
    if !secret_exists(c, name)? {
        return Err(StoreError::NotFound(format!("secret {name}")));
    }
    query_versions(c, name, "", None)
}

/// The foreign keys cascade to versions, then stages, and to tags.
pub(super) fn delete_secret(c: &Connection, name: &str) -> Result<()> {
    let n = c
        .execute("DELETE FROM secrets WHERE name = ?1", [name])
        .map_err(map_err("secret"))?;
    expect_one(n, &format!("secret {name}"))
}

/// One statement inside the caller's write transaction: no other writer runs between
/// choosing the secrets and deleting them, so each destroyed name is reported once.
pub(super) fn destroy_due_secrets(c: &Connection, now: i64, limit: u32) -> Result<Vec<String>> {
    let mut stmt = c
        .prepare(
            "DELETE FROM secrets WHERE name IN (SELECT name FROM secrets \
             WHERE planned_delete_at <= ?1 ORDER BY planned_delete_at, name LIMIT ?2) \
             RETURNING name",
        )
        .map_err(map_err("secrets"))?;
    let mut names: Vec<String> = stmt
        .query_map(params![now, limit], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(map_err("secrets"))?;
    names.sort();
    Ok(names)
}

fn count_where(c: &Connection, column: &str, value: &str) -> Result<u64> {
    let n: i64 = c
        .query_row(
            &format!("SELECT COUNT(*) FROM secrets WHERE {column} = ?1"),
            [value],
            |r| r.get(0),
        )
        .map_err(map_err("secrets"))?;
    to_u64(n, "count")
}

pub(super) fn count_instance_secrets(c: &Connection, instance_id: &str) -> Result<u64> {
    count_where(c, "instance_id", instance_id)
}

pub(super) fn count_key_secrets(c: &Connection, key_id: &str) -> Result<u64> {
    count_where(c, "encryption_key_id", key_id)
}

/// Deletes an instance's secrets (cascading to their versions, stages and tags); they
/// reference its keys, so this comes before the keys go.
pub(super) fn delete_instance_secrets(c: &Connection, instance_id: &str) -> Result<()> {
    c.execute("DELETE FROM secrets WHERE instance_id = ?1", [instance_id])
        .map_err(map_err("secrets"))?;
    Ok(())
}
