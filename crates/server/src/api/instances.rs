//! Instances: provisioning (`CreateKmsInstance`), the cloud's `GetKmsInstance`,
//! `ListKmsInstances`, `ConnectKmsInstance`, `UpdateKmsInstanceBindVpc`,
//! `GetKmsInstanceQuotaInfos`, `ReleaseKmsInstance`, and renewal (`RenewKmsInstance`).

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use strongroom_certs::password::Password;
use strongroom_certs::pki::ServerNames;
use strongroom_certs::{instance_ca, pkcs12, pki};
use strongroom_store::{Instance, InstanceStatus, Store, StoreError};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{Answer, Params, answer, page_answer};
use crate::app::{App, add_months, iso, now, random_id};
use crate::enable;
use crate::error::ApiError;

/// The performance levels one can provision (requests per second).
///
/// The cloud sells 200 to 4,000; a deployment on its own hardware may provision more, up
/// to what its HSM cluster and nodes serve (`docs/performance.md`).
pub const SPECS: &[u32] = &[200, 1000, 2000, 4000, 10_000, 20_000, 50_000, 100_000];
/// The terms one can provision or renew for (months).
pub const PERIODS: &[u32] = &[1, 2, 3, 6, 12, 24, 36];
/// Most instances one `CreateKmsInstance` makes.
pub const MAX_QUANTITY: u32 = 20;

/// The HSM access credentials given to `ConnectKmsInstance`, kept sealed in the store.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct HsmCredentials {
    /// The client PKCS#12, base64.
    pub client_p12: String,
    /// Its password.
    pub password: String,
    /// The CA that signed the HSMs' server certificates, PEM.
    pub root_ca_pem: String,
}

impl std::fmt::Debug for HsmCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HsmCredentials(..)")
    }
}

/// The sealing purpose (AAD) of an instance's HSM credentials.
pub fn credentials_purpose(instance_id: &str) -> String {
    format!("hsm-credentials:{instance_id}")
}

pub(crate) fn ca_keys_purpose(instance_id: &str) -> String {
    format!("instance-ca-keys:{instance_id}")
}

/// Reads an instance named by a parameter.
pub(crate) async fn load<S: Store>(app: &App<S>, id: &str) -> Result<Instance, ApiError> {
    app.store.get_instance(id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::InstanceNotFound(id.to_owned()),
        other => other.into(),
    })
}

/// Whether the instance is past its term (after auto-renewal is applied).
pub fn is_expired(instance: &Instance, now: i64) -> bool {
    !instance.auto_renew && instance.end_time.is_some_and(|end| end <= now)
}

/// An auto-renewing instance whose `EndDate` has passed, moved on by whole terms until
/// it is in the future; `None` if nothing changes.
pub fn rolled_forward(instance: &Instance, now: i64) -> Option<Instance> {
    let end = instance.end_time?;
    if !instance.auto_renew || end > now || instance.term_months == 0 {
        return None;
    }
    let mut next = end;
    while next <= now {
        let moved = add_months(next, instance.term_months);
        if moved <= next {
            return None;
        }
        next = moved;
    }
    let mut renewed = instance.clone();
    renewed.end_time = Some(next);
    renewed.updated_at = now;
    Some(renewed)
}

/// Applies auto-renewal (persisting it; a concurrent writer's version wins) and returns
/// the current record.
async fn current<S: Store>(app: &App<S>, instance: Instance) -> Result<Instance, ApiError> {
    match rolled_forward(&instance, now()) {
        Some(renewed) => match app.store.update_instance(&renewed).await {
            Ok(stored) => Ok(stored),
            Err(StoreError::Conflict(_)) => load(app, &instance.id).await,
            Err(e) => Err(e.into()),
        },
        None => Ok(instance),
    }
}

