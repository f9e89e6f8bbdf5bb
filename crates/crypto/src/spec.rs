//! The wire vocabulary: key specs, usages, algorithms, padding modes, message types,
//! hash algorithms and key formats, each parsed from and printed to the exact,
//! case-sensitive strings of the KMS APIs (`spec/instance-api.md` §7,
//! `spec/product-model.md` §1–§2). An unknown string is a typed error, never a default.

use core::fmt;
use core::str::FromStr;

use crate::error::CryptoError;

/// Declares a fieldless enum whose variants map one-to-one to wire strings.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $error:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The exact wire string.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = CryptoError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    other => Err(CryptoError::$error(other.to_owned())),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// What kind of key a KMS key is: cipher and size, or curve.
    KeySpec, UnknownKeySpec {
        /// AES with a 256-bit key.
        Aes256 => "Aliyun_AES_256",
        /// AES with a 192-bit key.
        Aes192 => "Aliyun_AES_192",
        /// AES with a 128-bit key.
        Aes128 => "Aliyun_AES_128",
        /// SM4 (GB/T 32907), 128-bit key.
        Sm4 => "Aliyun_SM4",
        /// RSA, 2048-bit modulus.
        Rsa2048 => "RSA_2048",
        /// RSA, 3072-bit modulus.
        Rsa3072 => "RSA_3072",
        /// RSA, 4096-bit modulus.
        Rsa4096 => "RSA_4096",
        /// ECDSA on NIST P-256 (secp256r1).
        EcP256 => "EC_P256",
        /// ECDSA on secp256k1.
        EcP256K => "EC_P256K",
        /// SM2 (GB/T 32918) on the SM2 recommended curve.
        EcSm2 => "EC_SM2",
    }
}

impl KeySpec {
    /// Whether the spec is a symmetric cipher key.
    pub const fn is_symmetric(self) -> bool {
        matches!(self, Self::Aes256 | Self::Aes192 | Self::Aes128 | Self::Sm4)
    }

    /// Whether the spec is a key pair.
    pub const fn is_asymmetric(self) -> bool {
        !self.is_symmetric()
    }

    /// Key length in bytes for symmetric specs; `None` for key pairs.
    pub const fn symmetric_key_len(self) -> Option<usize> {
        match self {
            Self::Aes256 => Some(32),
            Self::Aes192 => Some(24),
            Self::Aes128 | Self::Sm4 => Some(16),
            _ => None,
        }
    }

    /// RSA modulus length in bits; `None` for other specs.
    pub const fn rsa_bits(self) -> Option<usize> {
        match self {
            Self::Rsa2048 => Some(2048),
            Self::Rsa3072 => Some(3072),
            Self::Rsa4096 => Some(4096),
            _ => None,
        }
    }
}

wire_enum! {
    /// What a key may be used for.
    KeyUsage, UnknownKeyUsage {
        /// Encrypt and Decrypt (and data keys under symmetric keys).
        EncryptDecrypt => "ENCRYPT/DECRYPT",
        /// Sign and Verify.
        SignVerify => "SIGN/VERIFY",
    }
}

wire_enum! {
    /// An encryption or signature algorithm as named on the wire.
    Algorithm, UnknownAlgorithm {
        /// AES in GCM mode: 12-byte IV, 16-byte tag appended to the ciphertext.
        AesGcm => "AES_GCM",
        /// AES in CBC mode: 16-byte IV, PKCS#7 or no padding.
        AesCbc => "AES_CBC",
        /// SM4 in GCM mode: 12-byte IV, 16-byte tag appended to the ciphertext.
        Sm4Gcm => "SM4_GCM",
        /// SM4 in CBC mode: 16-byte IV, PKCS#7 or no padding.
        Sm4Cbc => "SM4_CBC",
        /// RSAES-OAEP with SHA-256 and MGF1-SHA-256, empty label.
        RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
        /// RSAES-OAEP with SHA-1 and MGF1-SHA-1, empty label.
        RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
        /// SM2 public-key encryption (GB/T 32918.4), ciphertext in GM/T 0009 DER.
        Sm2Pke => "SM2PKE",
        /// RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt.
        RsaPssSha256 => "RSA_PSS_SHA_256",
        /// RSASSA-PKCS1-v1_5 with SHA-256.
        RsaPkcs1Sha256 => "RSA_PKCS1_SHA_256",
        /// ECDSA with SHA-256, signature DER `SEQUENCE { r, s }`.
        EcdsaSha256 => "ECDSA_SHA_256",
        /// SM2 signature (GB/T 32918.2) with SM3 and the distinguishing ID
        /// `1234567812345678`, signature DER `SEQUENCE { r, s }`.
        Sm2Dsa => "SM2DSA",
    }
}

