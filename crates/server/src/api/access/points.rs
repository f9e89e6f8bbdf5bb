//! `CreateApplicationAccessPoint`, `UpdateApplicationAccessPoint`,
//! `DescribeApplicationAccessPoint`, `ListApplicationAccessPoints`,
//! `DeleteApplicationAccessPoint`.

use std::sync::Arc;

use serde_json::{Value, json};
use strongroom_store::{AccessPoint, Store, StoreError};

use super::{ACCESS_POINT, arn, check_name, dedup, exists, json_text, missing, policies};
use crate::api::keys::description;
use crate::api::{Answer, Params, answer, page_answer};
use crate::app::{App, now};
use crate::error::ApiError;

/// The only `AuthenticationMethod` the API offers.
pub const CLIENT_KEY: &str = "ClientKey";
/// Most policies one access point names.
pub const MAX_POLICIES: usize = 3;

/// Reads `Policies` (a JSON array or a comma-separated list of 1 to [`MAX_POLICIES`]
/// names) and checks that each exists.
async fn policy_names<S: Store>(app: &App<S>, p: &Params) -> Result<Vec<String>, ApiError> {
    const NAME: &str = "Policies";
    let names = dedup(p.list(NAME)?);
    if names.is_empty() {
        return Err(ApiError::MissingParameter(NAME.into()));
    }
    if names.len() > MAX_POLICIES {
        return Err(ApiError::invalid(
            NAME,
            format!("an access point has 1 to {MAX_POLICIES} policies"),
        ));
    }
    for name in &names {
        policies::load(app, name).await?;
    }
    Ok(names)
}

fn view<S>(app: &App<S>, point: &AccessPoint) -> Answer {
    answer([
        ("Arn", Value::from(arn(app, "aap", &point.name))),
        ("Name", Value::from(point.name.clone())),
        (
            "AuthenticationMethod",
            Value::from(point.authentication_method.clone()),
        ),
        ("Policies", json_text(&point.policies)),
        ("Description", Value::from(point.description.clone())),
    ])
}

/// Reads an access point named by a parameter.
pub(crate) async fn load<S: Store>(app: &App<S>, name: &str) -> Result<AccessPoint, ApiError> {
    app.store
        .get_access_point(name)
        .await
        .map_err(missing(ACCESS_POINT, name))
}

fn raced(name: &str) -> ApiError {
    ApiError::ResourceInUse(format!(
        "A policy that the access point {name} names was deleted while it was being saved; \
         check the policies and retry."
    ))
}

pub(crate) async fn create<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.required("Name")?;
    check_name("Name", name)?;
    let method = p.optional("AuthenticationMethod").unwrap_or(CLIENT_KEY);
    if method != CLIENT_KEY {
        return Err(ApiError::invalid(
            "AuthenticationMethod",
            format!("{method:?}: the only authentication method is {CLIENT_KEY}"),
        ));
    }
    let at = now();
    let point = AccessPoint {
        name: name.to_owned(),
        authentication_method: CLIENT_KEY.to_owned(),
        policies: policy_names(app, p).await?,
        description: description(p)?,
        created_at: at,
        updated_at: at,
    };
    app.store
        .create_access_point(&point)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => raced(name),
            other => exists(ACCESS_POINT, name)(other),
        })?;
    Ok(view(app, &point))
}

pub(crate) async fn update<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.required("Name")?;
    let mut point = load(app, name).await?;
    if p.optional("Policies").is_some() {
        point.policies = policy_names(app, p).await?;
    }
    if p.optional("Description").is_some() {
        point.description = description(p)?;
    }
    point.updated_at = now();
    app.store
        .update_access_point(&point)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => raced(name),
            other => other.into(),
        })?;
    Ok(answer([]))
}

pub(crate) async fn describe<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let point = load(app, p.required("Name")?).await?;
    Ok(view(app, &point))
}

pub(crate) async fn list<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let page = p.page()?;
    let found = app.store.list_access_points(page).await?;
    let items = found
        .items
        .iter()
        .map(|a| json!({"Name": a.name, "AuthenticationMethod": a.authentication_method}))
        .collect();
    Ok(page_answer(
        page,
        found.total,
        "ApplicationAccessPoints",
        "ApplicationAccessPoint",
        items,
    ))
}

pub(crate) async fn delete<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.required("Name")?;
    app.store
        .delete_access_point(name)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::ResourceInUse(format!(
                "The application access point {name} still has client keys; delete them first."
            )),
            other => missing(ACCESS_POINT, name)(other),
        })?;
    Ok(answer([]))
}
