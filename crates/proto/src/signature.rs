//! The instance API's request signature (`spec/instance-api.md` §4.3–§4.4).
//!
//! The SDK signs, with the client key's RSA private key (PKCS#1 v1.5, SHA-256), the
//! UTF-8 string
//!
//! ```text
//! POST\n
//! <content-sha256>\n
//! <content-type>\n
//! <date>\n
//! <every x-kms-* header, sorted by name: name:trimmed-value\n>
//! /
//! ```
//!
//! (no newline after the final `/`), and sends `authorization: Bearer <base64>`.
//! Header names are compared in lower case; a missing `content-sha256`, `content-type`
//! or `date` contributes an empty line.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use strongroom_crypto::hash;
use strongroom_crypto::key::Key;
use strongroom_crypto::material::KeyMaterial;
use strongroom_crypto::public::PublicKey;
use strongroom_crypto::secret::SecretBytes;
use strongroom_crypto::spec::{Algorithm, KeySpec, KeyUsage, MessageType};

/// The protocol version every SDK sends in `x-kms-apiversion`.
pub const API_VERSION: &str = "dkms-gcs-0.2";
/// The only signature method any SDK sends in `x-kms-signaturemethod`.
pub const SIGNATURE_METHOD: &str = "RSA_PKCS1_SHA_256";
/// The content type of requests and responses.
pub const CONTENT_TYPE: &str = "application/x-protobuf";
/// The header carrying the client key id (three c's, as the SDKs spell it).
pub const ACCESS_KEY_ID_HEADER: &str = "x-kms-acccesskeyid";
/// Prefix of the headers that are signed.
pub const SIGNED_HEADER_PREFIX: &str = "x-kms-";
/// The `authorization` scheme.
pub const BEARER: &str = "Bearer ";

/// Why a signature could not be built or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// An `x-kms-*` header appears more than once: which value was signed is ambiguous.
    #[error("header {0} appears more than once")]
    DuplicateHeader(String),
    /// The `authorization` value is not `Bearer <base64>`.
    #[error("the authorization header is not \"Bearer <base64>\"")]
    MalformedAuthorization,
    /// The signature does not match the string to sign under the client key.
    #[error("signature is not matched")]
    Mismatch,
    /// The client key is not an RSA key of 2048, 3072 or 4096 bits.
    #[error("the client key is not a supported RSA key")]
    UnsupportedKey,
}

/// Upper-case hex SHA-256 of a request body, as the SDKs put in `content-sha256`.
pub fn content_sha256(body: &[u8]) -> String {
    let digest = hash::sha256(body);
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(hex_digit(byte >> 4));
        out.push(hex_digit(byte & 0x0f));
    }
    out
}

fn hex_digit(nibble: u8) -> char {
    char::from(
        b"0123456789ABCDEF"
            .get(usize::from(nibble))
            .copied()
            .unwrap_or(b'0'),
    )
}

/// Builds the string to sign from a request's method and headers (any order, any case).
///
/// # Errors
/// [`SignatureError::DuplicateHeader`] if an `x-kms-*` header (or `date`,
/// `content-sha256`, `content-type`) appears twice.
pub fn string_to_sign<'a, I>(method: &str, headers: I) -> Result<String, SignatureError>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut content_sha = None;
    let mut content_type = None;
    let mut date = None;
    let mut kms: Vec<(String, &str)> = Vec::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        let slot = match lower.as_str() {
            "content-sha256" => &mut content_sha,
            "content-type" => &mut content_type,
            "date" => &mut date,
            _ => {
                if lower.starts_with(SIGNED_HEADER_PREFIX) {
                    if kms.iter().any(|(n, _)| *n == lower) {
                        return Err(SignatureError::DuplicateHeader(lower));
                    }
                    kms.push((lower, value.trim()));
                }
                continue;
            }
        };
        if slot.replace(value).is_some() {
            return Err(SignatureError::DuplicateHeader(lower));
        }
    }
    kms.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = String::with_capacity(256);
    for line in [
        method,
        content_sha.unwrap_or(""),
        content_type.unwrap_or(""),
        date.unwrap_or(""),
    ] {
        out.push_str(line);
        out.push('\n');
    }
    for (name, value) in &kms {
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('/');
    Ok(out)
}

/// Signs a string to sign with a client key's private key (DER PKCS#8), returning the
/// full `authorization` value `Bearer <base64>`. This is what the SDKs do; Strongroom
/// uses it in its load generator and tests. To sign many, parse the key once with
/// [`RequestSigner`].
///
/// # Errors
/// [`SignatureError::UnsupportedKey`] if the key is not RSA-2048/3072/4096.
pub fn sign(
    private_key_pkcs8: &SecretBytes,
    string_to_sign: &str,
) -> Result<String, SignatureError> {
    RequestSigner::new(private_key_pkcs8)?.sign(string_to_sign)
}

