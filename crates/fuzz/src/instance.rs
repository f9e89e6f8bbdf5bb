//! The instance API's request front door.

use std::borrow::Cow;

use strongroom_proto::instance::{self, ApiName};
use strongroom_proto::signature;
use time::OffsetDateTime;

use crate::fixture::{Captured, fixture};
use crate::wire;

/// The server clock the date check runs with: just after the vectors were captured
/// (Sat, 28 Nov 2026 10:19:24 GMT).
const REFERENCE_NOW: i64 = 1_795_861_164;

/// The date of the requests made in code.
const SEED_DATE: &str = "Sat, 28 Nov 2026 10:19:24 GMT";

pub(crate) const DICTIONARY: &[&[u8]] = &[
    b"content-type",
    b"application/x-protobuf",
    b"x-kms-apiversion",
    b"dkms-gcs-0.2",
    b"x-kms-apiname",
    b"x-kms-signaturemethod",
    b"RSA_PKCS1_SHA_256",
    b"x-kms-acccesskeyid",
    b"x-kms-migrationkeyversionid",
    b"date",
    b"content-sha256",
    b"authorization",
    b"Bearer ",
    b"Sat, 28 Nov 2026 10:19:24 GMT",
    b"Mon, 31 Dec 9999 23:59:60 GMT",
    b"Thu, 01 Jan 1970 00:00:00 GMT",
    b"GMT",
    b"Feb",
    b"\xff\xfe",
    b"=",
    b"==",
    b"Encrypt",
    b"GenerateDataKeyPair",
];

/// The instance-API target: header lines `name: value`, an empty line, the body.
///
/// Runs [`instance::parse_headers`] on the headers as sent (without and with the date
/// check) and once more with `content-sha256` replaced by the body's real digest (so
/// that mutated bodies reach the later steps), [`instance::decode_body`] for every API,
/// and the signature check of every request that parses.
pub fn instance_request(data: &[u8]) {
    let (head, body) = wire::split_head(data);
    let headers = wire::headers(head);
    let now = OffsetDateTime::from_unix_timestamp(REFERENCE_NOW).ok();

    for api in ApiName::ALL {
        if let Ok(decoded) = instance::decode_body(*api, body) {
            assert_eq!(decoded.api(), *api, "decode_body typed a body wrongly");
        }
    }

    let as_sent = || headers.iter().map(|(n, v)| (n.as_ref(), *v));
    check(instance::parse_headers(as_sent(), body, None), body);
    check(instance::parse_headers(as_sent(), body, now), body);

    let digest = signature::content_sha256(body);
    let fixed = headers.iter().map(|(n, v)| {
        if n.eq_ignore_ascii_case("content-sha256") {
            (n.as_ref(), digest.as_bytes())
        } else {
            (n.as_ref(), *v)
        }
    });
    check(instance::parse_headers(fixed, body, None), body);

    // The signature check on whatever the headers say, parsed or not.
    let text: Vec<(Cow<'_, str>, Cow<'_, str>)> = headers
        .iter()
        .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v)))
        .collect();
    if let Ok(string_to_sign) =
        signature::string_to_sign("POST", text.iter().map(|(n, v)| (n.as_ref(), v.as_ref())))
    {
        let authorization = text
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .map_or("", |(_, v)| v.as_ref());
        verify(&string_to_sign, authorization);
    }
}

fn check(parsed: Result<instance::ParsedRequest, instance::InstanceError>, body: &[u8]) {
    match parsed {
        Ok(request) => {
            assert!(
                !request.access_key_id().is_empty(),
                "an empty client key id passed"
            );
            verify(request.string_to_sign(), request.authorization());
            if let Ok(decoded) = instance::decode_body(request.api(), body) {
                assert_eq!(decoded.api(), request.api(), "body typed wrongly");
                let _ = format!("{decoded:?}");
            }
            let _ = request.migration_key_version_id();
            let _ = request.date();
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

fn verify(string_to_sign: &str, authorization: &str) {
    if let Some(key) = &fixture().verify_key {
        let _ = key.verify(string_to_sign, authorization);
    }
}

/// The captured requests, and a signed request made in code for every API name (empty
/// body, and with the body of a captured request of that API), plus variants.
pub(crate) fn seeds() -> Vec<Vec<u8>> {
    let fixture = fixture();
    let mut seeds: Vec<Vec<u8>> = fixture.captured.iter().map(encode_captured).collect();
    for api in ApiName::ALL {
        let captured_body = fixture
            .captured
            .iter()
            .find(|c| header(c, "x-kms-apiname") == Some(api.as_str()))
            .map(|c| c.body.clone());
        for body in [Some(Vec::new()), captured_body].into_iter().flatten() {
            seeds.push(signed(*api, &body, false));
            seeds.push(signed(*api, &body, true));
        }
    }
    seeds
}

fn header<'a>(captured: &'a Captured, name: &str) -> Option<&'a str> {
    captured
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn encode_captured(captured: &Captured) -> Vec<u8> {
    wire::encode(
        None,
        captured
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
        &captured.body,
    )
}

/// A request for `api` signed with the fixture's key (unsigned without one).
fn signed(api: ApiName, body: &[u8], migration: bool) -> Vec<u8> {
    let digest = signature::content_sha256(body);
    let mut headers: Vec<(&str, &str)> = vec![
        ("content-type", signature::CONTENT_TYPE),
        (instance::API_VERSION_HEADER, signature::API_VERSION),
        (instance::API_NAME_HEADER, api.as_str()),
        (
            instance::SIGNATURE_METHOD_HEADER,
            signature::SIGNATURE_METHOD,
        ),
        (
            signature::ACCESS_KEY_ID_HEADER,
            "KAAP.93fcc101-0054-47c1-be14-53f53e61491c",
        ),
        ("date", SEED_DATE),
        ("content-sha256", &digest),
    ];
    if migration {
        headers.push((
            instance::MIGRATION_KEY_VERSION_ID_HEADER,
            "key-version-00000000-0000-4000-8000-000000000000",
        ));
    }
    let authorization = signature::string_to_sign("POST", headers.iter().copied())
        .ok()
        .and_then(|sts| fixture().signer.as_ref()?.sign(&sts).ok())
        .unwrap_or_default();
    headers.push(("authorization", &authorization));
    wire::encode(None, headers.iter().map(|(n, v)| (*n, v.as_bytes())), body)
}
