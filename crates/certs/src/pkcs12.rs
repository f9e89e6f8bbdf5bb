//! PKCS#12 files: one private key and its certificate chain under a password.
//!
//! Two layouts are written:
//! - [`Pkcs12Format::Modern`] (the default): PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC,
//!   10 000 iterations) on both the certificates and the key, HMAC-SHA256 MAC, as
//!   p12-keystore writes it. OpenSSL 3 (without `-legacy`), Python `cryptography` and
//!   Java read it.
//! - [`Pkcs12Format::Legacy`]: pbeWithSHAAnd3-KeyTripleDES-CBC on both, HMAC-SHA1 MAC,
//!   certificate bags first, key bag second, only the localKeyID attribute — the
//!   layout Go's `golang.org/x/crypto/pkcs12` (and so the Go dedicated-KMS SDK) demands,
//!   which every other reader also accepts. Client keys use it.
//!
//! Reading accepts both, plus what OpenSSL writes with `-legacy` (RC2-40 certificates)
//! and the cloud's client keys. The key comes out as PKCS#8 DER in [`SecretBytes`].
//!
//! Limit: p12-keystore keeps its own copies of the key while writing and reading, and
//! does not wipe them; our copies are wiped.

mod legacy;

use p12_keystore::error::Error as P12Error;
use p12_keystore::{
    Certificate, KeyStore, KeyStoreEntry, LocalKeyId, Pkcs12Archive, PrivateKey, PrivateKeyChain,
};
use rustls::pki_types::CertificateDer;
use sha1::{Digest as _, Sha1};
use strongroom_crypto::secret::SecretBytes;

use crate::error::{CertsError, Result};
use crate::password::Password;
use crate::pki::key_matches_certificate;

/// Which PKCS#12 layout to write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Pkcs12Format {
    /// PBES2 / AES-256-CBC / HMAC-SHA256 (p12-keystore's and OpenSSL 3's default).
    #[default]
    Modern,
    /// 3DES / HMAC-SHA1, only localKeyID attributes (what Go's pkcs12 reader needs).
    Legacy,
}

/// What a PKCS#12 file holds: one private key and its certificates.
#[derive(Debug)]
pub struct Pkcs12Contents {
    /// The private key, PKCS#8 DER.
    pub private_key: SecretBytes,
    /// The certificates: first the one certifying the key, then the others in file
    /// order (for our files: the issuing CA, up to the root).
    pub certificates: Vec<CertificateDer<'static>>,
}

/// Encodes `private_key` (PKCS#8 DER) with `certificates` (the key's certificate
/// first, then its issuers) under `password`.
///
/// # Errors
/// [`CertsError::MalformedPkcs12`] if `certificates` is empty;
/// [`CertsError::KeyCertificateMismatch`] if the first certificate is not the key's;
/// [`CertsError::PasswordNotEncodable`] for a password PKCS#12 cannot hold;
/// [`CertsError::InvalidPrivateKey`] / [`CertsError::MalformedCertificate`] for input
/// that does not parse.
pub fn write(
    private_key: &SecretBytes,
    certificates: &[CertificateDer<'_>],
    password: &Password,
    format: Pkcs12Format,
) -> Result<Vec<u8>> {
    let leaf = certificates.first().ok_or(CertsError::MalformedPkcs12 {
        reason: "no certificate to store with the key",
    })?;
    if !key_matches_certificate(private_key, leaf)? {
        return Err(CertsError::KeyCertificateMismatch);
    }
    check_password(password)?;
    match format {
        Pkcs12Format::Modern => write_modern(private_key, certificates, password),
        Pkcs12Format::Legacy => legacy::encode(private_key, certificates, password.expose_secret()),
    }
}

/// Decodes a PKCS#12 file: checks the MAC, decrypts, and returns the one private key
/// with its certificate first.
///
/// # Errors
/// [`CertsError::WrongPassword`] if the MAC (or, without a MAC, decryption) fails;
/// [`CertsError::MalformedPkcs12`] if the file does not parse, uses an unsupported
/// scheme, or does not hold exactly one private key and at least one certificate;
/// [`CertsError::KeyCertificateMismatch`] if no certificate matches the key;
/// [`CertsError::InvalidPrivateKey`] for a key that is not RSA, P-256, P-384 or Ed25519.
pub fn read(der: &[u8], password: &Password) -> Result<Pkcs12Contents> {
    let archive =
        Pkcs12Archive::from_pkcs12(der, password.expose_secret()).map_err(map_read_error)?;
    let mut keys = archive.keys.into_iter();
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => key,
        (None, _) => {
            return Err(CertsError::MalformedPkcs12 {
                reason: "no private key",
            });
        }
        (Some(_), Some(_)) => {
            return Err(CertsError::MalformedPkcs12 {
                reason: "more than one private key",
            });
        }
    };
    let private_key = SecretBytes::copy_from(key.key.as_der());
    let mut certificates: Vec<CertificateDer<'static>> = archive
        .certs
        .iter()
        .map(|bag| CertificateDer::from(bag.cert.as_der().to_vec()))
        .collect();
    if certificates.is_empty() {
        return Err(CertsError::MalformedPkcs12 {
            reason: "no certificate",
        });
    }
    let mut leaf_index = None;
    for (i, certificate) in certificates.iter().enumerate() {
        if key_matches_certificate(&private_key, certificate)? {
            leaf_index = Some(i);
            break;
        }
    }
    let leaf_index = leaf_index.ok_or(CertsError::KeyCertificateMismatch)?;
    let leaf = certificates.remove(leaf_index);
    certificates.insert(0, leaf);
    Ok(Pkcs12Contents {
        private_key,
        certificates,
    })
}

