//! The software engine of an HSM node: every operation of the link, computed by the
//! crypto core with keys opened from blobs under the cluster's domain key.
//!
//! Opened keys are cached in memory (bounded), keyed by a digest of the blob and its
//! binding, so a hot key is parsed once, not on every request. The cache holds parsed
//! keys only inside this process, the node's own memory, like a hardware HSM's key
//! cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use strongroom_crypto::blob::{BlobBinding, DomainKey};
use strongroom_crypto::data_key;
use strongroom_crypto::hash;
use strongroom_crypto::import;
use strongroom_crypto::key::{DecryptParams, EncryptParams, Key};
use strongroom_crypto::material::KeyMaterial;
use strongroom_crypto::random;
use strongroom_crypto::spec::{
    Algorithm, HashAlgorithm, KeySpec, KeyUsage, MessageType, PaddingMode,
};
use strongroom_proto::hsm::v1::{self as pb, response::Result as R};

use crate::backend::{
    Backend, Op, Reply, blob_refused, data_key_pair, key_ref_digest, optional, require_ids,
};
use crate::error::{HsmError, Result};

/// Most keys kept opened at once; past it the cache is emptied and refilled by use.
pub const DEFAULT_CACHE_CAPACITY: usize = 16_384;

/// Most bytes of random data one request may ask for (the instance API's limit).
pub const MAX_RANDOM_LEN: u32 = 1024;

/// The software engine: a domain key and a cache of opened keys.
pub struct SoftwareBackend {
    domain: DomainKey,
    fingerprint: String,
    status: pb::StatusReply,
    cache: Mutex<HashMap<[u8; 32], Arc<Key>>>,
    capacity: usize,
}

