//! Network rules, policies, access points and client keys on PostgreSQL.
//!
//! Several nodes share the database, so every check that guards a write happens in the
//! write's transaction under a row lock:
//!
//! - a record a new or updated one names (a policy's instance and network rules, an
//!   access point's policies) is key-share locked when its existence is checked, so it
//!   cannot be deleted before the reference commits; a delete that comes first makes the
//!   check find nothing;
//! - the client-key limit: the access point's row is locked (`FOR UPDATE`) before its
//!   keys are counted, so two nodes racing for the last slot take turns;
//! - a named record cannot be deleted: its foreign keys have no cascade, and the
//!   violation is reported as a conflict.
//!
//! Reads of more than one row (a page, a snapshot) run in one REPEATABLE READ snapshot.

use std::collections::HashMap;

use tokio_postgres::{GenericClient, Row};

use super::{
    PostgresStore, begin, commit, expect_one, get, get_one, map_conflict, map_err, page_params,
    position, snapshot, to_u64,
};
use crate::access::{decode_list, encode_list};
use crate::{
    AccessPoint, AccessSnapshot, ClientKey, NetworkRule, Page, PageOf, Policy, Result, StoreError,
};

/// A child table listing names a record holds: `(table, owner column, name column)`.
type Children = (&'static str, &'static str, &'static str);

const POLICY_RULES: Children = ("policy_network_rules", "policy_name", "rule_name");
const AAP_POLICIES: Children = ("aap_policies", "aap_name", "policy_name");

/// Whether a row with this `name` exists in `table` (a constant, never input); the row
/// is key-share locked, so it cannot be deleted before the transaction ends.
async fn name_exists(c: &(impl GenericClient + Sync), table: &str, name: &str) -> Result<bool> {
    c.query_opt(
        &format!("SELECT 1 FROM {table} WHERE name = $1 FOR KEY SHARE"),
        &[&name],
    )
    .await
    .map(|r| r.is_some())
    .map_err(map_err(table))
}

async fn count_rows(c: &(impl GenericClient + Sync), table: &str) -> Result<u64> {
    let row = c
        .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
        .await
        .map_err(map_err(table))?;
    to_u64(get(&row, 0, table)?, "count")
}

/// The names each of `owners` lists in a child table, in position order.
async fn children_of(
    c: &(impl GenericClient + Sync),
    (table, owner_col, value_col): Children,
    owners: &[&str],
) -> Result<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    if owners.is_empty() {
        return Ok(out);
    }
    let rows = c
        .query(
            &format!(
                "SELECT {owner_col}, {value_col} FROM {table} WHERE {owner_col} = ANY($1) \
                 ORDER BY {owner_col}, position"
            ),
            &[&owners],
        )
        .await
        .map_err(map_err(table))?;
    for r in &rows {
        out.entry(get(r, 0, table)?)
            .or_default()
            .push(get(r, 1, table)?);
    }
    Ok(out)
}

/// Replaces a record's child rows with `names`, each checked (and key-share locked) in
/// `named_table` first ([`StoreError::NotFound`] naming `named_what` otherwise).
///
/// The named rows are locked before the old child rows are touched: a concurrent delete
/// of a named row locks that row first and then the child rows naming it, so taking them
/// in the same order cannot deadlock with it.
async fn store_children(
    c: &(impl GenericClient + Sync),
    (table, owner_col, value_col): Children,
    owner: &str,
    (named_table, named_what): (&str, &str),
    names: &[String],
) -> Result<()> {
    for name in names {
        if !name_exists(c, named_table, name).await? {
            return Err(StoreError::NotFound(format!("{named_what} {name}")));
        }
    }
    c.execute(
        &format!("DELETE FROM {table} WHERE {owner_col} = $1"),
        &[&owner],
    )
    .await
    .map_err(map_err(table))?;
    for (i, name) in names.iter().enumerate() {
        c.execute(
            &format!(
                "INSERT INTO {table} ({owner_col}, position, {value_col}) VALUES ($1, $2, $3)"
            ),
            &[&owner, &position(i)?, name],
        )
        .await
        .map_err(map_err(table))?;
    }
    Ok(())
}

/// Deletes the row named `name` from `table`; a foreign-key violation (the row is still
/// named elsewhere) becomes a conflict saying `in_use`.
async fn delete_named(
    s: &PostgresStore,
    table: &str,
    what: &str,
    name: &str,
    in_use: &str,
) -> Result<()> {
    let conn = s.conn().await?;
    let n = conn
        .execute(&format!("DELETE FROM {table} WHERE name = $1"), &[&name])
        .await
        .map_err(map_conflict(what, || format!("{what} {name} {in_use}")))?;
    expect_one(n, format!("{what} {name}"))
}