/// What an algorithm does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgorithmKind {
    /// A symmetric cipher (Encrypt/Decrypt, data keys).
    SymmetricCipher,
    /// A public-key cipher (Encrypt with the public key, Decrypt with the private).
    AsymmetricCipher,
    /// A signature scheme (Sign/Verify).
    Signature,
}

impl Algorithm {
    /// What the algorithm does.
    pub const fn kind(self) -> AlgorithmKind {
        match self {
            Self::AesGcm | Self::AesCbc | Self::Sm4Gcm | Self::Sm4Cbc => {
                AlgorithmKind::SymmetricCipher
            }
            Self::RsaesOaepSha256 | Self::RsaesOaepSha1 | Self::Sm2Pke => {
                AlgorithmKind::AsymmetricCipher
            }
            Self::RsaPssSha256 | Self::RsaPkcs1Sha256 | Self::EcdsaSha256 | Self::Sm2Dsa => {
                AlgorithmKind::Signature
            }
        }
    }

    /// Whether the algorithm is a CBC mode (takes a padding mode).
    pub const fn is_cbc(self) -> bool {
        matches!(self, Self::AesCbc | Self::Sm4Cbc)
    }

    /// IV length for symmetric ciphers: 12 for GCM, 16 for CBC, 0 otherwise.
    pub const fn iv_len(self) -> usize {
        match self {
            Self::AesGcm | Self::Sm4Gcm => 12,
            Self::AesCbc | Self::Sm4Cbc => 16,
            _ => 0,
        }
    }

    /// The hash a signature algorithm applies to a RAW message.
    pub const fn signature_hash(self) -> Option<HashAlgorithm> {
        match self {
            Self::RsaPssSha256 | Self::RsaPkcs1Sha256 | Self::EcdsaSha256 => {
                Some(HashAlgorithm::Sha256)
            }
            Self::Sm2Dsa => Some(HashAlgorithm::Sm3),
            _ => None,
        }
    }
}

wire_enum! {
    /// Padding for CBC modes.
    #[derive(Default)]
    PaddingMode, UnknownPaddingMode {
        /// PKCS#7 padding (the default).
        #[default]
        Pkcs7 => "PKCS7_PADDING",
        /// No padding: the plaintext must be a whole number of 16-byte blocks.
        NoPadding => "NO_PADDING",
    }
}

wire_enum! {
    /// Whether a Sign/Verify message is the message itself or its digest.
    #[derive(Default)]
    MessageType, UnknownMessageType {
        /// The message; the algorithm's hash is applied to it (the default).
        #[default]
        Raw => "RAW",
        /// A precomputed 32-byte digest: SHA-256 of the message, or for SM2DSA the
        /// SM3 hash `e = SM3(Z_A ‖ M)` of GB/T 32918.2.
        Digest => "DIGEST",
    }
}

wire_enum! {
    /// Hash algorithms of the Hash API.
    #[derive(Default)]
    HashAlgorithm, UnknownHashAlgorithm {
        /// SHA-256 (the default).
        #[default]
        Sha256 => "SHA_256",
        /// SHA-384.
        Sha384 => "SHA_384",
        /// SHA-512.
        Sha512 => "SHA_512",
        /// SM3 (GB/T 32905).
        Sm3 => "SM3",
    }
}

