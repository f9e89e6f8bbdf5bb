//! Self-hosted VPCs: a named set of CIDR blocks that instances can be bound to
//! (`CreateVpc`, `DescribeVpc`, `ListVpcs`, `DeleteVpc`).

use std::sync::Arc;

use serde_json::{Value, json};
use strongroom_store::{Store, StoreError, Vpc};

use super::{Answer, Params, answer, page_answer};
use crate::app::{App, iso, now, random_id};
use crate::error::ApiError;
use crate::network::Cidr;

/// Most CIDR blocks in one VPC.
pub const MAX_CIDR_BLOCKS: usize = 100;

fn view(vpc: &Vpc) -> Value {
    json!({
        "VpcId": vpc.id,
        "VpcName": vpc.name,
        "CidrBlocks": {"CidrBlock": vpc.cidr_blocks},
        "CreateTime": iso(Some(vpc.created_at)),
    })
}

/// Reads a VPC named by a parameter.
pub(crate) async fn load<S: Store>(app: &App<S>, id: &str) -> Result<Vpc, ApiError> {
    app.store.get_vpc(id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::VpcNotFound(id.to_owned()),
        other => other.into(),
    })
}

pub(crate) async fn create<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.name_or("VpcName", "vpc", 128)?;
    let blocks = p.list("CidrBlocks")?;
    if blocks.is_empty() {
        return Err(ApiError::MissingParameter("CidrBlocks".into()));
    }
    if blocks.len() > MAX_CIDR_BLOCKS {
        return Err(ApiError::invalid(
            "CidrBlocks",
            format!("at most {MAX_CIDR_BLOCKS} blocks"),
        ));
    }
    let mut cidr_blocks = Vec::with_capacity(blocks.len());
    for block in &blocks {
        let cidr: Cidr = block.parse().map_err(|e: crate::network::CidrError| {
            ApiError::invalid("CidrBlocks", e.to_string())
        })?;
        let text = cidr.to_string();
        if !cidr_blocks.contains(&text) {
            cidr_blocks.push(text);
        }
    }
    let vpc = Vpc {
        id: random_id("vpc-", 20)?,
        name,
        cidr_blocks,
        created_at: now(),
    };
    app.store.create_vpc(&vpc).await?;
    Ok(answer([("VpcId", Value::from(vpc.id))]))
}

pub(crate) async fn describe<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let vpc = load(app, p.required("VpcId")?).await?;
    Ok(answer([("Vpc", view(&vpc))]))
}

pub(crate) async fn list<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let page = p.page()?;
    let vpcs = app.store.list_vpcs(page).await?;
    Ok(page_answer(
        page,
        vpcs.total,
        "Vpcs",
        "Vpc",
        vpcs.items.iter().map(view).collect(),
    ))
}

pub(crate) async fn delete<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let id = p.required("VpcId")?;
    app.store.delete_vpc(id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::VpcNotFound(id.to_owned()),
        StoreError::Conflict(_) => {
            ApiError::ResourceInUse(format!("{id} is bound to an instance; unbind it first"))
        }
        other => other.into(),
    })?;
    Ok(answer([]))
}
