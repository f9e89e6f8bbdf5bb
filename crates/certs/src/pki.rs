//! The shared machinery: key types, validity periods, host names, a certificate
//! authority that issues server and client certificates, and PEM armour.
//!
//! Every certificate carries what webpki (rustls) insists on: server certificates a
//! subjectAltName and EKU serverAuth, client certificates EKU clientAuth, CAs
//! basicConstraints `CA:TRUE` (critical) and keyCertSign. Serial numbers are 128 random
//! bits. Leaves are clamped to end no later than their issuer.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, PublicKeyData,
    RsaKeySize, SanType, SerialNumber, SigningKey,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use strongroom_crypto::secret::SecretBytes;
use time::{Duration, OffsetDateTime};
use zeroize::{Zeroize as _, Zeroizing};

use crate::error::{CertsError, Result};

/// Organisation name written into the subjects of the certificates we make.
pub const ORGANIZATION: &str = "Strongroom";

/// How far in the past a new certificate starts, so that a peer whose clock is a
/// little behind still accepts it.
const BACKDATE: Duration = Duration::hours(1);

/// The key algorithm of a new certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// RSA-2048 with sha256WithRSAEncryption signatures: what every HSM and SDK reads.
    #[default]
    Rsa2048,
    /// ECDSA on P-256 with SHA-256.
    EcP256,
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// First instant of validity.
    pub not_before: OffsetDateTime,
    /// Last instant of validity.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// A validity period from `not_before` to `not_after`.
    ///
    /// # Errors
    /// [`CertsError::InvalidValidity`] unless `not_before < not_after`.
    pub fn new(not_before: OffsetDateTime, not_after: OffsetDateTime) -> Result<Self> {
        if not_before >= not_after {
            return Err(CertsError::InvalidValidity {
                reason: "not_before must be earlier than not_after",
            });
        }
        Ok(Self {
            not_before,
            not_after,
        })
    }

    /// `days` days from now (starting an hour ago, for clock skew).
    ///
    /// # Errors
    /// [`CertsError::InvalidValidity`] if `days` is 0 or more than 100 years.
    pub fn days_from_now(days: u32) -> Result<Self> {
        if days == 0 || days > 36_600 {
            return Err(CertsError::InvalidValidity {
                reason: "the number of days must be between 1 and 36600",
            });
        }
        let now = OffsetDateTime::now_utc();
        Self::new(now - BACKDATE, now + Duration::days(i64::from(days)))
    }

    /// This period cut so that it ends no later than `outer` does.
    fn clamped_to(self, outer: &Self) -> Result<Self> {
        Self::new(self.not_before, self.not_after.min(outer.not_after))
    }
}

/// The names a server certificate is valid for (its subjectAltName).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNames {
    /// DNS names.
    pub dns_names: Vec<String>,
    /// IP addresses.
    pub ip_addresses: Vec<IpAddr>,
}

impl Default for ServerNames {
    /// `localhost` and `127.0.0.1`.
    fn default() -> Self {
        Self {
            dns_names: vec!["localhost".to_owned()],
            ip_addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        }
    }
}

impl ServerNames {
    fn to_san(&self) -> Result<Vec<SanType>> {
        let mut out = Vec::with_capacity(self.dns_names.len() + self.ip_addresses.len());
        for name in &self.dns_names {
            out.push(dns_san(name)?);
        }
        out.extend(self.ip_addresses.iter().copied().map(SanType::IpAddress));
        Ok(out)
    }
}

/// A certificate and its private key, fresh from a [`CertificateAuthority`].
#[derive(Debug)]
pub struct IssuedCertificate {
    /// The private key, PKCS#8 DER.
    pub private_key: SecretBytes,
    /// The certificate, DER.
    pub certificate: CertificateDer<'static>,
    /// When the certificate is valid.
    pub validity: Validity,
}

/// A certificate authority: its certificate and signing key, able to issue server,
/// client and subordinate CA certificates.
///
/// `Debug` shows only the validity; the signing key is wiped on drop.
pub struct CertificateAuthority {
    issuer: Issuer<'static, OwnedKey>,
    certificate: CertificateDer<'static>,
    validity: Validity,
}

