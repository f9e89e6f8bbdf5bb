//! The management API's (Kms 2016-01-20, RPC style) request signatures
//! (`spec/product-model.md` §7, "Wire protocol / signatures").
//!
//! Two schemes are accepted; [`parse`] tells which one a request uses.
//!
//! **ACS3-HMAC-SHA256** (Tea OpenAPI / SDK 2.0, headers). Per Alibaba Cloud's "V3 request
//! structure and signature"
//! (<https://www.alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature>)
//! and `alibabacloud_openapi_util` `get_authorization`:
//!
//! ```text
//! CanonicalRequest = METHOD \n URI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n x-acs-content-sha256
//! StringToSign     = "ACS3-HMAC-SHA256\n" + hex(SHA-256(CanonicalRequest))
//! Signature        = hex(HMAC-SHA256(secret, StringToSign))
//! ```
//!
//! - URI: the path, `/` when empty;
//! - CanonicalQuery: every query parameter, name and value RFC 3986-encoded (only
//!   `A-Z a-z 0-9 - _ . ~` kept, upper-case `%XX`), sorted by encoded name, `name=value`
//!   joined by `&` (an empty value gives `name=`);
//! - CanonicalHeaders: each header named in `SignedHeaders`, name lower-cased, value
//!   trimmed, `name:value\n`, sorted by name (the SDKs sign `host`, `content-type` and every
//!   `x-acs-*` header);
//! - the payload hash is the `x-acs-content-sha256` header, which must also be the hex
//!   SHA-256 of the body.
//!
//! **v1 HMAC-SHA1** (`aliyun-python-sdk-core`, alibaba-cloud-sdk-go, CLI, Terraform;
//! query/form parameters). Per "RPC API signature"
//! (<https://www.alibabacloud.com/help/en/sdk/product-overview/rpc-mechanism>):
//!
//! ```text
//! StringToSign = METHOD + "&" + pe("/") + "&" + pe(sorted "pe(name)=pe(value)" joined by "&")
//! Signature    = base64(HMAC-SHA1(secret + "&", StringToSign))
//! ```
//!
//! over every query and form-body parameter but `Signature`, with `pe` the same RFC 3986
//! encoding.
//!
//! Error codes named in the docs below are the cloud's; the server maps
//! [`SignatureError`] to them. Whether an access key id exists
//! (`InvalidAccessKeyId.NotFound`) and whether a nonce was seen before
//! (`SignatureNonceUsed`) are the caller's to decide.

use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq as _;
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// The API version every management request names.
pub const API_VERSION: &str = "2016-01-20";
/// The `Authorization` scheme of the header signature.
pub const ACS3: &str = "ACS3-HMAC-SHA256";
/// The clock skew [`SignedRequest::check_time`] is usually given (15 minutes).
pub const DEFAULT_SKEW: Duration = Duration::minutes(15);

/// Why a request's signature could not be read or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A required parameter or header is absent (`MissingParameter`, or
    /// `MissingSignature` / `MissingAccessKeyId` / … when it names one; HTTP 400).
    #[error("missing parameter {0}")]
    MissingParameter(&'static str),
    /// The `Authorization` header is malformed, or does not sign a header it must
    /// (`IncompleteSignature`, HTTP 400).
    #[error("incomplete signature: {0}")]
    IncompleteSignature(&'static str),
    /// A parameter has a value we do not accept (`InvalidParameter`, or
    /// `UnsupportedSignatureMethod` / `UnsupportedSignatureVersion`; HTTP 400).
    #[error("invalid parameter {0}")]
    InvalidParameter(&'static str),
    /// The timestamp is not ISO 8601 UTC (`InvalidTimeStamp.Format`, HTTP 400).
    #[error("the timestamp is not ISO 8601 UTC")]
    InvalidTimestampFormat,
    /// The timestamp is further from now than the skew allows
    /// (`InvalidTimeStamp.Expired`, HTTP 400).
    #[error("the timestamp is expired")]
    TimestampExpired,
    /// `x-acs-content-sha256` is not the SHA-256 of the body (`ContentSHA256NotMatched`,
    /// HTTP 400).
    #[error("x-acs-content-sha256 does not match the body")]
    ContentHashMismatch,
    /// The signature does not match (`SignatureDoesNotMatch`, HTTP 400, "Specified
    /// signature is not matched with our calculation.").
    #[error("Specified signature is not matched with our calculation.")]
    SignatureDoesNotMatch,
}

/// The parts of an HTTP request a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The path, without the query (`/` for RPC calls).
    pub path: &'a str,
    /// The raw query string, without `?` (percent-encoded as sent).
    pub query: &'a str,
    /// Every header as sent, in any case.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub body: &'a [u8],
}

/// Which scheme signed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// `Authorization: ACS3-HMAC-SHA256 …`.
    Acs3HmacSha256,
    /// `SignatureVersion=1.0`, `SignatureMethod=HMAC-SHA1` in the parameters.
    V1HmacSha1,
}

