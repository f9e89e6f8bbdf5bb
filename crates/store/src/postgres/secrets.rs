//! Secrets, their versions and stages on PostgreSQL.
//!
//! Several nodes share the database, so every check that guards a write happens in the
//! write's transaction under a row lock, as for keys (`keys.rs`):
//!
//! - the secret quota: the instance row is locked (`FOR UPDATE`) before its secrets are
//!   counted, so two nodes racing for the last unit take turns and the second one counts
//!   the first one's secret;
//! - the encryption key a new secret names: key-share locked until the insert commits, so
//!   it cannot be destroyed in between;
//! - a secret's version (compare-and-set): one `UPDATE … WHERE version = $n`, which
//!   PostgreSQL re-checks on the newest row after waiting for a concurrent writer; the
//!   row lock it takes also serialises the version and stage writes that follow it.
//!
//! Locks are taken instance first, then key, then secret, as in `delete_instance`.

use std::collections::HashMap;

use tokio_postgres::{GenericClient, Row};

use super::{
    Param, PostgresStore, begin, commit, counted_page, expect_one, get, map_conflict, map_err,
    page_params, row_exists, snapshot, to_u64,
};
use crate::listing::Listing;
use crate::secret_sql::{CURRENT_STAGE, SECRET_COLS, SECRET_VERSION_COLS, secret_where};
use crate::tag_sql::SECRET_TAGS;
use crate::{Page, PageOf, Result, Secret, SecretFilter, SecretVersion, StageOn, StoreError};

/// Decodes a row of [`SECRET_COLS`] (without tags).
fn secret_from(r: &Row) -> Result<Secret> {
    const W: &str = "secret";
    Ok(Secret {
        name: get(r, 0, W)?,
        instance_id: get(r, 1, W)?,
        secret_type: get(r, 2, W)?,
        encryption_key_id: get(r, 3, W)?,
        description: get(r, 4, W)?,
        extended_config: get(r, 5, W)?,
        tags: Vec::new(),
        created_at: get(r, 6, W)?,
        updated_at: get(r, 7, W)?,
        planned_delete_at: get(r, 8, W)?,
        version: get(r, 9, W)?,
    })
}

