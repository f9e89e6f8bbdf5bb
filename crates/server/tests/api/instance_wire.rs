//! The instance API at the wire, with a raw client (`support_instance`): what the SDKs
//! send (chunked bodies, keep-alive) works, and every malformed request of
//! `spec/instance-api.md` §4–§5 gets its documented code and status as a protobuf
//! `Error` — never an HTML page, never a dropped connection — while the endpoint keeps
//! serving. Also: the performance quota (`Rejected.Throttling`), and the caller's
//! address from a PROXY protocol v2 header only when the peer is a trusted proxy.

use std::net::SocketAddr;

use strongroom_proto::dkms;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::support::{self, Hsms};
use crate::support_instance::{
    self as wire, Access, connect, exchange, http_request, prost_decode, signed_headers,
};

/// An `EncryptRequest` of `key` (also for `abuse`).
pub(crate) fn encrypt_body(key: &str) -> Vec<u8> {
    strongroom_proto::instance::encode(&dkms::EncryptRequest {
        key_id: key.to_owned(),
        plaintext: b"wire test".to_vec(),
        ..Default::default()
    })
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Replaces header `name` by one with `value` (also for `abuse`).
pub(crate) fn set(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    headers.retain(|(n, _)| n != name);
    headers.push((name.to_owned(), value.to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_their_documented_codes() {
    let dir = tempfile::tempdir().unwrap();
    let hsms = Hsms::start(&dir.path().join("hsm")).await;
    let kms = support::kms(&dir.path().join("kms")).await;
    let c = support::client(&kms.server, &kms.access_key_id, &kms.access_key_secret);
    let a = wire::access(&c, &hsms, &[("Spec", "200")], "127.0.0.1").await;
    let body = encrypt_body(&a.aes);

    // What the SDKs send: keep-alive, Content-Length, and the Java SDK's chunked bodies.
    let mut conn = connect(&a).await;
    for _ in 0..3 {
        let answer = exchange(
            &mut conn,
            &http_request(&signed_headers(&a, "Encrypt", &body), &body),
        )
        .await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(
            answer.header("content-type"),
            Some("application/x-protobuf")
        );
        let response: dkms::EncryptResponse = prost_decode(&answer.body).unwrap();
        assert_eq!(response.key_id, a.aes);
        assert_eq!(
            answer.header("x-kms-migrationkeyversionid").map(str::len),
            Some(36)
        );
    }
    let mut chunked = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n".to_vec();
    for (n, v) in signed_headers(&a, "Encrypt", &body) {
        chunked.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    chunked.extend_from_slice(b"\r\n");
    let (first, second) = body.split_at(5);
    for part in [first, second] {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(
        exchange(&mut conn, &chunked).await.status,
        200,
        "a chunked body"
    );
    let mut empty = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n".to_vec();
    for (n, v) in signed_headers(&a, "GenerateRandom", b"") {
        empty.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    empty.extend_from_slice(b"\r\n0\r\n\r\n");
    let random = exchange(&mut conn, &empty).await;
    assert_eq!(random.status, 200, "the Java SDK's empty chunked body");
    let random: dkms::GenerateRandomResponse = prost_decode(&random.body).unwrap();
    assert_eq!(random.random.len(), 32);

    // Hash (no SDK method; callers build it themselves): the digest of each algorithm,
    // checked against an independent computation for SHA-256 (the default) and
    // against the published SM3 test vector ("abc").
    for (algorithm, message, expected) in [
        (
            "",
            b"wire test".to_vec(),
            hex_of(&strongroom_crypto::hash::sha256(b"wire test")),
        ),
        (
            "SM3",
            b"abc".to_vec(),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0".to_owned(),
        ),
    ] {
        let hash = strongroom_proto::instance::encode(&dkms::HashRequest {
            message,
            algorithm: algorithm.to_owned(),
        });
        let answer = exchange(
            &mut conn,
            &http_request(&signed_headers(&a, "Hash", &hash), &hash),
        )
        .await;
        assert_eq!(answer.status, 200);
        let digest: dkms::HashResponse = prost_decode(&answer.body).unwrap();
        assert_eq!(hex_of(&digest.digest), expected, "Hash {algorithm}");
    }

    // Each malformed request on the same connection: its code, and the connection lives.
    let skewed = (time::OffsetDateTime::now_utc() - time::Duration::minutes(20))
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap()
        .replace(" +0000", " GMT");
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = {
        let mut cases = Vec::new();
        let mut h = signed_headers(&a, "Encrypt", &body);
        set(&mut h, "content-type", "application/json");
        cases.push((
            "wrong content type",
            http_request(&h, &body),
            415,
            "InvalidContentType",
        ));
        let mut h = signed_headers(&a, "Encrypt", &body);
        set(&mut h, "x-kms-apiversion", "dkms-gcs-0.1");
        cases.push((
            "wrong api version",
            http_request(&h, &body),
            400,
            "InvalidApiVersion",
        ));
        let mut h = signed_headers(&a, "Encrypt", &body);
        set(&mut h, "x-kms-apiname", "DeleteEverything");
        cases.push((
            "unknown api",
            http_request(&h, &body),
            400,
            "InvalidApiName",
        ));
        let mut h = signed_headers(&a, "Encrypt", &body);
        set(&mut h, "x-kms-signaturemethod", "HMAC_SHA1");
        cases.push((
            "wrong signature method",
            http_request(&h, &body),
            400,
            "InvalidParam",
        ));
        let mut h = signed_headers(&a, "Encrypt", &body);
        h.retain(|(n, _)| n != "x-kms-acccesskeyid");
        cases.push((
            "no client key id",
            http_request(&h, &body),
            400,
            "MissingParameter",
        ));
        let mut h = signed_headers(&a, "Encrypt", &body);
        h.retain(|(n, _)| n != "date");
        cases.push(("no date", http_request(&h, &body), 400, "InvalidParam"));
        let mut h = signed_headers(&a, "Encrypt", &body);
        set(&mut h, "date", "yesterday");
        cases.push(("bad date", http_request(&h, &body), 400, "InvalidParam"));
        let mut h = signed_headers(&a, "Encrypt", &body);
        set(&mut h, "date", &skewed);
        cases.push((
            "date 20 minutes old",
            http_request(&h, &body),
            400,
            "RequestTimeTooSkewed",
        ));
        let h = signed_headers(&a, "Encrypt", &body);
        let mut other = body.clone();
        other.push(0x28);
        other.push(0x01);
        cases.push((
            "body not the signed one",
            http_request(&h, &other),
            400,
            "InvalidParam",
        ));
        let mut h = signed_headers(&a, "Encrypt", &body);
        h.push(("x-kms-apiname".to_owned(), "Decrypt".to_owned()));
        cases.push((
            "duplicate api name",
            http_request(&h, &body),
            400,
            "InvalidParam",
        ));
        let mut h = signed_headers(&a, "Encrypt", &body);
        set(&mut h, "authorization", "Bearer AAAA");
        cases.push((
            "wrong signature",
            http_request(&h, &body),
            401,
            "SignatureNotMatch",
        ));
        let mut h = signed_headers(&a, "Encrypt", &body);
        h.retain(|(n, _)| n != "authorization");
        cases.push((
            "no authorization",
            http_request(&h, &body),
            401,
            "SignatureNotMatch",
        ));
        let mut h = signed_headers(&a, "Encrypt", &body);
        set(
            &mut h,
            "x-kms-acccesskeyid",
            "KAAP.00000000-0000-4000-8000-000000000000",
        );
        cases.push((
            "unknown client key",
            http_request(&h, &body),
            404,
            "Unauthorized",
        ));
        let garbage = [0xFFu8, 0xFF, 0xFF];
        let h = signed_headers(&a, "Encrypt", &garbage);
        cases.push((
            "invalid protobuf",
            http_request(&h, &garbage),
            400,
            "InvalidParameter",
        ));
        let huge =
            strongroom_proto::instance::encode(&dkms::GenerateRandomRequest { length: 1 << 30 });
        let h = signed_headers(&a, "GenerateRandom", &huge);
        cases.push((
            "huge GenerateRandom",
            http_request(&h, &huge),
            400,
            "InvalidParameter",
        ));
        let sign = strongroom_proto::instance::encode(&dkms::SignRequest {
            key_id: a.aes.clone(),
            message: b"x".to_vec(),
            ..Default::default()
        });
        let h = signed_headers(&a, "Sign", &sign);
        cases.push((
            "Sign with an AES key",
            http_request(&h, &sign),
            400,
            "UnsupportedOperation",
        ));
        let other_key = encrypt_body("key-000000000000000000000000");
        let h = signed_headers(&a, "Encrypt", &other_key);
        cases.push((
            "unknown key",
            http_request(&h, &other_key),
            404,
            "Forbidden.KeyNotFound",
        ));
        let hmac = strongroom_proto::instance::encode(&dkms::HmacRequest {
            key_id: a.aes.clone(),
            message: b"x".to_vec(),
        });
        let h = signed_headers(&a, "Hmac", &hmac);
        cases.push(("Hmac", http_request(&h, &hmac), 400, "UnsupportedOperation"));
        let mut get = b"GET / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n".to_vec();
        for (n, v) in signed_headers(&a, "GenerateRandom", b"") {
            get.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        get.extend_from_slice(b"\r\n");
        cases.push(("GET", get, 400, "InvalidParameter"));
        cases
    };
    for (name, request, status, code) in &cases {
        let answer = exchange(&mut conn, request).await;
        assert_eq!(
            (answer.status, answer.error_code().as_str()),
            (*status, *code),
            "{name}"
        );
        assert_eq!(
            answer.header("content-type"),
            Some("application/x-protobuf"),
            "{name}"
        );
    }
    // Still serving, on the same connection.
    let answer = exchange(
        &mut conn,
        &http_request(&signed_headers(&a, "Encrypt", &body), &body),
    )
    .await;
    assert_eq!(answer.status, 200);

    // A body over 3 MiB: 413, without reading it all.
    let mut big = connect(&a).await;
    let mut head = b"POST / HTTP/1.1\r\nhost: x\r\n".to_vec();
    for (n, v) in signed_headers(&a, "Encrypt", &body) {
        head.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    head.extend_from_slice(format!("content-length: {}\r\n\r\n", 4 << 20).as_bytes());
    big.write_all(&head).await.unwrap();
    big.write_all(&vec![0u8; 3 << 20]).await.unwrap();
    let _ = big.write_all(&vec![0u8; 64 << 10]).await;
    let answer = wire::read_answer(&mut big).await;
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (413, "RequestEntityTooLarge")
    );

    // The performance quota (Spec 200): a second's worth at once, then Rejected.Throttling.
    // The requests are signed first and pipelined on one connection, so that they
    // arrive faster than 200 a second.
    let requests: Vec<Vec<u8>> = (0..300)
        .map(|_| http_request(&signed_headers(&a, "Encrypt", &body), &body))
        .collect();
    let (mut reader, mut writer) = tokio::io::split(connect(&a).await);
    let sending = tokio::spawn(async move {
        for request in requests {
            writer.write_all(&request).await.unwrap();
        }
        writer.flush().await.unwrap();
        writer
    });
    let mut throttled = 0;
    for _ in 0..300 {
        let answer = wire::read_answer(&mut reader).await;
        match answer.status {
            200 => {}
            429 => {
                assert_eq!(answer.error_code(), "Rejected.Throttling");
                throttled += 1;
            }
            other => panic!("status {other}"),
        }
    }
    assert!(throttled > 0, "no request was throttled");
    let writer = sending.await.unwrap();
    let mut conn = reader.unsplit(writer);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let answer = exchange(
        &mut conn,
        &http_request(&signed_headers(&a, "Encrypt", &body), &body),
    )
    .await;
    assert_eq!(answer.status, 200, "the quota refills");

    kms.server.shutdown().await;
    hsms.primary.shutdown().await;
    hsms.member.shutdown().await;
}

/// A PROXY protocol v2 header for a TCP connection from `client`.
fn proxy_header(client: SocketAddr) -> Vec<u8> {
    strongroom_server::instance::proxy::encode(client, "127.0.0.1:443".parse().unwrap())
}

async fn encrypt_via(a: &Access, prefix: Option<Vec<u8>>) -> Result<u16, std::io::Error> {
    let mut tcp = TcpStream::connect(("127.0.0.1", a.port)).await?;
    if let Some(prefix) = prefix {
        tcp.write_all(&prefix).await?;
    }
    let mut tls = wire::tls(tcp, &a.ca_pem).await?;
    let body = encrypt_body(&a.aes);
    let answer = exchange(
        &mut tls,
        &http_request(&signed_headers(a, "Encrypt", &body), &body),
    )
    .await;
    Ok(answer.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_address_comes_from_a_trusted_proxy_only() {
    let dir = tempfile::tempdir().unwrap();
    let hsms = Hsms::start(&dir.path().join("hsm")).await;

    // A node behind a load balancer on loopback: the policy allows 10.0.0.0/8 only.
    let mut config = support::config(&dir.path().join("kms"), None, None);
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let kms = support::kms_with(config).await;
    let c = support::client(&kms.server, &kms.access_key_id, &kms.access_key_secret);
    let a = wire::access(&c, &hsms, &[], "10.0.0.0/8").await;
    assert_eq!(
        encrypt_via(&a, Some(proxy_header("10.1.2.3:5000".parse().unwrap())))
            .await
            .unwrap(),
        200,
        "a client the proxy says is in 10.0.0.0/8"
    );
    assert_eq!(
        encrypt_via(&a, Some(proxy_header("192.168.1.9:5000".parse().unwrap())))
            .await
            .unwrap(),
        403,
        "a client the proxy says is elsewhere"
    );
    assert!(
        encrypt_via(&a, None).await.is_err(),
        "a trusted proxy must send the header: the connection is closed"
    );
    // With a VPC bound, only callers inside it reach the instance, whatever the
    // network rules allow.
    let vpc = c
        .call(
            "CreateVpc",
            &[("VpcName", "office"), ("CidrBlocks", r#"["10.1.0.0/16"]"#)],
        )
        .await
        .unwrap()["VpcId"]
        .as_str()
        .unwrap()
        .to_owned();
    c.call(
        "UpdateKmsInstanceBindVpc",
        &[
            ("KmsInstanceId", &a.instance),
            ("BindVpcs", &format!(r#"[{{"VpcId":"{vpc}"}}]"#)),
        ],
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        encrypt_via(&a, Some(proxy_header("10.1.2.3:5000".parse().unwrap())))
            .await
            .unwrap(),
        200,
        "inside the bound VPC"
    );
    assert_eq!(
        encrypt_via(&a, Some(proxy_header("10.2.3.4:5000".parse().unwrap())))
            .await
            .unwrap(),
        403,
        "outside the bound VPC, though the network rule allows 10.0.0.0/8"
    );
    kms.server.shutdown().await;

    // The same request from a peer that is not a trusted proxy: its PROXY header is
    // never read, so TLS fails, and without one the peer's own address is judged.
    let dir2 = tempfile::tempdir().unwrap();
    let kms = support::kms(&dir2.path().join("kms")).await;
    let c = support::client(&kms.server, &kms.access_key_id, &kms.access_key_secret);
    let hsms2 = Hsms::start(&dir2.path().join("hsm")).await;
    let a = wire::access(&c, &hsms2, &[], "10.0.0.0/8").await;
    assert!(
        encrypt_via(&a, Some(proxy_header("10.1.2.3:5000".parse().unwrap())))
            .await
            .is_err(),
        "an untrusted peer's PROXY header is not believed"
    );
    assert_eq!(
        encrypt_via(&a, None).await.unwrap(),
        403,
        "loopback is not 10.0.0.0/8"
    );
    kms.server.shutdown().await;
    for h in [hsms, hsms2] {
        h.primary.shutdown().await;
        h.member.shutdown().await;
    }
}
