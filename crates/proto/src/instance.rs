//! The instance API's request front door (`spec/instance-api.md` §3–§6): everything a
//! server does with a request before it knows who sent it, as pure functions.
//!
//! - [`parse_headers`] runs the checks of §4.6 steps 1–7 in the documented order and
//!   builds the string to sign ([`ParsedRequest`]);
//! - [`decode_body`] decodes the body into the typed request of its API ([`Body`]);
//! - [`InstanceError`] is every documented error answer, with its protobuf body.
//!
//! What it deliberately leaves to the server: whether the client key exists (step 5's
//! `Unauthorized`), the signature check (step 8, with
//! [`ClientPublicKey::verify`](crate::signature::ClientPublicKey::verify) on
//! [`ParsedRequest::string_to_sign`] and [`ParsedRequest::authorization`]), access policy
//! (step 9), the body size limit while reading ([`MAX_BODY_LEN`]), and every check of the
//! decoded values. No I/O, no async, and no panics on any input.

mod date;
mod error;

use prost::Message;
use time::{Duration, OffsetDateTime};

use crate::dkms;
use crate::signature::{
    self, ACCESS_KEY_ID_HEADER, API_VERSION, CONTENT_TYPE, SIGNATURE_METHOD, SignatureError,
};

pub use error::InstanceError;

/// The largest request body accepted: 3 MB (taken as 3 MiB) after protobuf encoding;
/// larger ones are answered with [`InstanceError::request_entity_too_large`].
pub const MAX_BODY_LEN: usize = 3 << 20;

/// The header naming the API.
pub const API_NAME_HEADER: &str = "x-kms-apiname";
/// The header carrying the protocol version.
pub const API_VERSION_HEADER: &str = "x-kms-apiversion";
/// The header naming the signature method.
pub const SIGNATURE_METHOD_HEADER: &str = "x-kms-signaturemethod";
/// The header by which the DKMS transfer SDKs name a key version (§5.4); signed like
/// every `x-kms-*` header, and sent back on key-based answers.
pub const MIGRATION_KEY_VERSION_ID_HEADER: &str = "x-kms-migrationkeyversionid";
/// The largest allowed difference between the `date` header and the server's clock.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(15);

/// Declares the API names once, with the request message of each, and derives from the
/// list the name enum and the typed body so the two can never disagree.
macro_rules! apis {
    ($($name:ident => $request:ident,)*) => {
        /// An instance-API operation, as named by the `x-kms-apiname` header (§6).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ApiName {
            $(
                #[doc = concat!("`", stringify!($name), "`, body [`dkms::", stringify!($request), "`].")]
                $name,
            )*
        }

        impl ApiName {
            /// Every API name, in the order of the spec's table.
            pub const ALL: &'static [ApiName] = &[$(ApiName::$name),*];

            /// The API named by an `x-kms-apiname` value (exact, case-sensitive).
            pub fn from_header(value: &str) -> Option<Self> {
                match value {
                    $(stringify!($name) => Some(ApiName::$name),)*
                    _ => None,
                }
            }

            /// The `x-kms-apiname` value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ApiName::$name => stringify!($name),)*
                }
            }
        }

        /// A decoded request body, typed by its API.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Body {
            $(
                #[doc = concat!("The body of `", stringify!($name), "`.")]
                $name(dkms::$request),
            )*
        }

        impl Body {
            /// The API this body belongs to.
            pub fn api(&self) -> ApiName {
                match self {
                    $(Body::$name(_) => ApiName::$name,)*
                }
            }
        }

        /// Decodes a request body as the `<ApiName>Request` of `api` (proto3: absent
        /// fields are defaults, unknown fields are ignored, an empty body is the all-default
        /// message, as the SDKs send for `GenerateRandom` without `Length`).
        ///
        /// # Errors
        /// [`InstanceError::invalid_parameter`] if the bytes are not a valid message of
        /// that type.
        pub fn decode_body(api: ApiName, body: &[u8]) -> Result<Body, InstanceError> {
            match api {
                $(ApiName::$name => dkms::$request::decode(body)
                    .map(Body::$name)
                    .map_err(|_| InstanceError::invalid_parameter()),)*
            }
        }
    };
}

