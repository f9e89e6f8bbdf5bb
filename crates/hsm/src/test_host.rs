//! In-process host services for the crate's own tests: a throwaway CA, a server
//! configuration that accepts one client certificate, that client's configuration, and
//! host ports serving a software engine.

use std::sync::Arc;

use strongroom_certs::pki::{CertificateAuthority, KeyType, ServerNames, Validity};
use strongroom_certs::tls::{ClientAllowList, TlsVersions, mtls_client_config, mtls_server_config};
use strongroom_crypto::blob::DomainKey;
use strongroom_proto::hsm::v1 as pb;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backend::Backend;
use crate::error::HsmError;
use crate::host::{self, EngineSlot, HostOptions};
use crate::software::SoftwareBackend;

/// The TLS both ends of a test host port use.
pub(crate) struct Pki {
    pub(crate) server: Arc<rustls::ServerConfig>,
    pub(crate) client: Arc<rustls::ClientConfig>,
}

impl Pki {
    /// A new CA, a server certificate and an allowed client certificate.
    pub(crate) fn new() -> Self {
        let validity = || Validity::days_from_now(2).unwrap();
        let ca = CertificateAuthority::new_root("test HSM CA", KeyType::EcP256, validity(), None)
            .unwrap();
        let server = ca
            .issue_server("hsm", &ServerNames::default(), KeyType::EcP256, validity())
            .unwrap();
        let kms = ca.issue_client("kms", KeyType::EcP256, validity()).unwrap();
        let allow = ClientAllowList::new();
        allow.allow(&kms.certificate);
        let server = mtls_server_config(
            vec![server.certificate.clone(), ca.certificate().clone()],
            &server.private_key,
            std::slice::from_ref(ca.certificate()),
            allow,
            TlsVersions::Tls12Only,
        )
        .unwrap();
        let client = mtls_client_config(
            vec![kms.certificate.clone()],
            &kms.private_key,
            std::slice::from_ref(ca.certificate()),
            TlsVersions::Tls12Only,
        )
        .unwrap();
        Self {
            server: Arc::new(server),
            client: Arc::new(client),
        }
    }

    /// Starts a host port on loopback serving a software engine under `domain`, until
    /// `stop` turns true; its address.
    pub(crate) async fn serve(
        &self,
        domain: &DomainKey,
        options: HostOptions,
        stop: watch::Receiver<bool>,
    ) -> String {
        let copy = DomainKey::from_secret(domain.expose_secret().clone()).unwrap();
        let engine: Arc<dyn Backend> =
            Arc::new(SoftwareBackend::new(copy, pb::StatusReply::default()).unwrap());
        let slot = EngineSlot::unavailable(HsmError::internal("starting"));
        slot.set(Ok(engine));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(host::serve(
            listener,
            Arc::clone(&self.server),
            Arc::new(slot),
            options,
            stop,
        ));
        address
    }
}
