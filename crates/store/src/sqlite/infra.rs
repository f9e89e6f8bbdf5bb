//! HSM clusters and their nodes, VPCs and their bindings to instances, an instance's
//! compare-and-set update and its API port, on SQLite.
//!
//! Every function runs on a connection the caller holds: the writes that must be atomic
//! inside [`SqliteStore::tx`](super::SqliteStore).

use std::ops::RangeInclusive;

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    count, expect_one, instance_exists, load_instance, map_err, page_ids, position, to_u64,
};
use crate::endpoints;
use crate::{HsmCluster, HsmNode, Instance, Page, PageOf, Result, StoreError, Vpc};

pub(super) fn load_cluster(c: &Connection, id: &str) -> Result<HsmCluster> {
    let (id, name, created_at): (String, String, i64) = c
        .query_row(
            "SELECT id, name, created_at FROM hsm_clusters WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(map_err("hsm cluster"))?;
    let mut stmt = c
        .prepare("SELECT address, zone FROM hsm_nodes WHERE cluster_id = ?1 ORDER BY position")
        .map_err(map_err("hsm nodes"))?;
    let nodes = stmt
        .query_map([&id], |r| {
            Ok(HsmNode {
                address: r.get(0)?,
                zone: r.get(1)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(map_err("hsm nodes"))?;
    Ok(HsmCluster {
        id,
        name,
        nodes,
        created_at,
    })
}

pub(super) fn load_vpc(c: &Connection, id: &str) -> Result<Vpc> {
    let (id, name, created_at): (String, String, i64) = c
        .query_row(
            "SELECT id, name, created_at FROM vpcs WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(map_err("vpc"))?;
    let mut stmt = c
        .prepare("SELECT cidr FROM vpc_cidr_blocks WHERE vpc_id = ?1 ORDER BY position")
        .map_err(map_err("vpc cidr blocks"))?;
    let cidr_blocks = stmt
        .query_map([&id], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(map_err("vpc cidr blocks"))?;
    Ok(Vpc {
        id,
        name,
        cidr_blocks,
        created_at,
    })
}

pub(super) fn create_cluster(c: &Connection, k: &HsmCluster) -> Result<()> {
    c.execute(
        "INSERT INTO hsm_clusters (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![k.id, k.name, k.created_at],
    )
    .map_err(map_err("hsm cluster"))?;
    for (i, n) in k.nodes.iter().enumerate() {
        c.execute(
            "INSERT INTO hsm_nodes (cluster_id, position, address, zone) VALUES (?1, ?2, ?3, ?4)",
            params![k.id, position(i)?, n.address, n.zone],
        )
        .map_err(map_err("hsm node"))?;
    }
    Ok(())
}

pub(super) fn list_clusters(c: &Connection, page: Page) -> Result<PageOf<HsmCluster>> {
    let items = page_ids(c, "hsm_clusters", page)?
        .iter()
        .map(|id| load_cluster(c, id))
        .collect::<Result<_>>()?;
    Ok(PageOf {
        items,
        total: count(c, "hsm_clusters")?,
    })
}

pub(super) fn delete_cluster(c: &Connection, id: &str) -> Result<()> {
    let n = c
        .execute("DELETE FROM hsm_clusters WHERE id = ?1", [id])
        .map_err(|e| match map_err("hsm cluster")(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("cluster {id} is bound to an instance"))
            }
            other => other,
        })?;
    expect_one(n, "hsm cluster")
}

pub(super) fn create_vpc(c: &Connection, v: &Vpc) -> Result<()> {
    c.execute(
        "INSERT INTO vpcs (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![v.id, v.name, v.created_at],
    )
    .map_err(map_err("vpc"))?;
    for (i, cidr) in v.cidr_blocks.iter().enumerate() {
        c.execute(
            "INSERT INTO vpc_cidr_blocks (vpc_id, position, cidr) VALUES (?1, ?2, ?3)",
            params![v.id, position(i)?, cidr],
        )
        .map_err(map_err("vpc cidr block"))?;
    }
    Ok(())
}

pub(super) fn list_vpcs(c: &Connection, page: Page) -> Result<PageOf<Vpc>> {
    let items = page_ids(c, "vpcs", page)?
        .iter()
        .map(|id| load_vpc(c, id))
        .collect::<Result<_>>()?;
    Ok(PageOf {
        items,
        total: count(c, "vpcs")?,
    })
}

pub(super) fn delete_vpc(c: &Connection, id: &str) -> Result<()> {
    let n = c
        .execute("DELETE FROM vpcs WHERE id = ?1", [id])
        .map_err(|e| match map_err("vpc")(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("vpc {id} is bound to an instance"))
            }
            other => other,
        })?;
    expect_one(n, "vpc")
}

pub(super) fn bind_vpc(c: &Connection, iid: &str, vid: &str) -> Result<()> {
    if !instance_exists(c, iid)? {
        return Err(StoreError::NotFound(format!("instance {iid}")));
    }
    load_vpc(c, vid)?;
    c.execute(
        "INSERT INTO instance_vpcs (instance_id, vpc_id) VALUES (?1, ?2)",
        params![iid, vid],
    )
    .map_err(|e| match map_err("instance vpc")(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("vpc {vid} is already bound to instance {iid}"))
        }
        other => other,
    })?;
    Ok(())
}

pub(super) fn unbind_vpc(c: &Connection, iid: &str, vid: &str) -> Result<()> {
    let n = c
        .execute(
            "DELETE FROM instance_vpcs WHERE instance_id = ?1 AND vpc_id = ?2",
            params![iid, vid],
        )
        .map_err(map_err("instance vpc"))?;
    expect_one(n, "instance vpc binding")
}

pub(super) fn instance_vpcs(c: &Connection, iid: &str) -> Result<Vec<String>> {
    let mut stmt = c
        .prepare("SELECT vpc_id FROM instance_vpcs WHERE instance_id = ?1 ORDER BY vpc_id")
        .map_err(map_err("instance vpcs"))?;
    stmt.query_map([iid], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(map_err("instance vpcs"))
}

pub(super) fn replace_instance_vpcs(c: &Connection, iid: &str, vids: &[String]) -> Result<()> {
    if !instance_exists(c, iid)? {
        return Err(StoreError::NotFound(format!("instance {iid}")));
    }
    c.execute("DELETE FROM instance_vpcs WHERE instance_id = ?1", [iid])
        .map_err(map_err("instance vpcs"))?;
    for vid in vids {
        load_vpc(c, vid)?;
        c.execute(
            "INSERT INTO instance_vpcs (instance_id, vpc_id) VALUES (?1, ?2) \
             ON CONFLICT (instance_id, vpc_id) DO NOTHING",
            params![iid, vid],
        )
        .map_err(map_err("instance vpc"))?;
    }
    Ok(())
}

pub(super) fn count_instance_vpcs(c: &Connection, iid: &str) -> Result<u64> {
    let n: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM instance_vpcs WHERE instance_id = ?1",
            [iid],
            |r| r.get(0),
        )
        .map_err(map_err("instance vpcs"))?;
    to_u64(n, "count")
}

/// The instance's API port ([`crate::Store::instance_port`]). SQLite has one writer at a
/// time: inside the caller's write transaction the read and the insert cannot interleave
/// with another assignment.
pub(super) fn instance_port(c: &Connection, id: &str, range: &RangeInclusive<u16>) -> Result<u16> {
    if !instance_exists(c, id)? {
        return Err(StoreError::NotFound(format!("instance {id}")));
    }
    let held: Option<i64> = c
        .query_row(
            "SELECT port FROM instance_endpoints WHERE instance_id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()
        .map_err(map_err("instance endpoint"))?;
    if let Some(port) = held {
        return endpoints::port_from(port);
    }
    let mut statement = c
        .prepare("SELECT port FROM instance_endpoints")
        .map_err(map_err("instance endpoints"))?;
    let taken = statement
        .query_map([], |r| r.get::<_, i64>(0))
        .map_err(map_err("instance endpoints"))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(map_err("instance endpoints"))?;
    let port = endpoints::lowest_free(&taken, range)?;
    c.execute(
        "INSERT INTO instance_endpoints (instance_id, port) VALUES (?1, ?2)",
        params![id, i64::from(port)],
    )
    .map_err(map_err("instance endpoint"))?;
    Ok(port)
}

/// The compare-and-set of [`crate::Store::update_instance`], inside the caller's write
/// transaction.
pub(super) fn update_instance(c: &Connection, i: &Instance) -> Result<Instance> {
    let n = c
        .execute(
            "UPDATE instances SET name = ?1, region = ?2, status = ?3, vpc_quota = ?4, \
             key_quota = ?5, secret_quota = ?6, spec = ?7, term_months = ?8, \
             start_time = ?9, end_time = ?10, auto_renew = ?11, hsm_cluster_id = ?12, \
             ca_certificate_chain_pem = ?13, updated_at = ?14, status_reason = ?17, \
             hsm_credentials = ?18, ca_keys = ?19, version = version + 1 \
             WHERE id = ?15 AND version = ?16",
            params![
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
                i.updated_at,
                i.id,
                i.version,
                i.status_reason,
                i.hsm_credentials,
                i.ca_keys,
            ],
        )
        .map_err(map_err("instance"))?;
    if n == 0 {
        return Err(if instance_exists(c, &i.id)? {
            StoreError::Conflict(format!("instance {} version {} is stale", i.id, i.version))
        } else {
            StoreError::NotFound(format!("instance {}", i.id))
        });
    }
    load_instance(c, &i.id)
}
