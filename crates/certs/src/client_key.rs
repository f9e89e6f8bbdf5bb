//! Client keys: the credential an application uses to sign its calls to an instance
//! (what the management API's CreateClientKey returns; spec/instance-api.md §4.1).
//!
//! A client key is an RSA-2048 key pair with a self-signed certificate
//! (`CN=<instanceId>-client, OU=Client Key, O=Strongroom`; KeyUsage digitalSignature,
//! critical; sha256WithRSAEncryption), packed as a legacy PKCS#12 (3DES on both bags,
//! HMAC-SHA1 MAC, certificate bag first, key bag second, only localKeyID) so that the
//! Go SDK reads it too. It travels as a JSON file `clientKey_<KeyId>.json` holding
//! `KeyId` (`KAAP.` + a lower-case UUID v4) and `PrivateKeyData` (base64 of the
//! PKCS#12), with its password in `clientKey_<KeyId>_Password.txt`.
//!
//! The KMS keeps only the key id and the certificate (to verify signatures); the
//! private key and the password are handed out once and never stored.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{CertificateParams, DnType, IsCa, KeyUsagePurpose, PKCS_RSA_SHA256};
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use strongroom_crypto::secret::SecretBytes;
use time::{Duration, OffsetDateTime};
use zeroize::{Zeroize as _, Zeroizing};

use crate::error::{CertsError, Result};
use crate::files::{self, Access};
use crate::instance_ca::validate_instance_id;
use crate::password::Password;
use crate::pkcs12::{self, Pkcs12Format};
use crate::pki::{KeyType, ORGANIZATION, OwnedKey, Validity, certificate_pem, random_serial};

/// Prefix of every client key id.
pub const KEY_ID_PREFIX: &str = "KAAP.";
/// Default validity of a client key's certificate: 5 years (with a leap day).
pub const DEFAULT_VALIDITY: Duration = Duration::days(5 * 365 + 1);

/// A newly generated client key, as handed to the user once.
///
/// `Debug` does not show `private_key_data`.
#[non_exhaustive]
pub struct ClientKey {
    /// `KAAP.` + lower-case UUID v4.
    pub key_id: String,
    /// Standard base64 (with padding) of the legacy PKCS#12 DER.
    pub private_key_data: Zeroizing<String>,
    /// The self-signed certificate, DER (the KMS keeps it).
    pub certificate: CertificateDer<'static>,
    /// The same certificate, PEM.
    pub certificate_pem: String,
    /// Start of the certificate's validity.
    pub not_before: OffsetDateTime,
    /// End of the certificate's validity.
    pub not_after: OffsetDateTime,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("key_id", &self.key_id)
            .field("private_key_data", &"[REDACTED]")
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// The text of `clientKey_<KeyId>.json`: a JSON object with exactly `KeyId` and
    /// `PrivateKeyData`, indented like the cloud's.
    ///
    /// # Errors
    /// [`CertsError::Internal`] only if JSON encoding fails (it does not for strings).
    pub fn key_file_json(&self) -> Result<Zeroizing<String>> {
        key_file_json(&self.key_id, &self.private_key_data)
    }
}

/// Where [`write_files`] put a client key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientKeyFiles {
    /// `clientKey_<KeyId>.json`.
    pub key_file: PathBuf,
    /// `clientKey_<KeyId>_Password.txt`.
    pub password_file: PathBuf,
}

/// A client key read back from its file: what an SDK (or a test client) signs with.
#[derive(Debug)]
#[non_exhaustive]
pub struct LoadedClientKey {
    /// The key id (`KeyId`).
    pub key_id: String,
    /// The RSA private key, PKCS#8 DER.
    pub private_key: SecretBytes,
    /// The certificate of that key, DER.
    pub certificate: CertificateDer<'static>,
}

/// The JSON file's members, as read (others are ignored, as the SDKs do).
/// `PrivateKeyData` is wiped on drop.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "KeyId")]
    key_id: String,
    #[serde(rename = "PrivateKeyData")]
    private_key_data: String,
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        self.private_key_data.zeroize();
    }
}

/// The JSON file's members, as written.
#[derive(Serialize)]
struct KeyFileRef<'a> {
    #[serde(rename = "KeyId")]
    key_id: &'a str,
    #[serde(rename = "PrivateKeyData")]
    private_key_data: &'a str,
}

/// The text of a client key file.
fn key_file_json(key_id: &str, private_key_data: &str) -> Result<Zeroizing<String>> {
    serde_json::to_string_pretty(&KeyFileRef {
        key_id,
        private_key_data,
    })
    .map(Zeroizing::new)
    .map_err(|_| CertsError::Internal("JSON encoding of a client key"))
}

