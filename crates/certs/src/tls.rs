//! rustls configurations (no I/O): the mutual-TLS link between KMS nodes and HSMs, and
//! the HTTPS endpoint of an instance.
//!
//! - [`mtls_server_config`] (the HSM side) demands a client certificate that chains to
//!   the configured CA **and** whose SHA-256 fingerprint is on a [`ClientAllowList`]:
//!   the certificates the officer imported. The list is a shared handle; changes take
//!   effect for the next handshake, without rebuilding the configuration.
//! - [`mtls_client_config`] (the KMS side) presents a client certificate and trusts only
//!   the configured CA.
//! - [`https_server_config`] (an instance endpoint) requests no client certificate
//!   (the SDKs never send one) and offers ALPN `http/1.1` only.
//!
//! Every configuration is built on the aws-lc-rs provider explicitly, never on a
//! process-wide default. TLS 1.2 offers only ECDHE with AES-GCM or ChaCha20-Poly1305.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::version::{TLS12, TLS13};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, InconsistentKeys,
    RootCertStore, ServerConfig, SignatureScheme, SupportedProtocolVersion,
};
use strongroom_crypto::secret::SecretBytes;

use crate::error::Result;
use crate::pki::fingerprint;

/// Which TLS versions a configuration allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsVersions {
    /// TLS 1.2 only: the guide's host-port property.
    #[default]
    Tls12Only,
    /// TLS 1.2 and 1.3.
    Tls12And13,
}

/// TLS 1.2 alone.
static ONLY_TLS12: [&SupportedProtocolVersion; 1] = [&TLS12];
/// TLS 1.3, then 1.2.
static TLS13_AND_TLS12: [&SupportedProtocolVersion; 2] = [&TLS13, &TLS12];

impl TlsVersions {
    fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        match self {
            Self::Tls12Only => &ONLY_TLS12,
            Self::Tls12And13 => &TLS13_AND_TLS12,
        }
    }
}

/// The SHA-256 fingerprints of the client certificates an HSM accepts.
///
/// Cloning gives another handle to the same list: keep one in the HSM's certificate
/// store and hand one to [`mtls_server_config`]. `Debug` shows only the count.
#[derive(Clone, Default)]
pub struct ClientAllowList(Arc<RwLock<BTreeSet<[u8; 32]>>>);

impl ClientAllowList {
    /// An empty list (every client refused).
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows `certificate`; returns its fingerprint.
    pub fn allow(&self, certificate: &CertificateDer<'_>) -> [u8; 32] {
        let fp = fingerprint(certificate);
        self.allow_fingerprint(fp);
        fp
    }

    /// Allows the certificate with SHA-256 fingerprint `fp`; false if it already was.
    pub fn allow_fingerprint(&self, fp: [u8; 32]) -> bool {
        self.write().insert(fp)
    }

    /// Removes `certificate`; false if it was not on the list.
    pub fn remove(&self, certificate: &CertificateDer<'_>) -> bool {
        self.remove_fingerprint(&fingerprint(certificate))
    }

    /// Removes the fingerprint `fp`; false if it was not on the list.
    pub fn remove_fingerprint(&self, fp: &[u8; 32]) -> bool {
        self.write().remove(fp)
    }

    /// Replaces the whole list (for example after loading the HSM's stored state).
    pub fn replace_all(&self, fingerprints: impl IntoIterator<Item = [u8; 32]>) {
        *self.write() = fingerprints.into_iter().collect();
    }

    /// Whether `fp` is on the list.
    pub fn contains_fingerprint(&self, fp: &[u8; 32]) -> bool {
        self.read().contains(fp)
    }

    /// The fingerprints on the list, sorted.
    pub fn fingerprints(&self) -> Vec<[u8; 32]> {
        self.read().iter().copied().collect()
    }

    /// Number of allowed certificates.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no certificate is allowed.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    // A poisoned lock only means a writer panicked between two whole-set operations;
    // the set itself is always consistent, so keep using it.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeSet<[u8; 32]>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeSet<[u8; 32]>> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for ClientAllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAllowList")
            .field("len", &self.len())
            .finish()
    }
}

/// A client-certificate verifier: webpki path validation to the configured CAs, then
/// the allow-list. A certificate from another CA fails the first check
/// (`UnknownIssuer` / `BadSignature`); an unlisted one from the right CA fails the
/// second (`ApplicationVerificationFailure`, alert `access_denied`).
#[derive(Debug)]
pub struct AllowListClientVerifier {
    webpki: Arc<dyn ClientCertVerifier>,
    allow_list: ClientAllowList,
}

impl AllowListClientVerifier {
    /// A verifier for clients chaining to one of `client_cas` and on `allow_list`.
    ///
    /// # Errors
    /// [`CertsError::Tls`](crate::error::CertsError::Tls) if a CA certificate cannot be a trust anchor;
    /// [`CertsError::Verifier`](crate::error::CertsError::Verifier) if `client_cas` is empty.
    pub fn new(client_cas: &[CertificateDer<'_>], allow_list: ClientAllowList) -> Result<Self> {
        let webpki =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots(client_cas)?), provider())
                .build()?;
        Ok(Self { webpki, allow_list })
    }
}