impl CertificateAuthority {
    /// A new self-signed root CA named `common_name` (plus `O=Strongroom`).
    /// `path_len` limits how many CAs may sit below it (`Some(0)`: it issues only
    /// leaves); `None` sets no limit.
    ///
    /// # Errors
    /// [`CertsError::Generation`] or [`CertsError::Random`] if generation fails.
    pub fn new_root(
        common_name: &str,
        key_type: KeyType,
        validity: Validity,
        path_len: Option<u8>,
    ) -> Result<Self> {
        let key = OwnedKey::generate(key_type)?;
        let params = ca_params(common_name, validity, path_len)?;
        let certificate = params.self_signed(&key)?.der().clone();
        Ok(Self {
            issuer: Issuer::new(params, key),
            certificate,
            validity,
        })
    }

    /// A new CA below this one (an issuing CA), clamped to end with this one.
    ///
    /// # Errors
    /// As [`CertificateAuthority::new_root`].
    pub fn new_subordinate(
        &self,
        common_name: &str,
        key_type: KeyType,
        validity: Validity,
        path_len: Option<u8>,
    ) -> Result<Self> {
        let validity = validity.clamped_to(&self.validity)?;
        let key = OwnedKey::generate(key_type)?;
        let params = ca_params(common_name, validity, path_len)?;
        let certificate = params.signed_by(&key, &self.issuer)?.der().clone();
        Ok(Self {
            issuer: Issuer::new(params, key),
            certificate,
            validity,
        })
    }

    /// Rebuilds a CA from its stored private key (PKCS#8 DER) and certificate (DER),
    /// to issue more certificates later.
    ///
    /// # Errors
    /// [`CertsError::MalformedCertificate`] if the certificate does not parse or is not
    /// a CA; [`CertsError::InvalidPrivateKey`] if the key does not parse;
    /// [`CertsError::KeyCertificateMismatch`] if they do not belong together.
    pub fn from_der(private_key: &SecretBytes, certificate: &CertificateDer<'_>) -> Result<Self> {
        let (_, parsed) = x509_parser::parse_x509_certificate(certificate).map_err(|_| {
            CertsError::MalformedCertificate {
                reason: "not an X.509 certificate",
            }
        })?;
        let is_ca = parsed
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca);
        if !is_ca {
            return Err(CertsError::MalformedCertificate {
                reason: "not a CA certificate (basicConstraints CA:TRUE missing)",
            });
        }
        let validity = Validity::new(
            parsed.validity().not_before.to_datetime(),
            parsed.validity().not_after.to_datetime(),
        )?;
        let key = OwnedKey::from_pkcs8(private_key)?;
        if key.0.public_key_raw() != parsed.public_key().subject_public_key.data.as_ref() {
            return Err(CertsError::KeyCertificateMismatch);
        }
        let issuer = Issuer::from_ca_cert_der(certificate, key)?;
        Ok(Self {
            issuer,
            certificate: certificate.clone().into_owned(),
            validity,
        })
    }

    /// Issues a TLS server certificate (EKU serverAuth) for `names`, with subject
    /// `CN=<common_name>, O=Strongroom`, clamped to end with this CA.
    ///
    /// # Errors
    /// [`CertsError::InvalidHostName`] for a name that is not a valid DNS name;
    /// otherwise as [`CertificateAuthority::new_root`].
    pub fn issue_server(
        &self,
        common_name: &str,
        names: &ServerNames,
        key_type: KeyType,
        validity: Validity,
    ) -> Result<IssuedCertificate> {
        let mut params = leaf_params(common_name, validity.clamped_to(&self.validity)?)?;
        params.subject_alt_names = names.to_san()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if key_type == KeyType::Rsa2048 {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        self.issue(params, key_type)
    }

    /// Issues a TLS client certificate (EKU clientAuth) with subject
    /// `CN=<common_name>, O=Strongroom`, clamped to end with this CA.
    ///
    /// # Errors
    /// As [`CertificateAuthority::new_root`].
    pub fn issue_client(
        &self,
        common_name: &str,
        key_type: KeyType,
        validity: Validity,
    ) -> Result<IssuedCertificate> {
        let mut params = leaf_params(common_name, validity.clamped_to(&self.validity)?)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, key_type)
    }

    /// The CA's certificate, DER.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// The CA's private key, PKCS#8 DER.
    pub fn private_key(&self) -> SecretBytes {
        SecretBytes::new(self.issuer.key().0.serialize_der())
    }

    /// When the CA's certificate is valid.
    pub fn validity(&self) -> Validity {
        self.validity
    }

    fn issue(&self, params: CertificateParams, key_type: KeyType) -> Result<IssuedCertificate> {
        let key = OwnedKey::generate(key_type)?;
        let certificate = params.signed_by(&key, &self.issuer)?.der().clone();
        Ok(IssuedCertificate {
            private_key: SecretBytes::new(key.0.serialize_der()),
            certificate,
            validity: Validity {
                not_before: params.not_before,
                not_after: params.not_after,
            },
        })
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("validity", &self.validity)
            .finish_non_exhaustive()
    }
}

