//! An instance endpoint's TLS: a server certificate issued, when the endpoint starts,
//! by the instance's issuing CA (whose key the store keeps sealed under the node key), so
//! that the `PrivateKmsCA_<instance>.pem` users download (root, then issuing CA) verifies
//! it with every SDK. Each node issues its own; none is stored.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use strongroom_certs::{instance_ca, pki, tls};
use strongroom_crypto::secret::SecretBytes;
use strongroom_store::{Instance, Store};

use crate::api::instances::ca_keys_purpose;
use crate::app::App;
use crate::mgmt_tls::parse_names;

/// The TLS configuration of `instance`'s endpoint.
///
/// # Errors
/// A message if the instance has no CA, its sealed keys do not open, or the certificate
/// cannot be issued.
pub fn server_config<S: Store>(
    app: &App<S>,
    instance: &Instance,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let id = &instance.id;
    let sealed = instance
        .ca_keys
        .as_deref()
        .ok_or_else(|| format!("the instance {id} has no CA keys"))?;
    let keys = app
        .node_key
        .open(sealed, &ca_keys_purpose(id))
        .map_err(|e| format!("the CA keys of {id} do not open: {e}"))?;
    // `base64(root key) . base64(issuing key)`.
    let issuing_b64 = keys
        .expose_secret()
        .split(|b| *b == b'.')
        .nth(1)
        .ok_or_else(|| format!("the CA keys of {id} are malformed"))?;
    let issuing_key = SecretBytes::new(
        STANDARD
            .decode(issuing_b64)
            .map_err(|e| format!("the CA keys of {id} are malformed: {e}"))?,
    );
    let chain = pki::certificates_from_pem(instance.ca_certificate_chain_pem.as_bytes())
        .map_err(|e| format!("the CA chain of {id}: {e}"))?;
    let issuing_certificate = chain
        .get(1)
        .ok_or_else(|| format!("the CA chain of {id} lacks its issuing CA"))?;
    let names = parse_names(&app.config.instance_server_names).map_err(|e| e.to_string())?;
    let server =
        instance_ca::issue_server_certificate(id, &issuing_key, issuing_certificate, &names)
            .map_err(|e| format!("the server certificate of {id}: {e}"))?;
    tls::https_server_config(server.chain, &server.private_key)
        .map(Arc::new)
        .map_err(|e| format!("the TLS configuration of {id}: {e}"))
}
