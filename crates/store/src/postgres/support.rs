//! What the PostgreSQL back end's methods share: error mapping, row decoding,
//! transactions, and small checks.

use std::ops::RangeInclusive;

use deadpool_postgres::Object;
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{GenericClient, IsolationLevel, Row, Transaction};

/// A query parameter.
pub(super) type Param<'a> = &'a (dyn ToSql + Sync);

use crate::endpoints;
use crate::{
    AccessKey, AccessKeyStatus, HsmCluster, HsmNode, Instance, InstanceStatus, Page, Result,
    StoreError, Vpc,
};

/// `user@host:port/dbname` for messages and `Debug`.
pub(super) fn describe(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    format!(
        "{}@{}:{}/{}",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        ports.join(","),
        config.get_dbname().unwrap_or("")
    )
}

/// The portable migration SQL in PostgreSQL's dialect: the word `BLOB` (whole word, any
/// case) becomes `BYTEA`.
pub(super) fn postgres_sql(sql: &str) -> String {
    fn flush(out: &mut String, word: &mut String) {
        if word.eq_ignore_ascii_case("BLOB") {
            out.push_str("BYTEA");
        } else {
            out.push_str(word);
        }
        word.clear();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut word = String::new();
    for ch in sql.chars() {
        if ch.is_alphanumeric() || ch == '_' || ch == '$' {
            word.push(ch);
        } else {
            flush(&mut out, &mut word);
            out.push(ch);
        }
    }
    flush(&mut out, &mut word);
    out
}

/// Maps driver errors: unique and foreign-key violations are conflicts naming `what`,
/// anything else a back-end failure.
pub(super) fn map_err(what: &str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
    move |e| match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::FOREIGN_KEY_VIOLATION => {
            let detail = e.as_db_error().map_or("constraint", |d| d.message());
            StoreError::Conflict(format!("{what}: {detail}"))
        }
        // tokio-postgres shows a server error as just "db error": add the server's
        // message, so that the log says what went wrong.
        _ => match e.as_db_error() {
            Some(db) => StoreError::Backend(format!(
                "{what}: {} ({}): {}",
                e,
                db.code().code(),
                db.message()
            )),
            None => StoreError::Backend(format!("{what}: {e}")),
        },
    }
}

/// Like [`map_err`], with a caller-written message for a conflict.
pub(super) fn map_conflict<'a>(
    what: &'a str,
    conflict: impl FnOnce() -> String + 'a,
) -> impl FnOnce(tokio_postgres::Error) -> StoreError + 'a {
    move |e| match map_err(what)(e) {
        StoreError::Conflict(_) => StoreError::Conflict(conflict()),
        other => other,
    }
}

/// Decodes column `idx`; a type mismatch or an unexpected NULL is corrupt data.
pub(super) fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize, what: &str) -> Result<T> {
    row.try_get(idx)
        .map_err(|e| StoreError::Corrupt(format!("{what} column {idx}: {e}")))
}

pub(super) fn to_u32(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} out of range: {v}")))
}

pub(super) fn to_u64(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} out of range: {v}")))
}

pub(super) fn expect_one(n: u64, what: String) -> Result<()> {
    if n == 0 {
        Err(StoreError::NotFound(what))
    } else {
        Ok(())
    }
}

pub(super) fn position(i: usize) -> Result<i64> {
    i64::try_from(i).map_err(|e| StoreError::Backend(e.to_string()))
}

/// Starts a read-only transaction that sees one snapshot throughout.
pub(super) async fn snapshot(conn: &mut Object) -> Result<Transaction<'_>> {
    let client: &mut tokio_postgres::Client = conn;
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(map_err("begin"))
}

/// Starts a READ COMMITTED read-write transaction.
pub(super) async fn begin(conn: &mut Object) -> Result<Transaction<'_>> {
    let client: &mut tokio_postgres::Client = conn;
    client.transaction().await.map_err(map_err("begin"))
}

pub(super) async fn commit(tx: Transaction<'_>) -> Result<()> {
    tx.commit().await.map_err(map_err("commit"))
}

pub(super) async fn count(c: &(impl GenericClient + Sync), table: &str) -> Result<u64> {
    let row = c
        .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
        .await
        .map_err(map_err(table))?;
    to_u64(get(&row, 0, table)?, "count")
}

// ---- access keys ----

pub(super) const ACCESS_KEY_COLS: &str = "id, secret_ciphertext, status, description, created_at";

pub(super) fn access_key_from(r: &Row) -> Result<AccessKey> {
    const W: &str = "access key";
    Ok(AccessKey {
        id: get(r, 0, W)?,
        secret_ciphertext: get(r, 1, W)?,
        status: AccessKeyStatus::parse(get(r, 2, W)?)?,
        description: get(r, 3, W)?,
        created_at: get(r, 4, W)?,
    })
}