/// Runs a query of [`SECRET_COLS`] and attaches the secrets' tags (one more query for all).
async fn query_secrets(
    c: &(impl GenericClient + Sync),
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<Secret>> {
    let rows = c.query(sql, params).await.map_err(map_err("secrets"))?;
    let mut secrets = rows.iter().map(secret_from).collect::<Result<Vec<_>>>()?;
    if secrets.is_empty() {
        return Ok(secrets);
    }
    let owners: Vec<&str> = secrets.iter().map(|s| s.name.as_str()).collect();
    let mut tags = super::tags::load_all(c, &SECRET_TAGS, &owners).await?;
    for s in &mut secrets {
        s.tags = tags.remove(&s.name).unwrap_or_default();
    }
    Ok(secrets)
}

async fn load_secret(c: &(impl GenericClient + Sync), name: &str) -> Result<Secret> {
    query_secrets(
        c,
        &format!("SELECT {SECRET_COLS} FROM secrets s WHERE s.name = $1"),
        &[&name],
    )
    .await?
    .pop()
    .ok_or_else(|| StoreError::NotFound(format!("secret {name}")))
}

async fn exists(
    c: &(impl GenericClient + Sync),
    sql: &str,
    params: &[Param<'_>],
    what: &str,
) -> Result<bool> {
    c.query_opt(sql, params)
        .await
        .map(|r| r.is_some())
        .map_err(map_err(what))
}

/// Inserts a version of secret `name` after its others (`seq`); its stages are not
/// written here.
async fn insert_version(
    c: &(impl GenericClient + Sync),
    name: &str,
    v: &SecretVersion,
) -> Result<()> {
    c.execute(
        "INSERT INTO secret_versions \
         (secret_name, version_id, data_type, ciphertext, created_at, seq) \
         VALUES ($1, $2, $3, $4, $5, \
         (SELECT COALESCE(MAX(seq), 0) + 1 FROM secret_versions WHERE secret_name = $1))",
        &[
            &name,
            &v.version_id,
            &v.data_type,
            &v.ciphertext,
            &v.created_at,
        ],
    )
    .await
    .map_err(map_conflict("secret version", || {
        format!("version {} of secret {name} exists", v.version_id)
    }))?;
    Ok(())
}

async fn insert_stage(
    c: &(impl GenericClient + Sync),
    name: &str,
    stage: &str,
    version_id: &str,
) -> Result<()> {
    let found = exists(
        c,
        "SELECT 1 FROM secret_versions WHERE secret_name = $1 AND version_id = $2",
        &[&name, &version_id],
        "secret version",
    )
    .await?;
    if !found {
        return Err(StoreError::NotFound(format!(
            "version {version_id} of secret {name} (for stage {stage})"
        )));
    }
    c.execute(
        "INSERT INTO secret_stages (secret_name, stage, version_id) VALUES ($1, $2, $3)",
        &[&name, &stage, &version_id],
    )
    .await
    .map_err(map_conflict("secret stage", || {
        format!("stage {stage} of secret {name} given twice")
    }))?;
    Ok(())
}

async fn count_where(c: &(impl GenericClient + Sync), column: &str, value: &str) -> Result<u64> {
    let row = c
        .query_one(
            &format!("SELECT COUNT(*) FROM secrets WHERE {column} = $1"),
            &[&value],
        )
        .await
        .map_err(map_err("secrets"))?;
    to_u64(get(&row, 0, "secrets")?, "count")
}

pub(super) async fn create_secret(
    st: &PostgresStore,
    s: &Secret,
    first: &SecretVersion,
    secret_quota: u64,
) -> Result<()> {
    let mut conn = st.conn().await?;
    let tx = begin(&mut conn).await?;
    let instance_found = exists(
        &tx,
        "SELECT 1 FROM instances WHERE id = $1 FOR UPDATE",
        &[&s.instance_id],
        "instance",
    )
    .await?;
    if !instance_found {
        return Err(StoreError::NotFound(format!("instance {}", s.instance_id)));
    }
    if !row_exists(&tx, "keys", &s.encryption_key_id).await? {
        return Err(StoreError::NotFound(format!("key {}", s.encryption_key_id)));
    }
    let held = count_where(&tx, "instance_id", &s.instance_id).await?;
    if held >= secret_quota {
        return Err(StoreError::QuotaExceeded(format!(
            "instance {} holds {held} secrets, its quota is {secret_quota}",
            s.instance_id
        )));
    }
    let insert = format!(
        "INSERT INTO secrets ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        SECRET_COLS.replace("s.", "")
    );
    let params: [Param<'_>; 10] = [
        &s.name,
        &s.instance_id,
        &s.secret_type,
        &s.encryption_key_id,
        &s.description,
        &s.extended_config,
        &s.created_at,
        &s.updated_at,
        &s.planned_delete_at,
        &s.version,
    ];
    tx.execute(&insert, &params)
        .await
        .map_err(map_conflict("secret", || {
            format!("secret {} exists", s.name)
        }))?;
    super::tags::store(&tx, &SECRET_TAGS, &s.name, &s.tags).await?;
    insert_version(&tx, &s.name, first).await?;
    insert_stage(&tx, &s.name, CURRENT_STAGE, &first.version_id).await?;
    commit(tx).await
}

pub(super) async fn get_secret(st: &PostgresStore, name: &str) -> Result<Secret> {
    let mut conn = st.conn().await?;
    let tx = snapshot(&mut conn).await?;
    let secret = load_secret(&tx, name).await?;
    commit(tx).await?;
    Ok(secret)
}

pub(super) async fn list_secrets(
    st: &PostgresStore,
    filter: &SecretFilter,
    page: Page,
) -> Result<PageOf<Secret>> {
    let w = secret_where(
        filter,
        |n| format!("${n}"),
        |h, n| format!("strpos({h}, {n}) > 0"),
    );
    let list = Listing {
        cols: SECRET_COLS,
        from: "secrets s",
        where_sql: &w.sql,
        order: "s.created_at, s.name COLLATE \"C\"",
        args: w.args.len(),
        what: "secrets",
    };
    let limit_offset = page_params(page);
    let mut conn = st.conn().await?;
    let tx = snapshot(&mut conn).await?;
    let (total, params, sql) = counted_page(&tx, &list, &w.args, &limit_offset).await?;
    let items = query_secrets(&tx, &sql, &params).await?;
    commit(tx).await?;
    Ok(PageOf { items, total })
}

/// The compare-and-set of [`crate::Store::update_secret`]: writes the mutable fields and
/// tags if the stored version is `s.version`, and holds the secret's row lock.
async fn cas_update(c: &(impl GenericClient + Sync), s: &Secret) -> Result<()> {
    let n = c
        .execute(
            "UPDATE secrets SET description = $1, extended_config = $2, planned_delete_at = $3, \
             updated_at = $4, version = version + 1 WHERE name = $5 AND version = $6",
            &[
                &s.description,
                &s.extended_config,
                &s.planned_delete_at,
                &s.updated_at,
                &s.name,
                &s.version,
            ],
        )
        .await
        .map_err(map_err("secret"))?;
    if n == 0 {
        let found = exists(
            c,
            "SELECT 1 FROM secrets WHERE name = $1",
            &[&s.name],
            "secret",
        )
        .await?;
        return Err(if found {
            StoreError::Conflict(format!("secret {} version {} is stale", s.name, s.version))
        } else {
            StoreError::NotFound(format!("secret {}", s.name))
        });
    }
    super::tags::store(c, &SECRET_TAGS, &s.name, &s.tags).await
}

pub(super) async fn update_secret(st: &PostgresStore, s: &Secret) -> Result<Secret> {
    let mut conn = st.conn().await?;
    let tx = begin(&mut conn).await?;
    cas_update(&tx, s).await?;
    let secret = load_secret(&tx, &s.name).await?;
    commit(tx).await?;
    Ok(secret)
}

pub(super) async fn write_secret_versions(
    st: &PostgresStore,
    s: &Secret,
    new_version: Option<&SecretVersion>,
    stages: &[StageOn],
    max_versions: u32,
) -> Result<Secret> {
    let mut conn = st.conn().await?;
    let tx = begin(&mut conn).await?;
    // Any error returns before the commit: the transaction rolls every step back.
    cas_update(&tx, s).await?;
    if let Some(v) = new_version {
        insert_version(&tx, &s.name, v).await?;
    }
    tx.execute(
        "DELETE FROM secret_stages WHERE secret_name = $1",
        &[&s.name],
    )
    .await
    .map_err(map_err("secret stages"))?;
    for on in stages {
        insert_stage(&tx, &s.name, &on.stage, &on.version_id).await?;
    }
    let row = tx
        .query_one(
            "SELECT COUNT(*) FROM secret_versions WHERE secret_name = $1",
            &[&s.name],
        )
        .await
        .map_err(map_err("secret versions"))?;
    let held: i64 = get(&row, 0, "secret versions")?;
    let excess = held.saturating_sub(i64::from(max_versions));
    if excess > 0 {
        tx.execute(
            "DELETE FROM secret_versions WHERE secret_name = $1 AND version_id IN \
             (SELECT v.version_id FROM secret_versions v WHERE v.secret_name = $1 \
             AND NOT EXISTS (SELECT 1 FROM secret_stages g WHERE g.secret_name = $1 \
             AND g.version_id = v.version_id) ORDER BY v.seq LIMIT $2)",
            &[&s.name, &excess],
        )
        .await
        .map_err(map_err("secret versions"))?;
    }
    let secret = load_secret(&tx, &s.name).await?;
    commit(tx).await?;
    Ok(secret)
}

fn version_from(r: &Row) -> Result<SecretVersion> {
    const W: &str = "secret version";
    Ok(SecretVersion {
        secret_name: get(r, 0, W)?,
        version_id: get(r, 1, W)?,
        data_type: get(r, 2, W)?,
        ciphertext: get(r, 3, W)?,
        stages: Vec::new(),
        created_at: get(r, 4, W)?,
    })
}

/// Reads versions of secret `name` (`filter` may select them by `$2`) in insertion
/// order, with their stages, in one snapshot.
async fn query_versions(
    st: &PostgresStore,
    name: &str,
    filter: &str,
    arg: Option<&str>,
    secret_must_exist: bool,
) -> Result<Vec<SecretVersion>> {
    let mut conn = st.conn().await?;
    let tx = snapshot(&mut conn).await?;
    if secret_must_exist {
        let found = exists(
            &tx,
            "SELECT 1 FROM secrets WHERE name = $1",
            &[&name],
            "secret",
        )
        .await?;
        if !found {
            return Err(StoreError::NotFound(format!("secret {name}")));
        }
    }
    let sql = format!(
        "SELECT {SECRET_VERSION_COLS} FROM secret_versions \
         WHERE secret_name = $1 {filter} ORDER BY seq"
    );
    let rows = match arg {
        Some(a) => tx.query(&sql, &[&name, &a]).await,
        None => tx.query(&sql, &[&name]).await,
    }
    .map_err(map_err("secret versions"))?;
    let mut versions = rows.iter().map(version_from).collect::<Result<Vec<_>>>()?;
    let rows = tx
        .query(
            "SELECT version_id, stage FROM secret_stages WHERE secret_name = $1 \
             ORDER BY stage COLLATE \"C\"",
            &[&name],
        )
        .await
        .map_err(map_err("secret stages"))?;
    let mut stages: HashMap<String, Vec<String>> = HashMap::new();
    for r in &rows {
        stages
            .entry(get(r, 0, "secret stage")?)
            .or_default()
            .push(get(r, 1, "secret stage")?);
    }
    commit(tx).await?;
    for v in &mut versions {
        v.stages = stages.remove(&v.version_id).unwrap_or_default();
    }
    Ok(versions)
}

pub(super) async fn get_secret_version(
    st: &PostgresStore,
    name: &str,
    version_id: &str,
) -> Result<SecretVersion> {
    query_versions(st, name, "AND version_id = $2", Some(version_id), false)
        .await?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("version {version_id} of secret {name}")))
}