apis! {
    Encrypt => EncryptRequest,
    Decrypt => DecryptRequest,
    Sign => SignRequest,
    Verify => VerifyRequest,
    GenerateRandom => GenerateRandomRequest,
    GenerateDataKey => GenerateDataKeyRequest,
    GetPublicKey => GetPublicKeyRequest,
    GetSecretValue => GetSecretValueRequest,
    AdvanceEncrypt => AdvanceEncryptRequest,
    AdvanceDecrypt => AdvanceDecryptRequest,
    AdvanceGenerateDataKey => AdvanceGenerateDataKeyRequest,
    GenerateDataKeyPair => GenerateDataKeyPairRequest,
    GenerateDataKeyPairWithoutPlaintext => GenerateDataKeyPairWithoutPlaintextRequest,
    AdvanceGenerateDataKeyPair => AdvanceGenerateDataKeyPairRequest,
    AdvanceGenerateDataKeyPairWithoutPlaintext => AdvanceGenerateDataKeyPairWithoutPlaintextRequest,
    Hmac => HmacRequest,
    Hash => HashRequest,
}

/// A message of the instance API (every `dkms` message is one), so that a server can
/// encode its answers without depending on prost itself.
pub trait Response: Message {}

impl<T: Message> Response for T {}

/// The protobuf encoding of an answer.
pub fn encode(message: &impl Response) -> Vec<u8> {
    message.encode_to_vec()
}

impl std::fmt::Display for ApiName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request whose headers passed §4.6 steps 1–7, ready for the client-key lookup and
/// the signature check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRequest {
    api: ApiName,
    access_key_id: String,
    string_to_sign: String,
    authorization: String,
    migration_key_version_id: Option<String>,
    date: OffsetDateTime,
}

impl ParsedRequest {
    /// The API named by `x-kms-apiname`.
    pub fn api(&self) -> ApiName {
        self.api
    }

    /// The client key id from `x-kms-acccesskeyid` (trimmed, never empty). Not yet known
    /// to exist: an unknown id is the server's [`InstanceError::unauthorized`].
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The string the client signed (§4.3), rebuilt from the received headers.
    pub fn string_to_sign(&self) -> &str {
        &self.string_to_sign
    }

    /// The `authorization` value (`Bearer <base64>`), empty when the header is absent,
    /// repeated or not UTF-8 — which the signature check then refuses.
    pub fn authorization(&self) -> &str {
        &self.authorization
    }

    /// The key version id of `x-kms-migrationkeyversionid` (trimmed), if sent (§5.4).
    pub fn migration_key_version_id(&self) -> Option<&str> {
        self.migration_key_version_id.as_deref()
    }

    /// The request's `date`.
    pub fn date(&self) -> OffsetDateTime {
        self.date
    }
}

