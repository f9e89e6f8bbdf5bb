//! What `strongroom bench hsm` talks to: an HSM node it starts in process, or the nodes
//! of a real deployment with the KMS's client certificate.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use strongroom_certs::password::Password;
use strongroom_certs::pkcs12;
use strongroom_certs::pki::{
    CertificateAuthority, KeyType, ServerNames, Validity, certificates_from_pem,
};
use strongroom_certs::tls::{ClientAllowList, TlsVersions, mtls_client_config, mtls_server_config};
use strongroom_crypto::blob::DomainKey;
use strongroom_hsm::backend::Backend;
use strongroom_hsm::client::{ClusterClient, ClusterConfig, NodeAddress};
use strongroom_hsm::host::{self, EngineSlot, HostOptions};
use strongroom_hsm::software::SoftwareBackend;
use strongroom_proto::hsm::v1 as pb;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::BenchError;

/// The HSM cluster to measure.
#[derive(Debug, Clone)]
pub enum Target {
    /// A node started in this process: the host service with the software engine on
    /// 127.0.0.1, fresh certificates, TLS 1.2 (the host port's default).
    Local,
    /// A real deployment.
    Nodes {
        /// `host:port` of each node.
        nodes: Vec<String>,
        /// The HSM CA certificate (PEM), e.g. `rootca.pem`.
        ca_pem: PathBuf,
        /// The KMS's client certificate and key, e.g. `client.p12`.
        client_p12: PathBuf,
        /// A file holding the PKCS#12 password.
        password_file: PathBuf,
    },
}

/// A connected target.
pub(super) struct Connected {
    pub(super) client: Arc<ClusterClient>,
    /// `Local` only: the node's engine, for the in-process comparison.
    pub(super) engine: Option<Arc<SoftwareBackend>>,
    /// `Local` only: stops the node when dropped.
    node_stop: Option<watch::Sender<bool>>,
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.client.close();
        if let Some(stop) = &self.node_stop {
            stop.send_replace(true);
        }
    }
}

impl Target {
    /// One line for the report.
    pub fn describe(&self) -> String {
        match self {
            Self::Local => {
                "local: in-process HSM node (software engine) on 127.0.0.1, mTLS 1.2".to_owned()
            }
            Self::Nodes { nodes, .. } => format!("nodes: {}", nodes.join(", ")),
        }
    }

    pub(super) async fn connect(&self, connections: usize) -> Result<Connected, BenchError> {
        match self {
            Self::Local => local(connections).await,
            Self::Nodes {
                nodes,
                ca_pem,
                client_p12,
                password_file,
            } => {
                let read = |path: &PathBuf| {
                    std::fs::read(path).map_err(|e| {
                        BenchError::Target(format!("cannot read {}: {e}", path.display()))
                    })
                };
                let cas = certificates_from_pem(&read(ca_pem)?)
                    .map_err(|e| BenchError::Target(format!("{}: {e}", ca_pem.display())))?;
                let password_text = String::from_utf8(read(password_file)?).map_err(|_| {
                    BenchError::Target(format!("{} is not UTF-8 text", password_file.display()))
                })?;
                let password = Password::from_file_text(&password_text);
                let contents = pkcs12::read(&read(client_p12)?, &password)
                    .map_err(|e| BenchError::Target(format!("{}: {e}", client_p12.display())))?;
                let tls = mtls_client_config(
                    contents.certificates,
                    &contents.private_key,
                    &cas,
                    TlsVersions::Tls12And13,
                )
                .map_err(|e| BenchError::Target(format!("client TLS configuration: {e}")))?;
                let addresses = nodes
                    .iter()
                    .map(|n| NodeAddress::new(n.as_str()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| BenchError::Target(e.message))?;
                let client = client(addresses, Arc::new(tls), connections)?;
                Ok(Connected {
                    client,
                    engine: None,
                    node_stop: None,
                })
            }
        }
    }
}

fn client(
    nodes: Vec<NodeAddress>,
    tls: Arc<rustls::ClientConfig>,
    connections: usize,
) -> Result<Arc<ClusterClient>, BenchError> {
    let mut config = ClusterConfig::new(nodes, tls);
    config.connections_per_node = connections;
    ClusterClient::connect(config)
        .map(Arc::new)
        .map_err(|e| BenchError::Target(e.message))
}

async fn local(connections: usize) -> Result<Connected, BenchError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| BenchError::Target(format!("{what}: {e}"));
    let validity = || Validity::days_from_now(1).map_err(|e| setup("validity", &e));
    let ca = CertificateAuthority::new_root("bench HSM CA", KeyType::EcP256, validity()?, None)
        .map_err(|e| setup("CA", &e))?;
    let server = ca
        .issue_server(
            "bench-hsm",
            &ServerNames::default(),
            KeyType::EcP256,
            validity()?,
        )
        .map_err(|e| setup("server certificate", &e))?;
    let kms = ca
        .issue_client("bench-kms", KeyType::EcP256, validity()?)
        .map_err(|e| setup("client certificate", &e))?;
    let allow = ClientAllowList::new();
    allow.allow(&kms.certificate);
    let server_tls = mtls_server_config(
        vec![server.certificate.clone(), ca.certificate().clone()],
        &server.private_key,
        std::slice::from_ref(ca.certificate()),
        allow,
        TlsVersions::Tls12Only,
    )
    .map_err(|e| setup("server TLS configuration", &e))?;
    let client_tls = mtls_client_config(
        vec![kms.certificate.clone()],
        &kms.private_key,
        std::slice::from_ref(ca.certificate()),
        TlsVersions::Tls12Only,
    )
    .map_err(|e| setup("client TLS configuration", &e))?;

