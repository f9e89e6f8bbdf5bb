//! One instance-API request, from bytes to answer (`spec/instance-api.md` §4.6):
//! the headers and body checked ([`strongroom_proto::instance::parse_headers`]), the
//! instance usable and within its quota, the client key known and its signature good,
//! the body decoded, the key found in this instance, the access decision taken with the
//! caller's real address, the key's state checked, then the operation ([`super::ops`]).
//! Every failure is a protobuf `Error` with its documented code; nothing panics.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use strongroom_hsm::sources::source_key;
use strongroom_proto::instance::{
    self as wire, Body, InstanceError, MAX_BODY_LEN, MIGRATION_KEY_VERSION_ID_HEADER, ParsedRequest,
};
use strongroom_proto::signature::CONTENT_TYPE as PROTOBUF;
use strongroom_store::{Instance, InstanceStatus, KeyState, Store};
use time::OffsetDateTime;
use tracing::{debug, info, warn};

use super::ops::{self, Chosen, Ctx, Done, PairRequest};
use super::records::{self, Client, ResolvedKey};
use super::throttle::AUTH_FAILURES_PER_SECOND;
use crate::access::{self, Decision, Permission, Resource};
use crate::app::{App, request_id};

/// Answers one request to `instance_id`'s endpoint from `source`.
pub async fn handle<S: Store + Clone>(
    app: &Arc<App<S>>,
    instance_id: &str,
    source: IpAddr,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let id = request_id();
    let mut trail = Trail {
        api: "-",
        caller: String::new(),
        resource: String::new(),
    };
    let outcome = process(app, instance_id, source, req, &id, &mut trail).await;
    let elapsed_us = started.elapsed().as_micros();
    let api = trail.api;
    app.metrics.observe(
        crate::metrics::Surface::Instance,
        api,
        outcome.as_ref().map_or_else(|e| e.code(), |_| "OK"),
        started.elapsed(),
    );
    app.audit.record(crate::audit::Event {
        request_id: id.clone(),
        caller: trail.caller,
        source: source.to_string(),
        action: api.to_owned(),
        resource: trail.resource,
        result: outcome
            .as_ref()
            .map_or_else(|e| e.code().to_owned(), |_| "OK".to_owned()),
    });
    match outcome {
        Ok(done) => {
            tracing::debug!(request_id = %id, %source, api, elapsed_us, "ok");
            let mut response = protobuf(200, done.body);
            if let Some(version) = done.version_id
                && let Ok(value) = HeaderValue::from_str(&version)
            {
                response.headers_mut().insert(
                    HeaderName::from_static(MIGRATION_KEY_VERSION_ID_HEADER),
                    value,
                );
            }
            response
        }
        Err(e) => {
            if e.status() >= 500 {
                warn!(request_id = %id, %source, api, code = e.code(), error = %e, "failed");
            } else {
                info!(request_id = %id, %source, api, code = e.code(), "refused");
            }
            protobuf(e.status(), e.encode_error(&id))
        }
    }
}

fn protobuf(status: u16, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
    response
}

/// Who asked what about which resource (for the audit log).
struct Trail {
    api: &'static str,
    caller: String,
    resource: String,
}

/// What a request body names: `<instance>/<key id or alias>`, `secret/<name>`, or the
/// instance itself.
fn named_resource(instance_id: &str, body: &Body) -> String {
    let key = match body {
        Body::Encrypt(r) => &r.key_id,
        Body::Decrypt(r) => &r.key_id,
        Body::Sign(r) => &r.key_id,
        Body::Verify(r) => &r.key_id,
        Body::GenerateDataKey(r) => &r.key_id,
        Body::GetPublicKey(r) => &r.key_id,
        Body::AdvanceEncrypt(r) => &r.key_id,
        Body::AdvanceDecrypt(r) => &r.key_id,
        Body::AdvanceGenerateDataKey(r) => &r.key_id,
        Body::GenerateDataKeyPair(r) => &r.key_id,
        Body::GenerateDataKeyPairWithoutPlaintext(r) => &r.key_id,
        Body::AdvanceGenerateDataKeyPair(r) => &r.key_id,
        Body::AdvanceGenerateDataKeyPairWithoutPlaintext(r) => &r.key_id,
        Body::Hmac(r) => &r.key_id,
        Body::GetSecretValue(r) => return format!("secret/{}", r.secret_name),
        Body::GenerateRandom(_) | Body::Hash(_) => return instance_id.to_owned(),
    };
    format!("{instance_id}/{key}")
}

