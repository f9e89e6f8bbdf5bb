//! The instance API's operations (`spec/instance-api.md` §6, `docs/instance-api.md`),
//! each run in the instance's HSM cluster once the handler has authenticated the caller,
//! found the key and allowed the request.
//!
//! Versions: the operations whose ciphertexts name no version (`Encrypt`,
//! `GenerateDataKey`, `GenerateDataKeyPair*`, `Sign`, `Verify`, `GetPublicKey`, `Decrypt`)
//! use the key's first version, or the version named by `x-kms-migrationkeyversionid`;
//! the `Advance*` operations use the primary version and put its id in the ciphertext:
//! `key version id (36 ASCII bytes) ‖ IV (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`, the
//! layout of the transfer SDKs and of the management API's `Encrypt`.

use strongroom_crypto::policy;
use strongroom_crypto::spec::{KeySpec, KeyUsage};
use strongroom_hsm::{Hsm as _, HsmError, Op, Reply};
use strongroom_proto::dkms;
use strongroom_proto::hsm::v1::error::Code;
use strongroom_proto::hsm::v1::{self as link, KeyRef};
use strongroom_proto::instance::{self as wire, InstanceError};
use strongroom_store::{Instance, KeyVersion, Store};
use tracing::warn;

use super::records::ResolvedKey;
use crate::api::keys::{allows, spec_of};
use crate::app::App;

/// Length of a key version id at the head of an `Advance*` ciphertext.
pub const VERSION_ID_LEN: usize = 36;
/// IV length of the `Advance*` ciphertexts (GCM).
pub const ADVANCE_IV_LEN: usize = 12;
/// Length of the GCM tag at the end of a ciphertext.
pub const TAG_LEN: usize = 16;
/// `GenerateRandom`'s `Length` and the data keys' `NumberOfBytes` when absent.
pub const DEFAULT_LENGTH: i32 = 32;
/// Largest `Length` / `NumberOfBytes`.
pub const MAX_LENGTH: i32 = 1024;
/// Largest `Aad`.
pub const MAX_AAD: usize = 8192;

/// A successful answer: the encoded response and the key version used (sent back in
/// `x-kms-migrationkeyversionid`).
#[derive(Debug)]
pub struct Done {
    /// The protobuf response.
    pub body: Vec<u8>,
    /// The key version the operation used, for key operations.
    pub version_id: Option<String>,
}

/// What every operation needs.
#[derive(Debug)]
pub struct Ctx<'a, S> {
    /// The node.
    pub app: &'a App<S>,
    /// The instance whose endpoint was called.
    pub instance: &'a Instance,
    /// The request id, put in the response.
    pub request_id: &'a str,
}

// Only references: copied whatever `S` is (a derive would ask `S: Copy`).
impl<S> Clone for Ctx<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Ctx<'_, S> {}

/// A key chosen for an operation: the key and the version to use.
#[derive(Debug, Clone, Copy)]
pub struct Chosen<'a> {
    /// The key.
    pub key: &'a ResolvedKey,
    /// The version.
    pub version: &'a KeyVersion,
}

fn invalid(detail: impl std::fmt::Display) -> InstanceError {
    InstanceError::invalid_parameter().with_detail(&detail.to_string())
}

fn unsupported(detail: impl std::fmt::Display) -> InstanceError {
    InstanceError::unsupported_operation().with_detail(&detail.to_string())
}

/// The instance API's error for an HSM link error.
pub fn hsm_failure(e: &HsmError) -> InstanceError {
    match e.code {
        Code::InvalidParameter | Code::ImportFailed => invalid(&e.message),
        Code::Unsupported => unsupported(&e.message),
        Code::DecryptionFailed => invalid("the ciphertext does not decrypt with this key and AAD"),
        Code::Sealed | Code::NotSynced | Code::Unavailable => {
            InstanceError::service_unavailable_temporary()
        }
        _ => {
            warn!(code = ?e.code, error = %e.message, "the HSM cluster failed a request");
            InstanceError::internal_failure()
        }
    }
}

async fn call<S: Store>(ctx: Ctx<'_, S>, op: Op) -> Result<Reply, InstanceError> {
    let client = ctx
        .app
        .hsm
        .client(ctx.app, ctx.instance)
        .await
        .map_err(|e| {
            warn!(instance = %ctx.instance.id, error = %e, "no HSM client for the instance");
            InstanceError::service_unavailable_temporary()
        })?;
    client.call(op).await.map_err(|e| hsm_failure(&e))
}

