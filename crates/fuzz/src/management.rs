//! The management API's request signatures.

use strongroom_proto::openapi::{self, RequestView};
use time::OffsetDateTime;

use crate::wire;

/// The access key secret every request is verified with.
const SECRET: &[u8] = b"fuzz-access-key-secret-0123456789";

/// The server clock of the time check, and the timestamp of the seeds.
const REFERENCE_NOW: i64 = 1_795_861_164;
const SEED_TIMESTAMP: &str = "2026-11-28T10:19:24Z";

pub(crate) const DICTIONARY: &[&[u8]] = &[
    b"ACS3-HMAC-SHA256 ",
    b"Credential=",
    b",SignedHeaders=",
    b",Signature=",
    b"host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version",
    b"authorization",
    b"x-acs-content-sha256",
    b"x-acs-date",
    b"x-acs-signature-nonce",
    b"x-acs-security-token",
    b"application/x-www-form-urlencoded",
    b"SignatureMethod=HMAC-SHA1",
    b"SignatureVersion=1.0",
    b"Timestamp=",
    b"Signature=",
    b"%",
    b"%ZZ",
    b"%FF",
    b"%C3%A9",
    b"+",
    b"&",
    b"=",
    b"T",
    b"Z",
    b".999999999Z",
    b"9999-12-31T23:59:59Z",
    b"0000-00-00T00:00:00Z",
];

/// The management-API target: a request line `METHOD /path?query`, header lines, an
/// empty line, the body.
///
/// Runs [`openapi::decode_form`] on the query and body, [`openapi::parse`] on the
/// request as sent and with `x-acs-content-sha256` replaced by the body's real digest,
/// and for every request that parses [`openapi::SignedRequest::verify`] with a fixed
/// secret and the time check.
pub fn management_request(data: &[u8]) {
    let (first, rest) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => {
            let (line, rest) = data.split_at_checked(at).unwrap_or((data, &[]));
            (line, rest.get(1..).unwrap_or(&[]))
        }
        None => (data, &[][..]),
    };
    let first = String::from_utf8_lossy(first);
    let (method, target) = first.split_once(' ').unwrap_or((first.as_ref(), ""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (head, body) = wire::split_head(rest);
    let owned: Vec<(String, String)> = wire::headers(head)
        .into_iter()
        .map(|(n, v)| (n.into_owned(), String::from_utf8_lossy(v).into_owned()))
        .collect();

    let _ = openapi::decode_form(query);
    let _ = openapi::decode_form(&String::from_utf8_lossy(body));

    let headers: Vec<(&str, &str)> = owned
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    parse(&RequestView {
        method,
        path,
        query,
        headers: &headers,
        body,
    });

    let digest = openapi::content_sha256(body);
    let fixed: Vec<(&str, &str)> = owned
        .iter()
        .map(|(n, v)| {
            if n.eq_ignore_ascii_case("x-acs-content-sha256") {
                (n.as_str(), digest.as_str())
            } else {
                (n.as_str(), v.as_str())
            }
        })
        .collect();
    parse(&RequestView {
        method,
        path,
        query,
        headers: &fixed,
        body,
    });
}

fn parse(view: &RequestView<'_>) {
    match openapi::parse(view) {
        Ok(signed) => {
            let _ = signed.verify(SECRET);
            if let Ok(now) = OffsetDateTime::from_unix_timestamp(REFERENCE_NOW) {
                let _ = signed.check_time(now, openapi::DEFAULT_SKEW);
            }
            let _ = signed.param("Action");
            let _ = signed.string_to_sign().len();
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

/// Requests signed in code: ACS3-HMAC-SHA256 (empty, query and form bodies) and v1
/// HMAC-SHA1 (query and form body).
pub(crate) fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (query, body, form) in [
        ("", &b""[..], false),
        ("KeyId=key-1&Plaintext=aGVsbG8%3D", &b""[..], false),
        (
            "",
            &b"KeyId=key-1&Tags=%5B%7B%22TagKey%22%3A%22a%20b%22%7D%5D"[..],
            true,
        ),
    ] {
        seeds.push(acs3(query, body, form));
    }
    let v1_params = [
        ("Action", "DescribeKey"),
        ("Version", openapi::API_VERSION),
        ("AccessKeyId", "LTAIfuzzaccesskey"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", "0f6d0c4b-7c1a-4a3b-9a55-8f1f2e1d0c0b"),
        ("Timestamp", SEED_TIMESTAMP),
        ("Format", "JSON"),
        ("KeyId", "alias/fuzz key+é"),
    ];
    let mut params: Vec<(String, String)> = v1_params
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    for method in ["GET", "POST"] {
        let signature = openapi::sign_v1(method, &params, SECRET);
        params.push(("Signature".to_owned(), signature));
        let encoded = openapi::form_encode(params.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        params.pop();
        if method == "GET" {
            seeds.push(wire::encode(
                Some(&format!("GET /?{encoded}")),
                [("host", &b"kms.example.invalid"[..])],
                b"",
            ));
        } else {
            seeds.push(wire::encode(
                Some("POST /"),
                [
                    ("host", &b"kms.example.invalid"[..]),
                    ("content-type", b"application/x-www-form-urlencoded"),
                ],
                encoded.as_bytes(),
            ));
        }
    }
    seeds
}

fn acs3(query: &str, body: &[u8], form: bool) -> Vec<u8> {
    let digest = openapi::content_sha256(body);
    let mut headers: Vec<(&str, &str)> = vec![
        ("host", "kms.example.invalid"),
        ("x-acs-action", "CreateKey"),
        ("x-acs-version", openapi::API_VERSION),
        ("x-acs-date", SEED_TIMESTAMP),
        (
            "x-acs-signature-nonce",
            "5a1c07e3-2b4c-4b7e-8d0a-1f2e3d4c5b6a",
        ),
        ("x-acs-content-sha256", &digest),
    ];
    if form {
        headers.push(("content-type", "application/x-www-form-urlencoded"));
    }
    let params = openapi::decode_form(query).unwrap_or_default();
    let authorization =
        openapi::sign_acs3("POST", "/", &params, &headers, "LTAIfuzzaccesskey", SECRET);
    headers.push(("authorization", &authorization));
    let line = if query.is_empty() {
        "POST /".to_owned()
    } else {
        format!("POST /?{query}")
    };
    wire::encode(
        Some(&line),
        headers.iter().map(|(n, v)| (*n, v.as_bytes())),
        body,
    )
}