async fn process<S: Store + Clone>(
    app: &Arc<App<S>>,
    instance_id: &str,
    source: IpAddr,
    req: Request<Incoming>,
    request_id: &str,
    trail: &mut Trail,
) -> Result<Done, InstanceError> {
    let (parts, body) = req.into_parts();
    if parts.method != hyper::Method::POST {
        return Err(InstanceError::invalid_parameter()
            .with_detail(&format!("the method is POST, not {}", parts.method)));
    }
    let body = read_body(body, app.config.limits.body_timeout).await?;
    let now = OffsetDateTime::now_utc();
    let parsed = wire::parse_headers(
        parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
        &body,
        Some(now),
    )?;
    trail.api = parsed.api().as_str();
    trail.caller = parsed.access_key_id().to_owned();
    let served = usable_instance(app, instance_id, source, now.unix_timestamp()).await?;
    let instance = &served.instance;
    let client = authenticate(app, &parsed, source).await?;
    // The quota is spent by authenticated requests only: a stranger's cannot spend it.
    if !app.instance_api.throttle.admit(&instance.id, instance.spec) {
        return Err(InstanceError::throttling());
    }
    let body = wire::decode_body(parsed.api(), &body)?;
    trail.resource = named_resource(instance_id, &body);
    let ctx = Ctx {
        app,
        instance,
        request_id,
    };
    let call = Call {
        client_key_id: parsed.access_key_id(),
        client: &client,
        source,
        now: now.unix_timestamp(),
        migration_version: parsed.migration_key_version_id(),
    };
    dispatch(ctx, &call, body).await
}

async fn read_body(body: Incoming, limit: std::time::Duration) -> Result<Bytes, InstanceError> {
    match tokio::time::timeout(limit, Limited::new(body, MAX_BODY_LEN).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(InstanceError::request_entity_too_large())
        }
        Ok(Err(_)) => Err(InstanceError::invalid_parameter().with_detail("the body was cut short")),
        Err(_) => {
            Err(InstanceError::invalid_parameter().with_detail("the body was not received in time"))
        }
    }
}

/// The instance of this endpoint: it must exist, be Connected and within its term, and
/// the caller must be in one of its bound VPCs (when it has any).
async fn usable_instance<S: Store>(
    app: &App<S>,
    instance_id: &str,
    source: IpAddr,
    now: i64,
) -> Result<Arc<records::Served>, InstanceError> {
    let served = records::instance(app, instance_id)
        .await
        .map_err(|e| {
            warn!(error = %e, "reading the instance failed");
            InstanceError::service_unavailable_temporary()
        })?
        .ok_or_else(InstanceError::instance_state_invalid)?;
    let instance = &served.instance;
    if instance.status != InstanceStatus::Connected
        || instance.end_time.is_some_and(|end| end <= now)
    {
        return Err(InstanceError::instance_state_invalid());
    }
    if !served.admits(source) {
        info!(%source, instance = %instance.id, "caller outside the instance's VPCs");
        return Err(InstanceError::no_permission(&format!(
            "instance/{}",
            instance.id
        )));
    }
    Ok(served)
}