fn unexpected(op: &str) -> InstanceError {
    warn!(op, "the HSM answered another operation");
    InstanceError::internal_failure()
}

/// The link's reference to the chosen version, for an operation of `usage`; the key
/// must allow the usage.
fn key_ref(chosen: Chosen<'_>, usage: KeyUsage) -> Result<KeyRef, InstanceError> {
    let key = &chosen.key.key;
    if !allows(key, usage) {
        return Err(unsupported(format!(
            "the key {} has the usage {}; this operation needs {}",
            key.id,
            key.usage,
            usage.as_str()
        )));
    }
    let blob = chosen
        .version
        .blob
        .clone()
        .ok_or_else(InstanceError::pending_import)?;
    Ok(KeyRef {
        key_id: key.id.clone(),
        version_id: chosen.version.version_id.clone(),
        key_spec: key.spec.clone(),
        key_usage: usage.as_str().to_owned(),
        blob,
    })
}

fn spec(chosen: Chosen<'_>) -> Result<KeySpec, InstanceError> {
    spec_of(&chosen.key.key).map_err(|_| InstanceError::internal_failure())
}

fn length(value: i32, name: &str) -> Result<u32, InstanceError> {
    let value = if value == 0 { DEFAULT_LENGTH } else { value };
    if !(1..=MAX_LENGTH).contains(&value) {
        return Err(invalid(format!("{name} must be 1 to {MAX_LENGTH}")));
    }
    u32::try_from(value).map_err(|_| invalid(format!("{name} must be 1 to {MAX_LENGTH}")))
}

fn check_aad(aad: &[u8]) -> Result<(), InstanceError> {
    if aad.len() > MAX_AAD {
        return Err(invalid(format!("Aad is longer than {MAX_AAD} bytes")));
    }
    Ok(())
}

fn done(body: &impl wire::Response, chosen: Option<Chosen<'_>>) -> Done {
    Done {
        body: wire::encode(body),
        version_id: chosen.map(|c| c.version.version_id.clone()),
    }
}

/// `version id ‖ iv ‖ ciphertext` (ciphertext with its tag).
fn advance_blob(version_id: &str, iv: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, InstanceError> {
    if version_id.len() != VERSION_ID_LEN || iv.len() != ADVANCE_IV_LEN {
        warn!("a version id or IV of an unexpected length");
        return Err(InstanceError::internal_failure());
    }
    let mut blob = Vec::with_capacity(VERSION_ID_LEN + ADVANCE_IV_LEN + ciphertext.len());
    blob.extend_from_slice(version_id.as_bytes());
    blob.extend_from_slice(iv);
    blob.extend_from_slice(ciphertext);
    Ok(blob)
}

/// The version id at the head of an `Advance*` ciphertext, if it has that layout.
pub fn advance_version(blob: &[u8]) -> Option<&str> {
    if blob.len() < VERSION_ID_LEN + ADVANCE_IV_LEN + TAG_LEN {
        return None;
    }
    let id = std::str::from_utf8(blob.get(..VERSION_ID_LEN)?).ok()?;
    let uuid = id.bytes().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => b == b'-',
        _ => b.is_ascii_hexdigit(),
    });
    uuid.then_some(id)
}

/// The `Advance*` operations work with symmetric keys in their default (GCM) algorithm.
fn advance_algorithm(chosen: Chosen<'_>, asked: &str) -> Result<String, InstanceError> {
    let spec = spec(chosen)?;
    if !spec.is_symmetric() {
        return Err(unsupported(format!(
            "the key {} is asymmetric; the Advance operations need a symmetric key",
            chosen.key.key.id
        )));
    }
    let default = policy::default_algorithm(spec, KeyUsage::EncryptDecrypt)
        .ok_or_else(InstanceError::internal_failure)?
        .as_str()
        .to_owned();
    if !asked.is_empty() && asked != default {
        return Err(unsupported(format!(
            "the Advance operations use {default} with this key, not {asked}"
        )));
    }
    Ok(default)
}

