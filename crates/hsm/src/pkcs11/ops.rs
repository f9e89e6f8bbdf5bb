//! Operations on loaded keys, computed in the token: AES-GCM and AES-CBC, RSA-OAEP
//! decryption, RSA and ECDSA signatures, data keys, random bytes and digests.
//! Verification and public-key encryption need no secret, so they use the blob's
//! public key in the crypto core.

use cryptoki::context::Function;
use cryptoki::error::Error as CkError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use strongroom_crypto::cipher::{self, GCM_TAG_LEN, MAX_AAD_LEN};
use strongroom_crypto::data_key::{DEFAULT_DATA_KEY_LEN, MAX_DATA_KEY_LEN, MIN_DATA_KEY_LEN};
use strongroom_crypto::error::CryptoError;
use strongroom_crypto::hash;
use strongroom_crypto::key::{self, DecryptParams, EncryptParams, Encrypted};
use strongroom_crypto::policy::{self, Operation};
use strongroom_crypto::spec::{Algorithm, HashAlgorithm, KeySpec, MessageType, PaddingMode};
use strongroom_proto::hsm::v1 as pb;
use zeroize::Zeroizing;

use super::der;
use super::keys::Loaded;
use super::token::{TokenSession, refused_mechanism};
use super::{Engine, optional};
use crate::error::{HsmError, Result};
use crate::software::MAX_RANDOM_LEN;

/// AES block length.
const BLOCK_LEN: usize = 16;

/// Length of a DIGEST message (SHA-256).
const DIGEST_LEN: usize = 32;

/// PSS salt length: the digest's.
const PSS_SALT_LEN: u64 = 32;

impl Engine {
    pub(super) fn encrypt(
        &self,
        s: &mut TokenSession,
        op: &pb::Encrypt,
    ) -> Result<pb::EncryptReply> {
        let key = self.load(s, op.key.as_ref(), true)?;
        let params = EncryptParams {
            algorithm: optional(&op.algorithm)?,
            iv: (!op.iv.is_empty()).then_some(op.iv.as_slice()),
            aad: &op.aad,
            padding: optional(&op.padding_mode)?,
        };
        let out = self.encrypt_with(s, &key, &op.plaintext, &params)?;
        Ok(pb::EncryptReply {
            ciphertext: out.ciphertext,
            iv: out.iv,
            algorithm: out.algorithm.to_string(),
            padding_mode: out.padding.map(|p| p.to_string()).unwrap_or_default(),
        })
    }

    pub(super) fn decrypt(
        &self,
        s: &mut TokenSession,
        op: &pb::Decrypt,
    ) -> Result<pb::DecryptReply> {
        let key = self.load(s, op.key.as_ref(), true)?;
        let params = DecryptParams {
            algorithm: optional(&op.algorithm)?,
            iv: &op.iv,
            aad: &op.aad,
            padding: optional(&op.padding_mode)?,
        };
        let (algorithm, plaintext) = self.decrypt_with(s, &key, &op.ciphertext, &params)?;
        Ok(pb::DecryptReply {
            plaintext: plaintext.to_vec(),
            algorithm: algorithm.to_string(),
        })
    }

    pub(super) fn sign(&self, s: &mut TokenSession, op: &pb::Sign) -> Result<pb::SignReply> {
        let key = self.load(s, op.key.as_ref(), true)?;
        let algorithm = policy::check(
            key.spec,
            key.usage,
            Operation::Sign,
            optional(&op.algorithm)?,
        )?;
        let message_type = optional::<MessageType>(&op.message_type)?.unwrap_or_default();
        let digest = sha256_digest(&op.message, message_type)?;
        let object = key.object()?;
        let (mechanism, data) = match algorithm {
            Algorithm::RsaPssSha256 => {
                self.require(MechanismType::RSA_PKCS_PSS, algorithm)?;
                let params = PkcsPssParams {
                    hash_alg: MechanismType::SHA256,
                    mgf: PkcsMgfType::MGF1_SHA256,
                    s_len: PSS_SALT_LEN.into(),
                };
                (Mechanism::RsaPkcsPss(params), digest)
            }
            Algorithm::RsaPkcs1Sha256 => {
                self.require(MechanismType::RSA_PKCS, algorithm)?;
                let mut info = der::SHA256_DIGEST_INFO_PREFIX.to_vec();
                info.extend_from_slice(&digest);
                (Mechanism::RsaPkcs, info)
            }
            Algorithm::EcdsaSha256 => {
                self.require(MechanismType::ECDSA, algorithm)?;
                (Mechanism::Ecdsa, digest)
            }
            other => return Err(self.unsupported(format!("algorithm {other}"))),
        };
        let signature = match s.session().sign(&mechanism, object, &data) {
            Ok(signature) => signature,
            Err(e) if refused_mechanism(&e) => return Err(self.unsupported(algorithm)),
            Err(e) => return Err(s.fail("C_Sign", &e)),
        };
        let signature = if algorithm == Algorithm::EcdsaSha256 {
            der::ecdsa_signature(&signature, key.spec == KeySpec::EcP256K)?
        } else {
            signature
        };
        Ok(pb::SignReply {
            signature,
            algorithm: algorithm.to_string(),
        })
    }

