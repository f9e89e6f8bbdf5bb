//! ECDSA on NIST P-256 with SHA-256, through aws-lc-rs.

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
    ParsedPublicKey, UnparsedPublicKey,
};

use crate::asymmetric::check_digest;
use crate::error::{CryptoError, Result};
use crate::secret::SecretBytes;
use crate::spec::{KeySpec, MessageType};

const SPEC: KeySpec = KeySpec::EcP256;

fn sha256_digest(message: &[u8], message_type: MessageType) -> Result<Digest> {
    check_digest(message, message_type)?;
    match message_type {
        MessageType::Raw => Ok(digest::digest(&digest::SHA256, message)),
        MessageType::Digest => Digest::import_less_safe(message, &digest::SHA256)
            .map_err(|_| CryptoError::Internal("digest import")),
    }
}

/// A P-256 private key.
pub(crate) struct Private {
    pkcs8: SecretBytes,
    pair: EcdsaKeyPair,
}

impl Private {
    pub(crate) fn generate() -> Result<Self> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
            .map_err(|_| CryptoError::Internal("P-256 keygen"))?;
        let der = pair
            .to_pkcs8v1()
            .map_err(|_| CryptoError::Internal("P-256 PKCS#8 encoding"))?;
        Self::from_pkcs8(der.as_ref())
    }

    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der).map_err(|_| {
                CryptoError::InvalidKeyMaterial {
                    spec: SPEC,
                    reason: "not a PKCS#8 EC private key on P-256",
                }
            })?;
        Ok(Self {
            pkcs8: SecretBytes::copy_from(der),
            pair,
        })
    }

    pub(crate) fn to_pkcs8(&self) -> SecretBytes {
        self.pkcs8.clone()
    }

    pub(crate) fn public_key_der(&self) -> Result<Vec<u8>> {
        self.pair
            .public_key()
            .as_der()
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| CryptoError::Internal("P-256 public key encoding"))
    }

    pub(crate) fn sign(&self, message: &[u8], message_type: MessageType) -> Result<Vec<u8>> {
        let signature = match message_type {
            MessageType::Raw => self.pair.sign(&SystemRandom::new(), message),
            MessageType::Digest => self
                .pair
                .sign_digest(&sha256_digest(message, message_type)?),
        }
        .map_err(|_| CryptoError::Internal("P-256 signing"))?;
        Ok(signature.as_ref().to_vec())
    }
}

/// A P-256 public key, parsed once.
#[derive(Clone)]
pub(crate) struct Public {
    der: Vec<u8>,
    parsed: ParsedPublicKey,
}

impl Public {
    pub(crate) fn from_der(der: &[u8]) -> Result<Self> {
        let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, der)
            .parse()
            .map_err(|_| CryptoError::InvalidPublicKey {
                spec: SPEC,
                reason: "not an EC public key on P-256",
            })?;
        let der = key
            .as_der()
            .map_err(|_| CryptoError::Internal("P-256 public key encoding"))?
            .as_ref()
            .to_vec();
        Ok(Self { der, parsed: key })
    }

    pub(crate) fn der(&self) -> &[u8] {
        &self.der
    }

    pub(crate) fn verify(
        &self,
        message: &[u8],
        message_type: MessageType,
        signature: &[u8],
    ) -> Result<bool> {
        let digest = sha256_digest(message, message_type)?;
        Ok(self.parsed.verify_digest_sig(&digest, signature).is_ok())
    }
}