/// The default validity: from now (less an hour, for clock skew) for
/// [`DEFAULT_VALIDITY`].
pub fn default_validity() -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now - Duration::hours(1), now + DEFAULT_VALIDITY)
}

/// Generates a client key for `instance_id`, its PKCS#12 protected by `password`
/// (use [`Password::generate`] for the cloud's shape).
///
/// # Errors
/// [`CertsError::InvalidInstanceId`], [`CertsError::InvalidValidity`],
/// [`CertsError::PasswordNotEncodable`], or generation errors.
pub fn generate(
    instance_id: &str,
    password: &Password,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<ClientKey> {
    validate_instance_id(instance_id)?;
    let validity = Validity::new(not_before, not_after)?;
    let key = OwnedKey::generate(KeyType::Rsa2048)?;

    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, ORGANIZATION);
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "Client Key");
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{instance_id}-client"));
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params.serial_number = Some(random_serial()?);
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let certificate = params.self_signed(&key)?.der().clone();

    let private_key = SecretBytes::new(key.0.serialize_der());
    let p12 = pkcs12::write(
        &private_key,
        std::slice::from_ref(&certificate),
        password,
        Pkcs12Format::Legacy,
    )?;
    Ok(ClientKey {
        key_id: new_key_id()?,
        private_key_data: Zeroizing::new(STANDARD.encode(p12)),
        certificate_pem: certificate_pem(&certificate),
        certificate,
        not_before: validity.not_before,
        not_after: validity.not_after,
    })
}

/// The file names of a client key: `clientKey_<KeyId>.json` and
/// `clientKey_<KeyId>_Password.txt`.
pub fn file_names(key_id: &str) -> (String, String) {
    (
        format!("clientKey_{key_id}.json"),
        format!("clientKey_{key_id}_Password.txt"),
    )
}

/// Writes `clientKey_<KeyId>.json` (`{"KeyId": …, "PrivateKeyData": …}`) and
/// `clientKey_<KeyId>_Password.txt` (the password, **without** a trailing newline, so
/// that a reader that does not trim still gets it right; the cloud's file ends with a
/// newline, so readers must trim) into `dir`, both mode `0600`. `dir` is created if
/// missing; existing files are never overwritten.
///
/// # Errors
/// [`CertsError::MalformedClientKey`] for a key id that is not `KAAP.<uuid>`;
/// [`CertsError::FileExists`] or [`CertsError::Io`].
pub fn write_files(dir: &Path, key: &ClientKey, password: &Password) -> Result<ClientKeyFiles> {
    write_answer_files(dir, &key.key_id, &key.private_key_data, password)
}

/// [`write_files`] for a client key known by its parts, as `CreateClientKey` answers
/// them (`ClientKeyId`, `PrivateKeyData`): the management client's way to save a key
/// made by a KMS node.
///
/// # Errors
/// As [`write_files`].
pub fn write_answer_files(
    dir: &Path,
    key_id: &str,
    private_key_data: &str,
    password: &Password,
) -> Result<ClientKeyFiles> {
    if !is_key_id(key_id) {
        return Err(CertsError::MalformedClientKey {
            reason: "KeyId is not KAAP.<uuid>",
        });
    }
    let json = key_file_json(key_id, private_key_data)?;
    if !dir.is_dir() {
        files::prepare_dir(dir, false)?;
    }
    let (key_name, password_name) = file_names(key_id);
    let out = ClientKeyFiles {
        key_file: dir.join(key_name),
        password_file: dir.join(password_name),
    };
    files::write_new(&out.key_file, json.as_bytes(), Access::Private, false)?;
    files::write_new(
        &out.password_file,
        password.expose_secret().as_bytes(),
        Access::Private,
        false,
    )?;
    Ok(out)
}

