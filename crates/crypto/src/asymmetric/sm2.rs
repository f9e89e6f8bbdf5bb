//! SM2 (GB/T 32918) through RustCrypto `sm2`: signatures with SM3 and a distinguishing
//! ID, and public-key encryption with the GM/T 0009 DER ciphertext
//! `SEQUENCE { x INTEGER, y INTEGER, hash OCTET STRING, ciphertext OCTET STRING }`.
//!
//! Signing draws a fresh random nonce (hedged with RFC 6979), as GB/T 32918.2 asks.

use sm2::dsa::signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
use sm2::dsa::signature::{RandomizedSigner, Verifier};
use sm2::dsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use sm2::elliptic_curve::Generate;
use sm2::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use sm2::pke::{DecryptingKey, EncryptingKey};

use crate::asymmetric::check_digest;
use crate::error::{CryptoError, Result};
use crate::random::SystemRng;
use crate::secret::SecretBytes;
use crate::spec::{KeySpec, MessageType};

const SPEC: KeySpec = KeySpec::EcSm2;

/// The distinguishing ID used for every SM2 signature (the GB/T 32918 default).
pub const SM2_DEFAULT_ID: &str = "1234567812345678";

/// Largest SM2PKE plaintext accepted (the cloud API's limit).
pub const SM2_MAX_PLAINTEXT: usize = 6047;

/// An SM2 private key, with its signing and decrypting forms built once (each costs a
/// scalar multiplication).
pub(crate) struct Private {
    secret: sm2::SecretKey,
    signing: SigningKey,
    decrypting: DecryptingKey,
}

impl Private {
    pub(crate) fn generate() -> Result<Self> {
        let secret = sm2::SecretKey::try_generate_from_rng(&mut SystemRng)?;
        Self::from_secret(secret)
    }

    fn from_secret(secret: sm2::SecretKey) -> Result<Self> {
        let signing = SigningKey::new(SM2_DEFAULT_ID, &secret)
            .map_err(|_| CryptoError::Internal("SM2 signing key"))?;
        let decrypting = DecryptingKey::new(secret.clone());
        Ok(Self {
            secret,
            signing,
            decrypting,
        })
    }

    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let secret =
            sm2::SecretKey::from_pkcs8_der(der).map_err(|_| CryptoError::InvalidKeyMaterial {
                spec: SPEC,
                reason: "not a PKCS#8 EC private key on the SM2 curve",
            })?;
        Self::from_secret(secret)
    }

    /// Imports the raw 32-byte private scalar `d` (the form the cloud's SM2 import
    /// envelope carries).
    pub(crate) fn from_scalar(bytes: &[u8]) -> Result<Self> {
        // `from_slice` would left-pad a short input; the envelope always carries 32 bytes,
        // so anything else is a malformed import, not a small key.
        if bytes.len() != 32 {
            return Err(CryptoError::InvalidKeyMaterial {
                spec: SPEC,
                reason: "an SM2 private scalar is exactly 32 bytes",
            });
        }
        let secret =
            sm2::SecretKey::from_slice(bytes).map_err(|_| CryptoError::InvalidKeyMaterial {
                spec: SPEC,
                reason: "not a valid 32-byte SM2 private scalar",
            })?;
        Self::from_secret(secret)
    }

    pub(crate) fn to_pkcs8(&self) -> Result<SecretBytes> {
        let doc = self
            .secret
            .to_pkcs8_der()
            .map_err(|_| CryptoError::Internal("SM2 PKCS#8 encoding"))?;
        Ok(SecretBytes::copy_from(doc.as_bytes()))
    }

    pub(crate) fn public_key_der(&self) -> Result<Vec<u8>> {
        self.secret
            .public_key()
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|_| CryptoError::Internal("SM2 public key encoding"))
    }

    pub(crate) fn sign(&self, message: &[u8], message_type: MessageType) -> Result<Vec<u8>> {
        check_digest(message, message_type)?;
        let signature: Signature = match message_type {
            MessageType::Raw => self.signing.try_sign_with_rng(&mut SystemRng, message),
            MessageType::Digest => self.signing.sign_prehash_with_rng(&mut SystemRng, message),
        }
        .map_err(|_| CryptoError::Internal("SM2 signing"))?;
        Ok(DerSignature::from(signature).to_vec())
    }

    pub(crate) fn decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes> {
        self.decrypting
            .decrypt_der(ciphertext)
            .map(SecretBytes::new)
            .map_err(|_| CryptoError::DecryptionFailed)
    }

    /// Decrypts a raw ciphertext `C1 ‖ C3 ‖ C2` (the GB/T 32918.4-2016 order, as
    /// BouncyCastle's `SM2Engine` in `C1C3C2` mode writes it) with `C1` an uncompressed
    /// point `0x04 ‖ x ‖ y`. Only key import takes this form.
    pub(crate) fn decrypt_c1c3c2(&self, ciphertext: &[u8]) -> Result<SecretBytes> {
        if ciphertext.first() != Some(&0x04) {
            return Err(CryptoError::DecryptionFailed);
        }
        // `DecryptingKey::new` uses the C1C3C2 layout.
        self.decrypting
            .decrypt(ciphertext)
            .map(SecretBytes::new)
            .map_err(|_| CryptoError::DecryptionFailed)
    }
}