// ---- network rules ----

const RULE_COLS: &str = "name, rule_type, source_private_ip, description, created_at, updated_at";

fn rule_from(r: &Row) -> Result<NetworkRule> {
    const W: &str = "network rule";
    Ok(NetworkRule {
        name: get(r, 0, W)?,
        rule_type: get(r, 1, W)?,
        source_private_ip: decode_list(get(r, 2, W)?, "network rule source_private_ip")?,
        description: get(r, 3, W)?,
        created_at: get(r, 4, W)?,
        updated_at: get(r, 5, W)?,
    })
}

pub(super) async fn create_network_rule(s: &PostgresStore, r: &NetworkRule) -> Result<()> {
    let conn = s.conn().await?;
    conn.execute(
        &format!("INSERT INTO network_rules ({RULE_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"),
        &[
            &r.name,
            &r.rule_type,
            &encode_list(&r.source_private_ip, "network rule")?,
            &r.description,
            &r.created_at,
            &r.updated_at,
        ],
    )
    .await
    .map_err(map_conflict("network rule", || {
        format!("network rule {} exists", r.name)
    }))?;
    Ok(())
}

pub(super) async fn get_network_rule(s: &PostgresStore, name: &str) -> Result<NetworkRule> {
    get_one(
        s,
        &format!("SELECT {RULE_COLS} FROM network_rules WHERE name = $1"),
        &[&name],
        "network rule",
        || format!("network rule {name}"),
        rule_from,
    )
    .await
}

pub(super) async fn list_network_rules(
    s: &PostgresStore,
    page: Page,
) -> Result<PageOf<NetworkRule>> {
    let [limit, offset] = page_params(page);
    let mut conn = s.conn().await?;
    let tx = snapshot(&mut conn).await?;
    let rows = tx
        .query(
            &format!(
                "SELECT {RULE_COLS} FROM network_rules ORDER BY name COLLATE \"C\" \
                 LIMIT $1 OFFSET $2"
            ),
            &[&limit, &offset],
        )
        .await
        .map_err(map_err("network rules"))?;
    let items = rows.iter().map(rule_from).collect::<Result<_>>()?;
    let total = count_rows(&tx, "network_rules").await?;
    commit(tx).await?;
    Ok(PageOf { items, total })
}

pub(super) async fn update_network_rule(s: &PostgresStore, r: &NetworkRule) -> Result<()> {
    let conn = s.conn().await?;
    let n = conn
        .execute(
            "UPDATE network_rules SET source_private_ip = $1, description = $2, updated_at = $3 \
             WHERE name = $4",
            &[
                &encode_list(&r.source_private_ip, "network rule")?,
                &r.description,
                &r.updated_at,
                &r.name,
            ],
        )
        .await
        .map_err(map_err("network rule"))?;
    expect_one(n, format!("network rule {}", r.name))
}

pub(super) async fn delete_network_rule(s: &PostgresStore, name: &str) -> Result<()> {
    delete_named(
        s,
        "network_rules",
        "network rule",
        name,
        "is named by a policy",
    )
    .await
}

// ---- policies ----

const POLICY_COLS: &str =
    "name, kms_instance_id, permissions, resources, description, created_at, updated_at";

/// Decodes a row of [`POLICY_COLS`] (without its network rules).
fn policy_from(r: &Row) -> Result<Policy> {
    const W: &str = "policy";
    Ok(Policy {
        name: get(r, 0, W)?,
        kms_instance_id: get(r, 1, W)?,
        permissions: decode_list(get(r, 2, W)?, "policy permissions")?,
        resources: decode_list(get(r, 3, W)?, "policy resources")?,
        network_rules: Vec::new(),
        description: get(r, 4, W)?,
        created_at: get(r, 5, W)?,
        updated_at: get(r, 6, W)?,
    })
}

