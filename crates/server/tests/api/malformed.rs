//! Malformed instance-API requests beyond `instance_wire`'s, as a table: truncated and
//! oversized bodies, a wrong `content-sha256`, missing and duplicate headers, bad dates,
//! unknown API names, invalid protobuf, the wrong key type, huge lengths. Each gets its
//! documented status and code, after which the endpoint still serves a good request on a
//! new connection.

use strongroom_proto::dkms;
use tokio::io::AsyncWriteExt as _;

use crate::instance_wire::{encrypt_body, set};
use crate::support::{self, Hsms};
use crate::support_instance::{
    self as wire, Access, connect, exchange, http_request, prost_decode, signed_headers,
};

/// A request's headers, name and value.
type Headers = Vec<(String, String)>;

/// How a row's request is sent.
enum Sending {
    /// The whole request.
    Whole(Vec<u8>),
    /// The request, then the write side closed (a body shorter than announced).
    ThenClose(Vec<u8>),
}

/// One malformed request: name, what is sent, expected status and code, and (when the
/// message matters to an SDK) the message.
type Row = (String, Sending, u16, &'static str, Option<&'static str>);

fn rfc1123(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc2822)
        .unwrap()
        .replace(" +0000", " GMT")
}

fn rows(a: &Access, ec: &str) -> Vec<Row> {
    let body = encrypt_body(&a.aes);
    let signed = |api: &str, body: &[u8]| signed_headers(a, api, body);
    let with = |f: &dyn Fn(&mut Headers)| {
        let mut h = signed("Encrypt", &body);
        f(&mut h);
        Sending::Whole(http_request(&h, &body))
    };
    let without = |name: &'static str| with(&move |h| h.retain(|(n, _)| n != name));
    let twice = |name: &'static str| {
        with(&move |h| {
            let value = h.iter().find(|(n, _)| n == name).unwrap().1.clone();
            h.push((name.to_owned(), value));
        })
    };
    let call = |api: &str, body: Vec<u8>| Sending::Whole(http_request(&signed(api, &body), &body));
    let now = time::OffsetDateTime::now_utc();
    let mut rows: Vec<Row> = Vec::new();

    // A body shorter than its Content-Length, then the end of the stream.
    let mut truncated = http_request(&signed("Encrypt", &body), &body);
    truncated.truncate(truncated.len() - 3);
    rows.push((
        "truncated body".into(),
        Sending::ThenClose(truncated),
        400,
        "InvalidParameter",
        None,
    ));

    // Body digest: a well-formed digest of other bytes, one not hex, none.
    let other_digest = strongroom_proto::signature::content_sha256(b"other");
    rows.push((
        "content-sha256 of other bytes".into(),
        with(&|h| set(h, "content-sha256", &other_digest)),
        400,
        "InvalidParam",
        Some("The Param Content-SHA256 is invalid."),
    ));
    rows.push((
        "content-sha256 not hex".into(),
        with(&|h| set(h, "content-sha256", "not-a-digest")),
        400,
        "InvalidParam",
        Some("The Param Content-SHA256 is invalid."),
    ));
    rows.push((
        "no content-sha256".into(),
        without("content-sha256"),
        400,
        "InvalidParam",
        Some("The Param Content-SHA256 is invalid."),
    ));

    // Each other required header missing (client key id, date and authorization are in
    // instance_wire).
    rows.push((
        "no content-type".into(),
        without("content-type"),
        415,
        "InvalidContentType",
        None,
    ));
    rows.push((
        "no api version".into(),
        without("x-kms-apiversion"),
        400,
        "InvalidApiVersion",
        None,
    ));
    rows.push((
        "no api name".into(),
        without("x-kms-apiname"),
        400,
        "InvalidApiName",
        None,
    ));
    rows.push((
        "no signature method".into(),
        without("x-kms-signaturemethod"),
        400,
        "InvalidParam",
        Some("The Param x-kms-signaturemethod is invalid."),
    ));

    // Each header twice with the same value (the API name twice with two values is in
    // instance_wire): ambiguous, refused.
    for (name, code) in [
        ("content-type", "InvalidParam"),
        ("x-kms-apiversion", "InvalidParam"),
        ("x-kms-signaturemethod", "InvalidParam"),
        ("x-kms-acccesskeyid", "InvalidParam"),
        ("date", "InvalidParam"),
        ("content-sha256", "InvalidParam"),
    ] {
        rows.push((format!("{name} twice"), twice(name), 400, code, None));
    }

    // Dates: other formats, and skew ahead of the server (behind is in instance_wire).
    for (label, date) in [
        ("date in ISO 8601", now.date().to_string()),
        ("date as a Unix time", now.unix_timestamp().to_string()),
        (
            "date with a numeric zone",
            rfc1123(now).replace(" GMT", " +0800"),
        ),
        ("empty date", String::new()),
    ] {
        rows.push((
            label.into(),
            with(&|h| set(h, "date", &date)),
            400,
            "InvalidParam",
            Some("The Param Date is invalid."),
        ));
    }
    let ahead = rfc1123(now + time::Duration::minutes(16));
    rows.push((
        "date 16 minutes ahead".into(),
        with(&|h| set(h, "date", &ahead)),
        400,
        "RequestTimeTooSkewed",
        None,
    ));

    // API names no SDK sends.
    for (label, name) in [
        ("empty api name", ""),
        ("api name in lower case", "encrypt"),
        ("management action as api name", "CreateKey"),
    ] {
        rows.push((
            label.into(),
            with(&|h| set(h, "x-kms-apiname", name)),
            400,
            "InvalidApiName",
            None,
        ));
    }

    // Bodies that are not the API's message.
    rows.push((
        "truncated protobuf".into(),
        call("Encrypt", body[..body.len() - 2].to_vec()),
        400,
        "InvalidParameter",
        None,
    ));
    rows.push((
        "field of the wrong wire type".into(),
        // KeyId (field 1, a string) sent as a varint.
        call("Encrypt", vec![0x08, 0x01]),
        400,
        "InvalidParameter",
        None,
    ));

    // Keys used for what they cannot do (Sign and Hmac with an AES key are in
    // instance_wire).
    let verify = strongroom_proto::instance::encode(&dkms::VerifyRequest {
        key_id: a.aes.clone(),
        message: b"x".to_vec(),
        signature: vec![0; 64],
        ..Default::default()
    });
    rows.push((
        "Verify with an AES key".into(),
        call("Verify", verify),
        400,
        "UnsupportedOperation",
        None,
    ));
    let public = strongroom_proto::instance::encode(&dkms::GetPublicKeyRequest {
        key_id: a.aes.clone(),
    });
    rows.push((
        "GetPublicKey of an AES key".into(),
        call("GetPublicKey", public),
        400,
        "UnsupportedOperation",
        None,
    ));
    rows.push((
        "Encrypt with an EC signing key".into(),
        call("Encrypt", encrypt_body(ec)),
        400,
        "UnsupportedOperation",
        None,
    ));
    let data_key_ec = strongroom_proto::instance::encode(&dkms::GenerateDataKeyRequest {
        key_id: ec.to_owned(),
        ..Default::default()
    });
    rows.push((
        "GenerateDataKey with an EC signing key".into(),
        call("GenerateDataKey", data_key_ec),
        400,
        "UnsupportedOperation",
        None,
    ));

    // Sizes out of range (1 << 30 for GenerateRandom is in instance_wire).
    for (label, length) in [
        ("GenerateRandom Length 1025", 1025),
        ("GenerateRandom Length -1", -1),
        ("GenerateRandom Length i32::MAX", i32::MAX),
    ] {
        let random = strongroom_proto::instance::encode(&dkms::GenerateRandomRequest { length });
        rows.push((
            label.into(),
            call("GenerateRandom", random),
            400,
            "InvalidParameter",
            None,
        ));
    }
    for (label, number_of_bytes) in [
        ("GenerateDataKey NumberOfBytes 1025", 1025),
        ("GenerateDataKey NumberOfBytes -1", -1),
        ("GenerateDataKey NumberOfBytes 2^30", 1 << 30),
        ("GenerateDataKey NumberOfBytes i32::MAX", i32::MAX),
    ] {
        let data_key = strongroom_proto::instance::encode(&dkms::GenerateDataKeyRequest {
            key_id: a.aes.clone(),
            number_of_bytes,
            ..Default::default()
        });
        rows.push((
            label.into(),
            call("GenerateDataKey", data_key),
            400,
            "InvalidParameter",
            None,
        ));
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_table() {
    let dir = tempfile::tempdir().unwrap();
    let hsms = Hsms::start(&dir.path().join("hsm")).await;
    let kms = support::kms(&dir.path().join("kms")).await;
    let c = support::client(&kms.server, &kms.access_key_id, &kms.access_key_secret);
    let a = wire::access(&c, &hsms, &[], "127.0.0.1").await;
    let ec = c
        .call(
            "CreateKey",
            &[
                ("DKMSInstanceId", &a.instance),
                ("KeySpec", "EC_P256"),
                ("KeyUsage", "SIGN/VERIFY"),
            ],
        )
        .await
        .unwrap()["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let good = encrypt_body(&a.aes);
    let mut failures = Vec::new();
    for (name, send, status, code, message) in rows(&a, &ec) {
        let mut conn = connect(&a).await;
        let answer = match send {
            Sending::Whole(request) => exchange(&mut conn, &request).await,
            Sending::ThenClose(request) => {
                conn.write_all(&request).await.unwrap();
                conn.shutdown().await.unwrap();
                wire::read_answer(&mut conn).await
            }
        };
        let error: Option<dkms::Error> = prost_decode(&answer.body);
        let got = (
            answer.status,
            error
                .as_ref()
                .map(|e| e.error_code.clone())
                .unwrap_or_default(),
        );
        if got != (status, code.to_owned()) {
            failures.push(format!("{name}: expected {status} {code}, got {got:?}"));
        } else if let (Some(message), Some(error)) = (message, &error)
            && error.error_message != message
        {
            failures.push(format!("{name}: message {:?}", error.error_message));
        }
        if let Some(error) = &error {
            assert_eq!(error.status_code, i32::from(answer.status), "{name}");
            assert!(!error.request_id.is_empty(), "{name}");
        }
        // The endpoint still serves, on a new connection.
        let mut fresh = connect(&a).await;
        let after = exchange(
            &mut fresh,
            &http_request(&signed_headers(&a, "Encrypt", &good), &good),
        )
        .await;
        assert_eq!(after.status, 200, "after {name}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
    kms.server.shutdown().await;
    hsms.primary.shutdown().await;
    hsms.member.shutdown().await;
}