pub(super) async fn get_secret_version_by_stage(
    st: &PostgresStore,
    name: &str,
    stage: &str,
) -> Result<SecretVersion> {
    query_versions(
        st,
        name,
        "AND version_id = (SELECT version_id FROM secret_stages \
         WHERE secret_name = $1 AND stage = $2)",
        Some(stage),
        false,
    )
    .await?
    .pop()
    .ok_or_else(|| StoreError::NotFound(format!("stage {stage} of secret {name}")))
}

pub(super) async fn list_secret_versions(
    st: &PostgresStore,
    name: &str,
) -> Result<Vec<SecretVersion>> {
    query_versions(st, name, "", None, true).await
}

/// The foreign keys cascade to versions, then stages, and to tags.
pub(super) async fn delete_secret(st: &PostgresStore, name: &str) -> Result<()> {
    let conn = st.conn().await?;
    let n = conn
        .execute("DELETE FROM secrets WHERE name = $1", &[&name])
        .await
        .map_err(map_err("secret"))?;
    expect_one(n, format!("secret {name}"))
}

pub(super) async fn destroy_due_secrets(
    st: &PostgresStore,
    now: i64,
    limit: u32,
) -> Result<Vec<String>> {
    let conn = st.conn().await?;
    // One statement, as `destroy_due_keys`: `SKIP LOCKED` makes a second node running this
    // at the same time pass over the rows the first one has locked, and a row the first
    // one deleted and committed is not returned by the second one's `FOR UPDATE`: each
    // destroyed name is in exactly one answer. The foreign keys cascade to versions,
    // stages and tags.
    let rows = conn
        .query(
            "WITH due AS MATERIALIZED (SELECT name FROM secrets \
             WHERE planned_delete_at <= $1 ORDER BY planned_delete_at, name COLLATE \"C\" \
             LIMIT $2 FOR UPDATE SKIP LOCKED) \
             DELETE FROM secrets s USING due WHERE s.name = due.name RETURNING s.name",
            &[&now, &i64::from(limit)],
        )
        .await
        .map_err(map_err("secrets"))?;
    let mut names = rows
        .iter()
        .map(|r| get(r, 0, "secrets"))
        .collect::<Result<Vec<String>>>()?;
    names.sort();
    Ok(names)
}

pub(super) async fn count_instance_secrets(st: &PostgresStore, instance_id: &str) -> Result<u64> {
    let conn = st.conn().await?;
    count_where(&**conn, "instance_id", instance_id).await
}

pub(super) async fn count_key_secrets(st: &PostgresStore, key_id: &str) -> Result<u64> {
    let conn = st.conn().await?;
    count_where(&**conn, "encryption_key_id", key_id).await
}

/// Deletes an instance's secrets (cascading to their versions, stages and tags); the
/// caller holds the instance's row lock. They reference the instance's keys, so this
/// comes before the keys go.
pub(super) async fn delete_instance_secrets(
    c: &(impl GenericClient + Sync),
    instance_id: &str,
) -> Result<()> {
    c.execute(
        "DELETE FROM secrets WHERE instance_id = $1",
        &[&instance_id],
    )
    .await
    .map_err(map_err("secrets"))?;
    Ok(())
}