/// `Encrypt`.
pub async fn encrypt<S: Store>(
    ctx: Ctx<'_, S>,
    chosen: Chosen<'_>,
    req: dkms::EncryptRequest,
) -> Result<Done, InstanceError> {
    check_aad(&req.aad)?;
    let reply = call(
        ctx,
        Op::Encrypt(link::Encrypt {
            key: Some(key_ref(chosen, KeyUsage::EncryptDecrypt)?),
            plaintext: req.plaintext,
            algorithm: req.algorithm,
            iv: req.iv,
            aad: req.aad,
            padding_mode: req.padding_mode,
        }),
    )
    .await?;
    let Reply::Encrypt(out) = reply else {
        return Err(unexpected("Encrypt"));
    };
    Ok(done(
        &dkms::EncryptResponse {
            key_id: chosen.key.key.id.clone(),
            ciphertext_blob: out.ciphertext,
            iv: out.iv,
            request_id: ctx.request_id.to_owned(),
            algorithm: out.algorithm,
            padding_mode: out.padding_mode,
        },
        Some(chosen),
    ))
}

/// `Decrypt` (and `AdvanceDecrypt` of an `Encrypt` ciphertext): the reply's plaintext
/// and algorithm.
async fn decrypt_with<S: Store>(
    ctx: Ctx<'_, S>,
    chosen: Chosen<'_>,
    ciphertext: Vec<u8>,
    algorithm: String,
    iv: Vec<u8>,
    aad: Vec<u8>,
    padding_mode: String,
) -> Result<link::DecryptReply, InstanceError> {
    check_aad(&aad)?;
    let reply = call(
        ctx,
        Op::Decrypt(link::Decrypt {
            key: Some(key_ref(chosen, KeyUsage::EncryptDecrypt)?),
            ciphertext,
            algorithm,
            iv,
            aad,
            padding_mode,
        }),
    )
    .await?;
    match reply {
        Reply::Decrypt(out) => Ok(out),
        _ => Err(unexpected("Decrypt")),
    }
}

/// `Decrypt`.
pub async fn decrypt<S: Store>(
    ctx: Ctx<'_, S>,
    chosen: Chosen<'_>,
    req: dkms::DecryptRequest,
) -> Result<Done, InstanceError> {
    let padding_mode = req.padding_mode.clone();
    let out = decrypt_with(
        ctx,
        chosen,
        req.ciphertext_blob,
        req.algorithm,
        req.iv,
        req.aad,
        req.padding_mode,
    )
    .await?;
    Ok(done(
        &dkms::DecryptResponse {
            key_id: chosen.key.key.id.clone(),
            plaintext: out.plaintext,
            request_id: ctx.request_id.to_owned(),
            algorithm: out.algorithm,
            padding_mode,
        },
        Some(chosen),
    ))
}

/// The message to sign or verify and its type: a legacy `Digest` (field 2) without a
/// `Message` is a digest; an absent `MessageType` is `RAW`.
fn message_of(message: Vec<u8>, digest: Vec<u8>, message_type: String) -> (Vec<u8>, String) {
    if message.is_empty() && !digest.is_empty() {
        (digest, "DIGEST".to_owned())
    } else if message_type.is_empty() {
        (message, "RAW".to_owned())
    } else {
        (message, message_type)
    }
}

/// `Sign`. A legacy `Digest` (field 2) without a `Message` is signed as a digest.
pub async fn sign<S: Store>(
    ctx: Ctx<'_, S>,
    chosen: Chosen<'_>,
    req: dkms::SignRequest,
) -> Result<Done, InstanceError> {
    let (message, message_type) = message_of(req.message, req.digest, req.message_type);
    let reply = call(
        ctx,
        Op::Sign(link::Sign {
            key: Some(key_ref(chosen, KeyUsage::SignVerify)?),
            algorithm: req.algorithm,
            message,
            message_type: message_type.clone(),
        }),
    )
    .await?;
    let Reply::Sign(out) = reply else {
        return Err(unexpected("Sign"));
    };
    Ok(done(
        &dkms::SignResponse {
            key_id: chosen.key.key.id.clone(),
            signature: out.signature,
            request_id: ctx.request_id.to_owned(),
            algorithm: out.algorithm,
            message_type,
        },
        Some(chosen),
    ))
}

/// `Verify`: a signature that does not match is `Value = false`, not an error.
pub async fn verify<S: Store>(
    ctx: Ctx<'_, S>,
    chosen: Chosen<'_>,
    req: dkms::VerifyRequest,
) -> Result<Done, InstanceError> {
    let (message, message_type) = message_of(req.message, req.digest, req.message_type);
    let reply = call(
        ctx,
        Op::Verify(link::Verify {
            key: Some(key_ref(chosen, KeyUsage::SignVerify)?),
            algorithm: req.algorithm,
            message,
            message_type: message_type.clone(),
            signature: req.signature,
        }),
    )
    .await?;
    let Reply::Verify(out) = reply else {
        return Err(unexpected("Verify"));
    };
    Ok(done(
        &dkms::VerifyResponse {
            key_id: chosen.key.key.id.clone(),
            value: out.valid,
            request_id: ctx.request_id.to_owned(),
            algorithm: out.algorithm,
            message_type,
        },
        Some(chosen),
    ))
}