/// A client key's private key, parsed once for signing many requests.
///
/// `Debug` shows nothing of the key.
pub struct RequestSigner(Key);

impl std::fmt::Debug for RequestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestSigner([REDACTED])")
    }
}

impl RequestSigner {
    /// Parses a DER PKCS#8 RSA private key.
    ///
    /// # Errors
    /// [`SignatureError::UnsupportedKey`] if the key is not RSA-2048/3072/4096.
    pub fn new(private_key_pkcs8: &SecretBytes) -> Result<Self, SignatureError> {
        [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096]
            .into_iter()
            .find_map(|spec| KeyMaterial::import(spec, private_key_pkcs8.expose_secret()).ok())
            .and_then(|material| Key::new(material, KeyUsage::SignVerify).ok())
            .map(Self)
            .ok_or(SignatureError::UnsupportedKey)
    }

    /// The `authorization` value `Bearer <base64>` for a string to sign.
    ///
    /// # Errors
    /// [`SignatureError::UnsupportedKey`] if the key cannot sign.
    pub fn sign(&self, string_to_sign: &str) -> Result<String, SignatureError> {
        let (_, signature) = self
            .0
            .sign(
                Some(Algorithm::RsaPkcs1Sha256),
                string_to_sign.as_bytes(),
                MessageType::Raw,
            )
            .map_err(|_| SignatureError::UnsupportedKey)?;
        Ok(format!("{BEARER}{}", STANDARD.encode(signature)))
    }
}

/// A client key's public key, parsed once for verifying many requests.
#[derive(Debug, Clone)]
pub struct ClientPublicKey(PublicKey);

impl ClientPublicKey {
    /// Parses a DER SubjectPublicKeyInfo (as found in the client key's certificate).
    ///
    /// # Errors
    /// [`SignatureError::UnsupportedKey`] if it is not an RSA-2048/3072/4096 key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, SignatureError> {
        [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096]
            .into_iter()
            .find_map(|spec| PublicKey::from_der(spec, der).ok())
            .map(Self)
            .ok_or(SignatureError::UnsupportedKey)
    }

    /// Checks an `authorization` value against a string to sign.
    ///
    /// # Errors
    /// [`SignatureError::MalformedAuthorization`] for a value that is not
    /// `Bearer <base64>`, [`SignatureError::Mismatch`] for a wrong signature.
    pub fn verify(&self, string_to_sign: &str, authorization: &str) -> Result<(), SignatureError> {
        let encoded = authorization
            .strip_prefix(BEARER)
            .ok_or(SignatureError::MalformedAuthorization)?;
        let signature = STANDARD
            .decode(encoded.trim())
            .map_err(|_| SignatureError::MalformedAuthorization)?;
        match self.0.verify(
            Algorithm::RsaPkcs1Sha256,
            string_to_sign.as_bytes(),
            MessageType::Raw,
            &signature,
        ) {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => Err(SignatureError::Mismatch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_body_digest_is_the_sdks() {
        assert_eq!(
            content_sha256(b""),
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
        );
    }

    #[test]
    fn headers_are_sorted_lowercased_and_trimmed() {
        let sts = string_to_sign(
            "POST",
            [
                ("X-Kms-ApiName", " Encrypt "),
                ("Date", "Sat, 28 Nov 2026 10:18:56 GMT"),
                ("x-kms-acccesskeyid", "KAAP.x"),
                ("host", "ignored"),
                ("content-type", "application/x-protobuf"),
                ("content-sha256", "AB"),
            ],
        )
        .unwrap();
        assert_eq!(
            sts,
            "POST\nAB\napplication/x-protobuf\nSat, 28 Nov 2026 10:18:56 GMT\n\
             x-kms-acccesskeyid:KAAP.x\nx-kms-apiname:Encrypt\n/"
        );
    }

    #[test]
    fn missing_headers_are_empty_lines_and_duplicates_refused() {
        assert_eq!(string_to_sign("POST", []).unwrap(), "POST\n\n\n\n/");
        assert_eq!(
            string_to_sign("POST", [("x-kms-apiname", "a"), ("X-KMS-APINAME", "b")]),
            Err(SignatureError::DuplicateHeader("x-kms-apiname".into()))
        );
        assert_eq!(
            string_to_sign("POST", [("date", "a"), ("Date", "b")]),
            Err(SignatureError::DuplicateHeader("date".into()))
        );
    }
}
