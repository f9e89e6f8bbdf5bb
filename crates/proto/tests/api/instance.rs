//! The instance API's front door against the captured SDK traffic
//! (`../shared/vectors/dkms-sdk/`, Python 1.0.2 and Java 0.5.3, see its README):
//!
//! - every captured request passes `parse_headers` (date check off), its string to sign
//!   verifies with the vector PKI's client certificate, and its body decodes with
//!   `decode_body` to exactly the fields the SDK was asked to send (and re-encodes to the
//!   same bytes, which pins every field number);
//! - every captured response body decodes with our response messages to the fields the
//!   SDK parsed, and re-encodes byte for byte; the captured `Error` bodies are what
//!   `InstanceError::encode_error` writes;
//! - each check of `parse_headers` fails with its documented status, code and message,
//!   in the documented order.

use prost::Message;
use serde_json::Value;
use strongroom_proto::dkms;
use strongroom_proto::instance::{self, ApiName, Body, InstanceError, ParsedRequest};
use time::{Duration, OffsetDateTime};

use crate::vectors::{self, Captured};

const CLIENT_KEY_ID: &str = "KAAP.93fcc101-0054-47c1-be14-53f53e61491c";

/// A protobuf field's value, in the vectors' JSON terms (bytes as lower-case hex).
#[derive(Debug, PartialEq)]
enum Field {
    Str(String),
    Bytes(String),
    Int(i64),
    Bool(bool),
    Strs(Vec<String>),
}

impl Field {
    fn is_default(&self) -> bool {
        match self {
            Field::Str(s) | Field::Bytes(s) => s.is_empty(),
            Field::Int(i) => *i == 0,
            Field::Bool(b) => !b,
            Field::Strs(v) => v.is_empty(),
        }
    }

    /// The JSON value read as a field of the same kind as `self`.
    fn like(&self, json: &Value) -> Field {
        match self {
            Field::Str(_) => Field::Str(json.as_str().unwrap().to_owned()),
            Field::Bytes(_) => Field::Bytes(json.as_str().unwrap().to_owned()),
            Field::Int(_) => Field::Int(json.as_i64().unwrap()),
            Field::Bool(_) => Field::Bool(json.as_bool().unwrap()),
            Field::Strs(_) => Field::Strs(
                json.as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .collect(),
            ),
        }
    }
}

impl From<&String> for Field {
    fn from(value: &String) -> Self {
        Field::Str(value.clone())
    }
}

impl From<&Vec<u8>> for Field {
    fn from(value: &Vec<u8>) -> Self {
        Field::Bytes(hex::encode(value))
    }
}

impl From<&i32> for Field {
    fn from(value: &i32) -> Self {
        Field::Int(i64::from(*value))
    }
}

impl From<&bool> for Field {
    fn from(value: &bool) -> Self {
        Field::Bool(*value)
    }
}

impl From<&Vec<String>> for Field {
    fn from(value: &Vec<String>) -> Self {
        Field::Strs(value.clone())
    }
}

