//! The official management SDK (`alibabacloud-kms20160120` + `alibabacloud-tea-openapi`,
//! in the venv that `scripts/test.sh` makes; interpreter from
//! `STRONGROOM_KMS_MGMT_PYTHON`) calls `GetKmsInstance` against a one-request capture
//! server; our verifier accepts its ACS3-HMAC-SHA256 signature with the right secret and
//! rejects a wrong secret and tampered requests. Plus round trips of `sign_acs3`/`sign_v1`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;

use strongroom_proto::openapi::{self, RequestView, Scheme, SignatureError};

const AK: &str = "LTAI5tStrongroomTest";
const SECRET: &str = "s3cr3t-strongroom-test-secret";

struct Captured {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Captured {
    fn parse(&self) -> Result<openapi::SignedRequest, SignatureError> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        openapi::parse(&RequestView {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        })
    }
}

fn capture_one(listener: TcpListener) -> Captured {
    let (stream, _) = listener.accept().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap().to_owned();
    let target = parts.next().unwrap().to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':').unwrap();
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let answer = br#"{"RequestId":"x","Code":"Forbidden","Message":"m"}"#;
    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.len()
    )
    .unwrap();
    stream.write_all(answer).unwrap();
    Captured {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body,
    }
}

fn python() -> String {
    std::env::var("STRONGROOM_KMS_MGMT_PYTHON").unwrap_or_else(|_| {
        panic!(
            "STRONGROOM_KMS_MGMT_PYTHON is not set: run scripts/test.sh, which makes \
             .venv-kms-mgmt with the official management SDK"
        )
    })
}

#[test]
fn official_sdk_acs3_get_kms_instance_verifies() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || capture_one(listener));
    let script = format!(
        r#"
from alibabacloud_tea_openapi.models import Config
from alibabacloud_kms20160120.client import Client
from alibabacloud_kms20160120.models import GetKmsInstanceRequest
c = Client(Config(access_key_id="{AK}", access_key_secret="{SECRET}",
                  endpoint="127.0.0.1:{port}", protocol="http", region_id="cn-hangzhou"))
try:
    c.get_kms_instance(GetKmsInstanceRequest(kms_instance_id="kst-hzz1234 /+*~"))
except Exception as e:
    print(type(e).__name__, getattr(e, "code", None))
"#
    );
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    let request = server.join().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Forbidden"),
        "{out:?}"
    );

    let signed = request.parse().unwrap();
    assert_eq!(signed.scheme, Scheme::Acs3HmacSha256);
    assert_eq!(signed.access_key_id, AK);
    assert_eq!(signed.action, "GetKmsInstance");
    assert_eq!(signed.version, openapi::API_VERSION);
    let nonce = request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-acs-signature-nonce"))
        .unwrap();
    assert_eq!(signed.nonce, nonce.1);
    let now = time::OffsetDateTime::now_utc();
    signed.check_time(now, openapi::DEFAULT_SKEW).unwrap();
    assert_eq!(
        signed.check_time(now + time::Duration::hours(1), openapi::DEFAULT_SKEW),
        Err(SignatureError::TimestampExpired)
    );
    signed.verify(SECRET.as_bytes()).unwrap();
    assert_eq!(
        signed.verify(b"wrong"),
        Err(SignatureError::SignatureDoesNotMatch)
    );

    // Tampered query: a parameter added or changed.
    let mut tampered = Captured {
        query: format!("{}&Extra=1", request.query),
        ..clone(&request)
    };
    assert_eq!(
        tampered.parse().unwrap().verify(SECRET.as_bytes()),
        Err(SignatureError::SignatureDoesNotMatch)
    );
    // Tampered signed header.
    tampered = clone(&request);
    for (n, v) in &mut tampered.headers {
        if n.eq_ignore_ascii_case("x-acs-action") {
            *v = "DeleteKey".to_owned();
        }
    }
    assert_eq!(
        tampered.parse().unwrap().verify(SECRET.as_bytes()),
        Err(SignatureError::SignatureDoesNotMatch)
    );
    // Tampered body: the content hash no longer matches.
    tampered = clone(&request);
    tampered.body.extend_from_slice(b"&KeyId=x");
    assert_eq!(
        tampered.parse().err(),
        Some(SignatureError::ContentHashMismatch)
    );

    // Our signer gives the same Authorization as the SDK.
    let headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let auth = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .unwrap()
        .1;
    let unsigned: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(n, _)| {
            let signed_list = auth.split("SignedHeaders=").nth(1).unwrap();
            let signed_list = signed_list.split(',').next().unwrap();
            signed_list.split(';').any(|s| n.eq_ignore_ascii_case(s))
        })
        .copied()
        .collect();
    assert_eq!(
        openapi::sign_acs3(
            &request.method,
            &request.path,
            &signed.params,
            &unsigned,
            AK,
            SECRET.as_bytes()
        ),
        auth
    );
}

fn clone(c: &Captured) -> Captured {
    Captured {
        method: c.method.clone(),
        path: c.path.clone(),
        query: c.query.clone(),
        headers: c.headers.clone(),
        body: c.body.clone(),
    }
}

#[test]
fn v1_round_trip_and_tamper() {
    let mut params: Vec<(String, String)> = [
        ("Action", "GetKmsInstance"),
        ("Version", "2016-01-20"),
        ("Format", "JSON"),
        ("AccessKeyId", AK),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", "nonce-1"),
        ("Timestamp", "2026-11-28T20:00:00Z"),
        ("KmsInstanceId", "kst a/b*~"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect();
    let signature = openapi::sign_v1("GET", &params, SECRET.as_bytes());
    params.push(("Signature".to_owned(), signature));
    let query = openapi::form_encode(params.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let view = |q: &str| {
        openapi::parse(&RequestView {
            method: "GET",
            path: "/",
            query: q,
            headers: &[("host", "kms.example")],
            body: b"",
        })
    };
    let signed = view(&query).unwrap();
    assert_eq!(signed.scheme, Scheme::V1HmacSha1);
    assert_eq!(signed.nonce, "nonce-1");
    assert_eq!(signed.action, "GetKmsInstance");
    assert!(
        signed
            .string_to_sign()
            .starts_with("GET&%2F&AccessKeyId%3D")
    );
    signed.verify(SECRET.as_bytes()).unwrap();
    assert_eq!(
        signed.verify(b"wrong"),
        Err(SignatureError::SignatureDoesNotMatch)
    );
    let tampered = query.replace("nonce-1", "nonce-2");
    assert_eq!(
        view(&tampered).unwrap().verify(SECRET.as_bytes()),
        Err(SignatureError::SignatureDoesNotMatch)
    );
    let missing = query.replace("SignatureNonce", "X");
    assert_eq!(
        view(&missing).err(),
        Some(SignatureError::MissingParameter("SignatureNonce"))
    );
}
