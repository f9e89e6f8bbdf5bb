//! Using keys through the management API, as the cloud's OpenAPI does
//! (`docs/keys.md`, "Using keys"): Encrypt, Decrypt, AsymmetricEncrypt,
//! AsymmetricDecrypt, AsymmetricSign, AsymmetricVerify. The instance API the official
//! instance SDKs speak is the fast path; these are for administrators and tools.
//!
//! `Encrypt`'s `CiphertextBlob` is the form the cloud's transfer SDKs use:
//! `base64(KeyVersionId (36 ASCII characters) ‖ IV (12 bytes) ‖ ciphertext ‖ tag)`, with
//! the bytes of the `Plaintext` string as sent encrypted, and an `EncryptionContext`
//! bound as AAD = SHA-256 of `k1=v1&k2=v2…` with the keys sorted.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use strongroom_crypto::hash::sha256;
use strongroom_crypto::spec::KeyUsage;
use strongroom_hsm::{Op, Reply};
use strongroom_proto::hsm::v1::{Decrypt, Encrypt, KeyRef, Sign, Verify};
use strongroom_store::{Key, KeyState, KeyVersion, Store, StoreError};

use super::keys::{allows, key_ref, resolve, spec_of, usable_instance, wrong_state};
use super::params::Params;
use super::{Answer, answer};
use crate::app::App;
use crate::error::ApiError;

/// Length of a key version id at the head of a `CiphertextBlob`.
pub const VERSION_ID_LEN: usize = 36;
/// IV length of the symmetric ciphers (AES-GCM, SM4-GCM).
pub const IV_LEN: usize = 12;
/// Largest `Plaintext` of `Encrypt` (6 KiB, the cloud's).
pub const MAX_PLAINTEXT: usize = 6 * 1024;

/// The AAD an `EncryptionContext` (a JSON object of strings) binds; empty without one.
///
/// # Errors
/// [`ApiError::InvalidParameter`] naming `EncryptionContext`.
pub fn context_aad(p: &Params) -> Result<Vec<u8>, ApiError> {
    if p.optional("EncryptionContext").is_none() {
        return Ok(Vec::new());
    }
    let context: BTreeMap<String, String> = p.json("EncryptionContext")?;
    if context.is_empty() {
        return Ok(Vec::new());
    }
    let joined = context
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    Ok(sha256(joined.as_bytes()).to_vec())
}

/// Checks that `key` can do an operation of `usage` now, and finds its instance.
async fn ready<S: Store>(
    app: &App<S>,
    key: &Key,
    usage: KeyUsage,
    action: &str,
) -> Result<strongroom_store::Instance, ApiError> {
    if !allows(key, usage) {
        return Err(ApiError::invalid(
            "KeyId",
            format!(
                "the key {} has the usage {}; {action} needs {}",
                key.id,
                key.usage,
                usage.as_str()
            ),
        ));
    }
    if key.state != KeyState::Enabled {
        return Err(wrong_state(key, action));
    }
    usable_instance(app, &key.instance_id).await
}

fn b64(p: &Params, name: &str) -> Result<Vec<u8>, ApiError> {
    STANDARD
        .decode(p.required(name)?.trim())
        .map_err(|_| ApiError::invalid(name, "is not base64"))
}

async fn named_version<S: Store>(
    app: &App<S>,
    key: &Key,
    p: &Params,
) -> Result<KeyVersion, ApiError> {
    super::keys::version(app, key, p.required("KeyVersionId")?).await
}

pub(crate) async fn encrypt<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    let plaintext = p.required("Plaintext")?;
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(ApiError::invalid(
            "Plaintext",
            format!("is longer than {MAX_PLAINTEXT} bytes"),
        ));
    }
    let aad = context_aad(p)?;
    if !spec_of(&key)?.is_symmetric() {
        return Err(ApiError::UnsupportedOperation(format!(
            "The key {} is asymmetric; use AsymmetricEncrypt.",
            key.id
        )));
    }
    let instance = ready(app, &key, KeyUsage::EncryptDecrypt, "Encrypt").await?;
    let version = super::keys::version(app, &key, &key.primary_version).await?;
    let reply = app
        .hsm
        .call(
            app,
            &instance,
            Op::Encrypt(Encrypt {
                key: Some(key_ref(&key, &version, KeyUsage::EncryptDecrypt)?),
                plaintext: plaintext.as_bytes().to_vec(),
                aad,
                ..Encrypt::default()
            }),
        )
        .await?;
    let Reply::Encrypt(done) = reply else {
        return Err(unexpected("Encrypt"));
    };
    if version.version_id.len() != VERSION_ID_LEN || done.iv.len() != IV_LEN {
        return Err(ApiError::Internal(
            "a version id or IV of an unexpected length".into(),
        ));
    }
    let mut blob = version.version_id.clone().into_bytes();
    blob.extend_from_slice(&done.iv);
    blob.extend_from_slice(&done.ciphertext);
    Ok(answer([
        ("KeyId", json!(key.id)),
        ("KeyVersionId", json!(version.version_id)),
        ("CiphertextBlob", json!(STANDARD.encode(blob))),
    ]))
}