/// The PEM armour (`CERTIFICATE`) of a DER certificate, LF line endings.
pub fn certificate_pem(certificate: &CertificateDer<'_>) -> String {
    let mut out = String::new();
    pem_into(&mut out, "CERTIFICATE", certificate);
    out
}

/// The PEM armour (`PRIVATE KEY`) of a PKCS#8 DER private key, as secret bytes.
pub fn private_key_pem(private_key: &SecretBytes) -> SecretBytes {
    let der = private_key.expose_secret();
    // Exact capacity, so the buffer never reallocates and leaves a copy behind.
    let capacity = 64 + der.len().div_ceil(48) * 65 + der.len() / 3 * 4;
    let mut out = Zeroizing::new(String::with_capacity(capacity));
    pem_into(&mut out, "PRIVATE KEY", der);
    SecretBytes::copy_from(out.as_bytes())
}

/// Every `CERTIFICATE` block of a PEM text, in order.
///
/// # Errors
/// [`CertsError::MalformedCertificate`] if a block is not valid PEM.
pub fn certificates_from_pem(text: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| CertsError::MalformedCertificate {
            reason: "invalid PEM",
        })
}

/// SHA-256 of a certificate's DER: the fingerprint used in allow-lists.
pub fn fingerprint(certificate: &CertificateDer<'_>) -> [u8; 32] {
    strongroom_crypto::hash::sha256(certificate)
}

/// Whether `private_key` (PKCS#8 DER) is the key certified by `certificate`.
///
/// # Errors
/// [`CertsError::InvalidPrivateKey`] or [`CertsError::MalformedCertificate`] if either
/// does not parse.
pub fn key_matches_certificate(
    private_key: &SecretBytes,
    certificate: &CertificateDer<'_>,
) -> Result<bool> {
    let key = OwnedKey::from_pkcs8(private_key)?;
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate).map_err(|_| {
        CertsError::MalformedCertificate {
            reason: "not an X.509 certificate",
        }
    })?;
    Ok(key.0.public_key_raw() == parsed.public_key().subject_public_key.data.as_ref())
}

/// 128 random bits as a positive serial number.
pub(crate) fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    strongroom_crypto::random::fill(&mut bytes).map_err(CertsError::Random)?;
    // Positive and full length: top bit clear, second-highest bit set.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// `O=Strongroom, CN=<common_name>`.
pub(crate) fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A DNS subjectAltName, refusing what is not a host name (webpki would reject the
/// certificate, or the name could never match).
pub(crate) fn dns_san(name: &str) -> Result<SanType> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && name.parse::<IpAddr>().is_err();
    if !valid {
        return Err(CertsError::InvalidHostName {
            name: name.to_owned(),
        });
    }
    let ia5 = name
        .to_ascii_lowercase()
        .try_into()
        .map_err(|_| CertsError::InvalidHostName {
            name: name.to_owned(),
        })?;
    Ok(SanType::DnsName(ia5))
}

fn ca_params(
    common_name: &str,
    validity: Validity,
    path_len: Option<u8>,
) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(common_name);
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params.serial_number = Some(random_serial()?);
    params.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn leaf_params(common_name: &str, validity: Validity) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(common_name);
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params.serial_number = Some(random_serial()?);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// Appends the PEM armour of `der` under `label` to `out`, 64 characters a line.
fn pem_into(out: &mut String, label: &str, der: &[u8]) {
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // 48 input bytes make exactly 64 base64 characters, so chunks concatenate cleanly.
    for chunk in der.chunks(48) {
        STANDARD.encode_string(chunk, out);
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}

/// An rcgen key pair whose PKCS#8 copy is wiped on drop. `Debug` shows nothing.
pub(crate) struct OwnedKey(pub(crate) KeyPair);

impl fmt::Debug for OwnedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnedKey([REDACTED])")
    }
}