/// `GenerateRandom`.
pub async fn generate_random<S: Store>(
    ctx: Ctx<'_, S>,
    req: dkms::GenerateRandomRequest,
) -> Result<Done, InstanceError> {
    let length = length(req.length, "Length")?;
    let reply = call(ctx, Op::GenerateRandom(link::GenerateRandom { length })).await?;
    let Reply::GenerateRandom(out) = reply else {
        return Err(unexpected("GenerateRandom"));
    };
    Ok(done(
        &dkms::GenerateRandomResponse {
            random: out.random,
            request_id: ctx.request_id.to_owned(),
        },
        None,
    ))
}

/// `Hash`.
pub async fn hash<S: Store>(
    ctx: Ctx<'_, S>,
    req: dkms::HashRequest,
) -> Result<Done, InstanceError> {
    let reply = call(
        ctx,
        Op::Hash(link::Hash {
            algorithm: req.algorithm,
            message: req.message,
        }),
    )
    .await?;
    let Reply::Hash(out) = reply else {
        return Err(unexpected("Hash"));
    };
    Ok(done(
        &dkms::HashResponse {
            digest: out.digest,
            request_id: ctx.request_id.to_owned(),
        },
        None,
    ))
}

/// `GetPublicKey`: the version's public key as PEM.
pub fn get_public_key(ctx_request_id: &str, chosen: Chosen<'_>) -> Result<Done, InstanceError> {
    let key = &chosen.key.key;
    if !spec(chosen)?.is_asymmetric() {
        return Err(unsupported(format!(
            "the key {} is symmetric ({}); it has no public key",
            key.id, key.spec
        )));
    }
    let der = chosen
        .version
        .public_key
        .as_deref()
        .ok_or_else(InstanceError::pending_import)?;
    let pem = strongroom_crypto::pem::encode("PUBLIC KEY", der)
        .map_err(|_| InstanceError::internal_failure())?;
    Ok(done(
        &dkms::GetPublicKeyResponse {
            key_id: key.id.clone(),
            public_key: pem,
            request_id: ctx_request_id.to_owned(),
        },
        Some(chosen),
    ))
}

/// `GenerateDataKey` (`advance`: `AdvanceGenerateDataKey`, whose blob names the
/// version).
async fn data_key<S: Store>(
    ctx: Ctx<'_, S>,
    chosen: Chosen<'_>,
    number_of_bytes: i32,
    algorithm: String,
    aad: Vec<u8>,
) -> Result<link::GenerateDataKeyReply, InstanceError> {
    check_aad(&aad)?;
    let length = length(number_of_bytes, "NumberOfBytes")?;
    if !spec(chosen)?.is_symmetric() {
        return Err(unsupported(format!(
            "the key {} is asymmetric; data keys are encrypted under a symmetric key",
            chosen.key.key.id
        )));
    }
    let reply = call(
        ctx,
        Op::GenerateDataKey(link::GenerateDataKey {
            key: Some(key_ref(chosen, KeyUsage::EncryptDecrypt)?),
            length,
            algorithm,
            aad,
        }),
    )
    .await?;
    match reply {
        Reply::GenerateDataKey(out) => Ok(out),
        _ => Err(unexpected("GenerateDataKey")),
    }
}

/// `GenerateDataKey`.
pub async fn generate_data_key<S: Store>(
    ctx: Ctx<'_, S>,
    chosen: Chosen<'_>,
    req: dkms::GenerateDataKeyRequest,
) -> Result<Done, InstanceError> {
    let out = data_key(ctx, chosen, req.number_of_bytes, req.algorithm, req.aad).await?;
    Ok(done(
        &dkms::GenerateDataKeyResponse {
            key_id: chosen.key.key.id.clone(),
            iv: out.iv,
            plaintext: out.plaintext,
            ciphertext_blob: out.ciphertext,
            request_id: ctx.request_id.to_owned(),
            algorithm: out.algorithm,
        },
        Some(chosen),
    ))
}

