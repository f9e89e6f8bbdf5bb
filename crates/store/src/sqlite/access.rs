//! Network rules, policies, access points and client keys on SQLite.
//!
//! Every function runs on a connection the caller holds: writes inside
//! [`SqliteStore::tx`](super::SqliteStore), whose `BEGIN IMMEDIATE` takes the database's
//! write lock first, so a check and the write it guards (that a named record exists, the
//! client-key limit) cannot interleave with another writer. A named record cannot be
//! deleted because its foreign keys have no cascade: the delete fails as a constraint
//! violation, which [`map_err`] reports as a conflict.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{expect_one, instance_exists, map_err, position, to_u64};
use crate::access::{decode_list, encode_list};
use crate::{
    AccessPoint, AccessSnapshot, ClientKey, NetworkRule, Page, PageOf, Policy, Result, StoreError,
};

/// Whether a row with this `name` exists in `table` (a constant, never input).
fn name_exists(c: &Connection, table: &str, name: &str) -> Result<bool> {
    c.query_row(
        &format!("SELECT 1 FROM {table} WHERE name = ?1"),
        [name],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
    .map_err(map_err(table))
}

/// Names of one page of `table`, ordered by name, and the table's row count.
fn page_names(c: &Connection, table: &str, page: Page) -> Result<(Vec<String>, u64)> {
    let (limit, offset) = page.limit_offset();
    let mut stmt = c
        .prepare(&format!(
            "SELECT name FROM {table} ORDER BY name LIMIT ?1 OFFSET ?2"
        ))
        .map_err(map_err(table))?;
    let names = stmt
        .query_map([limit, offset], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(map_err(table))?;
    Ok((names, super::count(c, table)?))
}

/// Deletes the row named `name` from `table`; a constraint violation (the row is still
/// named elsewhere) becomes a conflict saying `in_use`.
fn delete_named(c: &Connection, table: &str, what: &str, name: &str, in_use: &str) -> Result<()> {
    let n = c
        .execute(&format!("DELETE FROM {table} WHERE name = ?1"), [name])
        .map_err(|e| match map_err(what)(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("{what} {name} {in_use}")),
            other => other,
        })?;
    expect_one(n, &format!("{what} {name}"))
}

// ---- network rules ----

const RULE_COLS: &str = "name, rule_type, source_private_ip, description, created_at, updated_at";

type RuleRow = (String, String, String, String, i64, i64);

fn rule_row(r: &Row<'_>) -> rusqlite::Result<RuleRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn rule_from(
    (name, rule_type, ips, description, created_at, updated_at): RuleRow,
) -> Result<NetworkRule> {
    Ok(NetworkRule {
        name,
        rule_type,
        source_private_ip: decode_list(&ips, "network rule source_private_ip")?,
        description,
        created_at,
        updated_at,
    })
}

fn load_rule(c: &Connection, name: &str) -> Result<NetworkRule> {
    let row = c
        .query_row(
            &format!("SELECT {RULE_COLS} FROM network_rules WHERE name = ?1"),
            [name],
            rule_row,
        )
        .optional()
        .map_err(map_err("network rule"))?
        .ok_or_else(|| StoreError::NotFound(format!("network rule {name}")))?;
    rule_from(row)
}

pub(super) fn create_network_rule(c: &Connection, r: &NetworkRule) -> Result<()> {
    c.execute(
        &format!("INSERT INTO network_rules ({RULE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            r.name,
            r.rule_type,
            encode_list(&r.source_private_ip, "network rule")?,
            r.description,
            r.created_at,
            r.updated_at
        ],
    )
    .map_err(|e| match map_err("network rule")(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("network rule {} exists", r.name)),
        other => other,
    })?;
    Ok(())
}

pub(super) fn get_network_rule(c: &Connection, name: &str) -> Result<NetworkRule> {
    load_rule(c, name)
}

pub(super) fn list_network_rules(c: &Connection, page: Page) -> Result<PageOf<NetworkRule>> {
    let (names, total) = page_names(c, "network_rules", page)?;
    let items = names
        .iter()
        .map(|n| load_rule(c, n))
        .collect::<Result<_>>()?;
    Ok(PageOf { items, total })
}