/// §4.6 steps 5 and 8: the client key is known and signed the request. A source whose
/// budget of failed authentications is spent is refused (`Rejected.Throttling`) without
/// a look at either; each failure spends one from the budget.
async fn authenticate<S: Store>(
    app: &App<S>,
    parsed: &ParsedRequest,
    source: IpAddr,
) -> Result<Arc<Client>, InstanceError> {
    let failures = &app.instance_api.auth_failures;
    let source = source_key(source);
    if !failures.has_token(&source, AUTH_FAILURES_PER_SECOND) {
        debug!(%source, "source over its failed-authentication budget");
        return Err(InstanceError::throttling());
    }
    let failed = |e: InstanceError| {
        failures.admit(&source, AUTH_FAILURES_PER_SECOND);
        e
    };
    let id = parsed.access_key_id();
    let client = records::client(app, id)
        .await
        .map_err(|e| {
            warn!(error = %e, "reading the client key failed");
            InstanceError::service_unavailable_temporary()
        })?
        .ok_or_else(|| failed(InstanceError::unauthorized(id)))?;
    client
        .public_key
        .verify(parsed.string_to_sign(), parsed.authorization())
        .map_err(|_| failed(InstanceError::signature_not_match()))?;
    Ok(client)
}

/// Who is calling, from where, now.
struct Call<'a> {
    client_key_id: &'a str,
    client: &'a Client,
    source: IpAddr,
    now: i64,
    migration_version: Option<&'a str>,
}

impl Call<'_> {
    /// §4.6 step 9: the access decision.
    fn allow(
        &self,
        instance: &Instance,
        resource: Resource,
        action: Permission,
    ) -> Result<(), InstanceError> {
        let shown = resource.to_string();
        let request = access::Request {
            client_key_id: self.client_key_id.to_owned(),
            source: self.source,
            instance_id: instance.id.clone(),
            resource,
            action,
            now: self.now,
        };
        match access::evaluate(&self.client.snapshot, &request) {
            Decision::Allow { .. } => Ok(()),
            Decision::Deny(reason) => {
                info!(
                    client_key = %self.client_key_id,
                    source = %self.source,
                    resource = %shown,
                    %reason,
                    "access denied"
                );
                Err(match reason.wire_code() {
                    "Unauthorized" => InstanceError::unauthorized(self.client_key_id),
                    _ => InstanceError::no_permission(&shown),
                })
            }
        }
    }
}

/// How a request names its key.
enum Named<'a> {
    /// A key id or an alias (`KeyId`), and optionally a version
    /// (`x-kms-migrationkeyversionid`).
    Key(&'a str),
    /// Only a version: the `Advance*` ciphertext's, or the transfer SDKs' header.
    Version(&'a str),
}

/// The key a request names, in this instance, allowed to the caller, and usable.
async fn key_for<S: Store>(
    ctx: Ctx<'_, S>,
    call: &Call<'_>,
    named: Named<'_>,
) -> Result<Arc<ResolvedKey>, InstanceError> {
    let unavailable = |e: records::Unavailable| {
        warn!(error = %e, "reading a key failed");
        InstanceError::service_unavailable_temporary()
    };
    let found = match named {
        Named::Key("") => {
            return Err(InstanceError::invalid_parameter().with_detail("KeyId is required"));
        }
        Named::Key(name) => records::key(ctx.app, name).await.map_err(unavailable)?,
        Named::Version(version) => records::key_of_version(ctx.app, version)
            .await
            .map_err(unavailable)?,
    };
    // A key of another instance is not found here, as in the cloud.
    let key = found
        .filter(|k| k.key.instance_id == ctx.instance.id)
        .ok_or_else(InstanceError::key_not_found)?;
    call.allow(
        ctx.instance,
        Resource::Key {
            id: key.key.id.clone(),
        },
        Permission::CryptoServiceKeyUser,
    )?;
    match key.key.state {
        KeyState::Enabled => Ok(key),
        KeyState::Disabled => Err(InstanceError::disabled()),
        KeyState::PendingDeletion => Err(InstanceError::pending_deletion()),
        KeyState::PendingImport => Err(InstanceError::pending_import()),
    }
}

/// The version of `key` to use: the primary one (`advance`), the one named by the
/// migration header, or the first.
fn version_of<'a>(
    key: &'a ResolvedKey,
    named: Option<&str>,
    advance: bool,
) -> Result<Chosen<'a>, InstanceError> {
    let version = if advance {
        key.primary()
    } else if let Some(id) = named {
        Some(key.version(id).ok_or_else(|| {
            InstanceError::invalid_parameter()
                .with_detail(&format!("the key {} has no version {id}", key.key.id))
        })?)
    } else {
        key.initial()
    };
    let version = version.ok_or_else(InstanceError::internal_failure)?;
    Ok(Chosen { key, version })
}