/// Runs a query of [`POLICY_COLS`] and attaches the policies' network rules.
async fn query_policies(
    c: &(impl GenericClient + Sync),
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Policy>> {
    let rows = c.query(sql, params).await.map_err(map_err("policies"))?;
    let mut policies = rows.iter().map(policy_from).collect::<Result<Vec<_>>>()?;
    let names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
    let mut rules = children_of(c, POLICY_RULES, &names).await?;
    for p in &mut policies {
        p.network_rules = rules.remove(&p.name).unwrap_or_default();
    }
    Ok(policies)
}

pub(super) async fn create_policy(s: &PostgresStore, p: &Policy) -> Result<()> {
    let mut conn = s.conn().await?;
    let tx = begin(&mut conn).await?;
    // Key-share locked: the instance cannot be released before this commits, and a
    // release that waits for it then finds the policy.
    let instance = tx
        .query_opt(
            "SELECT 1 FROM instances WHERE id = $1 FOR KEY SHARE",
            &[&p.kms_instance_id],
        )
        .await
        .map_err(map_err("instance"))?;
    if instance.is_none() {
        return Err(StoreError::NotFound(format!(
            "instance {}",
            p.kms_instance_id
        )));
    }
    tx.execute(
        &format!("INSERT INTO policies ({POLICY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
        &[
            &p.name,
            &p.kms_instance_id,
            &encode_list(&p.permissions, "policy permissions")?,
            &encode_list(&p.resources, "policy resources")?,
            &p.description,
            &p.created_at,
            &p.updated_at,
        ],
    )
    .await
    .map_err(map_conflict("policy", || {
        format!("policy {} exists", p.name)
    }))?;
    store_children(
        &tx,
        POLICY_RULES,
        &p.name,
        ("network_rules", "network rule"),
        &p.network_rules,
    )
    .await?;
    commit(tx).await
}

pub(super) async fn get_policy(s: &PostgresStore, name: &str) -> Result<Policy> {
    let mut conn = s.conn().await?;
    let tx = snapshot(&mut conn).await?;
    let policy = query_policies(
        &tx,
        &format!("SELECT {POLICY_COLS} FROM policies WHERE name = $1"),
        &[&name],
    )
    .await?
    .pop()
    .ok_or_else(|| StoreError::NotFound(format!("policy {name}")))?;
    commit(tx).await?;
    Ok(policy)
}

pub(super) async fn list_policies(s: &PostgresStore, page: Page) -> Result<PageOf<Policy>> {
    let [limit, offset] = page_params(page);
    let mut conn = s.conn().await?;
    let tx = snapshot(&mut conn).await?;
    let items = query_policies(
        &tx,
        &format!(
            "SELECT {POLICY_COLS} FROM policies ORDER BY name COLLATE \"C\" LIMIT $1 OFFSET $2"
        ),
        &[&limit, &offset],
    )
    .await?;
    let total = count_rows(&tx, "policies").await?;
    commit(tx).await?;
    Ok(PageOf { items, total })
}

pub(super) async fn update_policy(s: &PostgresStore, p: &Policy) -> Result<()> {
    let mut conn = s.conn().await?;
    let tx = begin(&mut conn).await?;
    let n = tx
        .execute(
            "UPDATE policies SET permissions = $1, resources = $2, description = $3, \
             updated_at = $4 WHERE name = $5",
            &[
                &encode_list(&p.permissions, "policy permissions")?,
                &encode_list(&p.resources, "policy resources")?,
                &p.description,
                &p.updated_at,
                &p.name,
            ],
        )
        .await
        .map_err(map_err("policy"))?;
    expect_one(n, format!("policy {}", p.name))?;
    store_children(
        &tx,
        POLICY_RULES,
        &p.name,
        ("network_rules", "network rule"),
        &p.network_rules,
    )
    .await?;
    commit(tx).await
}

pub(super) async fn delete_policy(s: &PostgresStore, name: &str) -> Result<()> {
    delete_named(s, "policies", "policy", name, "is named by an access point").await
}

/// Whether a policy names the instance (which then cannot be released).
pub(super) async fn instance_has_policies(
    c: &(impl GenericClient + Sync),
    instance_id: &str,
) -> Result<bool> {
    c.query_opt(
        "SELECT 1 FROM policies WHERE kms_instance_id = $1 LIMIT 1",
        &[&instance_id],
    )
    .await
    .map(|r| r.is_some())
    .map_err(map_err("policies"))
}

// ---- access points ----

const AAP_COLS: &str = "name, authentication_method, description, created_at, updated_at";

/// Decodes a row of [`AAP_COLS`] (without its policies).
fn access_point_from(r: &Row) -> Result<AccessPoint> {
    const W: &str = "access point";
    Ok(AccessPoint {
        name: get(r, 0, W)?,
        authentication_method: get(r, 1, W)?,
        policies: Vec::new(),
        description: get(r, 2, W)?,
        created_at: get(r, 3, W)?,
        updated_at: get(r, 4, W)?,
    })
}

/// Runs a query of [`AAP_COLS`] and attaches the access points' policies.
async fn query_access_points(
    c: &(impl GenericClient + Sync),
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<AccessPoint>> {
    let rows = c
        .query(sql, params)
        .await
        .map_err(map_err("access points"))?;
    let mut points = rows
        .iter()
        .map(access_point_from)
        .collect::<Result<Vec<_>>>()?;
    let names: Vec<&str> = points.iter().map(|a| a.name.as_str()).collect();
    let mut policies = children_of(c, AAP_POLICIES, &names).await?;
    for a in &mut points {
        a.policies = policies.remove(&a.name).unwrap_or_default();
    }
    Ok(points)
}

async fn load_access_point(c: &(impl GenericClient + Sync), name: &str) -> Result<AccessPoint> {
    query_access_points(
        c,
        &format!("SELECT {AAP_COLS} FROM access_points WHERE name = $1"),
        &[&name],
    )
    .await?
    .pop()
    .ok_or_else(|| StoreError::NotFound(format!("access point {name}")))
}

pub(super) async fn create_access_point(s: &PostgresStore, a: &AccessPoint) -> Result<()> {
    let mut conn = s.conn().await?;
    let tx = begin(&mut conn).await?;
    tx.execute(
        &format!("INSERT INTO access_points ({AAP_COLS}) VALUES ($1, $2, $3, $4, $5)"),
        &[
            &a.name,
            &a.authentication_method,
            &a.description,
            &a.created_at,
            &a.updated_at,
        ],
    )
    .await
    .map_err(map_conflict("access point", || {
        format!("access point {} exists", a.name)
    }))?;
    store_children(
        &tx,
        AAP_POLICIES,
        &a.name,
        ("policies", "policy"),
        &a.policies,
    )
    .await?;
    commit(tx).await
}

pub(super) async fn get_access_point(s: &PostgresStore, name: &str) -> Result<AccessPoint> {
    let mut conn = s.conn().await?;
    let tx = snapshot(&mut conn).await?;
    let point = load_access_point(&tx, name).await?;
    commit(tx).await?;
    Ok(point)
}

pub(super) async fn list_access_points(
    s: &PostgresStore,
    page: Page,
) -> Result<PageOf<AccessPoint>> {
    let [limit, offset] = page_params(page);
    let mut conn = s.conn().await?;
    let tx = snapshot(&mut conn).await?;
    let items = query_access_points(
        &tx,
        &format!(
            "SELECT {AAP_COLS} FROM access_points ORDER BY name COLLATE \"C\" \
             LIMIT $1 OFFSET $2"
        ),
        &[&limit, &offset],
    )
    .await?;
    let total = count_rows(&tx, "access_points").await?;
    commit(tx).await?;
    Ok(PageOf { items, total })
}

pub(super) async fn update_access_point(s: &PostgresStore, a: &AccessPoint) -> Result<()> {
    let mut conn = s.conn().await?;
    let tx = begin(&mut conn).await?;
    let n = tx
        .execute(
            "UPDATE access_points SET description = $1, updated_at = $2 WHERE name = $3",
            &[&a.description, &a.updated_at, &a.name],
        )
        .await
        .map_err(map_err("access point"))?;
    expect_one(n, format!("access point {}", a.name))?;
    store_children(
        &tx,
        AAP_POLICIES,
        &a.name,
        ("policies", "policy"),
        &a.policies,
    )
    .await?;
    commit(tx).await
}

pub(super) async fn delete_access_point(s: &PostgresStore, name: &str) -> Result<()> {
    delete_named(s, "access_points", "access point", name, "has client keys").await
}

// ---- client keys ----

const CLIENT_KEY_COLS: &str = "id, aap_name, key_algorithm, key_origin, certificate_pem, \
    not_before, not_after, created_at";

fn client_key_from(r: &Row) -> Result<ClientKey> {
    const W: &str = "client key";
    Ok(ClientKey {
        id: get(r, 0, W)?,
        aap_name: get(r, 1, W)?,
        key_algorithm: get(r, 2, W)?,
        key_origin: get(r, 3, W)?,
        certificate_pem: get(r, 4, W)?,
        not_before: get(r, 5, W)?,
        not_after: get(r, 6, W)?,
        created_at: get(r, 7, W)?,
    })
}

async fn find_client_key(c: &(impl GenericClient + Sync), id: &str) -> Result<Option<ClientKey>> {
    c.query_opt(
        &format!("SELECT {CLIENT_KEY_COLS} FROM client_keys WHERE id = $1"),
        &[&id],
    )
    .await
    .map_err(map_err("client key"))?
    .map(|r| client_key_from(&r))
    .transpose()
}

pub(super) async fn create_client_key(
    s: &PostgresStore,
    k: &ClientKey,
    max_per_aap: u32,
) -> Result<()> {
    let mut conn = s.conn().await?;
    let tx = begin(&mut conn).await?;
    // The access point's row lock serialises writers of its keys: the second of two
    // racing for the last slot counts the first one's key.
    let point = tx
        .query_opt(
            "SELECT 1 FROM access_points WHERE name = $1 FOR UPDATE",
            &[&k.aap_name],
        )
        .await
        .map_err(map_err("access point"))?;
    if point.is_none() {
        return Err(StoreError::NotFound(format!("access point {}", k.aap_name)));
    }
    let row = tx
        .query_one(
            "SELECT COUNT(*) FROM client_keys WHERE aap_name = $1",
            &[&k.aap_name],
        )
        .await
        .map_err(map_err("client keys"))?;
    let held = to_u64(get(&row, 0, "client keys")?, "count")?;
    if held >= u64::from(max_per_aap) {
        return Err(StoreError::QuotaExceeded(format!(
            "access point {} has {held} client keys, at most {max_per_aap} are allowed",
            k.aap_name
        )));
    }
    tx.execute(
        &format!(
            "INSERT INTO client_keys ({CLIENT_KEY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ),
        &[
            &k.id,
            &k.aap_name,
            &k.key_algorithm,
            &k.key_origin,
            &k.certificate_pem,
            &k.not_before,
            &k.not_after,
            &k.created_at,
        ],
    )
    .await
    .map_err(map_conflict("client key", || {
        format!("client key {} exists", k.id)
    }))?;
    commit(tx).await
}

pub(super) async fn get_client_key(s: &PostgresStore, id: &str) -> Result<ClientKey> {
    let conn = s.conn().await?;
    let client: &tokio_postgres::Client = &conn;
    find_client_key(client, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("client key {id}")))
}

pub(super) async fn list_client_keys(s: &PostgresStore, aap_name: &str) -> Result<Vec<ClientKey>> {
    let mut conn = s.conn().await?;
    let tx = snapshot(&mut conn).await?;
    let exists = tx
        .query_opt("SELECT 1 FROM access_points WHERE name = $1", &[&aap_name])
        .await
        .map_err(map_err("access point"))?
        .is_some();
    if !exists {
        return Err(StoreError::NotFound(format!("access point {aap_name}")));
    }
    let rows = tx
        .query(
            &format!(
                "SELECT {CLIENT_KEY_COLS} FROM client_keys WHERE aap_name = $1 \
                 ORDER BY created_at, id COLLATE \"C\""
            ),
            &[&aap_name],
        )
        .await
        .map_err(map_err("client keys"))?;
    let keys = rows.iter().map(client_key_from).collect::<Result<_>>()?;
    commit(tx).await?;
    Ok(keys)
}

pub(super) async fn delete_client_key(s: &PostgresStore, id: &str) -> Result<()> {
    let conn = s.conn().await?;
    let n = conn
        .execute("DELETE FROM client_keys WHERE id = $1", &[&id])
        .await
        .map_err(map_err("client key"))?;
    expect_one(n, format!("client key {id}"))
}

pub(super) async fn access_snapshot(
    s: &PostgresStore,
    client_key_id: &str,
) -> Result<Option<AccessSnapshot>> {
    let mut conn = s.conn().await?;
    let tx = snapshot(&mut conn).await?;
    let Some(client_key) = find_client_key(&tx, client_key_id).await? else {
        commit(tx).await?;
        return Ok(None);
    };
    let access_point = load_access_point(&tx, &client_key.aap_name).await?;
    let by_name: HashMap<String, Policy> = query_policies(
        &tx,
        &format!("SELECT {POLICY_COLS} FROM policies WHERE name = ANY($1)"),
        &[&access_point.policies],
    )
    .await?
    .into_iter()
    .map(|p| (p.name.clone(), p))
    .collect();
    // In the access point's order; a name listed twice is a clone of the first.
    let policies = access_point
        .policies
        .iter()
        .map(|name| {
            by_name
                .get(name)
                .cloned()
                .ok_or_else(|| StoreError::Corrupt(format!("policy {name} is missing")))
        })
        .collect::<Result<Vec<_>>>()?;
    let rule_names: Vec<&str> = policies
        .iter()
        .flat_map(|p| &p.network_rules)
        .map(String::as_str)
        .collect();
    let rows = tx
        .query(
            &format!(
                "SELECT {RULE_COLS} FROM network_rules WHERE name = ANY($1) \
                 ORDER BY name COLLATE \"C\""
            ),
            &[&rule_names],
        )
        .await
        .map_err(map_err("network rules"))?;
    let network_rules = rows.iter().map(rule_from).collect::<Result<_>>()?;
    commit(tx).await?;
    Ok(Some(AccessSnapshot {
        client_key,
        access_point,
        policies,
        network_rules,
    }))
}