/// Checks a request's headers and body digest (§4.6 steps 1–7, in that order) and builds
/// the string to sign.
///
/// Header names are compared case-insensitively and in any order; values are any bytes
/// (a header this function needs that is not UTF-8 is refused, one it does not need is
/// ignored). `now` is the server's clock for the ±15-minute `date` check; `None` turns
/// that check off (to replay recorded requests), never use it for live traffic.
///
/// Steps: 1. `content-type` is `application/x-protobuf`; 2. `x-kms-apiversion` is
/// `dkms-gcs-0.2`; 3. `x-kms-apiname` is a known API; 4. `x-kms-signaturemethod` is
/// `RSA_PKCS1_SHA_256`; 5. `x-kms-acccesskeyid` is present; 6. `date` is RFC 1123 and,
/// with `now`, within 15 minutes; 7. `content-sha256` is the body's SHA-256 (hex, any
/// case). A signed header (`content-type`, `date`, `content-sha256`, any `x-kms-*`) sent
/// twice or not in UTF-8 is refused as `InvalidParam` naming it, by the step that reads
/// it or, for the other `x-kms-*` headers, after step 7.
///
/// # Errors
/// The [`InstanceError`] of the first failing step.
pub fn parse_headers<I, N, V>(
    headers: I,
    body: &[u8],
    now: Option<OffsetDateTime>,
) -> Result<ParsedRequest, InstanceError>
where
    I: IntoIterator<Item = (N, V)>,
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    let received = Received::collect(headers);

    // 1. Content type.
    match received.lookup("content-type") {
        Lookup::Value(value) if value.trim().eq_ignore_ascii_case(CONTENT_TYPE) => {}
        Lookup::Value(value) => return Err(InstanceError::invalid_content_type(value)),
        Lookup::Absent => return Err(InstanceError::invalid_content_type("")),
        Lookup::Unusable => return Err(InstanceError::invalid_param("Content-Type")),
    }

    // 2. Protocol version.
    match received.lookup(API_VERSION_HEADER) {
        Lookup::Value(value) if value.trim() == API_VERSION => {}
        Lookup::Value(value) => return Err(InstanceError::invalid_api_version(value)),
        Lookup::Absent => return Err(InstanceError::invalid_api_version("")),
        Lookup::Unusable => return Err(InstanceError::invalid_param(API_VERSION_HEADER)),
    }

    // 3. API name.
    let api = match received.lookup(API_NAME_HEADER) {
        Lookup::Value(value) => ApiName::from_header(value.trim())
            .ok_or_else(|| InstanceError::invalid_api_name(value))?,
        Lookup::Absent => return Err(InstanceError::invalid_api_name("")),
        Lookup::Unusable => return Err(InstanceError::invalid_param(API_NAME_HEADER)),
    };

    // 4. Signature method.
    match received.lookup(SIGNATURE_METHOD_HEADER) {
        Lookup::Value(value) if value.trim() == SIGNATURE_METHOD => {}
        Lookup::Value(value) => return Err(InstanceError::invalid_signature_method(value)),
        Lookup::Absent | Lookup::Unusable => {
            return Err(InstanceError::missing_signature_method());
        }
    }

    // 5. Client key id (whether it is known is the server's question).
    let access_key_id = match received.lookup(ACCESS_KEY_ID_HEADER) {
        Lookup::Value(value) if !value.trim().is_empty() => value.trim().to_owned(),
        Lookup::Value(_) | Lookup::Absent => {
            return Err(InstanceError::missing_access_key_id());
        }
        Lookup::Unusable => return Err(InstanceError::invalid_param(ACCESS_KEY_ID_HEADER)),
    };

    // 6. Date.
    let date = match received.lookup("date") {
        Lookup::Value(value) => {
            date::parse_rfc1123(value.trim()).ok_or_else(InstanceError::invalid_date)?
        }
        Lookup::Absent | Lookup::Unusable => return Err(InstanceError::invalid_date()),
    };
    if now.is_some_and(|now| (now - date).abs() > MAX_CLOCK_SKEW) {
        return Err(InstanceError::request_time_too_skewed());
    }

    // 7. Body digest.
    match received.lookup("content-sha256") {
        Lookup::Value(value)
            if value
                .trim()
                .eq_ignore_ascii_case(&signature::content_sha256(body)) => {}
        Lookup::Value(_) | Lookup::Absent | Lookup::Unusable => {
            return Err(InstanceError::invalid_content_sha256());
        }
    }

    // Every other signed header must be usable too, or the string to sign is ambiguous.
    if let Some(name) = received.first_unusable_signed() {
        return Err(InstanceError::invalid_param(name));
    }
    let string_to_sign = signature::string_to_sign("POST", received.signed_values()).map_err(
        |error| match error {
            // Unreachable: repeated headers were refused above.
            SignatureError::DuplicateHeader(name) => InstanceError::invalid_param(&name),
            _ => InstanceError::internal_failure(),
        },
    )?;

    let authorization = match received.lookup("authorization") {
        Lookup::Value(value) => value.to_owned(),
        Lookup::Absent | Lookup::Unusable => String::new(),
    };
    let migration_key_version_id = match received.lookup(MIGRATION_KEY_VERSION_ID_HEADER) {
        Lookup::Value(value) => Some(value.trim().to_owned()),
        Lookup::Absent | Lookup::Unusable => None,
    };

    Ok(ParsedRequest {
        api,
        access_key_id,
        string_to_sign,
        authorization,
        migration_key_version_id,
        date,
    })
}