async fn dispatch<S: Store>(
    ctx: Ctx<'_, S>,
    call: &Call<'_>,
    body: Body,
) -> Result<Done, InstanceError> {
    let header = call.migration_version;
    match body {
        Body::Encrypt(req) => {
            let key = key_for(ctx, call, named(&req.key_id, header)).await?;
            ops::encrypt(ctx, version_of(&key, header, false)?, req).await
        }
        Body::Decrypt(req) => {
            let key = key_for(ctx, call, named(&req.key_id, header)).await?;
            ops::decrypt(ctx, version_of(&key, header, false)?, req).await
        }
        Body::Sign(req) => {
            let key = key_for(ctx, call, Named::Key(&req.key_id)).await?;
            ops::sign(ctx, version_of(&key, header, false)?, req).await
        }
        Body::Verify(req) => {
            let key = key_for(ctx, call, Named::Key(&req.key_id)).await?;
            ops::verify(ctx, version_of(&key, header, false)?, req).await
        }
        Body::GenerateRandom(req) => {
            call.allow(
                ctx.instance,
                Resource::Instance,
                Permission::CryptoServiceKeyUser,
            )?;
            ops::generate_random(ctx, req).await
        }
        Body::Hash(req) => {
            call.allow(
                ctx.instance,
                Resource::Instance,
                Permission::CryptoServiceKeyUser,
            )?;
            ops::hash(ctx, req).await
        }
        Body::GenerateDataKey(req) => {
            let key = key_for(ctx, call, Named::Key(&req.key_id)).await?;
            ops::generate_data_key(ctx, version_of(&key, header, false)?, req).await
        }
        Body::GetPublicKey(req) => {
            let key = key_for(ctx, call, Named::Key(&req.key_id)).await?;
            ops::get_public_key(ctx.request_id, version_of(&key, header, false)?)
        }
        Body::GetSecretValue(req) => {
            call.allow(
                ctx.instance,
                Resource::Secret {
                    name: req.secret_name.clone(),
                },
                Permission::CryptoServiceSecretUser,
            )?;
            super::secret::get_secret_value(ctx, req).await
        }
        Body::AdvanceEncrypt(req) => {
            let key = key_for(ctx, call, Named::Key(&req.key_id)).await?;
            ops::advance_encrypt(ctx, version_of(&key, None, true)?, req).await
        }
        Body::AdvanceDecrypt(req) => advance_decrypt(ctx, call, req).await,
        Body::AdvanceGenerateDataKey(req) => {
            let key = key_for(ctx, call, Named::Key(&req.key_id)).await?;
            ops::advance_generate_data_key(ctx, version_of(&key, None, true)?, req).await
        }
        Body::GenerateDataKeyPair(req) => {
            let pair = PairRequest {
                key_pair_spec: req.key_pair_spec,
                key_format: req.key_format,
                algorithm: req.algorithm,
                aad: req.aad,
                without_plaintext: false,
                advance: false,
            };
            data_key_pair(ctx, call, &req.key_id, pair).await
        }
        Body::GenerateDataKeyPairWithoutPlaintext(req) => {
            let pair = PairRequest {
                key_pair_spec: req.key_pair_spec,
                key_format: req.key_format,
                algorithm: req.algorithm,
                aad: req.aad,
                without_plaintext: true,
                advance: false,
            };
            data_key_pair(ctx, call, &req.key_id, pair).await
        }
        Body::AdvanceGenerateDataKeyPair(req) => {
            let pair = PairRequest {
                key_pair_spec: req.key_pair_spec,
                key_format: req.key_format,
                algorithm: String::new(),
                aad: req.aad,
                without_plaintext: false,
                advance: true,
            };
            data_key_pair(ctx, call, &req.key_id, pair).await
        }
        Body::AdvanceGenerateDataKeyPairWithoutPlaintext(req) => {
            let pair = PairRequest {
                key_pair_spec: req.key_pair_spec,
                key_format: req.key_format,
                algorithm: String::new(),
                aad: req.aad,
                without_plaintext: true,
                advance: true,
            };
            data_key_pair(ctx, call, &req.key_id, pair).await
        }
        Body::Hmac(req) => {
            // No HMAC key spec exists yet: the key is looked up and allowed, then refused.
            key_for(ctx, call, Named::Key(&req.key_id)).await?;
            Err(InstanceError::unsupported_operation()
                .with_detail("no key of this instance is an HMAC key"))
        }
    }
}