/// A request whose signature fields were read, ready to verify.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    /// The scheme.
    pub scheme: Scheme,
    /// The access key id (`Credential=` or `AccessKeyId`).
    pub access_key_id: String,
    /// The signature nonce (`x-acs-signature-nonce` or `SignatureNonce`).
    pub nonce: String,
    /// When the client signed (`x-acs-date` or `Timestamp`).
    pub timestamp: OffsetDateTime,
    /// The operation name (`x-acs-action` or `Action`).
    pub action: String,
    /// The API version (`x-acs-version` or `Version`).
    pub version: String,
    /// Every decoded query (and, for v1, form-body) parameter, in request order.
    pub params: Vec<(String, String)>,
    /// The STS security token, if any (`x-acs-security-token` or `SecurityToken`).
    pub security_token: Option<String>,
    string_to_sign: String,
    signature: Vec<u8>,
}

impl SignedRequest {
    /// The string the client signed.
    pub fn string_to_sign(&self) -> &str {
        &self.string_to_sign
    }

    /// The first parameter named `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        lookup(&self.params, name)
    }

    /// Checks the signature against the access key secret, in constant time.
    ///
    /// # Errors
    /// [`SignatureError::SignatureDoesNotMatch`].
    pub fn verify(&self, secret: &[u8]) -> Result<(), SignatureError> {
        let expected = match self.scheme {
            Scheme::Acs3HmacSha256 => hmac_sign(hmac::HMAC_SHA256, secret, &self.string_to_sign),
            Scheme::V1HmacSha1 => {
                let mut key = secret.to_vec();
                key.push(b'&');
                hmac_sign(
                    hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                    &key,
                    &self.string_to_sign,
                )
            }
        };
        if bool::from(expected.as_slice().ct_eq(self.signature.as_slice())) {
            Ok(())
        } else {
            Err(SignatureError::SignatureDoesNotMatch)
        }
    }

    /// Checks that the timestamp is within `skew` of `now`.
    ///
    /// # Errors
    /// [`SignatureError::TimestampExpired`].
    pub fn check_time(&self, now: OffsetDateTime, skew: Duration) -> Result<(), SignatureError> {
        if (now - self.timestamp).abs() <= skew {
            Ok(())
        } else {
            Err(SignatureError::TimestampExpired)
        }
    }
}

/// Reads a request's signature fields and rebuilds the string it signed.
///
/// # Errors
/// Any [`SignatureError`] but `SignatureDoesNotMatch` / `TimestampExpired`.
pub fn parse(request: &RequestView<'_>) -> Result<SignedRequest, SignatureError> {
    match header(request.headers, "authorization") {
        Some(auth) if auth.trim_start().starts_with(ACS3) => parse_acs3(request, auth),
        Some(_) => Err(SignatureError::IncompleteSignature(
            "unknown Authorization scheme",
        )),
        None => parse_v1(request),
    }
}

fn parse_acs3(request: &RequestView<'_>, auth: &str) -> Result<SignedRequest, SignatureError> {
    let rest = auth.trim_start().get(ACS3.len()..).unwrap_or("").trim();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (name, value) =
            part.trim()
                .split_once('=')
                .ok_or(SignatureError::IncompleteSignature(
                    "malformed Authorization",
                ))?;
        match name {
            "Credential" => credential = Some(value.to_owned()),
            "SignedHeaders" => signed = Some(value.to_owned()),
            "Signature" => signature = Some(value.to_owned()),
            _ => {
                return Err(SignatureError::IncompleteSignature(
                    "malformed Authorization",
                ));
            }
        }
    }
    let access_key_id = credential.ok_or(SignatureError::IncompleteSignature("no Credential"))?;
    let signed = signed.ok_or(SignatureError::IncompleteSignature("no SignedHeaders"))?;
    let signature =
        hex::decode(signature.ok_or(SignatureError::IncompleteSignature("no Signature"))?)
            .map_err(|_| SignatureError::IncompleteSignature("Signature is not hex"))?;
    let names: Vec<String> = signed.split(';').map(str::to_ascii_lowercase).collect();
    for required in [
        "host",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ] {
        if !names.iter().any(|n| n == required) {
            return Err(SignatureError::IncompleteSignature(
                "a required header is not signed",
            ));
        }
    }
    let mut canonical_headers = Vec::with_capacity(names.len());
    for name in &names {
        let values: Vec<&str> = request
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect();
        if values.is_empty() {
            return Err(SignatureError::IncompleteSignature(
                "a signed header is absent",
            ));
        }
        canonical_headers.push((name.clone(), values.join(",")));
    }
    canonical_headers.sort();
    let get = |name: &str| {
        canonical_headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let content_sha256 = get("x-acs-content-sha256");
    if !content_sha256.eq_ignore_ascii_case(&hex::encode(
        digest::digest(&digest::SHA256, request.body).as_ref(),
    )) {
        return Err(SignatureError::ContentHashMismatch);
    }
    let params = decode_params(request.query)?;
    let canonical = acs3_canonical_request(
        request.method,
        request.path,
        &params,
        &canonical_headers,
        &content_sha256,
    );
    Ok(SignedRequest {
        scheme: Scheme::Acs3HmacSha256,
        access_key_id,
        nonce: get("x-acs-signature-nonce"),
        timestamp: parse_timestamp(&get("x-acs-date"))?,
        action: get("x-acs-action"),
        version: get("x-acs-version"),
        security_token: header(request.headers, "x-acs-security-token").map(str::to_owned),
        params,
        string_to_sign: acs3_string_to_sign(&canonical),
        signature,
    })
}

