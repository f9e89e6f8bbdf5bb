//! The certificate tool of the guide (`hsm_certificate_generate -dir ./certs -pswd
//! 12345678`): a CA, an HSM server certificate and a KMS client certificate for the
//! mutual-TLS link between a KMS instance and its HSMs.
//!
//! It writes exactly five files into the output directory:
//!
//! | file | contents | mode |
//! |---|---|---|
//! | `client.p12` | client certificate + key, then the CA certificate; PKCS#12 under the password | `0600` |
//! | `client.pem` | client certificate (what the officer imports into the HSM) | `0644` |
//! | `rootca.key` | CA private key, PEM PKCS#8, unencrypted | `0600` |
//! | `rootca.pem` | CA certificate | `0644` |
//! | `server.p12` | HSM server certificate + key, then the CA certificate; PKCS#12 under the password | `0600` |
//!
//! Both PKCS#12 files carry the CA certificate last, so the side that loads one also
//! learns which CA its peer must chain to. Everything is generated in memory first;
//! files are written only when generation succeeded.

use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;

use crate::error::{CertsError, Result};
use crate::files::{self, Access};
use crate::password::Password;
use crate::pkcs12::{self, Pkcs12Format};
use crate::pki::{
    CertificateAuthority, KeyType, ServerNames, Validity, certificate_pem, private_key_pem,
};

/// The guide's minimum password length, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Default validity of the CA: 10 years.
pub const DEFAULT_CA_VALIDITY_DAYS: u32 = 3650;
/// Default validity of the server and client certificates: 5 years.
pub const DEFAULT_LEAF_VALIDITY_DAYS: u32 = 1825;

/// File name of the client PKCS#12.
pub const CLIENT_P12: &str = "client.p12";
/// File name of the client certificate.
pub const CLIENT_PEM: &str = "client.pem";
/// File name of the CA private key.
pub const ROOTCA_KEY: &str = "rootca.key";
/// File name of the CA certificate.
pub const ROOTCA_PEM: &str = "rootca.pem";
/// File name of the server PKCS#12.
pub const SERVER_P12: &str = "server.p12";

/// Common name of the tool's CA.
const CA_NAME: &str = "Strongroom HSM Root CA";
/// Common name of the HSM server certificate.
const SERVER_NAME: &str = "Strongroom HSM";
/// Common name of the KMS client certificate.
const CLIENT_NAME: &str = "Strongroom KMS client";

/// What [`generate`] makes and where.
///
/// `Debug` does not show the password.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GenerateOptions {
    /// Output directory; created (mode `0700`) if missing.
    pub dir: PathBuf,
    /// Protects both PKCS#12 files; at least [`MIN_PASSWORD_CHARS`] characters.
    pub password: Password,
    /// Names and addresses of the HSM server certificate (default `localhost`,
    /// `127.0.0.1`).
    pub server_names: ServerNames,
    /// Key algorithm of all three keys (default RSA-2048).
    pub key_type: KeyType,
    /// Validity of the CA in days (default [`DEFAULT_CA_VALIDITY_DAYS`]).
    pub ca_validity_days: u32,
    /// Validity of the server and client certificates in days (default
    /// [`DEFAULT_LEAF_VALIDITY_DAYS`]); never beyond the CA's end.
    pub leaf_validity_days: u32,
    /// Layout of the two PKCS#12 files (default [`Pkcs12Format::Modern`]).
    pub pkcs12_format: Pkcs12Format,
    /// Write into a non-empty directory, replacing the five files.
    pub force: bool,
}