/// Refuses passwords that PKCS#12 (a BMPString, NUL-terminated) cannot hold.
fn check_password(password: &Password) -> Result<()> {
    let text = password.expose_secret();
    if text.contains('\0') || der::asn1::BmpString::from_utf8(text).is_err() {
        return Err(CertsError::PasswordNotEncodable);
    }
    Ok(())
}

fn write_modern(
    private_key: &SecretBytes,
    certificates: &[CertificateDer<'_>],
    password: &Password,
) -> Result<Vec<u8>> {
    let key = PrivateKey::from_der(private_key.expose_secret()).map_err(|_| {
        CertsError::InvalidPrivateKey {
            reason: "not PKCS#8",
        }
    })?;
    let mut chain = Vec::with_capacity(certificates.len());
    for certificate in certificates {
        chain.push(Certificate::from_der(certificate).map_err(|_| {
            CertsError::MalformedCertificate {
                reason: "not an X.509 certificate",
            }
        })?);
    }
    let local_key_id = certificates
        .first()
        .map(|leaf| LocalKeyId::from(Sha1::digest(leaf).to_vec()))
        .ok_or(CertsError::MalformedPkcs12 {
            reason: "no certificate to store with the key",
        })?;
    let alias = chain
        .first()
        .and_then(|leaf| common_name(leaf.as_der()))
        .unwrap_or_else(|| "key".to_owned());
    let mut store = KeyStore::new();
    store.add_entry(
        &alias,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, key, chain)),
    );
    store
        .writer(password.expose_secret())
        .write()
        .map_err(|_| CertsError::Internal("p12-keystore could not encode the PKCS#12"))
}

/// The first common name of a certificate's subject, for the key's friendlyName.
fn common_name(certificate: &[u8]) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

fn map_read_error(error: P12Error) -> CertsError {
    match error {
        // A wrong password fails the MAC; without a MAC it shows as bad padding.
        P12Error::MacError(_) | P12Error::UnpadError => CertsError::WrongPassword,
        P12Error::InvalidVersion => CertsError::MalformedPkcs12 {
            reason: "PFX version is not 3",
        },
        P12Error::UnsupportedContentType => CertsError::MalformedPkcs12 {
            reason: "unsupported content type",
        },
        P12Error::UnsupportedEncryptionScheme | P12Error::Pkcs5Error(_) => {
            CertsError::MalformedPkcs12 {
                reason: "unsupported encryption scheme or undecryptable bag",
            }
        }
        P12Error::UnsupportedMacAlgorithm => CertsError::MalformedPkcs12 {
            reason: "unsupported MAC algorithm",
        },
        P12Error::InvalidPrivateKey => CertsError::MalformedPkcs12 {
            reason: "the key bag does not hold a PKCS#8 private key",
        },
        P12Error::X509Error(_) => CertsError::MalformedPkcs12 {
            reason: "a certificate bag does not hold an X.509 certificate",
        },
        P12Error::InvalidParameters => CertsError::MalformedPkcs12 {
            reason: "invalid or excessive KDF parameters",
        },
        _ => CertsError::MalformedPkcs12 {
            reason: "not a DER-encoded PKCS#12 file",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{CertificateAuthority, KeyType, Validity};

    fn chain(key_type: KeyType) -> (SecretBytes, Vec<CertificateDer<'static>>) {
        let validity = Validity::days_from_now(30).unwrap();
        let ca = CertificateAuthority::new_root("ca", key_type, validity, Some(0)).unwrap();
        let leaf = ca.issue_client("leaf", key_type, validity).unwrap();
        (
            leaf.private_key,
            vec![leaf.certificate, ca.certificate().clone()],
        )
    }

    #[test]
    fn both_formats_round_trip_and_refuse_wrong_passwords() {
        for key_type in [KeyType::Rsa2048, KeyType::EcP256] {
            let (key, certs) = chain(key_type);
            for format in [Pkcs12Format::Modern, Pkcs12Format::Legacy] {
                let password = Password::from("correct horse");
                let der = write(&key, &certs, &password, format).unwrap();
                let contents = read(&der, &password).unwrap();
                assert_eq!(contents.private_key, key, "{format:?}");
                assert_eq!(contents.certificates, certs, "{format:?}");
                assert!(matches!(
                    read(&der, &Password::from("wrong horse")),
                    Err(CertsError::WrongPassword)
                ));
            }
        }
    }

    #[test]
    fn mismatched_or_missing_input_is_refused() {
        let (key, certs) = chain(KeyType::EcP256);
        let (other_key, _) = chain(KeyType::EcP256);
        let password = Password::from("pw");
        assert!(matches!(
            write(&other_key, &certs, &password, Pkcs12Format::Modern),
            Err(CertsError::KeyCertificateMismatch)
        ));
        assert!(matches!(
            write(&key, &[], &password, Pkcs12Format::Legacy),
            Err(CertsError::MalformedPkcs12 { .. })
        ));
        assert!(matches!(
            write(
                &key,
                &certs,
                &Password::from("a\u{1F600}"),
                Pkcs12Format::Legacy
            ),
            Err(CertsError::PasswordNotEncodable)
        ));
        assert!(matches!(
            read(b"not a pkcs12 file", &password),
            Err(CertsError::MalformedPkcs12 { .. })
        ));
    }
}