async fn view<S: Store>(app: &App<S>, instance: &Instance) -> Result<Value, ApiError> {
    let vpcs = app.store.instance_vpcs(&instance.id).await?;
    let zones: Vec<String> = match &instance.hsm_cluster_id {
        Some(cluster) => match app.store.get_cluster(cluster).await {
            Ok(c) => c
                .nodes
                .iter()
                .map(|n| n.zone.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            Err(StoreError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        },
        None => Vec::new(),
    };
    let bind: Vec<Value> = vpcs
        .iter()
        .map(|vpc| {
            json!({"RegionId": instance.region, "VpcId": vpc, "VSwitchId": "",
                   "VpcOwnerId": app.account_id})
        })
        .collect();
    let expired = is_expired(instance, now());
    // Ours: the port the instance API is served on by every node (assigned on first
    // need, from the node's `api_ports`).
    let port = app
        .store
        .instance_port(&instance.id, app.config.instance_ports.clone())
        .await
        .map_or(Value::Null, Value::from);
    Ok(json!({
        "InstanceId": instance.id,
        "InstanceName": instance.name,
        "Status": instance.status.as_str(),
        "CreateTime": iso(Some(instance.created_at)),
        "StartDate": iso(instance.start_time),
        "EndDate": iso(instance.end_time),
        "Spec": instance.spec,
        "KeyNum": instance.key_quota,
        "SecretNum": instance.secret_quota.to_string(),
        "VpcNum": instance.vpc_quota,
        "VpcId": vpcs.first().cloned().unwrap_or_default(),
        "ZoneIds": zones,
        "VswitchIds": Vec::<String>::new(),
        "BindVpcs": {"BindVpc": bind},
        "CaCertificateChainPem": instance.ca_certificate_chain_pem,
        "ChargeType": "PREPAY",
        "ProductType": "kms_ddi_public_intl",
        "ProductVersion": "3",
        "SaleStatus": if expired { "Expired" } else { "Normal" },
        "Log": 0,
        "LogStorage": 0,
        "DeletionProtection": false,
        "DeletionProtectionDescription": "",
        "RegionId": instance.region,
        "AutoRenew": instance.auto_renew,
        "Period": instance.term_months,
        "HsmClusterId": instance.hsm_cluster_id.clone().unwrap_or_default(),
        "StatusReason": instance.status_reason,
        "InstanceApiPort": port,
        "InstanceApiHost": instance_ca::endpoint_host(&instance.id),
    }))
}

fn arn_entry<S: Store>(app: &App<S>, instance: &Instance) -> Value {
    json!({
        "KmsInstanceId": instance.id,
        "KmsInstanceArn": app.instance_arn(&instance.region, &instance.id),
    })
}

pub(crate) async fn create<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.name_or("InstanceName", "kms-instance", 128)?;
    let region = p
        .optional("RegionId")
        .unwrap_or(&app.config.region)
        .to_owned();
    if region.len() > 64
        || !region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(ApiError::invalid(
            "RegionId",
            "1 to 64 letters, digits and '-'",
        ));
    }
    let vpc_quota = p.u32_in("VpcNum", 1, 0..=10_000)?;
    let key_quota = p.u32_in("KeyNum", 1000, 100..=100_000)?;
    let secret_quota = p.u32_in("SecretNum", 0, 0..=100_000)?;
    let spec = p.u32_of("Spec", 1000, SPECS)?;
    let term_months = p.u32_of("Period", 12, PERIODS)?;
    let auto_renew = p.bool_or("AutoRenew", false)?;
    let quantity = p.u32_in("Quantity", 1, 1..=MAX_QUANTITY)?;
    let mut created = Vec::new();
    for _ in 0..quantity {
        let id = random_id("kst-", 20)?;
        let ca_id = id.clone();
        // Three RSA-2048 key generations: off the async workers.
        let pki = tokio::task::spawn_blocking(move || {
            instance_ca::create(&ca_id, &ServerNames::default())
        })
        .await
        .map_err(|e| ApiError::Internal(format!("instance CA task: {e}")))?
        .map_err(|e| ApiError::Internal(format!("instance CA: {e}")))?;
        let mut keys = Zeroizing::new(Vec::new());
        keys.extend_from_slice(
            STANDARD
                .encode(pki.ca.root_private_key.expose_secret())
                .as_bytes(),
        );
        keys.push(b'.');
        keys.extend_from_slice(
            STANDARD
                .encode(pki.ca.issuing_private_key.expose_secret())
                .as_bytes(),
        );
        let at = now();
        let instance = Instance {
            ca_certificate_chain_pem: pki.ca.bundle_pem(),
            ca_keys: Some(
                app.node_key
                    .seal(&keys, &ca_keys_purpose(&id))
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
            ),
            id,
            name: name.clone(),
            region: region.clone(),
            status: InstanceStatus::Uninitialized,
            vpc_quota,
            key_quota,
            secret_quota,
            spec,
            term_months,
            start_time: None,
            end_time: Some(add_months(at, term_months)),
            auto_renew,
            hsm_cluster_id: None,
            status_reason: String::new(),
            hsm_credentials: None,
            created_at: at,
            updated_at: at,
            version: 1,
        };
        app.store.create_instance(&instance).await?;
        created.push(arn_entry(app, &instance));
    }
    Ok(answer([(
        "KmsInstances",
        json!({ "KmsInstance": created }),
    )]))
}