/// `AdvanceGenerateDataKey`.
pub async fn advance_generate_data_key<S: Store>(
    ctx: Ctx<'_, S>,
    chosen: Chosen<'_>,
    req: dkms::AdvanceGenerateDataKeyRequest,
) -> Result<Done, InstanceError> {
    let algorithm = advance_algorithm(chosen, "")?;
    let out = data_key(ctx, chosen, req.number_of_bytes, algorithm, req.aad).await?;
    let blob = advance_blob(&chosen.version.version_id, &out.iv, &out.ciphertext)?;
    Ok(done(
        &dkms::AdvanceGenerateDataKeyResponse {
            key_id: chosen.key.key.id.clone(),
            iv: out.iv,
            plaintext: out.plaintext,
            ciphertext_blob: blob,
            request_id: ctx.request_id.to_owned(),
            algorithm: out.algorithm,
            key_version_id: chosen.version.version_id.clone(),
        },
        Some(chosen),
    ))
}

/// `AdvanceEncrypt`.
pub async fn advance_encrypt<S: Store>(
    ctx: Ctx<'_, S>,
    chosen: Chosen<'_>,
    req: dkms::AdvanceEncryptRequest,
) -> Result<Done, InstanceError> {
    check_aad(&req.aad)?;
    let algorithm = advance_algorithm(chosen, &req.algorithm)?;
    if !req.iv.is_empty() && req.iv.len() != ADVANCE_IV_LEN {
        return Err(invalid(format!("Iv must be {ADVANCE_IV_LEN} bytes")));
    }
    let reply = call(
        ctx,
        Op::Encrypt(link::Encrypt {
            key: Some(key_ref(chosen, KeyUsage::EncryptDecrypt)?),
            plaintext: req.plaintext,
            algorithm,
            iv: req.iv,
            aad: req.aad,
            padding_mode: String::new(),
        }),
    )
    .await?;
    let Reply::Encrypt(out) = reply else {
        return Err(unexpected("AdvanceEncrypt"));
    };
    let blob = advance_blob(&chosen.version.version_id, &out.iv, &out.ciphertext)?;
    Ok(done(
        &dkms::AdvanceEncryptResponse {
            key_id: chosen.key.key.id.clone(),
            ciphertext_blob: blob,
            iv: out.iv,
            request_id: ctx.request_id.to_owned(),
            algorithm: out.algorithm,
            padding_mode: out.padding_mode,
            key_version_id: chosen.version.version_id.clone(),
        },
        Some(chosen),
    ))
}

/// `AdvanceDecrypt`: of an `Advance*` ciphertext (`advance`: the version named in the
/// blob was chosen), or of an `Encrypt` one given with its `Iv`.
pub async fn advance_decrypt<S: Store>(
    ctx: Ctx<'_, S>,
    chosen: Chosen<'_>,
    advance: bool,
    req: dkms::AdvanceDecryptRequest,
) -> Result<Done, InstanceError> {
    let padding_mode = req.padding_mode.clone();
    let out = if advance {
        let algorithm = advance_algorithm(chosen, "")?;
        let rest = req
            .ciphertext_blob
            .get(VERSION_ID_LEN..)
            .ok_or_else(|| invalid("CiphertextBlob is too short"))?;
        let (iv, ciphertext) = rest
            .split_at_checked(ADVANCE_IV_LEN)
            .ok_or_else(|| invalid("CiphertextBlob is too short"))?;
        decrypt_with(
            ctx,
            chosen,
            ciphertext.to_vec(),
            algorithm,
            iv.to_vec(),
            req.aad,
            String::new(),
        )
        .await?
    } else {
        decrypt_with(
            ctx,
            chosen,
            req.ciphertext_blob,
            req.algorithm,
            req.iv,
            req.aad,
            req.padding_mode,
        )
        .await?
    };
    Ok(done(
        &dkms::AdvanceDecryptResponse {
            key_id: chosen.key.key.id.clone(),
            plaintext: out.plaintext,
            request_id: ctx.request_id.to_owned(),
            algorithm: out.algorithm,
            padding_mode,
            key_version_id: chosen.version.version_id.clone(),
        },
        Some(chosen),
    ))
}

/// What the four data-key-pair operations ask.
#[derive(Debug)]
pub struct PairRequest {
    /// `KeyPairSpec`.
    pub key_pair_spec: String,
    /// `KeyFormat`.
    pub key_format: String,
    /// `Algorithm` (empty for the `Advance*` forms).
    pub algorithm: String,
    /// `Aad`.
    pub aad: Vec<u8>,
    /// The `*WithoutPlaintext` forms.
    pub without_plaintext: bool,
    /// The `Advance*` forms.
    pub advance: bool,
}

