//! Certificates in the node state: imports, and the host port's TLS configuration.

use std::time::Duration;

use base64::Engine as _;
use rustls::pki_types::CertificateDer;
use strongroom_certs::password::Password;
use strongroom_certs::pki;
use strongroom_certs::tls::{ClientAllowList, mtls_server_config};
use strongroom_crypto::secret::SecretBytes;
use zeroize::Zeroizing;

use crate::host::HostOptions;
use crate::identity;
use crate::officer::{self, CertificateInfo};
use crate::state::{SecretState, ServerIdentity};

pub(super) fn client_certificates(secret: &SecretState) -> Vec<CertificateDer<'static>> {
    secret
        .client_certificates
        .iter()
        .filter_map(|pem| pki::certificates_from_pem(pem.as_bytes()).ok())
        .flatten()
        .collect()
}

pub(super) fn server_chain(secret: &SecretState) -> Result<Vec<CertificateDer<'static>>, String> {
    let server = secret
        .server
        .as_ref()
        .ok_or_else(|| "no server certificate imported".to_owned())?;
    server
        .chain
        .iter()
        .map(|h| {
            hex::decode(h)
                .map(CertificateDer::from)
                .map_err(|_| "stored certificate is not hex".to_owned())
        })
        .collect()
}

type HostPlan = Result<(rustls::ServerConfig, HostOptions), (String, HostOptions)>;

/// The host port's TLS configuration from the state, or why there is none.
pub(super) fn host_config(secret: &SecretState) -> HostPlan {
    let options = HostOptions {
        keep_alive: (secret.properties.keep_alive_secs > 0)
            .then(|| Duration::from_secs(u64::from(secret.properties.keep_alive_secs))),
        ..HostOptions::default()
    };
    let fail = |reason: String| Err((reason, options.clone()));
    let chain = match server_chain(secret) {
        Ok(chain) => chain,
        Err(reason) => return fail(reason),
    };
    let Some(server) = &secret.server else {
        return fail("no server certificate imported".to_owned());
    };
    let clients = client_certificates(secret);
    if clients.is_empty() {
        return fail("no client certificate imported".to_owned());
    }
    let cas: Vec<CertificateDer<'static>> = chain.iter().skip(1).cloned().collect();
    let allow = ClientAllowList::new();
    for client in &clients {
        allow.allow(client);
    }
    let versions = match secret.properties.tls_versions() {
        Ok(v) => v,
        Err(reason) => return fail(reason),
    };
    let key = match hex::decode(&server.private_key) {
        Ok(k) => SecretBytes::new(k),
        Err(_) => return fail("stored server key is not hex".to_owned()),
    };
    match mtls_server_config(chain, &key, &cas, allow, versions) {
        Ok(tls) => Ok((tls, options)),
        Err(e) => fail(format!("server certificate unusable: {e}")),
    }
}

pub(super) fn import_client_certificates(
    s: &mut SecretState,
    pem: &str,
) -> Result<Vec<CertificateInfo>, String> {
    let certs = pki::certificates_from_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificate in the PEM text".to_owned());
    }
    let mut added = Vec::new();
    let known: Vec<[u8; 32]> = client_certificates(s)
        .iter()
        .map(|c| pki::fingerprint(c))
        .collect();
    for cert in certs {
        let info = officer::describe(&cert);
        if info.subject == "(unparsable certificate)" {
            return Err("a certificate in the PEM text does not parse".to_owned());
        }
        if !known.contains(&pki::fingerprint(&cert)) {
            s.client_certificates.push(pki::certificate_pem(&cert));
        }
        added.push(info);
    }
    Ok(added)
}

pub(super) fn remove_client_certificate(
    s: &mut SecretState,
    fingerprint: &str,
) -> Result<(), String> {
    let target = identity::parse_fingerprint(fingerprint).ok_or("not a SHA-256 fingerprint")?;
    let before = s.client_certificates.len();
    s.client_certificates.retain(|pem| {
        pki::certificates_from_pem(pem.as_bytes())
            .ok()
            .and_then(|c| c.first().map(pki::fingerprint))
            != Some(target)
    });
    if s.client_certificates.len() == before {
        return Err(format!(
            "no imported client certificate has fingerprint {fingerprint}"
        ));
    }
    Ok(())
}

pub(super) fn import_server_certificate(
    s: &mut SecretState,
    p12: &str,
    password: Zeroizing<String>,
) -> Result<CertificateInfo, String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(p12.trim())
        .map_err(|_| "the PKCS#12 file is not base64")?;
    let contents = strongroom_certs::pkcs12::read(&der, &Password::new(password.to_string()))
        .map_err(|e| format!("server.p12: {e}"))?;
    let leaf = contents
        .certificates
        .first()
        .ok_or("server.p12 holds no certificate")?;
    if contents.certificates.len() < 2 {
        return Err("server.p12 holds no CA certificate: the host port needs the CA that issued the client certificates".to_owned());
    }
    let info = officer::describe(leaf);
    s.server = Some(ServerIdentity {
        chain: contents.certificates.iter().map(hex::encode).collect(),
        private_key: hex::encode(contents.private_key.expose_secret()),
    });
    Ok(info)
}