// ---- instances ----

pub(super) const INSTANCE_COLS: &str = "id, name, region, status, vpc_quota, key_quota, secret_quota, spec, \
    term_months, start_time, end_time, auto_renew, hsm_cluster_id, ca_certificate_chain_pem, \
    created_at, updated_at, version, status_reason, hsm_credentials, ca_keys";

pub(super) fn instance_from(r: &Row) -> Result<Instance> {
    const W: &str = "instance";
    Ok(Instance {
        id: get(r, 0, W)?,
        name: get(r, 1, W)?,
        region: get(r, 2, W)?,
        status: InstanceStatus::parse(get(r, 3, W)?)?,
        vpc_quota: to_u32(get(r, 4, W)?, "vpc_quota")?,
        key_quota: to_u32(get(r, 5, W)?, "key_quota")?,
        secret_quota: to_u32(get(r, 6, W)?, "secret_quota")?,
        spec: to_u32(get(r, 7, W)?, "spec")?,
        term_months: to_u32(get(r, 8, W)?, "term_months")?,
        start_time: get(r, 9, W)?,
        end_time: get(r, 10, W)?,
        auto_renew: get(r, 11, W)?,
        hsm_cluster_id: get(r, 12, W)?,
        ca_certificate_chain_pem: get(r, 13, W)?,
        created_at: get(r, 14, W)?,
        updated_at: get(r, 15, W)?,
        version: get(r, 16, W)?,
        status_reason: get(r, 17, W)?,
        hsm_credentials: get(r, 18, W)?,
        ca_keys: get(r, 19, W)?,
    })
}

/// Reads one instance; with `lock`, holds its row lock until the transaction ends.
pub(super) async fn load_instance(
    c: &(impl GenericClient + Sync),
    id: &str,
    lock: bool,
) -> Result<Instance> {
    let suffix = if lock { " FOR UPDATE" } else { "" };
    let row = c
        .query_opt(
            &format!("SELECT {INSTANCE_COLS} FROM instances WHERE id = $1{suffix}"),
            &[&id],
        )
        .await
        .map_err(map_err("instance"))?
        .ok_or_else(|| StoreError::NotFound(format!("instance {id}")))?;
    instance_from(&row)
}

/// Whether the instance exists; with `lock`, holds its row lock until the transaction ends.
pub(super) async fn instance_exists(
    c: &(impl GenericClient + Sync),
    id: &str,
    lock: bool,
) -> Result<bool> {
    let suffix = if lock { " FOR UPDATE" } else { "" };
    c.query_opt(
        &format!("SELECT 1 FROM instances WHERE id = $1{suffix}"),
        &[&id],
    )
    .await
    .map(|r| r.is_some())
    .map_err(map_err("instance"))
}

/// Whether a row with this id exists in `table`; the row is key-share locked, so it
/// cannot be deleted before the transaction ends.
pub(super) async fn row_exists(
    c: &(impl GenericClient + Sync),
    table: &str,
    id: &str,
) -> Result<bool> {
    c.query_opt(
        &format!("SELECT 1 FROM {table} WHERE id = $1 FOR KEY SHARE"),
        &[&id],
    )
    .await
    .map(|r| r.is_some())
    .map_err(map_err(table))
}

// ---- clusters and VPCs ----

/// Clusters with their nodes: a page of `hsm_clusters` (or one id) joined to its nodes.
pub(super) const CLUSTER_QUERY: &str = "SELECT c.id, c.name, c.created_at, n.address, n.zone \
     FROM (SELECT id, name, created_at FROM hsm_clusters {filter}) c \
     LEFT JOIN hsm_nodes n ON n.cluster_id = c.id \
     ORDER BY c.id COLLATE \"C\", n.position";

/// VPCs with their CIDR blocks, shaped like [`CLUSTER_QUERY`].
pub(super) const VPC_QUERY: &str = "SELECT v.id, v.name, v.created_at, b.cidr \
     FROM (SELECT id, name, created_at FROM vpcs {filter}) v \
     LEFT JOIN vpc_cidr_blocks b ON b.vpc_id = v.id \
     ORDER BY v.id COLLATE \"C\", b.position";

pub(super) const BY_ID: &str = "WHERE id = $1";
pub(super) const BY_PAGE: &str = "ORDER BY id COLLATE \"C\" LIMIT $1 OFFSET $2";