    let domain = DomainKey::generate().map_err(|e| setup("domain key", &e))?;
    let status = pb::StatusReply {
        role: "primary".to_owned(),
        node_id: "bench-local".to_owned(),
        ..pb::StatusReply::default()
    };
    let engine = Arc::new(SoftwareBackend::new(domain, status).map_err(|e| setup("engine", &e))?);
    let slot = EngineSlot::unavailable(strongroom_hsm::error::HsmError::internal("starting"));
    let backend: Arc<dyn Backend> = Arc::<SoftwareBackend>::clone(&engine);
    slot.set(Ok(backend));
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| setup("bind 127.0.0.1", &e))?;
    let address = listener
        .local_addr()
        .map_err(|e| setup("local address", &e))?;
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(host::serve(
        listener,
        Arc::new(server_tls),
        Arc::new(slot),
        HostOptions::default(),
        stopped,
    ));
    let node = NodeAddress::new(address.to_string()).map_err(|e| setup("address", &e))?;
    let client = client(vec![node], Arc::new(client_tls), connections)?;
    Ok(Connected {
        client,
        engine: Some(engine),
        node_stop: Some(stop),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use crate::hsm::{HsmBench, Options};
    use strongroom_certs::tool::{self, GenerateOptions};

    const PASSWORD: &str = "12345678";

    #[test]
    fn a_deployment_is_reached_with_the_certificate_tool_s_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = tool::generate(&GenerateOptions::new(
            dir.path().join("certs"),
            Password::from(PASSWORD),
        ))
        .unwrap();
        let password_file = dir.path().join("password.txt");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();

        // An HSM node with the tool's server.p12 that allows the tool's client.p12.
        let server = pkcs12::read(
            &std::fs::read(&files.server_p12).unwrap(),
            &Password::from(PASSWORD),
        )
        .unwrap();
        let allow = ClientAllowList::new();
        allow.allow(&files.client_certificate);
        let tls = mtls_server_config(
            server.certificates,
            &server.private_key,
            std::slice::from_ref(&files.ca_certificate),
            allow,
            TlsVersions::Tls12Only,
        )
        .unwrap();
        let engine =
            SoftwareBackend::new(DomainKey::generate().unwrap(), pb::StatusReply::default())
                .unwrap();
        let slot = EngineSlot::unavailable(strongroom_hsm::error::HsmError::internal("starting"));
        slot.set(Ok(Arc::new(engine)));
        let node = tokio::runtime::Runtime::new().unwrap();
        let listener = node
            .block_on(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
            .unwrap();
        let address = listener.local_addr().unwrap();
        let (_stop, stopped) = watch::channel(false);
        node.spawn(host::serve(
            listener,
            Arc::new(tls),
            Arc::new(slot),
            HostOptions::default(),
            stopped,
        ));

        let target = Target::Nodes {
            nodes: vec![address.to_string()],
            ca_pem: files.rootca_pem.clone(),
            client_p12: files.client_p12.clone(),
            password_file,
        };
        assert!(target.describe().contains(&address.to_string()));
        let report = HsmBench::new(Options {
            seconds: 0.05,
            rounds: 1,
            in_flight: vec![2],
            filter: Some("EC_P256 ".into()),
            ..Options::default()
        })
        .unwrap()
        .run(&target, |_| Ok(()))
        .unwrap();
        assert_eq!(report.rows.len(), 1);
        assert!(report.rows[0].requests > 0);
        assert_eq!(report.rows[0].direct_ops_per_sec, None);
    }
}