/// The headers this module reads, by lower-case name, each once.
struct Received {
    entries: Vec<(String, Slot)>,
}

/// One received header.
enum Slot {
    Value(String),
    /// Sent more than once, or not UTF-8.
    Unusable,
}

/// What [`Received::lookup`] found.
enum Lookup<'a> {
    Absent,
    Value(&'a str),
    Unusable,
}

impl Received {
    fn collect<I, N, V>(headers: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let mut entries: Vec<(String, Slot)> = Vec::new();
        for (name, value) in headers {
            let name = name.as_ref().to_ascii_lowercase();
            if !(is_signed(&name) || name == "authorization") {
                continue;
            }
            let slot = match std::str::from_utf8(value.as_ref()) {
                Ok(text) => Slot::Value(text.to_owned()),
                Err(_) => Slot::Unusable,
            };
            match entries.iter_mut().find(|(seen, _)| *seen == name) {
                Some((_, existing)) => *existing = Slot::Unusable,
                None => entries.push((name, slot)),
            }
        }
        Self { entries }
    }

    fn lookup(&self, name: &str) -> Lookup<'_> {
        match self.entries.iter().find(|(seen, _)| seen == name) {
            None => Lookup::Absent,
            Some((_, Slot::Value(value))) => Lookup::Value(value),
            Some((_, Slot::Unusable)) => Lookup::Unusable,
        }
    }

    fn first_unusable_signed(&self) -> Option<&str> {
        self.entries
            .iter()
            .find(|(name, slot)| matches!(slot, Slot::Unusable) && is_signed(name))
            .map(|(name, _)| name.as_str())
    }

    fn signed_values(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().filter_map(|(name, slot)| match slot {
            Slot::Value(value) if is_signed(name) => Some((name.as_str(), value.as_str())),
            _ => None,
        })
    }
}

/// Whether a (lower-case) header name takes part in the string to sign.
fn is_signed(name: &str) -> bool {
    name.starts_with(signature::SIGNED_HEADER_PREFIX)
        || matches!(name, "content-type" | "content-sha256" | "date")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names_round_trip() {
        assert_eq!(ApiName::ALL.len(), 17);
        for api in ApiName::ALL {
            assert_eq!(ApiName::from_header(api.as_str()), Some(*api));
        }
        assert_eq!(ApiName::from_header("encrypt"), None);
        assert_eq!(ApiName::from_header("CreateKey"), None);
        assert_eq!(ApiName::from_header(""), None);
    }

    #[test]
    fn an_empty_body_is_the_default_generate_random_request() {
        assert_eq!(
            decode_body(ApiName::GenerateRandom, b""),
            Ok(Body::GenerateRandom(dkms::GenerateRandomRequest::default()))
        );
        let Ok(body) = decode_body(ApiName::GenerateRandom, b"") else {
            return;
        };
        assert_eq!(body.api(), ApiName::GenerateRandom);
    }

    #[test]
    fn every_api_decodes_an_empty_body_and_refuses_garbage() {
        for api in ApiName::ALL {
            assert_eq!(decode_body(*api, b"").map(|b| b.api()), Ok(*api));
            // A length-delimited field 1 announcing more bytes than there are.
            assert_eq!(
                decode_body(*api, &[0x0a, 0x05, 0x01]),
                Err(InstanceError::invalid_parameter())
            );
            // An end-group tag with no start.
            assert_eq!(
                decode_body(*api, &[0x0c]),
                Err(InstanceError::invalid_parameter())
            );
        }
    }
}
