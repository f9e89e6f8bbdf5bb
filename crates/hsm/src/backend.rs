//! What an HSM does, as one trait with two kinds of implementation: in-process backends
//! ([`Backend`]: the software engine of an HSM node, the PKCS#11 token) and the network
//! ([`Hsm`]: the cluster client, or a local backend run off the async threads).
//!
//! Operations and replies are the HSM link's own messages (`proto/hsm.proto`), so a
//! request means the same thing whether it crosses a socket or a function call.

use std::future::Future;
use std::sync::Arc;

use strongroom_crypto::error::CryptoError;
use strongroom_proto::hsm::v1::{KeyRef, StatusReply, request, response};

use crate::error::{HsmError, Result};

/// One HSM operation.
pub type Op = request::Op;
/// Its successful result.
pub type Reply = response::Result;

/// A synchronous HSM: a CPU- or token-bound engine called from a blocking thread.
pub trait Backend: Send + Sync + 'static {
    /// Runs one operation. [`Op::Status`] answers [`Backend::status`].
    ///
    /// # Errors
    /// An [`HsmError`] with the link's code; never a panic, whatever the input.
    fn execute(&self, op: Op) -> Result<Reply>;

    /// Whether this backend can serve crypto, and what it is.
    fn status(&self) -> StatusReply;
}

/// An asynchronous HSM, the interface the KMS programs against.
pub trait Hsm: Send + Sync + 'static {
    /// Runs one operation somewhere in the HSM cluster.
    ///
    /// # Errors
    /// An [`HsmError`]; the network client retries [`HsmError::is_retryable`] failures
    /// on another node before returning one.
    fn call(&self, op: Op) -> impl Future<Output = Result<Reply>> + Send;
}

/// A [`Backend`] used as an [`Hsm`]: each call runs on tokio's blocking pool, so a slow
/// token or an RSA signature never stalls the async threads.
#[derive(Debug)]
pub struct LocalHsm<B> {
    backend: Arc<B>,
}

impl<B: Backend> LocalHsm<B> {
    /// Wraps a backend.
    pub fn new(backend: Arc<B>) -> Self {
        Self { backend }
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }
}

impl<B: Backend> Hsm for LocalHsm<B> {
    async fn call(&self, op: Op) -> Result<Reply> {
        let backend = Arc::clone(&self.backend);
        tokio::task::spawn_blocking(move || backend.execute(op))
            .await
            .map_err(|e| HsmError::internal(format!("HSM task failed: {e}")))?
    }
}

/// Parses an optional wire string of a request: empty means "not given".
pub(crate) fn optional<T: core::str::FromStr<Err = CryptoError>>(s: &str) -> Result<Option<T>> {
    if s.is_empty() {
        Ok(None)
    } else {
        Ok(Some(s.parse()?))
    }
}

/// Why a blob was refused, naming the key it was presented as and whose domain key
/// refused it (never why: the check is deliberately opaque).
pub(crate) fn blob_refused(key: &KeyRef, holder: &str) -> String {
    format!(
        "the blob does not open as version {:?} of key {:?} ({}) under {holder}'s domain key",
        key.version_id, key.key_id, key.key_spec
    )
}

/// The cache key of an opened key: SHA-256 over the length-prefixed binding, usage
/// and blob.
pub(crate) fn key_ref_digest(key: &KeyRef) -> [u8; 32] {
    let mut input = Vec::with_capacity(key.blob.len() + 96);
    for field in [
        key.key_id.as_bytes(),
        key.version_id.as_bytes(),
        key.key_spec.as_bytes(),
        key.key_usage.as_bytes(),
        key.blob.as_slice(),
    ] {
        input.extend_from_slice(&u64::try_from(field.len()).unwrap_or(u64::MAX).to_be_bytes());
        input.extend_from_slice(field);
    }
    strongroom_crypto::hash::sha256(&input)
}

/// Refuses a request that names no key id or version id.
pub(crate) fn require_ids(key_id: &str, version_id: &str) -> Result<()> {
    if key_id.is_empty() || version_id.is_empty() {
        return Err(HsmError::invalid("a key id and a version id are required"));
    }
    Ok(())
}

/// GenerateDataKeyPair, the same on every engine: a fresh pair of the requested spec
/// and format from the crypto core (its plaintext private key goes to the caller by
/// design), the private key encrypted by `encrypt` under the request's key.
pub(crate) fn data_key_pair(
    op: &strongroom_proto::hsm::v1::GenerateDataKeyPair,
    encrypt: impl FnOnce(
        &[u8],
        &strongroom_crypto::key::EncryptParams<'_>,
    ) -> Result<strongroom_crypto::key::Encrypted>,
) -> Result<strongroom_proto::hsm::v1::GenerateDataKeyPairReply> {
    use strongroom_crypto::spec::{KeyFormat, KeySpec};
    let spec: KeySpec = op.key_pair_spec.parse()?;
    let format = optional::<KeyFormat>(&op.key_format)?.unwrap_or(KeyFormat::Der);
    let pair = strongroom_crypto::data_key::generate_key_pair(spec, format)?;
    let out = encrypt(
        pair.private_key.expose_secret(),
        &strongroom_crypto::key::EncryptParams {
            algorithm: optional(&op.algorithm)?,
            iv: None,
            aad: &op.aad,
            padding: None,
        },
    )?;
    Ok(strongroom_proto::hsm::v1::GenerateDataKeyPairReply {
        private_key_plaintext: if op.without_plaintext {
            Vec::new()
        } else {
            pair.private_key.expose_secret().to_vec()
        },
        private_key_ciphertext: out.ciphertext,
        public_key: pair.public_key,
        iv: out.iv,
        algorithm: out.algorithm.to_string(),
    })
}