pub(super) fn update_network_rule(c: &Connection, r: &NetworkRule) -> Result<()> {
    let n = c
        .execute(
            "UPDATE network_rules SET source_private_ip = ?1, description = ?2, updated_at = ?3 \
             WHERE name = ?4",
            params![
                encode_list(&r.source_private_ip, "network rule")?,
                r.description,
                r.updated_at,
                r.name
            ],
        )
        .map_err(map_err("network rule"))?;
    expect_one(n, &format!("network rule {}", r.name))
}

pub(super) fn delete_network_rule(c: &Connection, name: &str) -> Result<()> {
    delete_named(
        c,
        "network_rules",
        "network rule",
        name,
        "is named by a policy",
    )
}

// ---- policies ----

const POLICY_COLS: &str =
    "name, kms_instance_id, permissions, resources, description, created_at, updated_at";

type PolicyRow = (String, String, String, String, String, i64, i64);

fn policy_row(r: &Row<'_>) -> rusqlite::Result<PolicyRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn load_policy(c: &Connection, name: &str) -> Result<Policy> {
    let (name, kms_instance_id, permissions, resources, description, created_at, updated_at) = c
        .query_row(
            &format!("SELECT {POLICY_COLS} FROM policies WHERE name = ?1"),
            [name],
            policy_row,
        )
        .optional()
        .map_err(map_err("policy"))?
        .ok_or_else(|| StoreError::NotFound(format!("policy {name}")))?;
    let network_rules = children(c, "policy_network_rules", "policy_name", "rule_name", &name)?;
    Ok(Policy {
        permissions: decode_list(&permissions, "policy permissions")?,
        resources: decode_list(&resources, "policy resources")?,
        name,
        kms_instance_id,
        network_rules,
        description,
        created_at,
        updated_at,
    })
}

/// The names a record's child table lists, in position order.
fn children(
    c: &Connection,
    table: &str,
    owner_col: &str,
    value_col: &str,
    owner: &str,
) -> Result<Vec<String>> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {value_col} FROM {table} WHERE {owner_col} = ?1 ORDER BY position"
        ))
        .map_err(map_err(table))?;
    stmt.query_map([owner], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(map_err(table))
}

/// Replaces a record's child rows with `names`, each checked to exist in `named_table`
/// first ([`StoreError::NotFound`] naming `named_what` otherwise).
fn store_children(
    c: &Connection,
    (table, owner_col, value_col): (&str, &str, &str),
    owner: &str,
    (named_table, named_what): (&str, &str),
    names: &[String],
) -> Result<()> {
    for name in names {
        if !name_exists(c, named_table, name)? {
            return Err(StoreError::NotFound(format!("{named_what} {name}")));
        }
    }
    c.execute(
        &format!("DELETE FROM {table} WHERE {owner_col} = ?1"),
        [owner],
    )
    .map_err(map_err(table))?;
    for (i, name) in names.iter().enumerate() {
        c.execute(
            &format!(
                "INSERT INTO {table} ({owner_col}, position, {value_col}) VALUES (?1, ?2, ?3)"
            ),
            params![owner, position(i)?, name],
        )
        .map_err(map_err(table))?;
    }
    Ok(())
}

const POLICY_RULES: (&str, &str, &str) = ("policy_network_rules", "policy_name", "rule_name");
const AAP_POLICIES: (&str, &str, &str) = ("aap_policies", "aap_name", "policy_name");

pub(super) fn create_policy(c: &Connection, p: &Policy) -> Result<()> {
    if !instance_exists(c, &p.kms_instance_id)? {
        return Err(StoreError::NotFound(format!(
            "instance {}",
            p.kms_instance_id
        )));
    }
    c.execute(
        &format!("INSERT INTO policies ({POLICY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            p.name,
            p.kms_instance_id,
            encode_list(&p.permissions, "policy permissions")?,
            encode_list(&p.resources, "policy resources")?,
            p.description,
            p.created_at,
            p.updated_at
        ],
    )
    .map_err(|e| match map_err("policy")(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("policy {} exists", p.name)),
        other => other,
    })?;
    store_children(
        c,
        POLICY_RULES,
        &p.name,
        ("network_rules", "network rule"),
        &p.network_rules,
    )
}

