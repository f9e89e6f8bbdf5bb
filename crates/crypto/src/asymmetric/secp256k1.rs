//! ECDSA on secp256k1 with SHA-256, through RustCrypto `k256` (NCC-audited; faster than
//! aws-lc-rs on this curve, see `guides/limits.md`).
//!
//! `k256` signs deterministically (RFC 6979) and always low-S. Its verifier rejects
//! high-S signatures, which other signers (HSMs, OpenSSL) produce half the time; both
//! are valid ECDSA, so signatures are normalised to low-S before verification.

use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use k256::ecdsa::signature::{Signer, Verifier};
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};
use k256::elliptic_curve::Generate;
use k256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};

use crate::asymmetric::check_digest;
use crate::error::{CryptoError, Result};
use crate::random::SystemRng;
use crate::secret::SecretBytes;
use crate::spec::{KeySpec, MessageType};

const SPEC: KeySpec = KeySpec::EcP256K;

/// A secp256k1 private key.
pub(crate) struct Private {
    key: SigningKey,
}

impl Private {
    pub(crate) fn generate() -> Result<Self> {
        let secret = k256::SecretKey::try_generate_from_rng(&mut SystemRng)?;
        Ok(Self {
            key: SigningKey::from(secret),
        })
    }

    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let secret =
            k256::SecretKey::from_pkcs8_der(der).map_err(|_| CryptoError::InvalidKeyMaterial {
                spec: SPEC,
                reason: "not a PKCS#8 EC private key on secp256k1",
            })?;
        Ok(Self {
            key: SigningKey::from(secret),
        })
    }

    pub(crate) fn to_pkcs8(&self) -> Result<SecretBytes> {
        let doc = k256::SecretKey::from(&self.key)
            .to_pkcs8_der()
            .map_err(|_| CryptoError::Internal("secp256k1 PKCS#8 encoding"))?;
        Ok(SecretBytes::copy_from(doc.as_bytes()))
    }

    pub(crate) fn public_key_der(&self) -> Result<Vec<u8>> {
        self.key
            .verifying_key()
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|_| CryptoError::Internal("secp256k1 public key encoding"))
    }

    pub(crate) fn sign(&self, message: &[u8], message_type: MessageType) -> Result<Vec<u8>> {
        check_digest(message, message_type)?;
        let signature: Signature = match message_type {
            MessageType::Raw => self.key.try_sign(message),
            MessageType::Digest => self.key.sign_prehash(message),
        }
        .map_err(|_| CryptoError::Internal("secp256k1 signing"))?;
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

/// A secp256k1 public key.
#[derive(Clone)]
pub(crate) struct Public {
    key: VerifyingKey,
    der: Vec<u8>,
}

impl Public {
    pub(crate) fn from_der(der: &[u8]) -> Result<Self> {
        let key =
            VerifyingKey::from_public_key_der(der).map_err(|_| CryptoError::InvalidPublicKey {
                spec: SPEC,
                reason: "not an EC public key on secp256k1",
            })?;
        let der = key
            .to_public_key_der()
            .map_err(|_| CryptoError::Internal("secp256k1 public key encoding"))?
            .as_bytes()
            .to_vec();
        Ok(Self { key, der })
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
        check_digest(message, message_type)?;
        let Ok(signature) = Signature::from_der(signature) else {
            return Ok(false);
        };
        let signature = signature.normalize_s();
        Ok(match message_type {
            MessageType::Raw => self.key.verify(message, &signature).is_ok(),
            MessageType::Digest => self.key.verify_prehash(message, &signature).is_ok(),
        })
    }
}