/// An SM2 public key, with its verifying form (which holds `Z_A`) built once.
#[derive(Clone)]
pub(crate) struct Public {
    key: sm2::PublicKey,
    verifying: VerifyingKey,
    der: Vec<u8>,
}

impl Public {
    pub(crate) fn from_der(der: &[u8]) -> Result<Self> {
        let key = sm2::PublicKey::from_public_key_der(der).map_err(|_| {
            CryptoError::InvalidPublicKey {
                spec: SPEC,
                reason: "not an EC public key on the SM2 curve",
            }
        })?;
        let der = key
            .to_public_key_der()
            .map_err(|_| CryptoError::Internal("SM2 public key encoding"))?
            .as_bytes()
            .to_vec();
        let verifying = VerifyingKey::new(SM2_DEFAULT_ID, key)
            .map_err(|_| CryptoError::Internal("SM2 verifying key"))?;
        Ok(Self {
            key,
            verifying,
            der,
        })
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
        let key = &self.verifying;
        let Ok(signature) = DerSignature::from_bytes(signature).and_then(Signature::try_from)
        else {
            return Ok(false);
        };
        Ok(match message_type {
            MessageType::Raw => key.verify(message, &signature).is_ok(),
            MessageType::Digest => key.verify_prehash(message, &signature).is_ok(),
        })
    }

    pub(crate) fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        if plaintext.len() > SM2_MAX_PLAINTEXT {
            return Err(CryptoError::PlaintextTooLong {
                max: SM2_MAX_PLAINTEXT,
                actual: plaintext.len(),
            });
        }
        if plaintext.is_empty() {
            // SM2 encryption of nothing yields C2 = empty, which GB/T 32918.4 forbids
            // (the KDF output t would be empty and the check "t is all zero" fails).
            return Err(CryptoError::InvalidLength {
                min: 1,
                max: SM2_MAX_PLAINTEXT,
                actual: 0,
            });
        }
        EncryptingKey::new(self.key)
            .encrypt_der(&mut SystemRng, plaintext)
            .map_err(|_| CryptoError::Internal("SM2 encryption"))
    }

    /// The SM3 digest `e = SM3(Z_A ‖ M)` an SM2DSA DIGEST message must carry, with
    /// `Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A)` (GB/T 32918.2 §5.5).
    pub(crate) fn digest_for_signing(&self, message: &[u8]) -> Result<Vec<u8>> {
        use sm2::elliptic_curve::sec1::ToSec1Point;
        use sm3::Digest;

        let point = self.key.to_sec1_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(CryptoError::Internal("SM2 public key is the identity"));
        };
        let id_bits = u16::try_from(SM2_DEFAULT_ID.len() * 8)
            .map_err(|_| CryptoError::Internal("SM2 ID too long"))?;
        let mut z = sm3::Sm3::new();
        z.update(id_bits.to_be_bytes());
        z.update(SM2_DEFAULT_ID.as_bytes());
        for constant in [CURVE_A, CURVE_B, GENERATOR_X, GENERATOR_Y] {
            z.update(constant);
        }
        z.update(x);
        z.update(y);
        let z = z.finalize();
        let mut e = sm3::Sm3::new();
        e.update(z);
        e.update(message);
        Ok(e.finalize().to_vec())
    }
}

// The SM2 recommended curve (GB/T 32918.5-2017 §3), big-endian.
const CURVE_A: [u8; 32] = hex32("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC");
const CURVE_B: [u8; 32] = hex32("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93");
const GENERATOR_X: [u8; 32] =
    hex32("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7");
const GENERATOR_Y: [u8; 32] =
    hex32("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0");

/// Decodes 64 upper-case hex digits at compile time (a malformed constant fails the
/// build, never a run).
#[expect(
    clippy::panic,
    clippy::indexing_slicing,
    reason = "evaluated at compile time only: a malformed constant fails the build"
)]
const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not an upper-case hex digit"),
        }
    }
    let bytes = s.as_bytes();
    assert!(bytes.len() == 64, "expected 64 hex digits");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(bytes[2 * i]) << 4) | nibble(bytes[2 * i + 1]);
        i += 1;
    }
    out
}