    pub(super) fn verify(&self, s: &mut TokenSession, op: &pb::Verify) -> Result<pb::VerifyReply> {
        let key = self.load(s, op.key.as_ref(), false)?;
        let algorithm = policy::check(
            key.spec,
            key.usage,
            Operation::Verify,
            optional(&op.algorithm)?,
        )?;
        let message_type = optional::<MessageType>(&op.message_type)?.unwrap_or_default();
        let valid =
            key.public_key()?
                .verify(algorithm, &op.message, message_type, &op.signature)?;
        Ok(pb::VerifyReply {
            valid,
            algorithm: algorithm.to_string(),
        })
    }

    pub(super) fn get_public_key(
        &self,
        s: &mut TokenSession,
        op: &pb::GetPublicKey,
    ) -> Result<pb::PublicKeyReply> {
        let key = self.load(s, op.key.as_ref(), false)?;
        Ok(pb::PublicKeyReply {
            public_key: key.public_key()?.to_der(),
        })
    }

    pub(super) fn generate_data_key(
        &self,
        s: &mut TokenSession,
        op: &pb::GenerateDataKey,
    ) -> Result<pb::GenerateDataKeyReply> {
        let key = self.load(s, op.key.as_ref(), true)?;
        let len = if op.length == 0 {
            DEFAULT_DATA_KEY_LEN
        } else {
            usize::try_from(op.length).map_err(|_| HsmError::invalid("data key length"))?
        };
        if !(MIN_DATA_KEY_LEN..=MAX_DATA_KEY_LEN).contains(&len) {
            return Err(CryptoError::InvalidLength {
                min: MIN_DATA_KEY_LEN,
                max: MAX_DATA_KEY_LEN,
                actual: len,
            }
            .into());
        }
        let plaintext = Zeroizing::new(s.random(len)?);
        let out = self.encrypt_with(
            s,
            &key,
            &plaintext,
            &EncryptParams {
                algorithm: optional(&op.algorithm)?,
                iv: None,
                aad: &op.aad,
                padding: None,
            },
        )?;
        Ok(pb::GenerateDataKeyReply {
            plaintext: plaintext.to_vec(),
            ciphertext: out.ciphertext,
            iv: out.iv,
            algorithm: out.algorithm.to_string(),
        })
    }

    /// The pair is generated by the crypto core, not the token: its private key goes to
    /// the caller by design, so the token would add nothing but an export. Only its
    /// encryption under the KMS key happens in the token. EC_SM2 pairs are refused like
    /// every other SM2 request, so that a PKCS#11 deployment never offers SM2 at all.
    pub(super) fn generate_data_key_pair(
        &self,
        s: &mut TokenSession,
        op: &pb::GenerateDataKeyPair,
    ) -> Result<pb::GenerateDataKeyPairReply> {
        let key = self.load(s, op.key.as_ref(), true)?;
        if op.key_pair_spec == KeySpec::EcSm2.as_str() {
            return Err(self.unsupported("EC_SM2 data key pairs (SM2)"));
        }
        crate::backend::data_key_pair(op, |plaintext, params| {
            self.encrypt_with(s, &key, plaintext, params)
        })
    }

    pub(super) fn generate_random(
        &self,
        s: &TokenSession,
        op: &pb::GenerateRandom,
    ) -> Result<pb::GenerateRandomReply> {
        if op.length == 0 || op.length > MAX_RANDOM_LEN {
            return Err(HsmError::invalid(format!(
                "random length {} is outside 1..={MAX_RANDOM_LEN}",
                op.length
            )));
        }
        let len = usize::try_from(op.length).map_err(|_| HsmError::invalid("random length"))?;
        Ok(pb::GenerateRandomReply {
            random: s.random(len)?,
        })
    }