pub(super) fn get_policy(c: &Connection, name: &str) -> Result<Policy> {
    load_policy(c, name)
}

pub(super) fn list_policies(c: &Connection, page: Page) -> Result<PageOf<Policy>> {
    let (names, total) = page_names(c, "policies", page)?;
    let items = names
        .iter()
        .map(|n| load_policy(c, n))
        .collect::<Result<_>>()?;
    Ok(PageOf { items, total })
}

pub(super) fn update_policy(c: &Connection, p: &Policy) -> Result<()> {
    let n = c
        .execute(
            "UPDATE policies SET permissions = ?1, resources = ?2, description = ?3, \
             updated_at = ?4 WHERE name = ?5",
            params![
                encode_list(&p.permissions, "policy permissions")?,
                encode_list(&p.resources, "policy resources")?,
                p.description,
                p.updated_at,
                p.name
            ],
        )
        .map_err(map_err("policy"))?;
    expect_one(n, &format!("policy {}", p.name))?;
    store_children(
        c,
        POLICY_RULES,
        &p.name,
        ("network_rules", "network rule"),
        &p.network_rules,
    )
}

pub(super) fn delete_policy(c: &Connection, name: &str) -> Result<()> {
    delete_named(c, "policies", "policy", name, "is named by an access point")
}

