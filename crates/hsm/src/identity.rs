//! A node's identity: the certificate and key of its officer channel, which also
//! authenticate it to the other nodes of its cluster.
//!
//! Like an SSH host key, the identity is stored outside the sealed state (`identity.pem`
//! and `identity.key`, mode 0600), because the officer must be able to reach a sealed
//! node to unseal it. It protects the channel, not key material: the domain key sent at
//! sync is additionally encrypted to the receiving node's enrolment key, which lives in
//! its sealed state. Peers are trusted by the SHA-256 fingerprint of this certificate
//! (pinning), never by a CA.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use strongroom_certs::pki::{self, CertificateAuthority, KeyType, ServerNames, Validity};
use strongroom_crypto::secret::SecretBytes;

use crate::state::{self, StateError};

/// File holding the identity certificate (PEM).
pub const IDENTITY_CERT: &str = "identity.pem";
/// File holding the identity key (PKCS#8 PEM, mode 0600).
pub const IDENTITY_KEY: &str = "identity.key";

/// The officer channel's certificate and key.
pub struct Identity {
    /// The certificate, DER.
    pub certificate: CertificateDer<'static>,
    private_key: SecretBytes,
}

impl core::fmt::Debug for Identity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Loads the identity from `dir`, creating it on first use.
    ///
    /// # Errors
    /// I/O failures, or files that do not hold a certificate and key.
    pub fn load_or_create(dir: &Path, node_id: &str) -> Result<Self, StateError> {
        let cert_path = dir.join(IDENTITY_CERT);
        let key_path = dir.join(IDENTITY_KEY);
        if cert_path.is_file() && key_path.is_file() {
            return Self::load(&cert_path, &key_path);
        }
        let corrupt = |reason: String| StateError::Corrupt {
            path: cert_path.clone(),
            reason,
        };
        let validity = Validity::days_from_now(36_500).map_err(|e| corrupt(e.to_string()))?;
        let issuer = CertificateAuthority::new_root(
            &format!("Strongroom HSM node {node_id} identity issuer"),
            KeyType::EcP256,
            validity,
            Some(0),
        )
        .map_err(|e| corrupt(e.to_string()))?;
        let issued = issuer
            .issue_server(node_id, &ServerNames::default(), KeyType::EcP256, validity)
            .map_err(|e| corrupt(e.to_string()))?;
        let key_pem = pki::private_key_pem(&issued.private_key);
        state::write_atomically(dir, IDENTITY_KEY, key_pem.expose_secret())?;
        state::write_atomically(
            dir,
            IDENTITY_CERT,
            pki::certificate_pem(&issued.certificate).as_bytes(),
        )?;
        Ok(Self {
            certificate: issued.certificate,
            private_key: issued.private_key,
        })
    }

    fn load(cert_path: &Path, key_path: &Path) -> Result<Self, StateError> {
        let read = |path: &Path| {
            fs::read(path).map_err(|source| StateError::Io {
                action: "reading",
                path: path.to_owned(),
                source,
            })
        };
        let corrupt = |path: &Path, reason: &str| StateError::Corrupt {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let certificate = pki::certificates_from_pem(&read(cert_path)?)
            .ok()
            .and_then(|certs| certs.into_iter().next())
            .ok_or_else(|| corrupt(cert_path, "no certificate"))?;
        let key_text = zeroize::Zeroizing::new(read(key_path)?);
        let key_text =
            core::str::from_utf8(&key_text).map_err(|_| corrupt(key_path, "not PEM text"))?;
        let der = strongroom_crypto::pem::decode("PRIVATE KEY", key_text)
            .ok_or_else(|| corrupt(key_path, "no PKCS#8 PRIVATE KEY"))?;
        Ok(Self {
            certificate,
            private_key: SecretBytes::new(der),
        })
    }

    /// The certificate's SHA-256 fingerprint, lower-case hex.
    pub fn fingerprint(&self) -> String {
        hex::encode(pki::fingerprint(&self.certificate))
    }

    /// The officer port's TLS configuration: this identity, any version 1.2 or 1.3, and
    /// an optional client certificate (a peer node presents its identity; an officer
    /// presents none and logs in with the password).
    ///
    /// # Errors
    /// A key rustls cannot use.
    pub fn officer_server_config(&self) -> Result<rustls::ServerConfig, rustls::Error> {
        let provider = provider();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(AnyClientCertificate {
                signatures: Signatures(provider),
            }))
            .with_single_cert(vec![self.certificate.clone()], self.key_der())?;
        config.alpn_protocols = vec![OFFICER_ALPN.to_vec()];
        Ok(config)
    }

    /// A client configuration that presents this identity (node-to-node) and accepts
    /// only a server whose certificate has `fingerprint`.
    ///
    /// # Errors
    /// A key rustls cannot use.
    pub fn peer_client_config(
        &self,
        fingerprint: [u8; 32],
    ) -> Result<rustls::ClientConfig, rustls::Error> {
        let provider = provider();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedServer::new(Some(fingerprint))))
            .with_client_auth_cert(vec![self.certificate.clone()], self.key_der())?;
        config.alpn_protocols = vec![OFFICER_ALPN.to_vec()];
        Ok(config)
    }

    fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            self.private_key.expose_secret().to_vec(),
        ))
    }
}