    pub(super) fn hash(&self, s: &TokenSession, op: &pb::Hash) -> Result<pb::HashReply> {
        let algorithm = optional::<HashAlgorithm>(&op.algorithm)?.unwrap_or_default();
        let mechanism = match algorithm {
            HashAlgorithm::Sha256 => Mechanism::Sha256,
            HashAlgorithm::Sha384 => Mechanism::Sha384,
            HashAlgorithm::Sha512 => Mechanism::Sha512,
            HashAlgorithm::Sm3 => return Err(self.unsupported("SM3 hashing")),
        };
        self.require(mechanism.mechanism_type(), algorithm)?;
        Ok(pb::HashReply {
            digest: s.call("C_Digest", s.session().digest(&mechanism, &op.message))?,
        })
    }

    /// Encryption under a loaded key, with the crypto core's parameter rules.
    fn encrypt_with(
        &self,
        s: &TokenSession,
        key: &Loaded,
        plaintext: &[u8],
        params: &EncryptParams<'_>,
    ) -> Result<Encrypted> {
        let algorithm = policy::check(key.spec, key.usage, Operation::Encrypt, params.algorithm)?;
        let padding = key::padding_for(algorithm, params.padding)?;
        match algorithm {
            Algorithm::AesGcm | Algorithm::AesCbc => {
                check_aad(algorithm, params.aad)?;
                let iv = match params.iv {
                    Some(iv) => iv.to_vec(),
                    None => s.random(algorithm.iv_len())?,
                };
                cipher::check_iv(algorithm, &iv)?;
                let object = key.object()?;
                let ciphertext = if algorithm == Algorithm::AesGcm {
                    self.require(MechanismType::AES_GCM, algorithm)?;
                    let mut iv_param = iv.clone();
                    let mechanism = gcm(&mut iv_param, params.aad)?;
                    s.call(
                        "C_Encrypt",
                        s.session().encrypt(&mechanism, object, plaintext),
                    )?
                } else {
                    let padding = padding.unwrap_or_default();
                    if padding == PaddingMode::NoPadding
                        && !plaintext.len().is_multiple_of(BLOCK_LEN)
                    {
                        return Err(CryptoError::NotBlockAligned(plaintext.len()).into());
                    }
                    let mechanism = self.cbc(&iv, padding)?;
                    s.call(
                        "C_Encrypt",
                        s.session().encrypt(&mechanism, object, plaintext),
                    )?
                };
                Ok(Encrypted {
                    algorithm,
                    ciphertext,
                    iv,
                    padding,
                })
            }
            Algorithm::RsaesOaepSha256 | Algorithm::RsaesOaepSha1 => {
                reject_nonempty(algorithm, "IV", params.iv.unwrap_or_default())?;
                reject_nonempty(algorithm, "AAD", params.aad)?;
                // Only what this token could decrypt again is encrypted.
                self.require_oaep(algorithm)?;
                let ciphertext = key.public_key()?.encrypt(algorithm, plaintext)?;
                Ok(Encrypted {
                    algorithm,
                    ciphertext,
                    iv: Vec::new(),
                    padding: None,
                })
            }
            other => Err(self.unsupported(format!("algorithm {other}"))),
        }
    }

    /// Decryption under a loaded key. Every failure past the parameter checks is the
    /// opaque `DECRYPTION_FAILED`, as in the crypto core.
    fn decrypt_with(
        &self,
        s: &TokenSession,
        key: &Loaded,
        ciphertext: &[u8],
        params: &DecryptParams<'_>,
    ) -> Result<(Algorithm, Zeroizing<Vec<u8>>)> {
        let algorithm = policy::check(key.spec, key.usage, Operation::Decrypt, params.algorithm)?;
        let padding = key::padding_for(algorithm, params.padding)?;
        let failed = || HsmError::from(CryptoError::DecryptionFailed);
        let result = match algorithm {
            Algorithm::AesGcm | Algorithm::AesCbc => {
                check_aad(algorithm, params.aad)?;
                cipher::check_iv(algorithm, params.iv)?;
                let object = key.object()?;
                if algorithm == Algorithm::AesGcm {
                    self.require(MechanismType::AES_GCM, algorithm)?;
                    if ciphertext.len() < GCM_TAG_LEN {
                        return Err(failed());
                    }
                    let mut iv = params.iv.to_vec();
                    let mechanism = gcm(&mut iv, params.aad)?;
                    s.session().decrypt(&mechanism, object, ciphertext)
                } else {
                    let padding = padding.unwrap_or_default();
                    if !ciphertext.len().is_multiple_of(BLOCK_LEN)
                        || (padding == PaddingMode::Pkcs7 && ciphertext.is_empty())
                    {
                        return Err(failed());
                    }
                    let mechanism = self.cbc(params.iv, padding)?;
                    s.session().decrypt(&mechanism, object, ciphertext)
                }
            }
            Algorithm::RsaesOaepSha256 | Algorithm::RsaesOaepSha1 => {
                reject_nonempty(algorithm, "IV", params.iv)?;
                reject_nonempty(algorithm, "AAD", params.aad)?;
                self.require_oaep(algorithm)?;
                s.session()
                    .decrypt(&oaep(algorithm), key.object()?, ciphertext)
            }
            other => return Err(self.unsupported(format!("algorithm {other}"))),
        };
        match result {
            Ok(plaintext) => Ok((algorithm, Zeroizing::new(plaintext))),
            Err(e) if refused_mechanism(&e) => Err(self.unsupported(algorithm)),
            // The operation itself failed: a tag, padding or OAEP check.
            Err(e @ CkError::Pkcs11(_, Function::Decrypt)) => {
                Err(s.fail_or("C_Decrypt", &e, failed))
            }
            Err(e) => Err(s.fail("C_DecryptInit", &e)),
        }
    }

