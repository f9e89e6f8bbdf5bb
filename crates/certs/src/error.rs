//! The one error type of the certificates crate.
//!
//! Variants say what was wrong in words an operator can act on. None of them carries a
//! password or key bytes; a wrong PKCS#12 password and a corrupted MAC are deliberately
//! the same error (the MAC cannot tell them apart).

use std::path::PathBuf;

/// Why a certificates-crate call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertsError {
    /// The certificate tool's password is shorter than the guide's minimum.
    #[error("the password has {actual} characters; at least {min} are required")]
    PasswordTooShort {
        /// The minimum number of characters.
        min: usize,
        /// How many characters were given.
        actual: usize,
    },
    /// A password with characters a PKCS#12 password cannot hold (outside the Basic
    /// Multilingual Plane, or NUL).
    #[error("the password contains characters a PKCS#12 password cannot encode")]
    PasswordNotEncodable,
    /// The output directory exists and holds files, and `force` was not given.
    #[error("directory {} is not empty (use force to overwrite)", path.display())]
    DirectoryNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// The output path exists but is not a directory.
    #[error("{} exists and is not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A file that must be new already exists (client key files are never overwritten).
    #[error("{} already exists", path.display())]
    FileExists {
        /// The file.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The PKCS#12 password is wrong, or the file's integrity check failed.
    #[error("wrong PKCS#12 password (or the file was altered)")]
    WrongPassword,
    /// A PKCS#12 file that does not parse or does not hold what it must.
    #[error("malformed PKCS#12: {reason}")]
    MalformedPkcs12 {
        /// What is wrong.
        reason: &'static str,
    },
    /// A client key file (`clientKey_<KeyId>.json`) that does not parse or lacks a member.
    #[error("malformed client key file: {reason}")]
    MalformedClientKey {
        /// What is wrong.
        reason: &'static str,
    },
    /// A certificate that does not parse as X.509 DER (or PEM).
    #[error("malformed certificate: {reason}")]
    MalformedCertificate {
        /// What is wrong.
        reason: &'static str,
    },
    /// A private key that does not parse, or is of a type this use does not accept.
    #[error("invalid private key: {reason}")]
    InvalidPrivateKey {
        /// What is wrong; never the key itself.
        reason: &'static str,
    },
    /// The private key is not the one certified by the certificate.
    #[error("the private key does not match the certificate")]
    KeyCertificateMismatch,
    /// An instance id that cannot be a DNS label (lower-case letters, digits, `-`).
    #[error("invalid instance id {instance_id:?}: {reason}")]
    InvalidInstanceId {
        /// The id given.
        instance_id: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A host name that cannot go into a certificate's subjectAltName.
    #[error("invalid host name {name:?} for a certificate")]
    InvalidHostName {
        /// The name given.
        name: String,
    },
    /// A validity period that is empty, reversed or out of range.
    #[error("invalid validity: {reason}")]
    InvalidValidity {
        /// What is wrong.
        reason: &'static str,
    },
    /// Certificate or key generation failed inside rcgen / aws-lc-rs.
    #[error("certificate generation failed: {0}")]
    Generation(#[source] rcgen::Error),
    /// A PKCS#12 or ASN.1 structure could not be encoded.
    #[error("encoding failed: {0}")]
    Encoding(#[source] der::Error),
    /// A primitive failed where it cannot for valid input (a bug, not bad input).
    #[error("internal failure: {0}")]
    Internal(&'static str),
    /// The system random generator failed.
    #[error("random generator failed: {0}")]
    Random(#[source] strongroom_crypto::error::CryptoError),
    /// rustls refused the configuration (a key it cannot use, no usable versions).
    #[error("TLS configuration refused: {0}")]
    Tls(#[from] rustls::Error),
    /// A certificate verifier could not be built (for example no CA given).
    #[error("certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

impl CertsError {
    /// An [`CertsError::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<rcgen::Error> for CertsError {
    fn from(value: rcgen::Error) -> Self {
        Self::Generation(value)
    }
}

/// Encoding errors of the `der` types this crate builds (PKCS#12 structures). Parsing
/// goes through p12-keystore and x509-parser, whose errors are mapped where they occur.
impl From<der::Error> for CertsError {
    fn from(value: der::Error) -> Self {
        Self::Encoding(value)
    }
}

/// Results of this crate.
pub type Result<T, E = CertsError> = core::result::Result<T, E>;
