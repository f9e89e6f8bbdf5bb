//! Unit tests of the management client: redaction, endpoints, answers, and signatures
//! the server's parser accepts.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
use super::*;

fn credentials() -> Credentials {
    Credentials {
        access_key_id: "LTAI-test".into(),
        access_key_secret: Zeroizing::new("very-secret-value".into()),
    }
}

#[test]
fn debug_never_prints_the_secret() {
    let client =
        ManagementClient::new("127.0.0.1:1", Transport::InsecureHttp, credentials()).unwrap();
    let printed = format!("{client:?} {:?}", credentials());
    assert!(printed.contains("LTAI-test"));
    assert!(!printed.contains("very-secret-value"));
}

#[test]
fn endpoints_parse() {
    assert_eq!(
        split_endpoint("kms.example:8443").unwrap(),
        ("kms.example".to_owned(), 8443)
    );
    assert_eq!(
        split_endpoint("[::1]:8443").unwrap(),
        ("::1".to_owned(), 8443)
    );
    for bad in ["kms.example", ":8443", "h:0", "h:x", "::1:8443", "[zz]:1"] {
        assert!(split_endpoint(bad).is_err(), "{bad}");
    }
}

#[test]
fn answers_are_interpreted() {
    assert!(interpret(200, br#"{"RequestId":"r"}"#).is_ok());
    match interpret(
        403,
        br#"{"RequestId":"r1","Code":"Forbidden.DKMSInstanceNotFound","Message":"m"}"#,
    ) {
        Err(ClientError::Api {
            status,
            code,
            request_id,
            ..
        }) => {
            assert_eq!(status, 403);
            assert_eq!(code, "Forbidden.DKMSInstanceNotFound");
            assert_eq!(request_id, "r1");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        interpret(200, b"[1]"),
        Err(ClientError::Transport(_))
    ));
    assert!(matches!(
        interpret(502, b"<html>"),
        Err(ClientError::Transport(_))
    ));
}

#[test]
fn both_schemes_sign_requests_the_server_accepts() {
    let client =
        ManagementClient::new("127.0.0.1:8443", Transport::InsecureHttp, credentials()).unwrap();
    for scheme in [SignatureScheme::Acs3, SignatureScheme::V1] {
        let client = client.clone().with_scheme(scheme);
        let request = client
            .request("DescribeVpc", &[("VpcId", "vpc-1 2/ü")])
            .unwrap();
        let (parts, body) = request.into_parts();
        let body = futures_body(body);
        let headers: Vec<(&str, &str)> = parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        let view = openapi::RequestView {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: &body,
        };
        let signed = openapi::parse(&view).unwrap();
        signed.verify(b"very-secret-value").unwrap();
        assert_eq!(signed.action, "DescribeVpc");
        assert_eq!(signed.version, API_VERSION);
        assert_eq!(signed.access_key_id, "LTAI-test");
        let params = openapi::decode_form(std::str::from_utf8(&body).unwrap()).unwrap();
        assert!(params.contains(&("VpcId".to_owned(), "vpc-1 2/ü".to_owned())));
    }
}

fn futures_body(body: Full<Bytes>) -> Vec<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime
        .block_on(body.collect())
        .unwrap()
        .to_bytes()
        .to_vec()
}