fn parse_v1(request: &RequestView<'_>) -> Result<SignedRequest, SignatureError> {
    let mut params = decode_params(request.query)?;
    let form = header(request.headers, "content-type").is_some_and(|ct| {
        ct.trim_start()
            .starts_with("application/x-www-form-urlencoded")
    });
    if form && !request.body.is_empty() {
        let body = std::str::from_utf8(request.body)
            .map_err(|_| SignatureError::InvalidParameter("body"))?;
        params.extend(decode_params(body)?);
    }
    let required = |name: &'static str| {
        lookup(&params, name)
            .map(str::to_owned)
            .ok_or(SignatureError::MissingParameter(name))
    };
    let signature = STANDARD
        .decode(required("Signature")?)
        .map_err(|_| SignatureError::InvalidParameter("Signature"))?;
    if required("SignatureMethod")? != "HMAC-SHA1" {
        return Err(SignatureError::InvalidParameter("SignatureMethod"));
    }
    if required("SignatureVersion")? != "1.0" {
        return Err(SignatureError::InvalidParameter("SignatureVersion"));
    }
    let unsigned: Vec<(String, String)> = params
        .iter()
        .filter(|(n, _)| n != "Signature")
        .cloned()
        .collect();
    Ok(SignedRequest {
        scheme: Scheme::V1HmacSha1,
        access_key_id: required("AccessKeyId")?,
        nonce: required("SignatureNonce")?,
        timestamp: parse_timestamp(&required("Timestamp")?)?,
        action: required("Action")?,
        version: required("Version")?,
        security_token: lookup(&params, "SecurityToken").map(str::to_owned),
        string_to_sign: v1_string_to_sign(request.method, &unsigned),
        params,
        signature,
    })
}

/// Signs an RPC call with ACS3-HMAC-SHA256 and returns the `Authorization` value.
///
/// Every header in `headers` is signed (the Tea SDK signs `host`, every `x-acs-*`
/// header and, through its gateway SPI, also `accept`, `user-agent`, `content-type`);
/// `params` are the decoded query parameters.
pub fn sign_acs3(
    method: &str,
    path: &str,
    params: &[(String, String)],
    headers: &[(&str, &str)],
    access_key_id: &str,
    secret: &[u8],
) -> String {
    let mut canonical_headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
        .filter(|(n, _)| n != "authorization")
        .collect();
    canonical_headers.sort();
    let payload = canonical_headers
        .iter()
        .find(|(n, _)| n == "x-acs-content-sha256")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let canonical = acs3_canonical_request(method, path, params, &canonical_headers, &payload);
    let signature = hex::encode(hmac_sign(
        hmac::HMAC_SHA256,
        secret,
        &acs3_string_to_sign(&canonical),
    ));
    let signed: Vec<&str> = canonical_headers.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        "{ACS3} Credential={access_key_id},SignedHeaders={},Signature={signature}",
        signed.join(";")
    )
}

/// Signs an RPC call's parameters with v1 HMAC-SHA1; returns the `Signature` value.
pub fn sign_v1(method: &str, params: &[(String, String)], secret: &[u8]) -> String {
    let unsigned: Vec<(String, String)> = params
        .iter()
        .filter(|(n, _)| n != "Signature")
        .cloned()
        .collect();
    let mut key = secret.to_vec();
    key.push(b'&');
    STANDARD.encode(hmac_sign(
        hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        &key,
        &v1_string_to_sign(method, &unsigned),
    ))
}

/// Hex SHA-256 of a body, as sent in `x-acs-content-sha256`.
pub fn content_sha256(body: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, body).as_ref())
}

