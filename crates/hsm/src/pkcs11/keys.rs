//! Key blobs in and out of the token: generation inside the token, sealing (key wrap
//! plus binding tag), loading (tag check, then unwrap into a session object, cached per
//! session), and the import of externally wrapped material.

use std::collections::HashMap;

use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use strongroom_crypto::error::CryptoError;
use strongroom_crypto::import::{self, MAX_ENCRYPTED_KEY_MATERIAL_LEN};
use strongroom_crypto::policy;
use strongroom_crypto::public::PublicKey;
use strongroom_crypto::spec::{KeySpec, KeyUsage, WrappingAlgorithm, WrappingKeySpec};
use strongroom_proto::hsm::v1::{self as pb, error::Code};

use super::blob::{self, Binding};
use super::der;
use super::token::{TokenSession, refused_mechanism, return_value};
use super::{Engine, require_ids};
use crate::backend::{blob_refused, key_ref_digest};
use crate::error::{HsmError, Result};

/// A key opened from a blob: its tag verified, and (when an operation needs the private
/// or secret key) unwrapped into a session object that is sensitive and not extractable.
#[derive(Debug, Clone)]
pub(super) struct Loaded {
    pub(super) spec: KeySpec,
    pub(super) usage: KeyUsage,
    /// The public key of a key pair, from the (authenticated) blob.
    pub(super) public: Option<PublicKey>,
    /// The unwrapped key in the session that loaded it.
    pub(super) object: Option<ObjectHandle>,
}

impl Loaded {
    /// The token object of the key.
    pub(super) fn object(&self) -> Result<ObjectHandle> {
        self.object
            .ok_or_else(|| HsmError::internal("the key was loaded without unwrapping it"))
    }

    /// The public key.
    pub(super) fn public_key(&self) -> Result<&PublicKey> {
        self.public
            .as_ref()
            .ok_or_else(|| CryptoError::NotAsymmetric(self.spec).into())
    }
}

/// The keys one session has loaded, keyed by a digest of the key reference. Session
/// objects belong to the session that created them (the token destroys them when it
/// closes), so every session has its own cache and unwraps a key on its first use.
#[derive(Debug)]
pub(super) struct KeyCache {
    entries: HashMap<[u8; 32], Loaded>,
    capacity: usize,
}

impl KeyCache {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    pub(super) fn get(&self, id: &[u8; 32]) -> Option<&Loaded> {
        self.entries.get(id)
    }

    /// Remembers a key; past the capacity the cache is emptied (its objects destroyed)
    /// and refilled by use.
    pub(super) fn insert(&mut self, session: &Session, id: [u8; 32], loaded: Loaded) {
        if self.entries.len() >= self.capacity {
            for (_, old) in self.entries.drain() {
                if let Some(object) = old.object {
                    let _ = session.destroy_object(object);
                }
            }
        }
        if let Some(old) = self.entries.insert(id, loaded)
            && let Some(object) = old.object
        {
            let _ = session.destroy_object(object);
        }
    }
}

/// Objects destroyed when it goes out of scope: keys generated or imported only to be
/// wrapped, and their public halves.
struct Scratch<'a> {
    session: &'a Session,
    objects: Vec<ObjectHandle>,
}

impl<'a> Scratch<'a> {
    fn new(session: &'a Session) -> Self {
        Self {
            session,
            objects: Vec::new(),
        }
    }

    fn keep(&mut self, object: ObjectHandle) -> ObjectHandle {
        self.objects.push(object);
        object
    }
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        for object in self.objects.drain(..) {
            let _ = self.session.destroy_object(object);
        }
    }
}

