//! The management API's TLS: one management CA per deployment, kept in the store (its key
//! sealed under the node key) so that every node over one database issues its server
//! certificate from the same CA and clients trust one CA file; each node issues its own
//! server certificate at start, for its configured names.

use std::net::IpAddr;
use std::path::Path;

use rustls::pki_types::CertificateDer;
use strongroom_certs::pki::{self, CertificateAuthority, KeyType, ServerNames, Validity};
use strongroom_store::Store;

use crate::node_key::NodeKey;

const CA_SETTING: &str = "management-ca";
/// Validity of the management CA, in days (20 years).
const CA_DAYS: u32 = 7305;
/// Validity of a node's management server certificate, in days; re-issued at each start.
const SERVER_DAYS: u32 = 825;

/// A failure setting up the management TLS.
#[derive(Debug, thiserror::Error)]
#[error("management TLS: {0}")]
pub struct TlsSetupError(pub String);

fn err(e: impl std::fmt::Display) -> TlsSetupError {
    TlsSetupError(e.to_string())
}

/// What the management listener presents, and the CA bundle clients trust.
#[derive(Debug)]
pub struct ManagementTls {
    /// The rustls configuration of the listener.
    pub server_config: rustls::ServerConfig,
    /// The management CA certificate, PEM (the file handed to clients).
    pub ca_pem: String,
}

/// Loads the deployment's management CA from the store (creating it if this is the first
/// node), issues this node's server certificate for `names`, and writes the CA file to
/// `ca_file`.
///
/// # Errors
/// [`TlsSetupError`] for a store failure, a bad name, or a sealed CA the node key cannot
/// open.
pub async fn setup<S: Store>(
    store: &S,
    node_key: &NodeKey,
    names: &[String],
    ca_file: &Path,
) -> Result<ManagementTls, TlsSetupError> {
    if store.get_setting(CA_SETTING).await.map_err(err)?.is_none() {
        let ca = CertificateAuthority::new_root(
            "Strongroom Management CA",
            KeyType::EcP256,
            Validity::days_from_now(CA_DAYS).map_err(err)?,
            Some(0),
        )
        .map_err(err)?;
        let record = encode(
            ca.certificate(),
            &node_key
                .seal(ca.private_key().expose_secret(), CA_SETTING)
                .map_err(err)?,
        )?;
        store
            .insert_setting(CA_SETTING, &record)
            .await
            .map_err(err)?;
    }
    let record = store
        .get_setting(CA_SETTING)
        .await
        .map_err(err)?
        .ok_or_else(|| TlsSetupError("the management CA vanished from the store".into()))?;
    let (certificate, sealed_key) = decode(&record)?;
    let key = node_key.open(sealed_key, CA_SETTING).map_err(err)?;
    let ca = CertificateAuthority::from_der(&key, &certificate).map_err(err)?;
    let server_names = parse_names(names)?;
    let common_name = names.first().map_or("localhost", String::as_str);
    let leaf = ca
        .issue_server(
            common_name,
            &server_names,
            KeyType::EcP256,
            Validity::days_from_now(SERVER_DAYS).map_err(err)?,
        )
        .map_err(err)?;
    let ca_pem = pki::certificate_pem(&certificate);
    write_ca_file(ca_file, &ca_pem)?;
    let server_config = strongroom_certs::tls::https_server_config(
        vec![leaf.certificate, certificate],
        &leaf.private_key,
    )
    .map_err(err)?;
    Ok(ManagementTls {
        server_config,
        ca_pem,
    })
}

pub(crate) fn parse_names(names: &[String]) -> Result<ServerNames, TlsSetupError> {
    let mut out = ServerNames {
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
    };
    for name in names {
        match name.parse::<IpAddr>() {
            Ok(ip) => out.ip_addresses.push(ip),
            Err(_) => out.dns_names.push(name.clone()),
        }
    }
    if out.dns_names.is_empty() && out.ip_addresses.is_empty() {
        return Err(TlsSetupError(
            "the management certificate needs at least one server name".into(),
        ));
    }
    Ok(out)
}

fn write_ca_file(path: &Path, pem: &str) -> Result<(), TlsSetupError> {
    if std::fs::read_to_string(path).is_ok_and(|existing| existing == pem) {
        return Ok(());
    }
    let tmp = path.with_extension("pem.tmp");
    std::fs::write(&tmp, pem).map_err(|e| TlsSetupError(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| TlsSetupError(format!("{}: {e}", path.display())))
}

/// `len(cert) as u32 BE ‖ cert DER ‖ sealed key`.
fn encode(certificate: &CertificateDer<'_>, sealed_key: &[u8]) -> Result<Vec<u8>, TlsSetupError> {
    let len = u32::try_from(certificate.len()).map_err(err)?;
    let mut out = Vec::with_capacity(4 + certificate.len() + sealed_key.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(certificate);
    out.extend_from_slice(sealed_key);
    Ok(out)
}

fn decode(record: &[u8]) -> Result<(CertificateDer<'static>, &[u8]), TlsSetupError> {
    let bad = || TlsSetupError("the stored management CA is malformed".into());
    let (len, rest) = record.split_first_chunk::<4>().ok_or_else(bad)?;
    let len = usize::try_from(u32::from_be_bytes(*len)).map_err(err)?;
    if rest.len() < len {
        return Err(bad());
    }
    let (certificate, sealed) = rest.split_at(len);
    Ok((CertificateDer::from(certificate.to_vec()), sealed))
}