/// Folds joined rows (ordered by cluster) into clusters.
pub(super) fn clusters_from(rows: &[Row]) -> Result<Vec<HsmCluster>> {
    const W: &str = "hsm cluster";
    let mut out: Vec<HsmCluster> = Vec::new();
    for r in rows {
        let id: String = get(r, 0, W)?;
        let address: Option<String> = get(r, 3, W)?;
        let zone: Option<String> = get(r, 4, W)?;
        let node = address
            .zip(zone)
            .map(|(address, zone)| HsmNode { address, zone });
        match out.last_mut() {
            Some(c) if c.id == id => c.nodes.extend(node),
            _ => out.push(HsmCluster {
                id,
                name: get(r, 1, W)?,
                nodes: node.into_iter().collect(),
                created_at: get(r, 2, W)?,
            }),
        }
    }
    Ok(out)
}

/// Folds joined rows (ordered by VPC) into VPCs.
pub(super) fn vpcs_from(rows: &[Row]) -> Result<Vec<Vpc>> {
    const W: &str = "vpc";
    let mut out: Vec<Vpc> = Vec::new();
    for r in rows {
        let id: String = get(r, 0, W)?;
        let cidr: Option<String> = get(r, 3, W)?;
        match out.last_mut() {
            Some(v) if v.id == id => v.cidr_blocks.extend(cidr),
            _ => out.push(Vpc {
                id,
                name: get(r, 1, W)?,
                cidr_blocks: cidr.into_iter().collect(),
                created_at: get(r, 2, W)?,
            }),
        }
    }
    Ok(out)
}

pub(super) fn page_params(page: Page) -> [i64; 2] {
    let (limit, offset) = page.limit_offset();
    [limit, offset]
}

/// Reads the one row `sql` selects and decodes it; [`StoreError::NotFound`] with the
/// message `not_found` gives when there is none.
pub(super) async fn get_one<T>(
    s: &super::PostgresStore,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    what: &str,
    not_found: impl FnOnce() -> String,
    decode: impl FnOnce(&Row) -> Result<T>,
) -> Result<T> {
    let conn = s.conn().await?;
    let row = conn
        .query_opt(sql, params)
        .await
        .map_err(map_err(what))?
        .ok_or_else(|| StoreError::NotFound(not_found()))?;
    decode(&row)
}

/// The instance's API port ([`crate::Store::instance_port`]).
pub(super) async fn instance_port(
    s: &super::PostgresStore,
    instance_id: &str,
    range: RangeInclusive<u16>,
) -> Result<u16> {
    let mut conn = s.conn().await?;
    let tx = begin(&mut conn).await?;
    if !instance_exists(&tx, instance_id, false).await? {
        return Err(StoreError::NotFound(format!("instance {instance_id}")));
    }
    // Assignments are rare: one at a time in the whole deployment, so two nodes
    // never pick the same free port.
    tx.batch_execute("LOCK TABLE instance_endpoints IN SHARE ROW EXCLUSIVE MODE")
        .await
        .map_err(map_err("instance endpoints"))?;
    let held = tx
        .query_opt(
            "SELECT port FROM instance_endpoints WHERE instance_id = $1",
            &[&instance_id],
        )
        .await
        .map_err(map_err("instance endpoint"))?;
    if let Some(row) = held {
        return endpoints::port_from(get(&row, 0, "instance port")?);
    }
    let rows = tx
        .query("SELECT port FROM instance_endpoints", &[])
        .await
        .map_err(map_err("instance endpoints"))?;
    let taken = rows
        .iter()
        .map(|r| get::<i64>(r, 0, "instance port"))
        .collect::<Result<Vec<_>>>()?;
    let port = endpoints::lowest_free(&taken, &range)?;
    tx.execute(
        "INSERT INTO instance_endpoints (instance_id, port) VALUES ($1, $2)",
        &[&instance_id, &i64::from(port)],
    )
    .await
    .map_err(map_err("instance endpoint"))?;
    commit(tx).await?;
    Ok(port)
}

/// For one page of `list`, inside the caller's snapshot `tx`: the total, and the page
/// query with its parameters (`args` for the filter's placeholders, then `limit_offset`).
pub(super) async fn counted_page<'a>(
    tx: &Transaction<'_>,
    list: &crate::listing::Listing<'_>,
    args: &'a [String],
    limit_offset: &'a [i64; 2],
) -> Result<(u64, Vec<Param<'a>>, String)> {
    let mut params: Vec<Param<'a>> = Vec::with_capacity(args.len() + 2);
    for a in args {
        params.push(a);
    }
    let row = tx
        .query_one(&list.count(), &params)
        .await
        .map_err(map_err(list.what))?;
    let total = to_u64(get(&row, 0, list.what)?, "count")?;
    for v in limit_offset {
        params.push(v);
    }
    Ok((total, params, list.select(|n| format!("${n}"))))
}