impl Engine {
    pub(super) fn generate_key(
        &self,
        s: &TokenSession,
        op: &pb::GenerateKey,
    ) -> Result<pb::KeyBlobReply> {
        let spec: KeySpec = op.key_spec.parse()?;
        let usage: KeyUsage = op.key_usage.parse()?;
        require_ids(&op.key_id, &op.version_id)?;
        if !policy::usage_allowed(spec, usage) {
            return Err(CryptoError::UsageNotAllowed { spec, usage }.into());
        }
        let binding = Binding {
            key_id: &op.key_id,
            version_id: &op.version_id,
            spec,
        };
        self.generate_and_seal(s, &binding, usage)
    }

    pub(super) fn generate_wrapping_key(
        &self,
        s: &TokenSession,
        op: &pb::GenerateWrappingKey,
    ) -> Result<pb::KeyBlobReply> {
        require_ids(&op.key_id, &op.version_id)?;
        let spec: WrappingKeySpec = op.wrapping_key_spec.parse()?;
        if spec == WrappingKeySpec::EcSm2 {
            return Err(self.unsupported("EC_SM2 wrapping keys (SM2)"));
        }
        if !self.caps.oaep_sha256 {
            return Err(self.unsupported(
                "RSA_2048 wrapping keys: key import needs RSAES_OAEP_SHA_256 decryption, \
                 which the token refuses",
            ));
        }
        let binding = Binding {
            key_id: &op.key_id,
            version_id: &op.version_id,
            spec: spec.key_spec(),
        };
        self.generate_and_seal(s, &binding, KeyUsage::EncryptDecrypt)
    }