/// `GenerateDataKeyPair`, `GenerateDataKeyPairWithoutPlaintext` and their `Advance*`
/// forms.
pub async fn generate_data_key_pair<S: Store>(
    ctx: Ctx<'_, S>,
    chosen: Chosen<'_>,
    req: PairRequest,
) -> Result<Done, InstanceError> {
    check_aad(&req.aad)?;
    let algorithm = if req.advance {
        advance_algorithm(chosen, "")?
    } else {
        if !spec(chosen)?.is_symmetric() {
            return Err(unsupported(format!(
                "the key {} is asymmetric; data key pairs are encrypted under a symmetric key",
                chosen.key.key.id
            )));
        }
        req.algorithm
    };
    let key_format = if req.key_format.is_empty() {
        "PEM".to_owned()
    } else {
        req.key_format
    };
    if key_format != "PEM" && key_format != "DER" {
        return Err(invalid("KeyFormat must be PEM or DER"));
    }
    let reply = call(
        ctx,
        Op::GenerateDataKeyPair(link::GenerateDataKeyPair {
            key: Some(key_ref(chosen, KeyUsage::EncryptDecrypt)?),
            key_pair_spec: req.key_pair_spec.clone(),
            key_format,
            algorithm,
            aad: req.aad,
            without_plaintext: req.without_plaintext,
        }),
    )
    .await?;
    let Reply::GenerateDataKeyPair(out) = reply else {
        return Err(unexpected("GenerateDataKeyPair"));
    };
    let key_id = chosen.key.key.id.clone();
    let version_id = chosen.version.version_id.clone();
    let request_id = ctx.request_id.to_owned();
    let spec = req.key_pair_spec;
    let body = match (req.advance, req.without_plaintext) {
        (false, false) => wire::encode(&dkms::GenerateDataKeyPairResponse {
            key_id,
            iv: out.iv,
            key_pair_spec: spec,
            private_key_plaintext: out.private_key_plaintext,
            private_key_ciphertext_blob: out.private_key_ciphertext,
            public_key: out.public_key,
            request_id,
            algorithm: out.algorithm,
        }),
        (false, true) => wire::encode(&dkms::GenerateDataKeyPairWithoutPlaintextResponse {
            key_id,
            iv: out.iv,
            key_pair_spec: spec,
            private_key_ciphertext_blob: out.private_key_ciphertext,
            public_key: out.public_key,
            request_id,
            algorithm: out.algorithm,
        }),
        (true, false) => wire::encode(&dkms::AdvanceGenerateDataKeyPairResponse {
            key_id,
            private_key_ciphertext_blob: advance_blob(
                &version_id,
                &out.iv,
                &out.private_key_ciphertext,
            )?,
            iv: out.iv,
            key_pair_spec: spec,
            private_key_plaintext: out.private_key_plaintext,
            public_key: out.public_key,
            request_id,
            algorithm: out.algorithm,
            key_version_id: version_id,
        }),
        (true, true) => wire::encode(&dkms::AdvanceGenerateDataKeyPairWithoutPlaintextResponse {
            key_id,
            private_key_ciphertext_blob: advance_blob(
                &version_id,
                &out.iv,
                &out.private_key_ciphertext,
            )?,
            iv: out.iv,
            key_pair_spec: spec,
            public_key: out.public_key,
            request_id,
            algorithm: out.algorithm,
            key_version_id: version_id,
        }),
    };
    Ok(Done {
        body,
        version_id: Some(chosen.version.version_id.clone()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, reason = "tests")]

    use super::*;

    #[test]
    fn advance_blobs_name_their_version() {
        let id = "475f1620-b9d3-4d35-b5c6-3fbdd941423d";
        let blob = advance_blob(id, &[7; 12], &[9; 20]).unwrap_or_default();
        assert_eq!(advance_version(&blob), Some(id));
        assert_eq!(advance_version(&blob[..50]), None);
        let mut not_uuid = blob.clone();
        not_uuid[8] = b'x';
        assert_eq!(advance_version(&not_uuid), None);
        assert_eq!(advance_version(b"short"), None);
    }

    #[test]
    fn lengths_default_and_are_bounded() {
        assert_eq!(length(0, "Length").ok(), Some(32));
        assert_eq!(length(1024, "Length").ok(), Some(1024));
        assert!(length(1025, "Length").is_err());
        assert!(length(-1, "Length").is_err());
    }
}