impl HashAlgorithm {
    /// Digest length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha256 | Self::Sm3 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

wire_enum! {
    /// Encoding of generated data key pairs.
    KeyFormat, UnknownKeyFormat {
        /// PEM text: `PRIVATE KEY` (PKCS#8) and `PUBLIC KEY` (SubjectPublicKeyInfo).
        Pem => "PEM",
        /// DER: PKCS#8 PrivateKeyInfo and SubjectPublicKeyInfo.
        Der => "DER",
    }
}

wire_enum! {
    /// The kind of wrapping key (the public key of GetParametersForImport) that
    /// protects key material in transit to the KMS ([`crate::import`]).
    WrappingKeySpec, UnknownWrappingKeySpec {
        /// RSA, 2048-bit modulus.
        Rsa2048 => "RSA_2048",
        /// SM2 on the SM2 recommended curve.
        EcSm2 => "EC_SM2",
    }
}

impl WrappingKeySpec {
    /// The key spec of the wrapping key pair's material.
    pub const fn key_spec(self) -> KeySpec {
        match self {
            Self::Rsa2048 => KeySpec::Rsa2048,
            Self::EcSm2 => KeySpec::EcSm2,
        }
    }

    /// The wrapping key spec a key pair of `spec` can serve as, if any.
    pub const fn from_key_spec(spec: KeySpec) -> Option<Self> {
        match spec {
            KeySpec::Rsa2048 => Some(Self::Rsa2048),
            KeySpec::EcSm2 => Some(Self::EcSm2),
            _ => None,
        }
    }
}

wire_enum! {
    /// How imported key material is encrypted under the wrapping key
    /// (`spec/product-model.md` §3). Two algorithms are names only: they parse, so that
    /// a request naming them gets a precise refusal, but [`crate::import`] never
    /// decrypts with them.
    WrappingAlgorithm, UnknownWrappingAlgorithm {
        /// RSAES-PKCS1-v1_5. Refused: not supported by Dedicated KMS, and
        /// PKCS#1 v1.5 decryption is a padding-oracle risk (Bleichenbacher).
        RsaesPkcs1V15 => "RSAES_PKCS1_V1_5",
        /// RSAES-OAEP with SHA-1. Refused: Dedicated KMS does not support it.
        RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
        /// RSAES-OAEP with SHA-256 and MGF1-SHA-256, empty label, over the raw
        /// symmetric key.
        RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
        /// Envelope for key pairs: an AES-256 key under RSAES-OAEP-SHA-256, then the
        /// PKCS#8 private key under AES-256-ECB with PKCS#7 padding.
        RsaesOaepSha256Aes256EcbPkcs7Pad => "RSAES_OAEP_SHA_256_AES_256_ECB_PKCS7_PAD",
        /// SM2 public-key encryption (GB/T 32918.4) of the raw symmetric key.
        Sm2Pke => "SM2PKE",
        /// Envelope for SM2 key pairs: an SM4 key under SM2 encryption, then the
        /// 32-byte private scalar under SM4-ECB without padding.
        Sm2PkeSm4Ecb => "SM2PKE_SM4_ECB",
    }
}

impl WrappingAlgorithm {
    /// The wrapping key spec the algorithm works with.
    pub const fn wrapping_key_spec(self) -> WrappingKeySpec {
        match self {
            Self::RsaesPkcs1V15
            | Self::RsaesOaepSha1
            | Self::RsaesOaepSha256
            | Self::RsaesOaepSha256Aes256EcbPkcs7Pad => WrappingKeySpec::Rsa2048,
            Self::Sm2Pke | Self::Sm2PkeSm4Ecb => WrappingKeySpec::EcSm2,
        }
    }