impl ClientCertVerifier for AllowListClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .webpki
            .verify_client_cert(end_entity, intermediates, now)?;
        if self
            .allow_list
            .contains_fingerprint(&fingerprint(end_entity))
        {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The HSM side of the link: presents `certificate_chain` (leaf first) with
/// `private_key` (PKCS#8 DER) and accepts only clients that chain to `client_cas` and
/// are on `allow_list`.
///
/// # Errors
/// [`CertsError::Tls`](crate::error::CertsError::Tls) for a key or certificate rustls cannot use;
/// [`CertsError::Verifier`](crate::error::CertsError::Verifier) if `client_cas` is empty.
pub fn mtls_server_config(
    certificate_chain: Vec<CertificateDer<'static>>,
    private_key: &SecretBytes,
    client_cas: &[CertificateDer<'_>],
    allow_list: ClientAllowList,
    versions: TlsVersions,
) -> Result<ServerConfig> {
    let verifier = AllowListClientVerifier::new(client_cas, allow_list)?;
    Ok(ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions.versions())?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(certified_key(certificate_chain, private_key)?))
}

/// The KMS side of the link: presents `certificate_chain` (leaf first) with
/// `private_key` (PKCS#8 DER) and trusts only servers that chain to `server_cas`.
///
/// # Errors
/// [`CertsError::Tls`](crate::error::CertsError::Tls) for a key, certificate or CA rustls cannot use;
/// [`CertsError::Verifier`](crate::error::CertsError::Verifier) if `server_cas` is empty.
pub fn mtls_client_config(
    certificate_chain: Vec<CertificateDer<'static>>,
    private_key: &SecretBytes,
    server_cas: &[CertificateDer<'_>],
    versions: TlsVersions,
) -> Result<ClientConfig> {
    let verifier =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots(server_cas)?), provider())
            .build()?;
    Ok(ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions.versions())?
        .with_webpki_verifier(verifier)
        .with_client_cert_resolver(certified_key(certificate_chain, private_key)?))
}

/// An instance endpoint: presents `certificate_chain` (leaf, issuing CA) with
/// `private_key`, TLS 1.2 and 1.3, no client certificate requested, ALPN `http/1.1`.
///
/// # Errors
/// [`CertsError::Tls`](crate::error::CertsError::Tls) for a key or certificate rustls cannot use.
pub fn https_server_config(
    certificate_chain: Vec<CertificateDer<'static>>,
    private_key: &SecretBytes,
) -> Result<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(TlsVersions::Tls12And13.versions())?
        .with_no_client_auth()
        .with_cert_resolver(certified_key(certificate_chain, private_key)?);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The aws-lc-rs provider, chosen explicitly.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn roots(cas: &[CertificateDer<'_>]) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    for ca in cas {
        store.add(ca.clone().into_owned())?;
    }
    Ok(store)
}

/// The certificate chain with its signing key, checked to belong together.
///
/// The key is parsed from a borrow of `private_key` (rustls's `with_single_cert` would
/// take an owned copy of the DER and drop it without wiping it); aws-lc-rs wipes its
/// own key structure when freed.
fn certified_key(
    certificate_chain: Vec<CertificateDer<'static>>,
    private_key: &SecretBytes,
) -> Result<Arc<SingleCertAndKey>> {
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(private_key.expose_secret()));
    let signing_key = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key_der)?;
    let certified = CertifiedKey::new(certificate_chain, signing_key);
    match certified.keys_match() {
        // As rustls itself: a key whose public half it cannot compute is not an error.
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Arc::new(SingleCertAndKey::from(certified)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CertsError;

    #[test]
    fn allow_list_handles_share_one_set() {
        let list = ClientAllowList::new();
        let other_handle = list.clone();
        let cert = CertificateDer::from(vec![1, 2, 3]);
        let fp = list.allow(&cert);
        assert!(other_handle.contains_fingerprint(&fp));
        assert!(!other_handle.allow_fingerprint(fp));
        assert_eq!(format!("{list:?}"), "ClientAllowList { len: 1 }");
        assert!(other_handle.remove(&cert));
        assert!(list.is_empty());
        list.replace_all([[7; 32], [8; 32]]);
        assert_eq!(other_handle.fingerprints(), vec![[7; 32], [8; 32]]);
    }

    #[test]
    fn keys_must_match_their_certificates() {
        use crate::pki::{CertificateAuthority, KeyType, ServerNames, Validity};
        let validity = Validity::days_from_now(5).unwrap();
        let ca = CertificateAuthority::new_root("t", KeyType::EcP256, validity, None).unwrap();
        let leaf = ca
            .issue_server("s", &ServerNames::default(), KeyType::EcP256, validity)
            .unwrap();
        let err = https_server_config(vec![leaf.certificate.clone()], &ca.private_key());
        assert!(matches!(
            err,
            Err(CertsError::Tls(rustls::Error::InconsistentKeys(
                InconsistentKeys::KeyMismatch
            )))
        ));
        assert!(https_server_config(vec![leaf.certificate], &leaf.private_key).is_ok());
        assert!(matches!(
            https_server_config(Vec::new(), &leaf.private_key),
            Err(CertsError::Tls(_))
        ));
    }

    #[test]
    fn verifier_needs_a_ca() {
        assert!(matches!(
            AllowListClientVerifier::new(&[], ClientAllowList::new()),
            Err(CertsError::Verifier(_))
        ));
    }
}