/// The four data-key-pair operations: the key named by `key_id`, its primary version for
/// the `Advance*` forms, else its first or the one the migration header names.
async fn data_key_pair<S: Store>(
    ctx: Ctx<'_, S>,
    call: &Call<'_>,
    key_id: &str,
    pair: PairRequest,
) -> Result<Done, InstanceError> {
    let key = key_for(ctx, call, Named::Key(key_id)).await?;
    let advance = pair.advance;
    let named = if advance {
        None
    } else {
        call.migration_version
    };
    ops::generate_data_key_pair(ctx, version_of(&key, named, advance)?, pair).await
}

/// `KeyId`, or (the transfer SDKs' `Decrypt`) only the version header.
fn named<'a>(key_id: &'a str, header: Option<&'a str>) -> Named<'a> {
    match header {
        Some(version) if key_id.is_empty() => Named::Version(version),
        _ => Named::Key(key_id),
    }
}

/// `AdvanceDecrypt`: a ciphertext of an `Advance*` operation names its version (any
/// `KeyId` given with it must name the same key); any other is an `Encrypt` ciphertext
/// and comes with `KeyId` and `Iv`.
async fn advance_decrypt<S: Store>(
    ctx: Ctx<'_, S>,
    call: &Call<'_>,
    req: strongroom_proto::dkms::AdvanceDecryptRequest,
) -> Result<Done, InstanceError> {
    let unavailable = |e: records::Unavailable| {
        warn!(error = %e, "reading a key failed");
        InstanceError::service_unavailable_temporary()
    };
    if let Some(version) = ops::advance_version(&req.ciphertext_blob) {
        let version = version.to_owned();
        if records::key_of_version(ctx.app, &version)
            .await
            .map_err(unavailable)?
            .is_some()
        {
            let key = key_for(ctx, call, Named::Version(&version)).await?;
            if !req.key_id.is_empty() && req.key_id != key.key.id {
                let named = records::key(ctx.app, &req.key_id)
                    .await
                    .map_err(unavailable)?;
                if named.is_none_or(|k| k.key.id != key.key.id) {
                    return Err(InstanceError::invalid_parameter()
                        .with_detail("CiphertextBlob was not made with KeyId"));
                }
            }
            let chosen = version_of(&key, Some(&version), false)?;
            return ops::advance_decrypt(ctx, chosen, true, req).await;
        }
    }
    if req.key_id.is_empty() {
        return Err(InstanceError::invalid_parameter().with_detail(
            "CiphertextBlob is not a ciphertext of an Advance operation; give KeyId and Iv for \
             one of Encrypt",
        ));
    }
    let key = key_for(ctx, call, Named::Key(&req.key_id)).await?;
    let chosen = version_of(&key, call.migration_version, false)?;
    ops::advance_decrypt(ctx, chosen, false, req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transfer_sdks_decrypt_names_only_the_version() {
        assert!(matches!(named("", Some("v")), Named::Version("v")));
        assert!(matches!(named("key-1", Some("v")), Named::Key("key-1")));
        assert!(matches!(named("key-1", None), Named::Key("key-1")));
        assert!(matches!(named("", None), Named::Key("")));
    }
}