    /// Whether Strongroom unwraps with this algorithm (every one except
    /// `RSAES_PKCS1_V1_5` and `RSAES_OAEP_SHA_1`).
    pub const fn is_supported(self) -> bool {
        !matches!(self, Self::RsaesPkcs1V15 | Self::RsaesOaepSha1)
    }

    /// Whether the algorithm is a two-layer envelope (for key pairs) rather than direct
    /// public-key encryption of a symmetric key.
    pub const fn is_envelope(self) -> bool {
        matches!(
            self,
            Self::RsaesOaepSha256Aes256EcbPkcs7Pad | Self::Sm2PkeSm4Ecb
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_string_round_trips() {
        fn check<T: FromStr<Err = CryptoError> + fmt::Display + PartialEq + fmt::Debug + Copy>(
            all: &[T],
        ) {
            for value in all {
                let printed = value.to_string();
                assert_eq!(printed.parse::<T>().unwrap(), *value);
            }
        }
        check(KeySpec::ALL);
        check(KeyUsage::ALL);
        check(Algorithm::ALL);
        check(PaddingMode::ALL);
        check(MessageType::ALL);
        check(HashAlgorithm::ALL);
        check(KeyFormat::ALL);
        check(WrappingKeySpec::ALL);
        check(WrappingAlgorithm::ALL);
        assert_eq!(KeySpec::ALL.len(), 10);
        assert_eq!(WrappingAlgorithm::ALL.len(), 6);
        assert_eq!(Algorithm::ALL.len(), 11);
    }

    #[test]
    fn wire_strings_are_exact() {
        let specs: Vec<&str> = KeySpec::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            specs,
            [
                "Aliyun_AES_256",
                "Aliyun_AES_192",
                "Aliyun_AES_128",
                "Aliyun_SM4",
                "RSA_2048",
                "RSA_3072",
                "RSA_4096",
                "EC_P256",
                "EC_P256K",
                "EC_SM2"
            ]
        );
        assert_eq!(KeyUsage::EncryptDecrypt.as_str(), "ENCRYPT/DECRYPT");
        assert_eq!(KeyUsage::SignVerify.as_str(), "SIGN/VERIFY");
        assert_eq!(Algorithm::RsaesOaepSha256.as_str(), "RSAES_OAEP_SHA_256");
        assert_eq!(PaddingMode::Pkcs7.as_str(), "PKCS7_PADDING");
    }

    #[test]
    fn unknown_and_miscased_strings_are_typed_errors() {
        assert_eq!(
            "aliyun_aes_256".parse::<KeySpec>(),
            Err(CryptoError::UnknownKeySpec("aliyun_aes_256".into()))
        );
        assert_eq!(
            "Aliyun_DES3_192".parse::<KeySpec>(),
            Err(CryptoError::UnknownKeySpec("Aliyun_DES3_192".into()))
        );
        assert_eq!(
            "ENCRYPT".parse::<KeyUsage>(),
            Err(CryptoError::UnknownKeyUsage("ENCRYPT".into()))
        );
        assert_eq!(
            "AES_ECB".parse::<Algorithm>(),
            Err(CryptoError::UnknownAlgorithm("AES_ECB".into()))
        );
        assert_eq!(
            "".parse::<PaddingMode>(),
            Err(CryptoError::UnknownPaddingMode(String::new()))
        );
        assert!("raw".parse::<MessageType>().is_err());
        assert!("SHA256".parse::<HashAlgorithm>().is_err());
        assert!("pem".parse::<KeyFormat>().is_err());
        assert_eq!(
            "RSA_3072".parse::<WrappingKeySpec>(),
            Err(CryptoError::UnknownWrappingKeySpec("RSA_3072".into()))
        );
        assert_eq!(
            "RSAES_OAEP_SHA_256_AES_256_ECB".parse::<WrappingAlgorithm>(),
            Err(CryptoError::UnknownWrappingAlgorithm(
                "RSAES_OAEP_SHA_256_AES_256_ECB".into()
            ))
        );
    }
}
