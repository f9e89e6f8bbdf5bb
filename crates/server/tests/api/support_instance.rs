//! Fixtures for the instance API: an instance Connected to real HSM nodes, a key, and a
//! client key allowed `key/*` from `sources`; and a raw client that writes HTTP/1.1 over
//! TLS byte by byte, so that tests can send what no SDK would.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use serde_json::json;
use strongroom_certs::client_key;
use strongroom_certs::password::Password;
use strongroom_crypto::secret::SecretBytes;
use strongroom_proto::signature;
use strongroom_server::client::ManagementClient;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::{self, Hsms};

/// An instance ready for instance-API calls.
pub struct Access {
    pub instance: String,
    pub port: u16,
    pub ca_pem: String,
    pub client_key_id: String,
    pub private_key: SecretBytes,
    /// An `Aliyun_AES_256` key of the instance.
    pub aes: String,
}

/// An instance (`extra`: `CreateKmsInstance` parameters), an AES key, and a client key
/// whose policy grants `key/*` from `sources`.
pub async fn access(
    c: &ManagementClient,
    hsms: &Hsms,
    extra: &[(&str, &str)],
    sources: &str,
) -> Access {
    let instance = support::connected_instance(c, hsms, extra).await;
    let aes = c
        .call(
            "CreateKey",
            &[("DKMSInstanceId", &instance), ("KeySpec", "Aliyun_AES_256")],
        )
        .await
        .unwrap()["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let rule = format!("net-{instance}");
    let policy = format!("pol-{instance}");
    let aap = format!("aap-{instance}");
    c.call(
        "CreateNetworkRule",
        &[
            ("Name", &rule),
            ("Type", "Private"),
            ("SourcePrivateIp", sources),
        ],
    )
    .await
    .unwrap();
    c.call(
        "CreatePolicy",
        &[
            ("Name", &policy),
            ("KmsInstance", &instance),
            (
                "Permissions",
                r#"["RbacPermission/Template/CryptoServiceKeyUser"]"#,
            ),
            ("Resources", r#"["key/*"]"#),
            (
                "AccessControlRules",
                &json!({"NetworkRules": [rule]}).to_string(),
            ),
        ],
    )
    .await
    .unwrap();
    c.call(
        "CreateApplicationAccessPoint",
        &[("Name", &aap), ("Policies", &json!([policy]).to_string())],
    )
    .await
    .unwrap();
    let password = "Wire-test-1";
    let made = c
        .call(
            "CreateClientKey",
            &[("AapName", &aap), ("Password", password)],
        )
        .await
        .unwrap();
    let client_key_id = made["ClientKeyId"].as_str().unwrap().to_owned();
    let file = json!({"KeyId": client_key_id, "PrivateKeyData": made["PrivateKeyData"]});
    let loaded = client_key::load(&file.to_string(), &Password::new(password.into())).unwrap();
    let got = c
        .call("GetKmsInstance", &[("KmsInstanceId", &instance)])
        .await
        .unwrap();
    let port = u16::try_from(got["KmsInstance"]["InstanceApiPort"].as_u64().unwrap()).unwrap();
    let ca_pem = got["KmsInstance"]["CaCertificateChainPem"]
        .as_str()
        .unwrap()
        .to_owned();
    support::eventually("the instance endpoint", || async {
        TcpStream::connect(("127.0.0.1", port)).await.is_ok()
    })
    .await;
    Access {
        instance,
        port,
        ca_pem,
        client_key_id,
        private_key: loaded.private_key,
        aes,
    }
}

/// A TLS client trusting the instance's CA file.
pub fn tls_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in strongroom_certs::pki::certificates_from_pem(ca_pem.as_bytes()).unwrap() {
        roots.add(cert).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// TLS over `tcp` to the instance endpoint, checked against its CA file for `127.0.0.1`.
pub async fn tls<S: AsyncRead + AsyncWrite + Unpin>(
    tcp: S,
    ca_pem: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<S>> {
    let connector = tokio_rustls::TlsConnector::from(tls_config(ca_pem));
    let name = ServerName::try_from("127.0.0.1").unwrap();
    connector.connect(name, tcp).await
}

/// A connection to the endpoint.
pub async fn connect(a: &Access) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", a.port)).await.unwrap();
    tls(tcp, &a.ca_pem).await.unwrap()
}

/// The headers an SDK sends for `api` with `body`, signed with `a`'s client key;
/// `tweak` may change them after signing.
pub fn signed_headers(a: &Access, api: &str, body: &[u8]) -> Vec<(String, String)> {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap();
    // RFC 1123 as the SDKs write it: `Sun, 29 Nov 2026 07:30:00 GMT`.
    let date = date.replace(" +0000", " GMT");
    let mut headers = vec![
        (
            "content-type".to_owned(),
            "application/x-protobuf".to_owned(),
        ),
        ("accept".to_owned(), "application/x-protobuf".to_owned()),
        ("date".to_owned(), date),
        ("x-kms-apiversion".to_owned(), "dkms-gcs-0.2".to_owned()),
        ("x-kms-apiname".to_owned(), api.to_owned()),
        (
            "x-kms-signaturemethod".to_owned(),
            "RSA_PKCS1_SHA_256".to_owned(),
        ),
        ("x-kms-acccesskeyid".to_owned(), a.client_key_id.clone()),
        ("content-sha256".to_owned(), signature::content_sha256(body)),
    ];
    let to_sign = signature::string_to_sign(
        "POST",
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
    )
    .unwrap();
    headers.push((
        "authorization".to_owned(),
        signature::sign(&a.private_key, &to_sign).unwrap(),
    ));
    headers
}

/// `POST /` with `headers` and a `Content-Length` body.
pub fn http_request(headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\n".to_vec();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

/// An answer: status, headers (lower-case names), body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The protobuf `Error` body's code (the answer must be one).
    pub fn error_code(&self) -> String {
        let error: strongroom_proto::dkms::Error = prost_decode(&self.body)
            .unwrap_or_else(|| panic!("not an Error body: {:?}", self.body));
        assert_eq!(error.status_code, i32::from(self.status));
        assert!(!error.request_id.is_empty());
        error.error_code
    }
}

/// Decodes a protobuf message (the tests see prost through the generated types).
pub fn prost_decode<M: Default + strongroom_proto::instance::Response>(bytes: &[u8]) -> Option<M> {
    M::decode(bytes).ok()
}

/// Reads one HTTP/1.1 answer with a `content-length` body.
pub async fn read_answer<S: AsyncRead + Unpin>(stream: &mut S) -> Answer {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.unwrap();
        assert_eq!(
            n,
            1,
            "the connection closed inside the headers: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let text = String::from_utf8(buf).unwrap();
    let mut lines = text.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_lowercase(), v.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

/// Sends `request` on `stream` and reads the answer.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, request: &[u8]) -> Answer {
    stream.write_all(request).await.unwrap();
    stream.flush().await.unwrap();
    read_answer(stream).await
}