/// Reads a client key from the text of its JSON file (or the same JSON passed as a
/// string, the SDKs' `client_key_content`) with its password.
///
/// # Errors
/// [`CertsError::MalformedClientKey`] if the JSON lacks `KeyId` / `PrivateKeyData`,
/// the id is not `KAAP.…`, or the data is not base64;
/// [`CertsError::WrongPassword`]; [`CertsError::MalformedPkcs12`];
/// [`CertsError::InvalidPrivateKey`] if the key is not RSA.
pub fn load(json: &str, password: &Password) -> Result<LoadedClientKey> {
    let mut file: KeyFile =
        serde_json::from_str(json).map_err(|_| CertsError::MalformedClientKey {
            reason: "not a JSON object with string members KeyId and PrivateKeyData",
        })?;
    if !file.key_id.starts_with(KEY_ID_PREFIX) || file.key_id.len() <= KEY_ID_PREFIX.len() {
        return Err(CertsError::MalformedClientKey {
            reason: "KeyId does not start with KAAP.",
        });
    }
    let compact: Zeroizing<String> = Zeroizing::new(
        file.private_key_data
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect(),
    );
    let der = Zeroizing::new(STANDARD.decode(compact.as_bytes()).map_err(|_| {
        CertsError::MalformedClientKey {
            reason: "PrivateKeyData is not standard base64",
        }
    })?);
    let contents = pkcs12::read(&der, password)?;
    let key = OwnedKey::from_pkcs8(&contents.private_key)?;
    if rcgen::PublicKeyData::algorithm(&key) != &PKCS_RSA_SHA256 {
        return Err(CertsError::InvalidPrivateKey {
            reason: "a client key must be RSA",
        });
    }
    let certificate =
        contents
            .certificates
            .into_iter()
            .next()
            .ok_or(CertsError::MalformedPkcs12 {
                reason: "no certificate",
            })?;
    Ok(LoadedClientKey {
        key_id: std::mem::take(&mut file.key_id),
        private_key: contents.private_key,
        certificate,
    })
}

/// Reads a client key file; see [`load`].
///
/// # Errors
/// [`CertsError::Io`], [`CertsError::MalformedClientKey`] for a file that is not
/// UTF-8, and the errors of [`load`].
pub fn load_file(path: &Path, password: &Password) -> Result<LoadedClientKey> {
    let bytes = Zeroizing::new(files::read(path)?);
    let text = std::str::from_utf8(&bytes).map_err(|_| CertsError::MalformedClientKey {
        reason: "the file is not UTF-8",
    })?;
    load(text, password)
}

/// Reads a password file, trimming surrounding whitespace (a trailing newline).
///
/// # Errors
/// [`CertsError::Io`]; [`CertsError::MalformedClientKey`] if it is not UTF-8.
pub fn read_password_file(path: &Path) -> Result<Password> {
    let bytes = Zeroizing::new(files::read(path)?);
    let text = std::str::from_utf8(&bytes).map_err(|_| CertsError::MalformedClientKey {
        reason: "the password file is not UTF-8",
    })?;
    Ok(Password::from_file_text(text))
}

/// `KAAP.` + a random lower-case UUID v4.
fn new_key_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    strongroom_crypto::random::fill(&mut bytes).map_err(CertsError::Random)?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    let mut id = String::with_capacity(KEY_ID_PREFIX.len() + 36);
    id.push_str(KEY_ID_PREFIX);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        id.push_str(&format!("{byte:02x}"));
    }
    Ok(id)
}

/// Whether `key_id` is `KAAP.` + a lower-case hyphenated UUID (safe as a file name).
fn is_key_id(key_id: &str) -> bool {
    let Some(uuid) = key_id.strip_prefix(KEY_ID_PREFIX) else {
        return false;
    };
    let groups: Vec<&str> = uuid.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_kaap_uuid_v4() {
        let id = new_key_id().unwrap();
        assert!(is_key_id(&id), "{id}");
        assert_eq!(id.len(), 41);
        assert_eq!(&id[19..20], "4");
        assert!(matches!(&id[24..25], "8" | "9" | "a" | "b"));
        assert_ne!(id, new_key_id().unwrap());
        assert!(!is_key_id("KAAP.../../etc"));
        assert!(!is_key_id("KAAP.93FCC101-0054-47c1-be14-53f53e61491c"));
        assert!(is_key_id("KAAP.93fcc101-0054-47c1-be14-53f53e61491c"));
    }

    #[test]
    fn debug_hides_the_private_key_data() {
        let password = Password::from("0123456789abcdef");
        let (nb, na) = default_validity();
        let key = generate("kst-test", &password, nb, na).unwrap();
        let printed = format!("{key:?}");
        assert!(printed.contains("REDACTED"));
        assert!(!printed.contains(key.private_key_data.as_str()));
    }

    #[test]
    fn json_without_members_or_prefix_is_refused() {
        let password = Password::from("x");
        for json in [
            "{}",
            "[]",
            r#"{"KeyId": "KAAP.x"}"#,
            r#"{"KeyId": "other", "PrivateKeyData": "AAAA"}"#,
            r#"{"KeyId": "KAAP.x", "PrivateKeyData": "***"}"#,
        ] {
            assert!(
                matches!(
                    load(json, &password),
                    Err(CertsError::MalformedClientKey { .. })
                ),
                "{json}"
            );
        }
    }
}