impl core::fmt::Debug for SoftwareBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SoftwareBackend")
            .field("domain_key_fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl SoftwareBackend {
    /// An engine over `domain`. `status` is what [`Backend::status`] reports (the
    /// node fills in its role and id); the fingerprint is set here.
    ///
    /// # Errors
    /// An internal error if the fingerprint cannot be computed.
    pub fn new(domain: DomainKey, mut status: pb::StatusReply) -> Result<Self> {
        let fingerprint = domain.fingerprint()?;
        status.sealed = false;
        status.synced = true;
        status.domain_key_fingerprint.clone_from(&fingerprint);
        Ok(Self {
            domain,
            fingerprint,
            status,
            cache: Mutex::new(HashMap::new()),
            capacity: DEFAULT_CACHE_CAPACITY,
        })
    }

    /// The domain key's fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Opens (or finds in the cache) the key a [`pb::KeyRef`] names.
    fn open(&self, key: Option<&pb::KeyRef>) -> Result<Arc<Key>> {
        let key = key.ok_or_else(|| HsmError::invalid("the request names no key"))?;
        let spec: KeySpec = key.key_spec.parse()?;
        let usage: KeyUsage = key.key_usage.parse()?;
        let id = key_ref_digest(key);
        if let Some(found) = self.lock().get(&id) {
            return Ok(Arc::clone(found));
        }
        let binding = BlobBinding {
            key_id: &key.key_id,
            version_id: &key.version_id,
            spec,
        };
        let material = self.domain.open_key(&binding, &key.blob).map_err(|_| {
            HsmError::new(
                pb::error::Code::InvalidBlob,
                blob_refused(key, "this cluster"),
            )
        })?;
        let opened = Arc::new(Key::new(material, usage)?);
        let mut cache = self.lock();
        if cache.len() >= self.capacity {
            cache.clear();
        }
        cache.insert(id, Arc::clone(&opened));
        Ok(opened)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<Key>>> {
        // A panic while holding the lock cannot leave the map inconsistent (inserts
        // and clears are single calls), so a poisoned lock is still usable.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn seal(
        &self,
        key_id: &str,
        version_id: &str,
        material: &KeyMaterial,
    ) -> Result<pb::KeyBlobReply> {
        let spec = material.spec();
        let blob = self.domain.seal_key(
            &BlobBinding {
                key_id,
                version_id,
                spec,
            },
            material,
        )?;
        let public_key = if spec.is_asymmetric() {
            material.public_key()?.to_der()
        } else {
            Vec::new()
        };
        Ok(pb::KeyBlobReply { blob, public_key })
    }

    fn generate_key(&self, op: &pb::GenerateKey) -> Result<pb::KeyBlobReply> {
        let spec: KeySpec = op.key_spec.parse()?;
        let usage: KeyUsage = op.key_usage.parse()?;
        require_ids(&op.key_id, &op.version_id)?;
        let material = KeyMaterial::generate(spec)?;
        // Refuse a spec/usage pair that could never be used, before handing out a blob.
        let key = Key::new(material, usage)?;
        self.seal(&op.key_id, &op.version_id, key.material())
    }

    fn generate_wrapping_key(&self, op: &pb::GenerateWrappingKey) -> Result<pb::KeyBlobReply> {
        require_ids(&op.key_id, &op.version_id)?;
        let spec: strongroom_crypto::spec::WrappingKeySpec = op.wrapping_key_spec.parse()?;
        let material = import::generate_wrapping_key(spec)?;
        self.seal(&op.key_id, &op.version_id, &material)
    }

    /// Unwraps imported material inside the node and seals it for the key version. On
    /// re-import (`bound` set) the version's current blob is opened too, and the new
    /// material must be the same key ([`KeyMaterial::is_same_key`]).
    fn unwrap_key_material(&self, op: &pb::UnwrapKeyMaterial) -> Result<pb::KeyBlobReply> {
        require_ids(&op.key_id, &op.version_id)?;
        let current = match op.bound.as_ref() {
            Some(bound) => {
                require_bound_to(op, bound)?;
                Some(self.open(Some(bound))?)
            }
            None => None,
        };
        let wrapping = self.open(op.wrapping_key.as_ref())?;
        let algorithm: strongroom_crypto::spec::WrappingAlgorithm =
            op.wrapping_algorithm.parse()?;
        let target: KeySpec = op.key_spec.parse()?;
        let usage: KeyUsage = op.key_usage.parse()?;
        let material = import::unwrap_key_material(
            wrapping.material(),
            algorithm,
            target,
            &op.encrypted_key_material,
        )?;
        let key = Key::new(material, usage)?;
        if let Some(current) = current
            && !current.material().is_same_key(key.material())
        {
            return Err(HsmError::new(
                pb::error::Code::ImportFailed,
                "the material differs from the material this key version already holds",
            ));
        }
        self.seal(&op.key_id, &op.version_id, key.material())
    }

    fn encrypt(&self, op: &pb::Encrypt) -> Result<pb::EncryptReply> {
        let key = self.open(op.key.as_ref())?;
        let params = EncryptParams {
            algorithm: optional::<Algorithm>(&op.algorithm)?,
            iv: (!op.iv.is_empty()).then_some(op.iv.as_slice()),
            aad: &op.aad,
            padding: optional::<PaddingMode>(&op.padding_mode)?,
        };
        let out = key.encrypt(&op.plaintext, &params)?;
        Ok(pb::EncryptReply {
            ciphertext: out.ciphertext,
            iv: out.iv,
            algorithm: out.algorithm.to_string(),
            padding_mode: out.padding.map(|p| p.to_string()).unwrap_or_default(),
        })
    }

    fn decrypt(&self, op: &pb::Decrypt) -> Result<pb::DecryptReply> {
        let key = self.open(op.key.as_ref())?;
        let algorithm = optional::<Algorithm>(&op.algorithm)?;
        let params = DecryptParams {
            algorithm,
            iv: &op.iv,
            aad: &op.aad,
            padding: optional::<PaddingMode>(&op.padding_mode)?,
        };
        let plaintext = key.decrypt(&op.ciphertext, &params)?;
        let algorithm = match algorithm {
            Some(a) => a,
            None => default_algorithm(&key)?,
        };
        Ok(pb::DecryptReply {
            plaintext: plaintext.expose_secret().to_vec(),
            algorithm: algorithm.to_string(),
        })
    }

    fn sign(&self, op: &pb::Sign) -> Result<pb::SignReply> {
        let key = self.open(op.key.as_ref())?;
        let (algorithm, signature) = key.sign(
            optional::<Algorithm>(&op.algorithm)?,
            &op.message,
            optional::<MessageType>(&op.message_type)?.unwrap_or_default(),
        )?;
        Ok(pb::SignReply {
            signature,
            algorithm: algorithm.to_string(),
        })
    }

    fn verify(&self, op: &pb::Verify) -> Result<pb::VerifyReply> {
        let key = self.open(op.key.as_ref())?;
        let (algorithm, valid) = key.verify(
            optional::<Algorithm>(&op.algorithm)?,
            &op.message,
            optional::<MessageType>(&op.message_type)?.unwrap_or_default(),
            &op.signature,
        )?;
        Ok(pb::VerifyReply {
            valid,
            algorithm: algorithm.to_string(),
        })
    }

    fn get_public_key(&self, op: &pb::GetPublicKey) -> Result<pb::PublicKeyReply> {
        let key = self.open(op.key.as_ref())?;
        Ok(pb::PublicKeyReply {
            public_key: key.public_key()?.to_der(),
        })
    }

    fn generate_data_key(&self, op: &pb::GenerateDataKey) -> Result<pb::GenerateDataKeyReply> {
        let key = self.open(op.key.as_ref())?;
        let len = if op.length == 0 {
            data_key::DEFAULT_DATA_KEY_LEN
        } else {
            usize::try_from(op.length).map_err(|_| HsmError::invalid("data key length"))?
        };
        let plaintext = data_key::generate_data_key(len)?;
        let out = key.encrypt(
            plaintext.expose_secret(),
            &EncryptParams {
                algorithm: optional::<Algorithm>(&op.algorithm)?,
                iv: None,
                aad: &op.aad,
                padding: None,
            },
        )?;
        Ok(pb::GenerateDataKeyReply {
            plaintext: plaintext.expose_secret().to_vec(),
            ciphertext: out.ciphertext,
            iv: out.iv,
            algorithm: out.algorithm.to_string(),
        })
    }

    fn generate_data_key_pair(
        &self,
        op: &pb::GenerateDataKeyPair,
    ) -> Result<pb::GenerateDataKeyPairReply> {
        let key = self.open(op.key.as_ref())?;
        data_key_pair(op, |plaintext, params| Ok(key.encrypt(plaintext, params)?))
    }
}

impl Backend for SoftwareBackend {
    fn execute(&self, op: Op) -> Result<Reply> {
        Ok(match op {
            Op::Status(_) => R::Status(self.status()),
            Op::GenerateKey(op) => R::GenerateKey(self.generate_key(&op)?),
            Op::GenerateWrappingKey(op) => R::GenerateWrappingKey(self.generate_wrapping_key(&op)?),
            Op::UnwrapKeyMaterial(op) => R::UnwrapKeyMaterial(self.unwrap_key_material(&op)?),
            Op::GetPublicKey(op) => R::GetPublicKey(self.get_public_key(&op)?),
            Op::Encrypt(op) => R::Encrypt(self.encrypt(&op)?),
            Op::Decrypt(op) => R::Decrypt(self.decrypt(&op)?),
            Op::Sign(op) => R::Sign(self.sign(&op)?),
            Op::Verify(op) => R::Verify(self.verify(&op)?),
            Op::GenerateDataKey(op) => R::GenerateDataKey(self.generate_data_key(&op)?),
            Op::GenerateDataKeyPair(op) => {
                R::GenerateDataKeyPair(self.generate_data_key_pair(&op)?)
            }
            Op::GenerateRandom(op) => R::GenerateRandom(generate_random(&op)?),
            Op::Hash(op) => R::Hash(hash_message(&op)?),
        })
    }

    fn status(&self) -> pb::StatusReply {
        self.status.clone()
    }
}

/// Random bytes, 1..=1024 of them.
///
/// # Errors
/// [`pb::error::Code::InvalidParameter`] for a length outside the range.
pub fn generate_random(op: &pb::GenerateRandom) -> Result<pb::GenerateRandomReply> {
    if op.length == 0 || op.length > MAX_RANDOM_LEN {
        return Err(HsmError::invalid(format!(
            "random length {} is outside 1..={MAX_RANDOM_LEN}",
            op.length
        )));
    }
    let len = usize::try_from(op.length).map_err(|_| HsmError::invalid("random length"))?;
    Ok(pb::GenerateRandomReply {
        random: random::public_bytes(len)?,
    })
}

/// A digest of the message.
///
/// # Errors
/// [`pb::error::Code::InvalidParameter`] for an unknown algorithm.
pub fn hash_message(op: &pb::Hash) -> Result<pb::HashReply> {
    let algorithm = optional::<HashAlgorithm>(&op.algorithm)?.unwrap_or_default();
    Ok(pb::HashReply {
        digest: hash::hash(algorithm, &op.message),
    })
}

/// Refuses a re-import whose `bound` blob is presented as another key version than
/// the one the material is imported into: the comparison must be with the material of
/// this very version.
fn require_bound_to(op: &pb::UnwrapKeyMaterial, bound: &pb::KeyRef) -> Result<()> {
    if bound.key_id != op.key_id
        || bound.version_id != op.version_id
        || bound.key_spec != op.key_spec
        || bound.key_usage != op.key_usage
    {
        return Err(HsmError::new(
            pb::error::Code::InvalidBlob,
            format!(
                "the bound blob is presented as version {:?} of key {:?} ({}, {}), not as \
                 the key version being imported, version {:?} of key {:?} ({}, {})",
                bound.version_id,
                bound.key_id,
                bound.key_spec,
                bound.key_usage,
                op.version_id,
                op.key_id,
                op.key_spec,
                op.key_usage
            ),
        ));
    }
    Ok(())
}

fn default_algorithm(key: &Key) -> Result<Algorithm> {
    strongroom_crypto::policy::default_algorithm(key.spec(), key.usage())
        .ok_or_else(|| HsmError::internal("the key has no default algorithm"))
}