impl OwnedKey {
    pub(crate) fn generate(key_type: KeyType) -> Result<Self> {
        let key = match key_type {
            KeyType::Rsa2048 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)?,
            KeyType::EcP256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?,
        };
        Ok(Self(key))
    }

    /// Parses a PKCS#8 DER private key (RSA, P-256, P-384 or Ed25519).
    pub(crate) fn from_pkcs8(private_key: &SecretBytes) -> Result<Self> {
        KeyPair::try_from(private_key.expose_secret())
            .map(Self)
            .map_err(|_| CertsError::InvalidPrivateKey {
                reason: "not a PKCS#8 RSA or EC private key",
            })
    }
}

impl Drop for OwnedKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl PublicKeyData for OwnedKey {
    fn der_bytes(&self) -> &[u8] {
        self.0.der_bytes()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        PublicKeyData::algorithm(&self.0)
    }
}

impl SigningKey for OwnedKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.0.sign(msg)
    }
}

/// The SubjectPublicKeyInfo (DER) of `certificate`: what a verifier of the holder's
/// signatures needs (a client key's certificate, say).
///
/// # Errors
/// [`CertsError::MalformedCertificate`] if it does not parse.
pub fn certificate_public_key(certificate: &CertificateDer<'_>) -> Result<Vec<u8>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate).map_err(|_| {
        CertsError::MalformedCertificate {
            reason: "not an X.509 certificate",
        }
    })?;
    Ok(parsed.public_key().raw.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_are_checked() {
        assert!(dns_san("localhost").is_ok());
        assert!(dns_san("kst-abc.cryptoservice.kms.aliyuncs.com").is_ok());
        for bad in ["", "a..b", "-a", "a b", "x_y", "127.0.0.1", "*.example.com"] {
            assert!(
                matches!(dns_san(bad), Err(CertsError::InvalidHostName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn validity_rules() {
        assert!(Validity::days_from_now(0).is_err());
        assert!(Validity::days_from_now(36_601).is_err());
        let v = Validity::days_from_now(10).unwrap();
        assert!(Validity::new(v.not_after, v.not_before).is_err());
        let short = Validity::days_from_now(1).unwrap();
        assert_eq!(v.clamped_to(&short).unwrap().not_after, short.not_after);
    }

    #[test]
    fn pem_wraps_at_64_and_round_trips() {
        let der = CertificateDer::from((0..=255u8).collect::<Vec<_>>());
        let pem = certificate_pem(&der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(pem.lines().nth(1).unwrap().len(), 64);
        let key = private_key_pem(&SecretBytes::copy_from(&der));
        assert!(
            key.expose_secret()
                .starts_with(b"-----BEGIN PRIVATE KEY-----\n")
        );
        assert_eq!(certificates_from_pem(pem.as_bytes()).unwrap(), vec![der]);
    }

    #[test]
    fn ca_round_trips_through_der_and_checks_its_key() {
        let validity = Validity::days_from_now(30).unwrap();
        let ca = CertificateAuthority::new_root("t", KeyType::EcP256, validity, Some(0)).unwrap();
        let again = CertificateAuthority::from_der(&ca.private_key(), ca.certificate()).unwrap();
        let leaf = again
            .issue_client("c", KeyType::EcP256, Validity::days_from_now(3650).unwrap())
            .unwrap();
        assert!(leaf.validity.not_after <= ca.validity().not_after);
        assert!(key_matches_certificate(&leaf.private_key, &leaf.certificate).unwrap());
        assert!(!key_matches_certificate(&ca.private_key(), &leaf.certificate).unwrap());

        let other = CertificateAuthority::new_root("o", KeyType::EcP256, validity, None).unwrap();
        assert!(matches!(
            CertificateAuthority::from_der(&other.private_key(), ca.certificate()),
            Err(CertsError::KeyCertificateMismatch)
        ));
        assert!(matches!(
            CertificateAuthority::from_der(&leaf.private_key, &leaf.certificate),
            Err(CertsError::MalformedCertificate { .. })
        ));
    }
}