    /// `CKM_AES_CBC_PAD` (PKCS#7) or `CKM_AES_CBC` (no padding) with a checked IV.
    fn cbc(&self, iv: &[u8], padding: PaddingMode) -> Result<Mechanism<'static>> {
        let iv: [u8; BLOCK_LEN] = iv.try_into().map_err(|_| CryptoError::InvalidIvLength {
            algorithm: Algorithm::AesCbc,
            expected: BLOCK_LEN,
            actual: iv.len(),
        })?;
        Ok(match padding {
            PaddingMode::Pkcs7 => {
                self.require(MechanismType::AES_CBC_PAD, "AES_CBC with PKCS7_PADDING")?;
                Mechanism::AesCbcPad(iv)
            }
            PaddingMode::NoPadding => {
                self.require(MechanismType::AES_CBC, "AES_CBC with NO_PADDING")?;
                Mechanism::AesCbc(iv)
            }
        })
    }

    /// Refuses an OAEP variant the token cannot run.
    fn require_oaep(&self, algorithm: Algorithm) -> Result<()> {
        self.require(MechanismType::RSA_PKCS_OAEP, algorithm)?;
        if algorithm == Algorithm::RsaesOaepSha256 && !self.caps.oaep_sha256 {
            return Err(self.unsupported(
                "RSAES_OAEP_SHA_256 (the token accepts OAEP only with SHA-1: \
                 C_DecryptInit answers CKR_ARGUMENTS_BAD)",
            ));
        }
        Ok(())
    }
}

/// `CKM_AES_GCM` with a 128-bit tag, appended to the ciphertext by the token.
fn gcm<'a>(iv: &'a mut [u8], aad: &'a [u8]) -> Result<Mechanism<'a>> {
    let params = GcmParams::new(iv, aad, 128.into())
        .map_err(|e| HsmError::internal(format!("GCM parameters: {e}")))?;
    Ok(Mechanism::AesGcm(params))
}

/// `CKM_RSA_PKCS_OAEP` with the hash and MGF1 hash of the algorithm and an empty label.
fn oaep(algorithm: Algorithm) -> Mechanism<'static> {
    let (hash_alg, mgf) = if algorithm == Algorithm::RsaesOaepSha1 {
        (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1)
    } else {
        (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256)
    };
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash_alg, mgf, PkcsOaepSource::empty()))
}

/// The SHA-256 digest a signature covers: computed for RAW, checked for DIGEST.
fn sha256_digest(message: &[u8], message_type: MessageType) -> Result<Vec<u8>> {
    match message_type {
        MessageType::Raw => Ok(hash::sha256(message).to_vec()),
        MessageType::Digest if message.len() == DIGEST_LEN => Ok(message.to_vec()),
        MessageType::Digest => Err(CryptoError::InvalidDigestLength {
            expected: DIGEST_LEN,
            actual: message.len(),
        }
        .into()),
    }
}

fn check_aad(algorithm: Algorithm, aad: &[u8]) -> Result<()> {
    if aad.len() > MAX_AAD_LEN {
        return Err(CryptoError::AadTooLong(aad.len()).into());
    }
    if algorithm.is_cbc() && !aad.is_empty() {
        // CBC authenticates nothing: dropping the AAD silently would let a caller
        // believe it is bound to the ciphertext.
        return Err(CryptoError::UnexpectedParameter {
            algorithm,
            parameter: "AAD",
        }
        .into());
    }
    Ok(())
}

fn reject_nonempty(algorithm: Algorithm, parameter: &'static str, value: &[u8]) -> Result<()> {
    if value.is_empty() {
        Ok(())
    } else {
        Err(CryptoError::UnexpectedParameter {
            algorithm,
            parameter,
        }
        .into())
    }
}
