//! Sealing and opening secret values (`docs/secrets.md`), shared by the management API's
//! secret actions and the instance API's `GetSecretValue`.
//!
//! A value is encrypted by the instance's HSM cluster under the secret's encryption key
//! (its primary version), with AAD binding the secret's name and the version id, so a
//! ciphertext moved to another secret or version does not open. What the store keeps is
//! `key version id (36 bytes) ‖ IV (12 bytes) ‖ ciphertext ‖ tag`, the layout of the
//! management API's `Encrypt`. The plaintext exists only in this node's memory, in
//! [`SecretBytes`], for the time of one request.

use strongroom_crypto::hash::sha256;
use strongroom_crypto::secret::SecretBytes;
use strongroom_crypto::spec::KeyUsage;
use strongroom_hsm::{Op, Reply};
use strongroom_proto::hsm::v1::{Decrypt, Encrypt};
use strongroom_store::{Instance, Key, KeyState, Secret, SecretVersion, Store, StoreError};

use crate::api::crypto::{IV_LEN, VERSION_ID_LEN};
use crate::api::keys::{allows, key_ref, load, spec_of, usable_instance, wrong_state};
use crate::app::App;
use crate::error::ApiError;

/// Largest value of a version, in bytes (the cloud's 30,720).
pub const MAX_VALUE: usize = 30_720;
/// `SecretDataType` of text values.
pub const TEXT: &str = "text";
/// `SecretDataType` of binary values (base64 on the wire).
pub const BINARY: &str = "binary";

/// The AAD of one version's ciphertext: SHA-256 over a label, the name and the version
/// id, each length-prefixed so that no two (name, version) pairs share an AAD.
pub fn aad(name: &str, version_id: &str) -> Vec<u8> {
    let mut input = b"strongroom secret value v1".to_vec();
    for part in [name, version_id] {
        input.extend_from_slice(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        input.extend_from_slice(part.as_bytes());
    }
    sha256(&input).to_vec()
}

/// Checks that `key` can encrypt secrets: symmetric, `ENCRYPT/DECRYPT`.
///
/// # Errors
/// [`ApiError::InvalidParameter`] naming `EncryptionKeyId`.
pub fn check_encryption_key(key: &Key) -> Result<(), ApiError> {
    if !spec_of(key)?.is_symmetric() || !allows(key, KeyUsage::EncryptDecrypt) {
        return Err(ApiError::invalid(
            "EncryptionKeyId",
            format!(
                "the key {} ({}, {}) is not a symmetric ENCRYPT/DECRYPT key",
                key.id, key.spec, key.usage
            ),
        ));
    }
    Ok(())
}

/// The instance a secret operation runs in, with the key checked: `Enabled`, and its
/// instance `Connected` and within its term.
async fn ready<S: Store>(app: &App<S>, key: &Key, action: &str) -> Result<Instance, ApiError> {
    check_encryption_key(key)?;
    if key.state != KeyState::Enabled {
        return Err(wrong_state(key, action));
    }
    usable_instance(app, &key.instance_id).await
}

/// Encrypts `value` as version `version_id` of secret `name` under `key`'s primary
/// version.
///
/// # Errors
/// The key's state error (`Rejected.Disabled`, …), the instance's, or the HSM's.
pub async fn seal<S: Store>(
    app: &App<S>,
    key: &Key,
    name: &str,
    version_id: &str,
    value: &SecretBytes,
    action: &str,
) -> Result<Vec<u8>, ApiError> {
    let instance = ready(app, key, action).await?;
    let version = crate::api::keys::version(app, key, &key.primary_version).await?;
    let reply = app
        .hsm
        .call(
            app,
            &instance,
            Op::Encrypt(Encrypt {
                key: Some(key_ref(key, &version, KeyUsage::EncryptDecrypt)?),
                plaintext: value.expose_secret().to_vec(),
                aad: aad(name, version_id),
                ..Encrypt::default()
            }),
        )
        .await?;
    let Reply::Encrypt(done) = reply else {
        return Err(ApiError::Internal(
            "the HSM answered another operation".into(),
        ));
    };
    if version.version_id.len() != VERSION_ID_LEN || done.iv.len() != IV_LEN {
        return Err(ApiError::Internal(
            "a version id or IV of an unexpected length".into(),
        ));
    }
    let mut blob = version.version_id.into_bytes();
    blob.extend_from_slice(&done.iv);
    blob.extend_from_slice(&done.ciphertext);
    Ok(blob)
}

/// Decrypts one version of `secret`.
///
/// # Errors
/// [`ApiError::KeyState`] when the encryption key is not `Enabled` (a disabled key makes
/// its secrets unreadable), the instance's state error, [`ApiError::Internal`] for a
/// ciphertext that does not open (the store was tampered with), or the HSM's error.
pub async fn open<S: Store>(
    app: &App<S>,
    secret: &Secret,
    version: &SecretVersion,
    action: &str,
) -> Result<SecretBytes, ApiError> {
    let key = load(app, &secret.encryption_key_id).await?;
    let instance = ready(app, &key, action).await?;
    let corrupt = || {
        ApiError::Internal(format!(
            "the stored value of secret {} version {} is malformed",
            secret.name, version.version_id
        ))
    };
    let (key_version_id, rest) = version
        .ciphertext
        .split_at_checked(VERSION_ID_LEN)
        .ok_or_else(corrupt)?;
    let (iv, ciphertext) = rest.split_at_checked(IV_LEN).ok_or_else(corrupt)?;
    let key_version_id = std::str::from_utf8(key_version_id).map_err(|_| corrupt())?;
    let key_version = match app.store.get_key_version(&key.id, key_version_id).await {
        Ok(v) => v,
        Err(StoreError::NotFound(_)) => return Err(corrupt()),
        Err(e) => return Err(e.into()),
    };
    let reply = app
        .hsm
        .call(
            app,
            &instance,
            Op::Decrypt(Decrypt {
                key: Some(key_ref(&key, &key_version, KeyUsage::EncryptDecrypt)?),
                ciphertext: ciphertext.to_vec(),
                iv: iv.to_vec(),
                aad: aad(&secret.name, &version.version_id),
                ..Decrypt::default()
            }),
        )
        .await
        .map_err(|e| match e {
            // Authentication failed: what the store holds is not what was sealed here.
            ApiError::InvalidCiphertext(_) => corrupt(),
            other => other,
        })?;
    let Reply::Decrypt(done) = reply else {
        return Err(ApiError::Internal(
            "the HSM answered another operation".into(),
        ));
    };
    Ok(SecretBytes::new(done.plaintext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aad_separates_names_and_versions() {
        assert_ne!(aad("ab", "c"), aad("a", "bc"));
        assert_ne!(aad("a", "v1"), aad("a", "v2"));
        assert_eq!(aad("db", "v1"), aad("db", "v1"));
        assert_eq!(aad("db", "v1").len(), 32);
    }
}