impl GenerateOptions {
    /// Options with every default, writing into `dir` under `password`.
    pub fn new(dir: impl Into<PathBuf>, password: Password) -> Self {
        Self {
            dir: dir.into(),
            password,
            server_names: ServerNames::default(),
            key_type: KeyType::default(),
            ca_validity_days: DEFAULT_CA_VALIDITY_DAYS,
            leaf_validity_days: DEFAULT_LEAF_VALIDITY_DAYS,
            pkcs12_format: Pkcs12Format::default(),
            force: false,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GeneratedFiles {
    /// `client.p12`.
    pub client_p12: PathBuf,
    /// `client.pem`.
    pub client_pem: PathBuf,
    /// `rootca.key`.
    pub rootca_key: PathBuf,
    /// `rootca.pem`.
    pub rootca_pem: PathBuf,
    /// `server.p12`.
    pub server_p12: PathBuf,
    /// The CA certificate (DER).
    pub ca_certificate: CertificateDer<'static>,
    /// The client certificate (DER); its SHA-256 is what an HSM allow-lists.
    pub client_certificate: CertificateDer<'static>,
    /// The server certificate (DER).
    pub server_certificate: CertificateDer<'static>,
}

/// Generates the CA, server and client certificates and writes the five files.
///
/// # Errors
/// [`CertsError::PasswordTooShort`] / [`CertsError::PasswordNotEncodable`] for a bad
/// password; [`CertsError::InvalidValidity`] for zero or absurd day counts;
/// [`CertsError::InvalidHostName`] for a server name that is not a DNS name;
/// [`CertsError::DirectoryNotEmpty`] (without `force`), [`CertsError::NotADirectory`]
/// or [`CertsError::Io`] for the output directory; generation errors otherwise.
pub fn generate(options: &GenerateOptions) -> Result<GeneratedFiles> {
    let chars = options.password.char_count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(CertsError::PasswordTooShort {
            min: MIN_PASSWORD_CHARS,
            actual: chars,
        });
    }
    let ca_validity = Validity::days_from_now(options.ca_validity_days)?;
    let leaf_validity = Validity::days_from_now(options.leaf_validity_days)?;

    let ca = CertificateAuthority::new_root(CA_NAME, options.key_type, ca_validity, Some(0))?;
    let server = ca.issue_server(
        SERVER_NAME,
        &options.server_names,
        options.key_type,
        leaf_validity,
    )?;
    let client = ca.issue_client(CLIENT_NAME, options.key_type, leaf_validity)?;

    let ca_certificate = ca.certificate().clone();
    let server_p12 = pkcs12::write(
        &server.private_key,
        &[server.certificate.clone(), ca_certificate.clone()],
        &options.password,
        options.pkcs12_format,
    )?;
    let client_p12 = pkcs12::write(
        &client.private_key,
        &[client.certificate.clone(), ca_certificate.clone()],
        &options.password,
        options.pkcs12_format,
    )?;
    let rootca_key = private_key_pem(&ca.private_key());

    let dir = options.dir.as_path();
    files::prepare_dir(dir, options.force)?;
    let out = GeneratedFiles {
        client_p12: dir.join(CLIENT_P12),
        client_pem: dir.join(CLIENT_PEM),
        rootca_key: dir.join(ROOTCA_KEY),
        rootca_pem: dir.join(ROOTCA_PEM),
        server_p12: dir.join(SERVER_P12),
        ca_certificate,
        client_certificate: client.certificate,
        server_certificate: server.certificate,
    };
    let write = |path: &Path, contents: &[u8], access| {
        files::write_new(path, contents, access, options.force)
    };
    write(&out.rootca_key, rootca_key.expose_secret(), Access::Private)?;
    write(
        &out.rootca_pem,
        certificate_pem(&out.ca_certificate).as_bytes(),
        Access::Public,
    )?;
    write(&out.server_p12, &server_p12, Access::Private)?;
    write(&out.client_p12, &client_p12, Access::Private)?;
    write(
        &out.client_pem,
        certificate_pem(&out.client_certificate).as_bytes(),
        Access::Public,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_passwords_are_refused_before_anything_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("certs");
        let options = GenerateOptions::new(&dir, Password::from("1234567"));
        assert!(matches!(
            generate(&options),
            Err(CertsError::PasswordTooShort { min: 8, actual: 7 })
        ));
        assert!(!dir.exists());
    }

    #[test]
    fn bad_host_names_and_validity_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut options = GenerateOptions::new(tmp.path(), Password::from("12345678"));
        options.key_type = KeyType::EcP256;
        options.leaf_validity_days = 0;
        assert!(matches!(
            generate(&options),
            Err(CertsError::InvalidValidity { .. })
        ));
        options.leaf_validity_days = 30;
        options.server_names.dns_names.push("not a name".to_owned());
        assert!(matches!(
            generate(&options),
            Err(CertsError::InvalidHostName { .. })
        ));
    }
}