pub(crate) async fn decrypt<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let blob = b64(p, "CiphertextBlob")?;
    let aad = context_aad(p)?;
    let invalid =
        || ApiError::InvalidCiphertext("CiphertextBlob is not a ciphertext of Encrypt".into());
    let (version_id, rest) = blob.split_at_checked(VERSION_ID_LEN).ok_or_else(invalid)?;
    let (iv, ciphertext) = rest.split_at_checked(IV_LEN).ok_or_else(invalid)?;
    if ciphertext.is_empty() {
        return Err(invalid());
    }
    let version_id = std::str::from_utf8(version_id).map_err(|_| invalid())?;
    let version = match app.store.find_key_version(version_id).await {
        Ok(v) => v,
        Err(StoreError::NotFound(_)) => return Err(invalid()),
        Err(e) => return Err(e.into()),
    };
    let key = super::keys::load(app, &version.key_id).await?;
    let instance = ready(app, &key, KeyUsage::EncryptDecrypt, "Decrypt").await?;
    let reply = app
        .hsm
        .call(
            app,
            &instance,
            Op::Decrypt(Decrypt {
                key: Some(key_ref(&key, &version, KeyUsage::EncryptDecrypt)?),
                ciphertext: ciphertext.to_vec(),
                iv: iv.to_vec(),
                aad,
                ..Decrypt::default()
            }),
        )
        .await?;
    let Reply::Decrypt(done) = reply else {
        return Err(unexpected("Decrypt"));
    };
    let text = String::from_utf8(done.plaintext)
        .map_err(|_| ApiError::InvalidCiphertext("the plaintext is not text".into()))?;
    Ok(answer([
        ("KeyId", json!(key.id)),
        ("KeyVersionId", json!(version.version_id)),
        ("Plaintext", json!(text)),
    ]))
}

/// What the four asymmetric actions share: the key named by `KeyId`, ready for `usage`;
/// the version named by `KeyVersionId`; `Algorithm`; the base64 parameter `input`; and
/// the HSM's reply to the operation `make` builds from them.
async fn asymmetric<S, F>(
    app: &App<S>,
    p: &Params,
    usage: KeyUsage,
    action: &str,
    input: &str,
    make: F,
) -> Result<(Key, KeyVersion, Reply), ApiError>
where
    S: Store,
    F: FnOnce(KeyRef, String, Vec<u8>) -> Op,
{
    let key = resolve(app, p.required("KeyId")?).await?;
    let algorithm = p.required("Algorithm")?.to_owned();
    let data = b64(p, input)?;
    let instance = ready(app, &key, usage, action).await?;
    let version = named_version(app, &key, p).await?;
    let op = make(key_ref(&key, &version, usage)?, algorithm, data);
    let reply = app.hsm.call(app, &instance, op).await?;
    Ok((key, version, reply))
}

fn unexpected(op: &str) -> ApiError {
    ApiError::Internal(format!("the HSM answered {op} with another reply"))
}

fn answer_for(key: &Key, version: &KeyVersion, name: &str, value: serde_json::Value) -> Answer {
    answer([
        ("KeyId", json!(key.id)),
        ("KeyVersionId", json!(version.version_id)),
        (name, value),
    ])
}

pub(crate) async fn asymmetric_encrypt<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let (key, version, reply) = asymmetric(
        app,
        p,
        KeyUsage::EncryptDecrypt,
        "AsymmetricEncrypt",
        "Plaintext",
        |key, algorithm, plaintext| {
            Op::Encrypt(Encrypt {
                key: Some(key),
                plaintext,
                algorithm,
                ..Encrypt::default()
            })
        },
    )
    .await?;
    let Reply::Encrypt(done) = reply else {
        return Err(unexpected("Encrypt"));
    };
    let blob = json!(STANDARD.encode(done.ciphertext));
    Ok(answer_for(&key, &version, "CiphertextBlob", blob))
}

pub(crate) async fn asymmetric_decrypt<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let (key, version, reply) = asymmetric(
        app,
        p,
        KeyUsage::EncryptDecrypt,
        "AsymmetricDecrypt",
        "CiphertextBlob",
        |key, algorithm, ciphertext| {
            Op::Decrypt(Decrypt {
                key: Some(key),
                ciphertext,
                algorithm,
                ..Decrypt::default()
            })
        },
    )
    .await?;
    let Reply::Decrypt(done) = reply else {
        return Err(unexpected("Decrypt"));
    };
    let plaintext = json!(STANDARD.encode(done.plaintext));
    Ok(answer_for(&key, &version, "Plaintext", plaintext))
}

pub(crate) async fn asymmetric_sign<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let (key, version, reply) = asymmetric(
        app,
        p,
        KeyUsage::SignVerify,
        "AsymmetricSign",
        "Digest",
        |key, algorithm, message| {
            Op::Sign(Sign {
                key: Some(key),
                algorithm,
                message,
                message_type: "DIGEST".to_owned(),
            })
        },
    )
    .await?;
    let Reply::Sign(done) = reply else {
        return Err(unexpected("Sign"));
    };
    let signature = json!(STANDARD.encode(done.signature));
    Ok(answer_for(&key, &version, "Value", signature))
}

pub(crate) async fn asymmetric_verify<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let signature = b64(p, "Value")?;
    let (key, version, reply) = asymmetric(
        app,
        p,
        KeyUsage::SignVerify,
        "AsymmetricVerify",
        "Digest",
        |key, algorithm, message| {
            Op::Verify(Verify {
                key: Some(key),
                algorithm,
                message,
                message_type: "DIGEST".to_owned(),
                signature,
            })
        },
    )
    .await?;
    let Reply::Verify(done) = reply else {
        return Err(unexpected("Verify"));
    };
    Ok(answer_for(&key, &version, "Value", json!(done.valid)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn the_context_binds_sorted_pairs() {
        let p = Params(vec![(
            "EncryptionContext".into(),
            r#"{"b":"2","a":"1"}"#.into(),
        )]);
        assert_eq!(context_aad(&p).unwrap(), sha256(b"a=1&b=2").to_vec());
        assert!(context_aad(&Params::default()).unwrap().is_empty());
        let bad = Params(vec![("EncryptionContext".into(), r#"{"a":1}"#.into())]);
        assert!(context_aad(&bad).is_err());
    }
}