/// A message's fields by their SDK (PascalCase) names.
trait Fields {
    fn fields(&self) -> Vec<(&'static str, Field)>;
}

/// Lists every field of every message once, and derives a decoder by message name.
macro_rules! messages {
    ($($message:ident { $($name:literal: $field:ident),* $(,)? })*) => {
        $(
            impl Fields for dkms::$message {
                fn fields(&self) -> Vec<(&'static str, Field)> {
                    vec![$(($name, Field::from(&self.$field))),*]
                }
            }
        )*

        /// Decodes `bytes` as the message named `name`, returning its fields and its
        /// re-encoding.
        fn decode_named(name: &str, bytes: &[u8]) -> (Vec<(&'static str, Field)>, Vec<u8>) {
            match name {
                $(stringify!($message) => {
                    let message = dkms::$message::decode(bytes)
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                    (message.fields(), message.encode_to_vec())
                })*
                _ => panic!("no message {name}"),
            }
        }
    };
}

messages! {
    Error { "StatusCode": status_code, "ErrorCode": error_code, "ErrorMessage": error_message, "RequestId": request_id }
    EncryptRequest { "KeyId": key_id, "Plaintext": plaintext, "Algorithm": algorithm, "Aad": aad, "Iv": iv, "PaddingMode": padding_mode }
    EncryptResponse { "KeyId": key_id, "CiphertextBlob": ciphertext_blob, "Iv": iv, "RequestId": request_id, "Algorithm": algorithm, "PaddingMode": padding_mode }
    DecryptRequest { "CiphertextBlob": ciphertext_blob, "KeyId": key_id, "Algorithm": algorithm, "Aad": aad, "Iv": iv, "PaddingMode": padding_mode }
    DecryptResponse { "KeyId": key_id, "Plaintext": plaintext, "RequestId": request_id, "Algorithm": algorithm, "PaddingMode": padding_mode }
    SignRequest { "KeyId": key_id, "Digest": digest, "Algorithm": algorithm, "Message": message, "MessageType": message_type }
    SignResponse { "KeyId": key_id, "Signature": signature, "RequestId": request_id, "Algorithm": algorithm, "MessageType": message_type }
    VerifyRequest { "KeyId": key_id, "Digest": digest, "Signature": signature, "Algorithm": algorithm, "Message": message, "MessageType": message_type }
    VerifyResponse { "KeyId": key_id, "Value": value, "RequestId": request_id, "Algorithm": algorithm, "MessageType": message_type }
    GenerateRandomRequest { "Length": length }
    GenerateRandomResponse { "Random": random, "RequestId": request_id }
    GenerateDataKeyRequest { "KeyId": key_id, "Algorithm": algorithm, "NumberOfBytes": number_of_bytes, "Aad": aad }
    GenerateDataKeyResponse { "KeyId": key_id, "Iv": iv, "Plaintext": plaintext, "CiphertextBlob": ciphertext_blob, "RequestId": request_id, "Algorithm": algorithm }
    GetPublicKeyRequest { "KeyId": key_id }
    GetPublicKeyResponse { "KeyId": key_id, "PublicKey": public_key, "RequestId": request_id }
    GetSecretValueRequest { "SecretName": secret_name, "VersionStage": version_stage, "VersionId": version_id, "FetchExtendedConfig": fetch_extended_config }
    GetSecretValueResponse {
        "SecretName": secret_name, "SecretType": secret_type, "SecretData": secret_data,
        "SecretDataType": secret_data_type, "VersionStages": version_stages, "VersionId": version_id,
        "CreateTime": create_time, "RequestId": request_id, "LastRotationDate": last_rotation_date,
        "NextRotationDate": next_rotation_date, "ExtendedConfig": extended_config,
        "AutomaticRotation": automatic_rotation, "RotationInterval": rotation_interval,
    }
    AdvanceEncryptRequest { "KeyId": key_id, "Plaintext": plaintext, "Algorithm": algorithm, "Aad": aad, "Iv": iv, "PaddingMode": padding_mode }
    AdvanceEncryptResponse { "KeyId": key_id, "CiphertextBlob": ciphertext_blob, "Iv": iv, "RequestId": request_id, "Algorithm": algorithm, "PaddingMode": padding_mode, "KeyVersionId": key_version_id }
    AdvanceDecryptRequest { "CiphertextBlob": ciphertext_blob, "KeyId": key_id, "Algorithm": algorithm, "Aad": aad, "Iv": iv, "PaddingMode": padding_mode }
    AdvanceDecryptResponse { "KeyId": key_id, "Plaintext": plaintext, "RequestId": request_id, "Algorithm": algorithm, "PaddingMode": padding_mode, "KeyVersionId": key_version_id }
    AdvanceGenerateDataKeyRequest { "KeyId": key_id, "NumberOfBytes": number_of_bytes, "Aad": aad }
    AdvanceGenerateDataKeyResponse { "KeyId": key_id, "Iv": iv, "Plaintext": plaintext, "CiphertextBlob": ciphertext_blob, "RequestId": request_id, "Algorithm": algorithm, "KeyVersionId": key_version_id }
    GenerateDataKeyPairRequest { "KeyId": key_id, "Algorithm": algorithm, "KeyPairSpec": key_pair_spec, "KeyFormat": key_format, "Aad": aad }
    GenerateDataKeyPairResponse {
        "KeyId": key_id, "Iv": iv, "KeyPairSpec": key_pair_spec, "PrivateKeyPlaintext": private_key_plaintext,
        "PrivateKeyCiphertextBlob": private_key_ciphertext_blob, "PublicKey": public_key,
        "RequestId": request_id, "Algorithm": algorithm,
    }
    GenerateDataKeyPairWithoutPlaintextRequest { "KeyId": key_id, "Algorithm": algorithm, "KeyPairSpec": key_pair_spec, "KeyFormat": key_format, "Aad": aad }
    GenerateDataKeyPairWithoutPlaintextResponse {
        "KeyId": key_id, "Iv": iv, "KeyPairSpec": key_pair_spec,
        "PrivateKeyCiphertextBlob": private_key_ciphertext_blob, "PublicKey": public_key,
        "RequestId": request_id, "Algorithm": algorithm,
    }
    AdvanceGenerateDataKeyPairRequest { "KeyId": key_id, "KeyPairSpec": key_pair_spec, "KeyFormat": key_format, "Aad": aad }
    AdvanceGenerateDataKeyPairResponse {
        "KeyId": key_id, "Iv": iv, "KeyPairSpec": key_pair_spec, "PrivateKeyPlaintext": private_key_plaintext,
        "PrivateKeyCiphertextBlob": private_key_ciphertext_blob, "PublicKey": public_key,
        "RequestId": request_id, "Algorithm": algorithm, "KeyVersionId": key_version_id,
    }
    AdvanceGenerateDataKeyPairWithoutPlaintextRequest { "KeyId": key_id, "KeyPairSpec": key_pair_spec, "KeyFormat": key_format, "Aad": aad }
    AdvanceGenerateDataKeyPairWithoutPlaintextResponse {
        "KeyId": key_id, "Iv": iv, "KeyPairSpec": key_pair_spec,
        "PrivateKeyCiphertextBlob": private_key_ciphertext_blob, "PublicKey": public_key,
        "RequestId": request_id, "Algorithm": algorithm, "KeyVersionId": key_version_id,
    }
    HmacRequest { "KeyId": key_id, "Message": message }
    HmacResponse { "KeyId": key_id, "Signature": signature, "RequestId": request_id }
    HashRequest { "Message": message, "Algorithm": algorithm }
    HashResponse { "Digest": digest, "RequestId": request_id }
}

/// The fields of a typed body, through the typed enum (not by name).
fn body_fields(body: &Body) -> Vec<(&'static str, Field)> {
    match body {
        Body::Encrypt(m) => m.fields(),
        Body::Decrypt(m) => m.fields(),
        Body::Sign(m) => m.fields(),
        Body::Verify(m) => m.fields(),
        Body::GenerateRandom(m) => m.fields(),
        Body::GenerateDataKey(m) => m.fields(),
        Body::GetPublicKey(m) => m.fields(),
        Body::GetSecretValue(m) => m.fields(),
        Body::AdvanceEncrypt(m) => m.fields(),
        Body::AdvanceDecrypt(m) => m.fields(),
        Body::AdvanceGenerateDataKey(m) => m.fields(),
        Body::GenerateDataKeyPair(m) => m.fields(),
        Body::GenerateDataKeyPairWithoutPlaintext(m) => m.fields(),
        Body::AdvanceGenerateDataKeyPair(m) => m.fields(),
        Body::AdvanceGenerateDataKeyPairWithoutPlaintext(m) => m.fields(),
        Body::Hmac(m) => m.fields(),
        Body::Hash(m) => m.fields(),
    }
}

fn body_bytes(body: &Body) -> Vec<u8> {
    match body {
        Body::Encrypt(m) => m.encode_to_vec(),
        Body::Decrypt(m) => m.encode_to_vec(),
        Body::Sign(m) => m.encode_to_vec(),
        Body::Verify(m) => m.encode_to_vec(),
        Body::GenerateRandom(m) => m.encode_to_vec(),
        Body::GenerateDataKey(m) => m.encode_to_vec(),
        Body::GetPublicKey(m) => m.encode_to_vec(),
        Body::GetSecretValue(m) => m.encode_to_vec(),
        Body::AdvanceEncrypt(m) => m.encode_to_vec(),
        Body::AdvanceDecrypt(m) => m.encode_to_vec(),
        Body::AdvanceGenerateDataKey(m) => m.encode_to_vec(),
        Body::GenerateDataKeyPair(m) => m.encode_to_vec(),
        Body::GenerateDataKeyPairWithoutPlaintext(m) => m.encode_to_vec(),
        Body::AdvanceGenerateDataKeyPair(m) => m.encode_to_vec(),
        Body::AdvanceGenerateDataKeyPairWithoutPlaintext(m) => m.encode_to_vec(),
        Body::Hmac(m) => m.encode_to_vec(),
        Body::Hash(m) => m.encode_to_vec(),
    }
}

/// Every field of `decoded` equals the JSON's value of the same name, or is the default
/// when the JSON leaves it out; and the JSON names no field the message lacks.
fn assert_fields(context: &str, decoded: &[(&'static str, Field)], json: &Value) {
    let expected = json.as_object().unwrap();
    for name in expected.keys() {
        assert!(
            decoded.iter().any(|(n, _)| n == name),
            "{context}: the vector has a field {name} the message lacks"
        );
    }
    for (name, value) in decoded {
        match expected.get(*name) {
            Some(json) => assert_eq!(*value, value.like(json), "{context}: {name}"),
            None => assert!(value.is_default(), "{context}: {name} = {value:?} not sent"),
        }
    }
}

fn parse_captured(v: &Captured) -> ParsedRequest {
    let headers = v.headers.iter().map(|(n, val)| (n.as_str(), val.as_str()));
    instance::parse_headers(headers, &v.body, None).unwrap_or_else(|e| panic!("{}: {e}", v.name))
}

#[test]
fn every_captured_request_parses_verifies_and_decodes_to_what_was_sent() {
    let public = vectors::client_public_key();
    let captured = vectors::captured();
    assert_eq!(captured.len(), 32, "vector files changed");
    let mut apis_seen = Vec::new();
    for v in &captured {
        let parsed = parse_captured(v);
        assert_eq!(parsed.string_to_sign(), v.string_to_sign, "{}", v.name);
        assert_eq!(
            parsed.authorization(),
            v.header("authorization"),
            "{}",
            v.name
        );
        assert_eq!(parsed.access_key_id(), CLIENT_KEY_ID, "{}", v.name);
        assert_eq!(
            parsed.api().as_str(),
            v.header("x-kms-apiname"),
            "{}",
            v.name
        );
        assert_eq!(v.message, format!("{}Request", parsed.api()), "{}", v.name);
        public
            .verify(parsed.string_to_sign(), parsed.authorization())
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));

        let body = instance::decode_body(parsed.api(), &v.body)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(body.api(), parsed.api(), "{}", v.name);
        assert_fields(&v.name, &body_fields(&body), &v.decoded_body);
        assert_eq!(body_bytes(&body), v.body, "{}: re-encoding", v.name);
        apis_seen.push(parsed.api());
    }
    // The vectors cover every API name.
    for api in ApiName::ALL {
        assert!(apis_seen.contains(api), "no vector for {api}");
    }
}

#[test]
fn captured_values_reach_the_typed_fields() {
    let captured = vectors::captured();
    let body = |name: &str| {
        let v = captured.iter().find(|v| v.name == name).unwrap();
        instance::decode_body(parse_captured(v).api(), &v.body).unwrap()
    };
    let Body::Encrypt(encrypt) = body("01_Encrypt.json") else {
        panic!("01_Encrypt.json is not an Encrypt");
    };
    assert_eq!(encrypt.key_id, "key-tst65f0c0aes256000001");
    assert_eq!(encrypt.plaintext, b"hello dkms");
    assert_eq!(encrypt.algorithm, "AES_GCM");
    assert_eq!(encrypt.aad, b"aad-bytes");
    let Body::Sign(sign) = body("04_Sign.json") else {
        panic!("04_Sign.json is not a Sign");
    };
    assert!(sign.digest.is_empty(), "no SDK sets the legacy Digest");
    assert_eq!(sign.message.len(), 32);
    assert_eq!(sign.message_type, "DIGEST");
    let Body::AdvanceGenerateDataKey(data_key) = body("12_AdvanceGenerateDataKey.json") else {
        panic!("12_AdvanceGenerateDataKey.json is not an AdvanceGenerateDataKey");
    };
    assert_eq!(data_key.number_of_bytes, 32);
    let Body::GetSecretValue(secret) = body("09_GetSecretValue.json") else {
        panic!("09_GetSecretValue.json is not a GetSecretValue");
    };
    assert!(secret.fetch_extended_config);
    assert_eq!(
        body("edge_empty_body_GenerateRandom.json"),
        Body::GenerateRandom(dkms::GenerateRandomRequest::default())
    );
    assert_eq!(
        body("java/04_GenerateRandom_empty_body.json"),
        Body::GenerateRandom(dkms::GenerateRandomRequest::default())
    );
}

#[test]
fn the_migration_header_is_signed_and_exposed() {
    let captured = vectors::captured();
    let v = captured
        .iter()
        .find(|v| v.name == "ext_extra_header_Decrypt.json")
        .unwrap();
    let parsed = parse_captured(v);
    assert_eq!(
        parsed.migration_key_version_id(),
        Some("11111111-2222-3333-4444-555555555555")
    );
    assert!(
        parsed
            .string_to_sign()
            .contains("\nx-kms-migrationkeyversionid:11111111-2222-3333-4444-555555555555\n")
    );
    let plain = captured
        .iter()
        .find(|v| v.name == "01_Encrypt.json")
        .unwrap();
    assert_eq!(parse_captured(plain).migration_key_version_id(), None);
}

/// The captured responses (built by the capture server's own encoder and parsed by the
/// SDKs) decode with our messages to what the SDK parsed, and re-encode byte for byte.
#[test]
fn every_captured_response_decodes_with_our_messages() {
    for v in vectors::captured() {
        let Some(message) = v.response["message"].as_str() else {
            continue; // err_garbage_body: deliberately not protobuf
        };
        let body = hex::decode(v.response["body_hex"].as_str().unwrap()).unwrap();
        let (fields, encoded) = decode_named(message, &body);
        let context = format!("{} response", v.name);
        assert_fields(&context, &fields, &v.response["fields"]);
        assert_eq!(encoded, body, "{context}: re-encoding");
    }
}

#[test]
fn encode_error_writes_the_captured_error_bodies() {
    let captured = vectors::captured();
    let cases = [
        ("err_not_found_Encrypt.json", InstanceError::key_not_found()),
        ("err_throttle_Encrypt.json", InstanceError::throttling()),
        (
            "java/err_not_found_Encrypt.json",
            InstanceError::key_not_found(),
        ),
    ];
    for (name, error) in cases {
        let v = captured.iter().find(|v| v.name == name).unwrap();
        assert_eq!(v.response["status"], u64::from(error.status()), "{name}");
        let request_id = v.response["fields"]["RequestId"].as_str().unwrap();
        let expected = hex::decode(v.response["body_hex"].as_str().unwrap()).unwrap();
        assert_eq!(error.encode_error(request_id), expected, "{name}");
    }
}

#[test]
fn encode_error_round_trips_through_prost() {
    for error in every_error() {
        let bytes = error.encode_error("475f1620-b9d3-4d35-b5c6-3fbdd941423d");
        let decoded = dkms::Error::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded.status_code, i32::from(error.status()));
        assert_eq!(decoded.error_code, error.code());
        assert_eq!(decoded.error_message, error.message());
        assert_eq!(decoded.request_id, "475f1620-b9d3-4d35-b5c6-3fbdd941423d");
        assert!((400..600).contains(&error.status()), "{error}");
    }
}

#[test]
fn error_table_matches_the_spec() {
    let errors = every_error();
    let expected: Vec<(u16, &str, &str)> = vec![
        (
            415,
            "InvalidContentType",
            "Content-Type \"text/plain\" is unsupported.",
        ),
        (
            400,
            "InvalidApiVersion",
            "The ApiVersion \"dkms-gcs-0.1\" is invalid.",
        ),
        (
            400,
            "InvalidApiName",
            "The ApiName \"CreateKey\" is invalid.",
        ),
        (
            400,
            "InvalidParam",
            "The Param x-kms-signaturemethod is invalid.",
        ),
        (
            400,
            "InvalidParam",
            "The Param x-kms-signaturemethod is invalid. message:\"RSA_PSS\".",
        ),
        (400, "InvalidParam", "The Param Date is invalid."),
        (400, "InvalidParam", "The Param Content-SHA256 is invalid."),
        (
            400,
            "MissingParameter",
            "Parameter x-kms-acccesskeyid does not exist in http header or body.",
        ),
        (
            404,
            "Unauthorized",
            "The AccessKey ID \"KAAP.x\" does not exist in our records.",
        ),
        (
            400,
            "RequestTimeTooSkewed",
            "Request time exceeds server time more than 15 minutes.",
        ),
        (401, "SignatureNotMatch", "Signature is not matched."),
        (
            403,
            "Forbidden.NoPermission",
            "This operation for \"key/*\" is forbidden by permission system.",
        ),
        (
            400,
            "InvalidParameter",
            "The specified parameter is not valid.",
        ),
        (400, "UnsupportedOperation", "Rejected.UnsupportedOperation"),
        (
            404,
            "Forbidden.KeyNotFound",
            "The specified key does not exist.",
        ),
        (
            409,
            "Rejected.Disabled",
            "The request was rejected because the key state is Disabled.",
        ),
        (
            409,
            "Rejected.PendingDeletion",
            "The request was rejected because the key state is PendingDeletion.",
        ),
        (
            409,
            "Rejected.PendingImport",
            "The request was rejected because the key state is PendingImport.",
        ),
        (500, "InternalFailure", "Internal Failure."),
        (
            503,
            "ServiceUnavailableTemporary",
            "Service Unavailable Temporary.",
        ),
        (
            429,
            "Rejected.Throttling",
            "Request was denied due to request throttling.",
        ),
        (
            404,
            "Forbidden.ResourceNotFound",
            "The specified resource does not exist.",
        ),
        (
            403,
            "Forbidden.DKMSInstanceStateInvalid",
            "The DKMS instance state is invalid.",
        ),
        (
            413,
            "RequestEntityTooLarge",
            "The request body exceeds 3 MB.",
        ),
    ];
    assert_eq!(errors.len(), expected.len());
    for (error, expected) in errors.iter().zip(expected) {
        assert_eq!((error.status(), error.code(), error.message()), expected);
    }
}

fn every_error() -> Vec<InstanceError> {
    vec![
        InstanceError::invalid_content_type("text/plain"),
        InstanceError::invalid_api_version("dkms-gcs-0.1"),
        InstanceError::invalid_api_name("CreateKey"),
        InstanceError::missing_signature_method(),
        InstanceError::invalid_signature_method("RSA_PSS"),
        InstanceError::invalid_date(),
        InstanceError::invalid_content_sha256(),
        InstanceError::missing_access_key_id(),
        InstanceError::unauthorized("KAAP.x"),
        InstanceError::request_time_too_skewed(),
        InstanceError::signature_not_match(),
        InstanceError::no_permission("key/*"),
        InstanceError::invalid_parameter(),
        InstanceError::unsupported_operation(),
        InstanceError::key_not_found(),
        InstanceError::disabled(),
        InstanceError::pending_deletion(),
        InstanceError::pending_import(),
        InstanceError::internal_failure(),
        InstanceError::service_unavailable_temporary(),
        InstanceError::throttling(),
        InstanceError::resource_not_found(),
        InstanceError::instance_state_invalid(),
        InstanceError::request_entity_too_large(),
    ]
}

// ----- parse_headers failures -----------------------------------------------------------

/// Owned (name, value bytes) header pairs, in wire order.
type Headers = Vec<(String, Vec<u8>)>;

/// A captured Encrypt request as owned header pairs, and its body.
fn base_request() -> (Headers, Vec<u8>) {
    let v = vectors::captured()
        .into_iter()
        .find(|v| v.name == "01_Encrypt.json")
        .unwrap();
    let headers = v
        .headers
        .iter()
        .map(|(n, val)| (n.clone(), val.clone().into_bytes()))
        .collect();
    (headers, v.body)
}

fn parse(
    headers: &[(String, Vec<u8>)],
    body: &[u8],
    now: Option<OffsetDateTime>,
) -> Result<ParsedRequest, InstanceError> {
    instance::parse_headers(
        headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
        body,
        now,
    )
}

fn without(headers: &[(String, Vec<u8>)], name: &str) -> Headers {
    headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
        .cloned()
        .collect()
}

fn with(headers: &[(String, Vec<u8>)], name: &str, value: &[u8]) -> Headers {
    let mut out = without(headers, name);
    out.push((name.to_owned(), value.to_vec()));
    out
}

fn plus(headers: &[(String, Vec<u8>)], name: &str, value: &[u8]) -> Headers {
    let mut out = headers.to_vec();
    out.push((name.to_owned(), value.to_vec()));
    out
}

fn assert_error(
    result: Result<ParsedRequest, InstanceError>,
    status: u16,
    code: &str,
    message: &str,
) {
    let error = result.expect_err(message);
    assert_eq!(
        (error.status(), error.code(), error.message()),
        (status, code, message)
    );
}

#[test]
fn each_header_check_fails_with_its_documented_error() {
    let (h, body) = base_request();
    assert!(parse(&h, &body, None).is_ok());
    let cases: Vec<(&str, Headers, u16, &str, &str)> = vec![
        (
            "wrong content type",
            with(&h, "content-type", b"application/json"),
            415,
            "InvalidContentType",
            "Content-Type \"application/json\" is unsupported.",
        ),
        (
            "no content type",
            without(&h, "content-type"),
            415,
            "InvalidContentType",
            "Content-Type \"\" is unsupported.",
        ),
        (
            "no api version",
            without(&h, "x-kms-apiversion"),
            400,
            "InvalidApiVersion",
            "The ApiVersion \"\" is invalid.",
        ),
        (
            "wrong api version",
            with(&h, "x-kms-apiversion", b"dkms-gcs-0.1"),
            400,
            "InvalidApiVersion",
            "The ApiVersion \"dkms-gcs-0.1\" is invalid.",
        ),
        (
            "unknown api name",
            with(&h, "x-kms-apiname", b"CreateKey"),
            400,
            "InvalidApiName",
            "The ApiName \"CreateKey\" is invalid.",
        ),
        (
            "api name in the wrong case",
            with(&h, "x-kms-apiname", b"encrypt"),
            400,
            "InvalidApiName",
            "The ApiName \"encrypt\" is invalid.",
        ),
        (
            "no api name",
            without(&h, "x-kms-apiname"),
            400,
            "InvalidApiName",
            "The ApiName \"\" is invalid.",
        ),
        (
            "no signature method",
            without(&h, "x-kms-signaturemethod"),
            400,
            "InvalidParam",
            "The Param x-kms-signaturemethod is invalid.",
        ),
        (
            "wrong signature method",
            with(&h, "x-kms-signaturemethod", b"RSA_PSS_SHA_256"),
            400,
            "InvalidParam",
            "The Param x-kms-signaturemethod is invalid. message:\"RSA_PSS_SHA_256\".",
        ),
        (
            "no access key id",
            without(&h, "x-kms-acccesskeyid"),
            400,
            "MissingParameter",
            "Parameter x-kms-acccesskeyid does not exist in http header or body.",
        ),
        (
            "empty access key id",
            with(&h, "x-kms-acccesskeyid", b" "),
            400,
            "MissingParameter",
            "Parameter x-kms-acccesskeyid does not exist in http header or body.",
        ),
        (
            "access key id spelled with two c's only",
            plus(
                &without(&h, "x-kms-acccesskeyid"),
                "x-kms-accesskeyid",
                CLIENT_KEY_ID.as_bytes(),
            ),
            400,
            "MissingParameter",
            "Parameter x-kms-acccesskeyid does not exist in http header or body.",
        ),
        (
            "no date",
            without(&h, "date"),
            400,
            "InvalidParam",
            "The Param Date is invalid.",
        ),
        (
            "ISO date",
            with(&h, "date", b"2026-11-28T10:19:24Z"),
            400,
            "InvalidParam",
            "The Param Date is invalid.",
        ),
        (
            "date with a wrong weekday",
            with(&h, "date", b"Fri, 28 Nov 2026 10:19:24 GMT"),
            400,
            "InvalidParam",
            "The Param Date is invalid.",
        ),
        (
            "no content-sha256",
            without(&h, "content-sha256"),
            400,
            "InvalidParam",
            "The Param Content-SHA256 is invalid.",
        ),
        (
            "wrong content-sha256",
            with(
                &h,
                "content-sha256",
                b"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            ),
            400,
            "InvalidParam",
            "The Param Content-SHA256 is invalid.",
        ),
        (
            "duplicate api name in another case",
            plus(&h, "X-Kms-ApiName", b"Encrypt"),
            400,
            "InvalidParam",
            "The Param x-kms-apiname is invalid.",
        ),
        (
            "duplicate access key id",
            plus(&h, "x-kms-acccesskeyid", CLIENT_KEY_ID.as_bytes()),
            400,
            "InvalidParam",
            "The Param x-kms-acccesskeyid is invalid.",
        ),
        (
            "duplicate api version",
            plus(&h, "x-kms-apiversion", b"dkms-gcs-0.2"),
            400,
            "InvalidParam",
            "The Param x-kms-apiversion is invalid.",
        ),
        (
            "duplicate signature method",
            plus(&h, "x-kms-signaturemethod", b"RSA_PKCS1_SHA_256"),
            400,
            "InvalidParam",
            "The Param x-kms-signaturemethod is invalid.",
        ),
        (
            "duplicate caller header",
            plus(&plus(&h, "x-kms-foo", b"a"), "x-kms-foo", b"b"),
            400,
            "InvalidParam",
            "The Param x-kms-foo is invalid.",
        ),
        (
            "duplicate date",
            plus(&h, "Date", b"Sat, 28 Nov 2026 10:19:24 GMT"),
            400,
            "InvalidParam",
            "The Param Date is invalid.",
        ),
        (
            "duplicate content type",
            plus(&h, "Content-Type", b"application/x-protobuf"),
            400,
            "InvalidParam",
            "The Param Content-Type is invalid.",
        ),
        (
            "duplicate content-sha256",
            plus(
                &h,
                "Content-SHA256",
                b"44707D867CF003B5FA746A00A78E019D6EEAB09B5B1199379C8083313F2EB930",
            ),
            400,
            "InvalidParam",
            "The Param Content-SHA256 is invalid.",
        ),
        (
            "api name not UTF-8",
            with(&h, "x-kms-apiname", b"Encr\xffypt"),
            400,
            "InvalidParam",
            "The Param x-kms-apiname is invalid.",
        ),
        (
            "caller header not UTF-8",
            plus(&h, "x-kms-migrationkeyversionid", b"\xc3\x28"),
            400,
            "InvalidParam",
            "The Param x-kms-migrationkeyversionid is invalid.",
        ),
        (
            "date not UTF-8",
            with(&h, "date", b"Sat, 28 Nov 2026 10:19:24 GMT\x80"),
            400,
            "InvalidParam",
            "The Param Date is invalid.",
        ),
        (
            "content type not UTF-8",
            with(&h, "content-type", b"\xfe"),
            400,
            "InvalidParam",
            "The Param Content-Type is invalid.",
        ),
    ];
    for (case, headers, status, code, message) in cases {
        let error = parse(&headers, &body, None).expect_err(case);
        assert_eq!(
            (error.status(), error.code(), error.message()),
            (status, code, message),
            "{case}"
        );
    }
}

#[test]
fn the_date_must_be_within_fifteen_minutes_when_a_clock_is_given() {
    let (h, body) = base_request();
    let sent = parse(&h, &body, None).unwrap().date();
    assert_eq!(sent.unix_timestamp(), 1_795_861_164); // Sat, 28 Nov 2026 10:19:24 GMT
    for offset in [
        Duration::ZERO,
        Duration::minutes(15),
        -Duration::minutes(15),
        Duration::seconds(899),
    ] {
        assert!(parse(&h, &body, Some(sent + offset)).is_ok(), "{offset}");
    }
    for offset in [
        Duration::minutes(15) + Duration::seconds(1),
        -(Duration::minutes(15) + Duration::seconds(1)),
        Duration::days(365),
        -Duration::days(365 * 50),
    ] {
        assert_error(
            parse(&h, &body, Some(sent + offset)),
            400,
            "RequestTimeTooSkewed",
            "Request time exceeds server time more than 15 minutes.",
        );
    }
    // The clock is never consulted before the date parses.
    assert_error(
        parse(&with(&h, "date", b"yesterday"), &body, Some(sent)),
        400,
        "InvalidParam",
        "The Param Date is invalid.",
    );
}

#[test]
fn checks_run_in_the_documented_order() {
    let (h, body) = base_request();
    let order = [
        ("content-type", 415, "InvalidContentType"),
        ("x-kms-apiversion", 400, "InvalidApiVersion"),
        ("x-kms-apiname", 400, "InvalidApiName"),
        ("x-kms-signaturemethod", 400, "InvalidParam"),
        ("x-kms-acccesskeyid", 400, "MissingParameter"),
        ("date", 400, "InvalidParam"),
        ("content-sha256", 400, "InvalidParam"),
    ];
    // Drop every checked header, then put them back one at a time: each time, the
    // next step's error appears.
    let mut headers = h.clone();
    for (name, _, _) in &order {
        headers = without(&headers, name);
    }
    for (name, status, code) in order {
        let error = parse(&headers, &body, None).expect_err(name);
        assert_eq!((error.status(), error.code()), (status, code), "{name}");
        let (original, value) = h
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .unwrap();
        headers.push((original.clone(), value.clone()));
    }
    assert!(parse(&headers, &body, None).is_ok());
}

#[test]
fn leniencies_that_do_not_touch_the_signature() {
    let (h, body) = base_request();
    let public = vectors::client_public_key();
    // Lower-case digest, upper-case names, unsigned non-UTF-8 headers, any order.
    let mut headers: Headers = with(
        &h,
        "content-sha256",
        b"44707d867cf003b5fa746a00a78e019d6eeab09b5b1199379c8083313f2eb930",
    )
    .into_iter()
    .map(|(n, v)| (n.to_ascii_uppercase(), v))
    .rev()
    .collect();
    headers.push(("User-Agent".to_owned(), b"\xff\xfe".to_vec()));
    let parsed = parse(&headers, &body, None).unwrap();
    assert_eq!(parsed.api(), ApiName::Encrypt);
    assert_eq!(parsed.access_key_id(), CLIENT_KEY_ID);
    // The digest line is the value as received, so this one no longer verifies.
    assert!(
        public
            .verify(parsed.string_to_sign(), parsed.authorization())
            .is_err()
    );
    // Without authorization the request still parses; the signature check refuses it.
    let parsed = parse(&without(&h, "authorization"), &body, None).unwrap();
    assert_eq!(parsed.authorization(), "");
    assert!(public.verify(parsed.string_to_sign(), "").is_err());
}

#[test]
fn hostile_bodies_are_errors_not_panics() {
    let mut bodies: Vec<Vec<u8>> = vec![
        vec![0xff; 64],
        vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
        vec![
            0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
        ],
        vec![0x0b],
        vec![0x0f],
        vec![0x12, 0x02, 0xff, 0xfe], // invalid UTF-8 in a string field of most requests
    ];
    // Every prefix of every captured body.
    for v in vectors::captured() {
        for len in 0..v.body.len() {
            bodies.push(v.body[..len].to_vec());
        }
    }
    for api in ApiName::ALL {
        for body in &bodies {
            if let Err(error) = instance::decode_body(*api, body) {
                assert_eq!(error, InstanceError::invalid_parameter());
            }
        }
    }
}
