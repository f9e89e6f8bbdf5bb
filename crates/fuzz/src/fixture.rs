//! What the targets check against and the seeds are made from: the captured SDK
//! requests and the client key of `../shared/vectors/dkms-sdk/` (when present), and a
//! client key made in code (always).

use std::path::PathBuf;
use std::sync::OnceLock;

use rustls::pki_types::CertificateDer;
use strongroom_certs::client_key;
use strongroom_certs::password::Password;
use strongroom_certs::pkcs12::{self, Pkcs12Format};
use strongroom_certs::pki;
use strongroom_crypto::secret::SecretBytes;
use strongroom_proto::signature::{ClientPublicKey, RequestSigner};

/// The password of every PKCS#12 the targets open: the captured client key's (test-only
/// material, published with the vectors), also used for the keys made in code.
pub(crate) const PASSWORD: &str = "364189137fa72dcdb06b44205cd99baa";

/// The environment variable naming another vectors directory.
pub(crate) const VECTORS_ENV: &str = "STRONGROOM_FUZZ_VECTORS";

/// The vectors directory: `$STRONGROOM_FUZZ_VECTORS`, else `../shared/vectors/dkms-sdk`
/// beside the checkout.
pub(crate) fn vectors_dir() -> PathBuf {
    std::env::var_os(VECTORS_ENV).map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/vectors/dkms-sdk"
            ))
        },
        PathBuf::from,
    )
}

/// One captured request: headers in wire order, and the body.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// A client key made in code, in every form the loaders read.
pub(crate) struct Generated {
    /// The `clientKey_<KeyId>.json` text.
    pub(crate) key_file: String,
    /// The legacy (client-key) PKCS#12.
    pub(crate) p12_legacy: Vec<u8>,
    /// The same key and certificate as a modern PKCS#12.
    pub(crate) p12_modern: Vec<u8>,
    /// The key's certificate.
    pub(crate) certificate: CertificateDer<'static>,
    /// The private key, PKCS#8 DER.
    pub(crate) private_key: SecretBytes,
}

/// Everything the targets and seeds share, made once per process.
pub(crate) struct Fixture {
    /// The client key that signature checks verify against: the captured one, else the
    /// generated one.
    pub(crate) verify_key: Option<ClientPublicKey>,
    /// The matching private key, to sign seeds.
    pub(crate) signer: Option<RequestSigner>,
    /// The captured requests (empty without the vectors).
    pub(crate) captured: Vec<Captured>,
    /// The vectors' files under `pki/`, by name (empty without the vectors).
    pub(crate) pki_files: Vec<(String, Vec<u8>)>,
    /// The client key made in code.
    pub(crate) generated: Option<Generated>,
}

/// The process's fixture.
pub(crate) fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

fn build() -> Fixture {
    let dir = vectors_dir();
    let generated = generate();
    let vector_key = std::fs::read(dir.join("pki/client.cert.pem"))
        .ok()
        .and_then(|pem| verify_key_from_pem(&pem));
    let vector_signer = std::fs::read_to_string(dir.join("pki/client.key.pem"))
        .ok()
        .and_then(|pem| strongroom_crypto::pem::decode("PRIVATE KEY", &pem))
        .and_then(|der| RequestSigner::new(&SecretBytes::new(der)).ok());
    let (verify_key, signer) = match (vector_key, vector_signer) {
        (Some(key), Some(signer)) => (Some(key), Some(signer)),
        _ => match &generated {
            Some(g) => (
                pki::certificate_public_key(&g.certificate)
                    .ok()
                    .and_then(|spki| ClientPublicKey::from_spki_der(&spki).ok()),
                RequestSigner::new(&g.private_key).ok(),
            ),
            None => (None, None),
        },
    };
    Fixture {
        verify_key,
        signer,
        captured: captured(&dir),
        pki_files: pki_files(&dir),
        generated,
    }
}

fn verify_key_from_pem(pem: &[u8]) -> Option<ClientPublicKey> {
    let certificate = pki::certificates_from_pem(pem).ok()?.into_iter().next()?;
    let spki = pki::certificate_public_key(&certificate).ok()?;
    ClientPublicKey::from_spki_der(&spki).ok()
}

fn generate() -> Option<Generated> {
    let password = Password::new(PASSWORD.to_owned());
    let (not_before, not_after) = client_key::default_validity();
    let key = client_key::generate("kst-fuzz0test001", &password, not_before, not_after).ok()?;
    let key_file = key.key_file_json().ok()?.to_string();
    let loaded = client_key::load(&key_file, &password).ok()?;
    let p12_modern = pkcs12::write(
        &loaded.private_key,
        std::slice::from_ref(&loaded.certificate),
        &password,
        Pkcs12Format::Modern,
    )
    .ok()?;
    let p12_legacy = pkcs12::write(
        &loaded.private_key,
        std::slice::from_ref(&loaded.certificate),
        &password,
        Pkcs12Format::Legacy,
    )
    .ok()?;
    Some(Generated {
        key_file,
        p12_legacy,
        p12_modern,
        certificate: loaded.certificate,
        private_key: loaded.private_key,
    })
}

/// Every captured request of the vectors directory and its `java/` subdirectory.
fn captured(dir: &std::path::Path) -> Vec<Captured> {
    let mut files: Vec<PathBuf> = [dir.to_path_buf(), dir.join("java")]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|path| std::fs::read(path).ok())
        .filter_map(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .filter_map(|json| {
            let request = json.get("request")?;
            let headers = request
                .get("headers")?
                .as_array()?
                .iter()
                .filter_map(|pair| {
                    let name = pair.get(0)?.as_str()?;
                    let value = pair.get(1)?.as_str()?;
                    Some((name.to_owned(), value.to_owned()))
                })
                .collect();
            let body = hex::decode(request.get("body_hex")?.as_str()?).ok()?;
            Some(Captured { headers, body })
        })
        .collect()
}

/// The files of the vectors' `pki/` directory, sorted by name.
fn pki_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("pki"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            std::fs::read(entry.path()).ok().map(|bytes| (name, bytes))
        })
        .collect();
    files.sort();
    files
}