/// The ALPN protocol id of the officer channel.
pub const OFFICER_ALPN: &[u8] = b"strongroom-officer/1";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A client configuration for the officer tool: no client certificate, and a server
/// trusted by fingerprint. With `None`, any server certificate is accepted and its
/// fingerprint recorded in the returned [`PinnedServer`] (trust on first use: the
/// caller must check it before sending anything secret).
///
/// # Errors
/// A provider rustls cannot use.
pub fn officer_client_config(
    fingerprint: Option<[u8; 32]>,
) -> Result<(rustls::ClientConfig, Arc<PinnedServer>), rustls::Error> {
    let verifier = Arc::new(PinnedServer::new(fingerprint));
    let dyn_verifier: Arc<dyn ServerCertVerifier> = verifier.clone();
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(dyn_verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![OFFICER_ALPN.to_vec()];
    Ok((config, verifier))
}

/// Verifies a server by the fingerprint of its certificate, and the handshake
/// signature with that certificate's key.
#[derive(Debug)]
pub struct PinnedServer {
    expected: Option<[u8; 32]>,
    seen: Mutex<Option<[u8; 32]>>,
    signatures: Signatures,
}

impl PinnedServer {
    fn new(expected: Option<[u8; 32]>) -> Self {
        Self {
            expected,
            seen: Mutex::new(None),
            signatures: Signatures(provider()),
        }
    }

    /// The fingerprint of the certificate the server presented, once connected.
    pub fn seen(&self) -> Option<[u8; 32]> {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = pki::fingerprint(end_entity);
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(fingerprint);
        match self.expected {
            Some(expected) if expected != fingerprint => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.schemes()
    }
}

/// Accepts any client certificate (or none); the handshake still proves possession of
/// its key. Whether a certificate means anything is decided after the handshake, by
/// its fingerprint.
#[derive(Debug)]
struct AnyClientCertificate {
    signatures: Signatures,
}

/// Checks the handshake signature a peer made with its certificate's key: the part of
/// certificate verification that pinning does not replace.
#[derive(Debug)]
struct Signatures(Arc<CryptoProvider>);

impl Signatures {
    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.schemes()
    }
}

/// Parses a fingerprint written as 64 hex digits, optionally prefixed `SHA256:` and
/// with `:` separators.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let text = text.strip_prefix("SHA256:").unwrap_or(text);
    let hex_digits: String = text.chars().filter(|c| *c != ':').collect();
    hex::decode(hex_digits).ok()?.try_into().ok()
}