/// Whether a policy names the instance (which then cannot be released).
pub(super) fn instance_has_policies(c: &Connection, instance_id: &str) -> Result<bool> {
    c.query_row(
        "SELECT 1 FROM policies WHERE kms_instance_id = ?1 LIMIT 1",
        [instance_id],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
    .map_err(map_err("policies"))
}

// ---- access points ----

const AAP_COLS: &str = "name, authentication_method, description, created_at, updated_at";

fn load_access_point(c: &Connection, name: &str) -> Result<AccessPoint> {
    let (name, authentication_method, description, created_at, updated_at): (
        String,
        String,
        String,
        i64,
        i64,
    ) = c
        .query_row(
            &format!("SELECT {AAP_COLS} FROM access_points WHERE name = ?1"),
            [name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()
        .map_err(map_err("access point"))?
        .ok_or_else(|| StoreError::NotFound(format!("access point {name}")))?;
    let policies = children(c, "aap_policies", "aap_name", "policy_name", &name)?;
    Ok(AccessPoint {
        name,
        authentication_method,
        policies,
        description,
        created_at,
        updated_at,
    })
}

pub(super) fn create_access_point(c: &Connection, a: &AccessPoint) -> Result<()> {
    c.execute(
        &format!("INSERT INTO access_points ({AAP_COLS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
        params![
            a.name,
            a.authentication_method,
            a.description,
            a.created_at,
            a.updated_at
        ],
    )
    .map_err(|e| match map_err("access point")(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("access point {} exists", a.name)),
        other => other,
    })?;
    store_children(
        c,
        AAP_POLICIES,
        &a.name,
        ("policies", "policy"),
        &a.policies,
    )
}

pub(super) fn get_access_point(c: &Connection, name: &str) -> Result<AccessPoint> {
    load_access_point(c, name)
}

pub(super) fn list_access_points(c: &Connection, page: Page) -> Result<PageOf<AccessPoint>> {
    let (names, total) = page_names(c, "access_points", page)?;
    let items = names
        .iter()
        .map(|n| load_access_point(c, n))
        .collect::<Result<_>>()?;
    Ok(PageOf { items, total })
}

pub(super) fn update_access_point(c: &Connection, a: &AccessPoint) -> Result<()> {
    let n = c
        .execute(
            "UPDATE access_points SET description = ?1, updated_at = ?2 WHERE name = ?3",
            params![a.description, a.updated_at, a.name],
        )
        .map_err(map_err("access point"))?;
    expect_one(n, &format!("access point {}", a.name))?;
    store_children(
        c,
        AAP_POLICIES,
        &a.name,
        ("policies", "policy"),
        &a.policies,
    )
}

pub(super) fn delete_access_point(c: &Connection, name: &str) -> Result<()> {
    delete_named(c, "access_points", "access point", name, "has client keys")
}

// ---- client keys ----

const CLIENT_KEY_COLS: &str = "id, aap_name, key_algorithm, key_origin, certificate_pem, \
    not_before, not_after, created_at";

fn client_key_row(r: &Row<'_>) -> rusqlite::Result<ClientKey> {
    Ok(ClientKey {
        id: r.get(0)?,
        aap_name: r.get(1)?,
        key_algorithm: r.get(2)?,
        key_origin: r.get(3)?,
        certificate_pem: r.get(4)?,
        not_before: r.get(5)?,
        not_after: r.get(6)?,
        created_at: r.get(7)?,
    })
}

fn find_client_key(c: &Connection, id: &str) -> Result<Option<ClientKey>> {
    c.query_row(
        &format!("SELECT {CLIENT_KEY_COLS} FROM client_keys WHERE id = ?1"),
        [id],
        client_key_row,
    )
    .optional()
    .map_err(map_err("client key"))
}

pub(super) fn create_client_key(c: &Connection, k: &ClientKey, max_per_aap: u32) -> Result<()> {
    if !name_exists(c, "access_points", &k.aap_name)? {
        return Err(StoreError::NotFound(format!("access point {}", k.aap_name)));
    }
    let held: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM client_keys WHERE aap_name = ?1",
            [&k.aap_name],
            |r| r.get(0),
        )
        .map_err(map_err("client keys"))?;
    let held = to_u64(held, "count")?;
    if held >= u64::from(max_per_aap) {
        return Err(StoreError::QuotaExceeded(format!(
            "access point {} has {held} client keys, at most {max_per_aap} are allowed",
            k.aap_name
        )));
    }
    c.execute(
        &format!(
            "INSERT INTO client_keys ({CLIENT_KEY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ),
        params![
            k.id,
            k.aap_name,
            k.key_algorithm,
            k.key_origin,
            k.certificate_pem,
            k.not_before,
            k.not_after,
            k.created_at
        ],
    )
    .map_err(|e| match map_err("client key")(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("client key {} exists", k.id)),
        other => other,
    })?;
    Ok(())
}

pub(super) fn get_client_key(c: &Connection, id: &str) -> Result<ClientKey> {
    find_client_key(c, id)?.ok_or_else(|| StoreError::NotFound(format!("client key {id}")))
}

pub(super) fn list_client_keys(c: &Connection, aap_name: &str) -> Result<Vec<ClientKey>> {
    if !name_exists(c, "access_points", aap_name)? {
        return Err(StoreError::NotFound(format!("access point {aap_name}")));
    }
    let mut stmt = c
        .prepare(&format!(
            "SELECT {CLIENT_KEY_COLS} FROM client_keys WHERE aap_name = ?1 \
             ORDER BY created_at, id"
        ))
        .map_err(map_err("client keys"))?;
    stmt.query_map([aap_name], client_key_row)
        .and_then(Iterator::collect)
        .map_err(map_err("client keys"))
}

pub(super) fn delete_client_key(c: &Connection, id: &str) -> Result<()> {
    let n = c
        .execute("DELETE FROM client_keys WHERE id = ?1", [id])
        .map_err(map_err("client key"))?;
    expect_one(n, &format!("client key {id}"))
}

/// Reads the snapshot; the caller holds one read transaction around it.
pub(super) fn access_snapshot(
    c: &Connection,
    client_key_id: &str,
) -> Result<Option<AccessSnapshot>> {
    let Some(client_key) = find_client_key(c, client_key_id)? else {
        return Ok(None);
    };
    let access_point = load_access_point(c, &client_key.aap_name)?;
    let policies = access_point
        .policies
        .iter()
        .map(|name| load_policy(c, name))
        .collect::<Result<Vec<_>>>()?;
    let mut rule_names: Vec<&String> = policies.iter().flat_map(|p| &p.network_rules).collect();
    rule_names.sort();
    rule_names.dedup();
    let network_rules = rule_names
        .into_iter()
        .map(|name| load_rule(c, name))
        .collect::<Result<_>>()?;
    Ok(Some(AccessSnapshot {
        client_key,
        access_point,
        policies,
        network_rules,
    }))
}