    /// Imports material wrapped with `RSAES_OAEP_SHA_256` under a wrapping key: the
    /// token unwraps it straight into a session key, which is then sealed like a
    /// generated one. The envelope algorithms (an AES-ECB or SM4-ECB layer) and SM2 are
    /// refused: PKCS#11 has no standard way to unwrap them without the intermediate key
    /// or the PKCS#8 bytes passing through this process.
    ///
    /// Re-import (`bound` set) is refused too: the only targets here are symmetric
    /// keys, and comparing two secret keys would need their values outside the token
    /// (both are sensitive). A key pair's public keys could be compared, but the token
    /// imports no key pairs.
    pub(super) fn unwrap_key_material(
        &self,
        s: &mut TokenSession,
        op: &pb::UnwrapKeyMaterial,
    ) -> Result<pb::KeyBlobReply> {
        require_ids(&op.key_id, &op.version_id)?;
        if op.bound.is_some() {
            return Err(HsmError::unsupported(format!(
                "re-import of key material is not supported by the PKCS#11 token {}: the \
                 new material would have to be compared with the key version's secret key, \
                 which never leaves the token",
                self.token
            )));
        }
        let algorithm: WrappingAlgorithm = op.wrapping_algorithm.parse()?;
        let target: KeySpec = op.key_spec.parse()?;
        let usage: KeyUsage = op.key_usage.parse()?;
        if matches!(
            algorithm,
            WrappingAlgorithm::Sm2Pke | WrappingAlgorithm::Sm2PkeSm4Ecb
        ) {
            return Err(self.unsupported(format!("key import with {algorithm} (SM2)")));
        }
        if !self.caps.oaep_sha256 {
            return Err(self.unsupported(format!(
                "key import with {algorithm}: it needs RSAES_OAEP_SHA_256 decryption, \
                 which the token refuses"
            )));
        }
        let wrapping = self.load(s, op.wrapping_key.as_ref(), true)?;
        let wrapping_spec = WrappingKeySpec::from_key_spec(wrapping.spec)
            .ok_or(CryptoError::NotAWrappingKey(wrapping.spec))?;
        import::check_wrapping(wrapping_spec, algorithm)?;
        import::check_import_target(algorithm, target)?;
        let encrypted = &op.encrypted_key_material;
        if encrypted.is_empty() || encrypted.len() > MAX_ENCRYPTED_KEY_MATERIAL_LEN {
            return Err(CryptoError::InvalidLength {
                min: 1,
                max: MAX_ENCRYPTED_KEY_MATERIAL_LEN,
                actual: encrypted.len(),
            }
            .into());
        }
        if !policy::usage_allowed(target, usage) {
            return Err(CryptoError::UsageNotAllowed {
                spec: target,
                usage,
            }
            .into());
        }
        if algorithm != WrappingAlgorithm::RsaesOaepSha256 {
            return Err(self.unsupported(format!("key import with {algorithm}")));
        }
        self.require_spec(target)?;
        let expected_len = target
            .symmetric_key_len()
            .ok_or_else(|| HsmError::internal("direct import of a key pair"))?;
        let mechanism = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
            MechanismType::SHA256,
            PkcsMgfType::MGF1_SHA256,
            PkcsOaepSource::empty(),
        ));
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            // Only so that the domain key can wrap it; destroyed right after.
            Attribute::Extractable(true),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ];
        let imported =
            match s
                .session()
                .unwrap_key(&mechanism, wrapping.object()?, encrypted, &template)
            {
                Ok(object) => object,
                Err(e) if refused_mechanism(&e) => {
                    return Err(self.unsupported(format!("key import with {algorithm}")));
                }
                Err(e) => {
                    return Err(
                        s.fail_or("C_UnwrapKey", &e, || CryptoError::ImportUnwrapFailed.into())
                    );
                }
            };
        let mut scratch = Scratch::new(s.session());
        let imported = scratch.keep(imported);
        let length = s.call(
            "C_GetAttributeValue",
            s.session()
                .get_attributes(imported, &[AttributeType::ValueLen]),
        )?;
        let fits = length.iter().any(|a| match a {
            Attribute::ValueLen(len) => usize::from(*len) == expected_len,
            _ => false,
        });
        if !fits {
            return Err(CryptoError::InvalidKeyMaterial {
                spec: target,
                reason: "wrong key length for the key spec",
            }
            .into());
        }
        let binding = Binding {
            key_id: &op.key_id,
            version_id: &op.version_id,
            spec: target,
        };
        self.seal(s, &binding, imported, &[])
    }

    /// Opens the key a request names: the blob's tag is checked by the token, and with
    /// `need_object` the key is unwrapped into a session object. Both steps are cached
    /// in the session.
    pub(super) fn load(
        &self,
        s: &mut TokenSession,
        key: Option<&pb::KeyRef>,
        need_object: bool,
    ) -> Result<Loaded> {
        let key = key.ok_or_else(|| HsmError::invalid("the request names no key"))?;
        let spec: KeySpec = key.key_spec.parse()?;
        let usage: KeyUsage = key.key_usage.parse()?;
        self.require_spec(spec)?;
        if !policy::usage_allowed(spec, usage) {
            return Err(CryptoError::UsageNotAllowed { spec, usage }.into());
        }
        let id = key_ref_digest(key);
        if let Some(found) = s.cache.get(&id)
            && (found.object.is_some() || !need_object)
        {
            return Ok(found.clone());
        }
        let refused = || HsmError::new(Code::InvalidBlob, blob_refused(key, "this token"));
        let parts = blob::decode(&key.blob).ok_or_else(refused)?;
        let binding = Binding {
            key_id: &key.key_id,
            version_id: &key.version_id,
            spec,
        };
        let input = blob::tag_input(&binding, parts.wrapped, parts.public_key);
        match s
            .session()
            .verify(&Mechanism::Sha256Hmac, self.keys.binding, &input, parts.tag)
        {
            Ok(()) => {}
            Err(e)
                if matches!(
                    return_value(&e),
                    Some(RvError::SignatureInvalid | RvError::SignatureLenRange)
                ) =>
            {
                return Err(refused());
            }
            Err(e) => return Err(s.fail("C_Verify", &e)),
        }
        let public = if spec.is_asymmetric() {
            Some(PublicKey::from_der(spec, parts.public_key).map_err(|_| refused())?)
        } else if parts.public_key.is_empty() {
            None
        } else {
            return Err(refused());
        };
        let object = if need_object {
            let template = unwrap_template(spec, usage);
            match s.session().unwrap_key(
                &Mechanism::AesKeyWrapPad,
                self.keys.wrap,
                parts.wrapped,
                &template,
            ) {
                Ok(object) => Some(object),
                Err(e) => {
                    return Err(s.fail_or("C_UnwrapKey", &e, || {
                        HsmError::internal(format!(
                            "a blob whose binding tag verified did not unwrap: {}",
                            super::token::token_error("C_UnwrapKey", &e).message
                        ))
                    }));
                }
            }
        } else {
            None
        };
        let loaded = Loaded {
            spec,
            usage,
            public,
            object,
        };
        s.remember(id, loaded.clone());
        Ok(loaded)
    }

    fn generate_and_seal(
        &self,
        s: &TokenSession,
        binding: &Binding<'_>,
        usage: KeyUsage,
    ) -> Result<pb::KeyBlobReply> {
        let spec = binding.spec;
        self.require_spec(spec)?;
        let session = s.session();
        let mut scratch = Scratch::new(session);
        let refused = |e: &cryptoki::error::Error, function: &str| {
            if refused_mechanism(e)
                || matches!(
                    return_value(e),
                    Some(RvError::CurveNotSupported | RvError::DomainParamsInvalid)
                )
            {
                self.unsupported(format!("{spec} key generation"))
            } else {
                s.fail(function, e)
            }
        };
        let signs = usage == KeyUsage::SignVerify;
        let private_template = |class, key_type| {
            vec![
                Attribute::Class(class),
                Attribute::KeyType(key_type),
                Attribute::Token(false),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                // Only so that the domain key can wrap it; destroyed right after.
                Attribute::Extractable(true),
            ]
        };
        let (secret, public_der) = match spec {
            KeySpec::Aes128 | KeySpec::Aes192 | KeySpec::Aes256 => {
                self.require(MechanismType::AES_KEY_GEN, "AES key generation")?;
                let len = spec
                    .symmetric_key_len()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| HsmError::internal("AES key length"))?;
                let mut template = private_template(ObjectClass::SECRET_KEY, KeyType::AES);
                template.extend([
                    Attribute::ValueLen(len.into()),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                ]);
                let key = session
                    .generate_key(&Mechanism::AesKeyGen, &template)
                    .map_err(|e| refused(&e, "C_GenerateKey"))?;
                (scratch.keep(key), None)
            }
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                self.require(
                    MechanismType::RSA_PKCS_KEY_PAIR_GEN,
                    format!("{spec} key generation"),
                )?;
                let bits = spec
                    .rsa_bits()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| HsmError::internal("RSA modulus size"))?;
                let public_template = [
                    Attribute::Token(false),
                    Attribute::ModulusBits(bits.into()),
                    Attribute::PublicExponent(vec![1, 0, 1]),
                    Attribute::Verify(signs),
                    Attribute::Encrypt(!signs),
                ];
                let mut template = private_template(ObjectClass::PRIVATE_KEY, KeyType::RSA);
                template.extend([
                    Attribute::Sign(signs),
                    Attribute::Decrypt(!signs),
                    Attribute::Unwrap(!signs),
                ]);
                let (public, private) = session
                    .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public_template, &template)
                    .map_err(|e| refused(&e, "C_GenerateKeyPair"))?;
                scratch.keep(public);
                let attributes = s.call(
                    "C_GetAttributeValue",
                    session.get_attributes(
                        public,
                        &[AttributeType::Modulus, AttributeType::PublicExponent],
                    ),
                )?;
                let (mut modulus, mut exponent) = (None, None);
                for attribute in attributes {
                    match attribute {
                        Attribute::Modulus(m) => modulus = Some(m),
                        Attribute::PublicExponent(e) => exponent = Some(e),
                        _ => {}
                    }
                }
                let (Some(modulus), Some(exponent)) = (modulus, exponent) else {
                    return Err(HsmError::internal(
                        "the token did not return the RSA public key",
                    ));
                };
                (
                    scratch.keep(private),
                    Some(der::rsa_spki(&modulus, &exponent)?),
                )
            }
            KeySpec::EcP256 | KeySpec::EcP256K => {
                self.require(
                    MechanismType::ECC_KEY_PAIR_GEN,
                    format!("{spec} key generation"),
                )?;
                let params = if spec == KeySpec::EcP256 {
                    der::P256_PARAMS
                } else {
                    der::SECP256K1_PARAMS
                };
                let public_template = [
                    Attribute::Token(false),
                    Attribute::EcParams(params.to_vec()),
                    Attribute::Verify(true),
                ];
                let mut template = private_template(ObjectClass::PRIVATE_KEY, KeyType::EC);
                template.push(Attribute::Sign(true));
                let (public, private) = session
                    .generate_key_pair(&Mechanism::EccKeyPairGen, &public_template, &template)
                    .map_err(|e| refused(&e, "C_GenerateKeyPair"))?;
                scratch.keep(public);
                let attributes = s.call(
                    "C_GetAttributeValue",
                    session.get_attributes(public, &[AttributeType::EcPoint]),
                )?;
                let point = attributes
                    .iter()
                    .find_map(|a| match a {
                        Attribute::EcPoint(p) => der::ec_point(p),
                        _ => None,
                    })
                    .ok_or_else(|| {
                        HsmError::internal("the token did not return an uncompressed EC point")
                    })?;
                (scratch.keep(private), Some(der::ec_spki(params, point)?))
            }
            KeySpec::Sm4 | KeySpec::EcSm2 => {
                return Err(self.unsupported(format!("key spec {spec}")));
            }
        };
        let public_key = match public_der {
            // Parsed back by the crypto core: what the blob carries is a valid key.
            Some(der) => PublicKey::from_der(spec, &der)
                .map_err(|e| HsmError::internal(format!("the token's {spec} public key: {e}")))?
                .to_der(),
            None => Vec::new(),
        };
        self.seal(s, binding, secret, &public_key)
    }

    /// Wraps `object` with the domain key and tags the blob with the binding key.
    fn seal(
        &self,
        s: &TokenSession,
        binding: &Binding<'_>,
        object: ObjectHandle,
        public_key: &[u8],
    ) -> Result<pb::KeyBlobReply> {
        let wrapped = s.call(
            "C_WrapKey",
            s.session()
                .wrap_key(&Mechanism::AesKeyWrapPad, self.keys.wrap, object),
        )?;
        let tag = s.call(
            "C_Sign",
            s.session().sign(
                &Mechanism::Sha256Hmac,
                self.keys.binding,
                &blob::tag_input(binding, &wrapped, public_key),
            ),
        )?;
        Ok(pb::KeyBlobReply {
            blob: blob::encode(&wrapped, public_key, &tag)?,
            public_key: public_key.to_vec(),
        })
    }
}

/// The template of a key unwrapped for use: a session object, sensitive, never
/// extractable, allowed only what its usage needs.
fn unwrap_template(spec: KeySpec, usage: KeyUsage) -> Vec<Attribute> {
    let signs = usage == KeyUsage::SignVerify;
    let mut template = vec![
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
    ];
    match spec {
        KeySpec::Aes128 | KeySpec::Aes192 | KeySpec::Aes256 | KeySpec::Sm4 => {
            template.extend([
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ]);
        }
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
            template.extend([
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::RSA),
                Attribute::Sign(signs),
                Attribute::Decrypt(!signs),
                // A wrapping key (RSA_2048, ENCRYPT/DECRYPT) unwraps imported material.
                Attribute::Unwrap(!signs),
            ]);
        }
        KeySpec::EcP256 | KeySpec::EcP256K | KeySpec::EcSm2 => {
            template.extend([
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::Sign(true),
            ]);
        }
    }
    template
}