pub(crate) async fn get<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let instance = load(app, p.required("KmsInstanceId")?).await?;
    let instance = current(app, instance).await?;
    Ok(answer([("KmsInstance", view(app, &instance).await?)]))
}

pub(crate) async fn list<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let page = p.page()?;
    let instances = app.store.list_instances(page).await?;
    Ok(page_answer(
        page,
        instances.total,
        "KmsInstances",
        "KmsInstance",
        instances.items.iter().map(|i| arn_entry(app, i)).collect(),
    ))
}

pub(crate) async fn connect<S: Store + Clone>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let id = p.required("KmsInstanceId")?;
    if let Some(provider) = p.optional("KMProvider")
        && provider != "Aliyun"
        && provider != "Strongroom"
    {
        return Err(ApiError::invalid(
            "KMProvider",
            format!("{provider:?} is neither Aliyun nor Strongroom"),
        ));
    }
    let cluster_id = p.required("HsmClusterId")?;
    let p12_b64 = p.required("ClientCertificate")?;
    let password = p.required("ClientCertificatePassword")?;
    let root_ca_pem = p.required("HsmRootCaPem")?;
    let instance = current(app, load(app, id).await?).await?;
    let at = now();
    let stale_connecting = instance.status == InstanceStatus::Connecting
        && at.saturating_sub(instance.updated_at)
            > i64::try_from(app.config.enable_timeout.as_secs().saturating_mul(2))
                .unwrap_or(i64::MAX);
    match instance.status {
        InstanceStatus::Uninitialized | InstanceStatus::Error | InstanceStatus::Disconnected => {}
        InstanceStatus::Connecting if stale_connecting => {}
        status => {
            return Err(ApiError::InstanceStateInvalid(format!(
                "The instance {id} is {}; only an Uninitialized, Error or Disconnected instance \
                 can be connected.",
                status.as_str()
            )));
        }
    }
    if is_expired(&instance, at) {
        return Err(expired(&instance));
    }
    let cluster = super::clusters::load(app, cluster_id).await?;
    if let Some(other) = super::clusters::bound_instance(app, cluster_id).await?
        && other != instance.id
    {
        return Err(ApiError::ResourceInUse(format!(
            "The HSM cluster {cluster_id} is bound to the instance {other}; one cluster \
                 serves one instance."
        )));
    }
    let zones = p.list("ZoneIds")?;
    if !zones.is_empty() {
        let given: BTreeSet<&str> = zones.iter().map(String::as_str).collect();
        let actual: BTreeSet<&str> = cluster.nodes.iter().map(|n| n.zone.as_str()).collect();
        if given != actual {
            return Err(ApiError::invalid(
                "ZoneIds",
                format!(
                    "the cluster {cluster_id} is in the zones {}",
                    actual.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let p12 = Zeroizing::new(STANDARD.decode(p12_b64.trim()).map_err(|_| {
        ApiError::invalid("ClientCertificate", "is not base64 (of the client PKCS#12)")
    })?);
    let contents = pkcs12::read(&p12, &Password::new(password.to_owned())).map_err(|e| {
        ApiError::invalid(
            "ClientCertificate",
            format!("does not open with ClientCertificatePassword: {e}"),
        )
    })?;
    let cas = pki::certificates_from_pem(root_ca_pem.as_bytes())
        .ok()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::invalid("HsmRootCaPem", "holds no PEM certificate"))?;
    let tls = enable::client_tls(&contents, &cas)
        .map_err(|e| ApiError::invalid("ClientCertificate", e))?;
    if let Some(vpc_id) = p.optional("VpcId") {
        super::vpcs::load(app, vpc_id).await?;
        let mut bound = app.store.instance_vpcs(&instance.id).await?;
        if !bound.iter().any(|v| v == vpc_id) {
            bound.push(vpc_id.to_owned());
            if bound.len() > usize::try_from(instance.vpc_quota).unwrap_or(usize::MAX) {
                return Err(ApiError::LimitExceeded(format!(
                    "The instance {id} may have {} VPCs (VpcNum).",
                    instance.vpc_quota
                )));
            }
            app.store
                .replace_instance_vpcs(&instance.id, &bound)
                .await?;
        }
    }
    let credentials = HsmCredentials {
        client_p12: p12_b64.trim().to_owned(),
        password: password.to_owned(),
        root_ca_pem: root_ca_pem.to_owned(),
    };
    let plain = Zeroizing::new(
        serde_json::to_vec(&credentials).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    let mut connecting = instance.clone();
    connecting.status = InstanceStatus::Connecting;
    connecting.hsm_cluster_id = Some(cluster.id.clone());
    connecting.hsm_credentials = Some(
        app.node_key
            .seal(&plain, &credentials_purpose(&instance.id))
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    connecting.status_reason = format!(
        "reaching the {} nodes of the HSM cluster {}",
        cluster.nodes.len(),
        cluster.id
    );
    connecting.updated_at = at;
    let stored = match app.store.update_instance(&connecting).await {
        Ok(stored) => stored,
        // Either another node bound the cluster meanwhile (the store's one-cluster,
        // one-instance rule), or the instance changed: say which.
        Err(StoreError::Conflict(what)) => {
            return Err(
                match super::clusters::bound_instance(app, cluster_id).await? {
                    Some(other) if other != instance.id => ApiError::ResourceInUse(format!(
                        "The HSM cluster {cluster_id} is bound to the instance {other}; one \
                         cluster serves one instance."
                    )),
                    _ => StoreError::Conflict(what).into(),
                },
            );
        }
        Err(e) => return Err(e.into()),
    };
    tokio::spawn(enable::run(
        Arc::clone(app),
        stored.id.clone(),
        stored.version,
        cluster,
        tls,
    ));
    Ok(answer([]))
}

#[derive(Debug, Deserialize)]
struct BindVpc {
    #[serde(rename = "VpcId")]
    vpc_id: String,
    #[serde(rename = "RegionId", default)]
    region_id: Option<String>,
    #[serde(rename = "VSwitchId", default)]
    _v_switch_id: Option<String>,
    #[serde(rename = "VpcOwnerId", default)]
    _vpc_owner_id: Option<Value>,
}

pub(crate) async fn bind_vpcs<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let id = p.required("KmsInstanceId")?;
    let wanted: Vec<BindVpc> = p.json("BindVpcs")?;
    let instance = load(app, id).await?;
    let mut ids: Vec<String> = Vec::new();
    for bind in &wanted {
        if let Some(region) = bind.region_id.as_deref().filter(|r| !r.is_empty())
            && region != instance.region
        {
            return Err(ApiError::invalid(
                "BindVpcs",
                format!(
                    "the VPC {} is bound in {region}, but the instance is in {}",
                    bind.vpc_id, instance.region
                ),
            ));
        }
        super::vpcs::load(app, &bind.vpc_id).await?;
        if !ids.contains(&bind.vpc_id) {
            ids.push(bind.vpc_id.clone());
        }
    }
    if ids.len() > usize::try_from(instance.vpc_quota).unwrap_or(usize::MAX) {
        return Err(ApiError::LimitExceeded(format!(
            "The instance {id} may have {} VPCs (VpcNum), not {}.",
            instance.vpc_quota,
            ids.len()
        )));
    }
    app.store
        .replace_instance_vpcs(id, &ids)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(what) if what.contains("instance") => {
                ApiError::InstanceNotFound(id.to_owned())
            }
            StoreError::NotFound(what) => ApiError::VpcNotFound(what),
            other => other.into(),
        })?;
    Ok(answer([]))
}

pub(crate) async fn quota_infos<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let instance = load(app, p.required("KmsInstanceId")?).await?;
    let vpcs = app.store.count_instance_vpcs(&instance.id).await?;
    let keys = app.store.count_instance_key_versions(&instance.id).await?;
    let secrets = app.store.count_instance_secrets(&instance.id).await?;
    let all = [
        ("key", instance.key_quota, keys),
        ("secret", instance.secret_quota, secrets),
        ("vpc", instance.vpc_quota, vpcs),
        ("qps", instance.spec, 0),
    ];
    let wanted = p.optional("ResourceType");
    if let Some(kind) = wanted
        && !all.iter().any(|(k, _, _)| *k == kind)
    {
        return Err(ApiError::invalid(
            "ResourceType",
            format!("{kind:?} is not one of key, secret, vpc, qps"),
        ));
    }
    let infos: Vec<Value> = all
        .iter()
        .filter(|(kind, _, _)| wanted.is_none_or(|w| w == *kind))
        .map(|(kind, quota, used)| {
            json!({"ResourceType": kind, "ResourceQuota": quota, "UsedQuantity": used})
        })
        .collect();
    Ok(answer([("KmsInstanceQuotaInfos", Value::Array(infos))]))
}

pub(crate) async fn renew<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let id = p.required("KmsInstanceId")?;
    let period = match p.optional("Period") {
        Some(_) => Some(p.u32_of("Period", 12, PERIODS)?),
        None => None,
    };
    let auto_renew = match p.optional("AutoRenew") {
        Some(_) => Some(p.bool_or("AutoRenew", false)?),
        None => None,
    };
    if period.is_none() && auto_renew.is_none() {
        return Err(ApiError::MissingParameter("Period".into()));
    }
    loop {
        let instance = current(app, load(app, id).await?).await?;
        let at = now();
        let mut renewed = instance.clone();
        if let Some(months) = period {
            let from = instance.end_time.unwrap_or(at).max(at);
            renewed.end_time = Some(add_months(from, months));
            renewed.term_months = months;
        }
        if let Some(auto) = auto_renew {
            renewed.auto_renew = auto;
        }
        renewed.updated_at = at;
        match app.store.update_instance(&renewed).await {
            Ok(stored) => {
                return Ok(answer([
                    ("KmsInstanceId", Value::from(stored.id.clone())),
                    ("EndDate", Value::from(iso(stored.end_time))),
                    ("AutoRenew", Value::from(stored.auto_renew)),
                ]));
            }
            // Someone else changed the instance meanwhile: apply ours to theirs.
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

pub(crate) async fn release<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let id = p.required("KmsInstanceId")?;
    let force = p.bool_or("ForceDeleteWithoutBackup", false)?;
    let instance = load(app, id).await?;
    if matches!(
        instance.status,
        InstanceStatus::Connected | InstanceStatus::Connecting
    ) && !force
    {
        return Err(ApiError::InstanceStateInvalid(format!(
            "The instance {id} is {} and may hold keys; releasing it destroys them. Set \
             ForceDeleteWithoutBackup=true to release it anyway.",
            instance.status.as_str()
        )));
    }
    app.store.delete_instance(id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::InstanceNotFound(id.to_owned()),
        // The only conflict: access granted to it is withdrawn explicitly first.
        StoreError::Conflict(_) => ApiError::ResourceInUse(format!(
            "The instance {id} is named by a policy; delete the policy (DeletePolicy) first."
        )),
        other => other.into(),
    })?;
    Ok(answer([]))
}

/// The error of an expired instance.
pub fn expired(instance: &Instance) -> ApiError {
    ApiError::InstanceStateInvalid(format!(
        "The instance {} expired on {}; renew it (RenewKmsInstance) to use it again. Its data \
         is kept.",
        instance.id,
        iso(instance.end_time)
    ))
}