/// RFC 3986 percent-encoding: `A-Z a-z 0-9 - _ . ~` kept, the rest `%XX` upper case.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push_str(&format!("{byte:02X}"));
        }
    }
    out
}

/// `name=value&…` in the given order, each side [`percent_encode`]d: the form body and
/// query string the SDKs send.
pub fn form_encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let encoded: Vec<String> = pairs
        .into_iter()
        .map(|(n, v)| format!("{}={}", percent_encode(n), percent_encode(v)))
        .collect();
    encoded.join("&")
}

fn acs3_canonical_request(
    method: &str,
    path: &str,
    params: &[(String, String)],
    canonical_headers: &[(String, String)],
    payload: &str,
) -> String {
    let uri = if path.is_empty() { "/" } else { path };
    let headers: String = canonical_headers
        .iter()
        .map(|(n, v)| format!("{n}:{v}\n"))
        .collect();
    let signed: Vec<&str> = canonical_headers.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        "{method}\n{uri}\n{}\n{headers}\n{}\n{payload}",
        canonical_query(params),
        signed.join(";")
    )
}

fn acs3_string_to_sign(canonical: &str) -> String {
    format!(
        "{ACS3}\n{}",
        hex::encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    )
}

fn v1_string_to_sign(method: &str, params: &[(String, String)]) -> String {
    format!(
        "{method}&{}&{}",
        percent_encode("/"),
        percent_encode(&canonical_query(params))
    )
}

fn canonical_query(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(n, v)| (percent_encode(n), percent_encode(v)))
        .collect();
    encoded.sort();
    let pairs: Vec<String> = encoded.iter().map(|(n, v)| format!("{n}={v}")).collect();
    pairs.join("&")
}

fn hmac_sign(algorithm: hmac::Algorithm, key: &[u8], message: &str) -> Vec<u8> {
    let key = hmac::Key::new(algorithm, key);
    hmac::sign(&key, message.as_bytes()).as_ref().to_vec()
}

fn header<'a>(headers: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

fn lookup<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Decodes an `application/x-www-form-urlencoded` body or a query string: `a=b&c=d`,
/// percent-decoded, `+` a space.
///
/// # Errors
/// [`SignatureError::InvalidParameter`] for a bad `%XX` escape or text that is not UTF-8.
pub fn decode_form(text: &str) -> Result<Vec<(String, String)>, SignatureError> {
    decode_params(text)
}

/// Decodes `a=b&c=d` (`+` is a space, as form encoding has it).
fn decode_params(text: &str) -> Result<Vec<(String, String)>, SignatureError> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(name)?, percent_decode(value)?))
        })
        .collect()
}

fn percent_decode(text: &str) -> Result<String, SignatureError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut iter = bytes.iter();
    while let Some(&byte) = iter.next() {
        match byte {
            b'%' => {
                let high = iter.next().and_then(|b| hex_value(*b));
                let low = iter.next().and_then(|b| hex_value(*b));
                match (high, low) {
                    (Some(h), Some(l)) => out.push(h << 4 | l),
                    _ => return Err(SignatureError::InvalidParameter("query encoding")),
                }
            }
            b'+' => out.push(b' '),
            other => out.push(other),
        }
    }
    String::from_utf8(out).map_err(|_| SignatureError::InvalidParameter("query encoding"))
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (fractional seconds allowed).
fn parse_timestamp(text: &str) -> Result<OffsetDateTime, SignatureError> {
    let err = SignatureError::InvalidTimestampFormat;
    let body = text.strip_suffix('Z').ok_or(err.clone())?;
    let (date, clock) = body.split_once('T').ok_or(err.clone())?;
    let clock = clock.split_once('.').map_or(clock, |(whole, _)| whole);
    let num = |s: Option<&str>| -> Result<u16, SignatureError> {
        s.filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or(SignatureError::InvalidTimestampFormat)
    };
    let small = |v: u16| u8::try_from(v).map_err(|_| SignatureError::InvalidTimestampFormat);
    let mut d = date.split('-');
    let (year, month, day) = (num(d.next())?, num(d.next())?, num(d.next())?);
    let mut c = clock.split(':');
    let (hour, minute, second) = (num(c.next())?, num(c.next())?, num(c.next())?);
    if d.next().is_some() || c.next().is_some() {
        return Err(err);
    }
    let month = Month::try_from(small(month)?).map_err(|_| err.clone())?;
    let date =
        Date::from_calendar_date(i32::from(year), month, small(day)?).map_err(|_| err.clone())?;
    let time = Time::from_hms(small(hour)?, small(minute)?, small(second)?).map_err(|_| err)?;
    Ok(PrimitiveDateTime::new(date, time).assume_utc())
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}
