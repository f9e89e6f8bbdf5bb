//! `strongroom key import`: bring your own key from a file. DescribeKey (the key's
//! spec) → GetParametersForImport (a wrapping public key and a token) → wrap the
//! material here with `strongroom_crypto::wrap` → ImportKeyMaterial.
//!
//! The file's bytes live only in zeroizing buffers and are never printed; errors about
//! the file name its path and length, never its content.

use std::path::PathBuf;
use std::str::FromStr as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use serde_json::Value;
use strongroom_crypto::pem::{PRIVATE_KEY_LABEL, decode as pem_decode};
use strongroom_crypto::spec::{KeySpec, WrappingAlgorithm, WrappingKeySpec};
use strongroom_crypto::wrap::wrap_key_material;
use zeroize::Zeroizing;

use crate::mgmt::{Failure, Session, text};

/// `strongroom key import KEY --material FILE …`.
#[derive(Debug, Args)]
#[command(after_help = MATERIAL_HELP)]
pub struct ImportArgs {
    /// The key (its origin must be EXTERNAL).
    key: String,
    /// The file holding the key material (formats below).
    #[arg(long, value_name = "FILE")]
    material: PathBuf,
    /// The wrapping key: RSA_2048 or EC_SM2 (default: by the key's spec, see below).
    #[arg(long, value_name = "SPEC")]
    wrapping_spec: Option<String>,
    /// The wrapping algorithm: RSAES_OAEP_SHA_256, SM2PKE,
    /// RSAES_OAEP_SHA_256_AES_256_ECB_PKCS7_PAD or SM2PKE_SM4_ECB (default: by the key's
    /// spec and the wrapping key, see below).
    #[arg(long, value_name = "ALGORITHM")]
    wrapping_algorithm: Option<String>,
    /// When the imported material expires, Unix seconds (default: never).
    #[arg(long, value_name = "T")]
    expire_unix: Option<u64>,
}

const MATERIAL_HELP: &str = "\
The material file:
  symmetric keys (Aliyun_AES_256/192/128, Aliyun_SM4): the raw key (32, 24 or 16 bytes),
    or its hex (lower or upper case) or base64 as text (surrounding whitespace ignored);
  RSA_*, EC_P256, EC_P256K, EC_SM2: the private key as unencrypted PKCS#8, PEM
    (-----BEGIN PRIVATE KEY-----) or DER; for EC_SM2 also the raw 32-byte scalar.
    (`openssl pkcs8 -topk8 -nocrypt` converts other private-key files.)

Default wrapping, by the key's spec:
  Aliyun_AES_*                   RSA_2048 + RSAES_OAEP_SHA_256
  Aliyun_SM4                     EC_SM2   + SM2PKE
  RSA_*, EC_P256, EC_P256K       RSA_2048 + RSAES_OAEP_SHA_256_AES_256_ECB_PKCS7_PAD
  EC_SM2                         EC_SM2   + SM2PKE_SM4_ECB

Re-importing the material a key already has is accepted (and may change the expiry);
different material is refused.";

/// Runs the import.
pub fn run(s: &Session, args: &ImportArgs) -> Result<(), Failure> {
    let described = s.call("DescribeKey", &[("KeyId", &args.key)])?;
    let key_id = text(&described, &["KeyMetadata", "KeyId"]);
    let spec_text = text(&described, &["KeyMetadata", "KeySpec"]);
    let spec = KeySpec::from_str(&spec_text)
        .map_err(|_| format!("{key_id} has a key spec this client does not know: {spec_text}"))?;
    let (wrapping_spec, algorithm) = wrapping(
        spec,
        args.wrapping_spec.as_deref(),
        args.wrapping_algorithm.as_deref(),
    )?;
    let file = Zeroizing::new(
        std::fs::read(&args.material).map_err(|e| format!("{}: {e}", args.material.display()))?,
    );
    let material =
        material(spec, &file).map_err(|why| format!("{}: {why}", args.material.display()))?;
    drop(file);

    let parameters = s.call(
        "GetParametersForImport",
        &[
            ("KeyId", key_id.as_str()),
            ("WrappingKeySpec", wrapping_spec.as_str()),
            ("WrappingAlgorithm", algorithm.as_str()),
        ],
    )?;
    let token = parameters
        .get("ImportToken")
        .and_then(Value::as_str)
        .ok_or_else(|| "GetParametersForImport answered no ImportToken".to_owned())?;
    let public_key = parameters
        .get("PublicKey")
        .and_then(Value::as_str)
        .ok_or("GetParametersForImport answered no PublicKey")
        .and_then(|b64| {
            STANDARD
                .decode(b64.trim())
                .map_err(|_| "GetParametersForImport answered a PublicKey that is not base64")
        })
        .map_err(str::to_owned)?;
    let wrapped = wrap_key_material(&public_key, algorithm, spec, &material)
        .map_err(|e| format!("{}: {e}", args.material.display()))?;
    drop(material);
    let wrapped = STANDARD.encode(wrapped);
    let expire = args.expire_unix.map(|t| t.to_string());
    let mut params = vec![
        ("KeyId", key_id.as_str()),
        ("EncryptedKeyMaterial", wrapped.as_str()),
        ("ImportToken", token),
    ];
    if let Some(expire) = &expire {
        params.push(("KeyMaterialExpireUnix", expire));
    }
    let answer = s.call("ImportKeyMaterial", &params)?;
    if !s.printed_json(&answer) {
        println!(
            "{key_id}: key material imported ({spec}, wrapped with {wrapping_spec} + {algorithm})"
        );
    }
    Ok(())
}

/// The wrapping key spec and algorithm: the flags, completed by the defaults for `spec`.
fn wrapping(
    spec: KeySpec,
    wrapping_spec: Option<&str>,
    algorithm: Option<&str>,
) -> Result<(WrappingKeySpec, WrappingAlgorithm), String> {
    let wrapping_spec = wrapping_spec
        .map(|w| {
            WrappingKeySpec::from_str(w)
                .map_err(|_| format!("--wrapping-spec {w}: expected RSA_2048 or EC_SM2"))
        })
        .transpose()?;
    let algorithm = algorithm
        .map(|a| WrappingAlgorithm::from_str(a).map_err(|e| format!("--wrapping-algorithm: {e}")))
        .transpose()?;
    match (wrapping_spec, algorithm) {
        (Some(w), Some(a)) if a.wrapping_key_spec() != w => Err(format!(
            "--wrapping-algorithm {a} works with a {} wrapping key, not {w}",
            a.wrapping_key_spec()
        )),
        (Some(w), Some(a)) => Ok((w, a)),
        (None, Some(a)) => Ok((a.wrapping_key_spec(), a)),
        (Some(w), None) => Ok((w, default_algorithm(spec, w)?)),
        (None, None) => {
            let w = if matches!(spec, KeySpec::Sm4 | KeySpec::EcSm2) {
                WrappingKeySpec::EcSm2
            } else {
                WrappingKeySpec::Rsa2048
            };
            Ok((w, default_algorithm(spec, w)?))
        }
    }
}

/// The algorithm that carries a `spec` key under a `wrapping` key.
fn default_algorithm(
    spec: KeySpec,
    wrapping: WrappingKeySpec,
) -> Result<WrappingAlgorithm, String> {
    match (wrapping, spec.is_symmetric(), spec) {
        (WrappingKeySpec::Rsa2048, true, _) => Ok(WrappingAlgorithm::RsaesOaepSha256),
        (WrappingKeySpec::Rsa2048, false, _) => {
            Ok(WrappingAlgorithm::RsaesOaepSha256Aes256EcbPkcs7Pad)
        }
        (WrappingKeySpec::EcSm2, true, _) => Ok(WrappingAlgorithm::Sm2Pke),
        (WrappingKeySpec::EcSm2, false, KeySpec::EcSm2) => Ok(WrappingAlgorithm::Sm2PkeSm4Ecb),
        (WrappingKeySpec::EcSm2, false, other) => Err(format!(
            "an EC_SM2 wrapping key carries symmetric and EC_SM2 keys, not {other}; use \
             --wrapping-spec RSA_2048"
        )),
    }
}

/// The material to wrap, from the file's bytes: the raw key for symmetric specs, DER
/// PKCS#8 (or, for EC_SM2, possibly the raw scalar) for key pairs. The error says what
/// was expected, never what the file holds.
fn material(spec: KeySpec, file: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    match spec.symmetric_key_len() {
        Some(len) => symmetric(spec, len, file),
        None => asymmetric(spec, file),
    }
}

fn symmetric(spec: KeySpec, len: usize, file: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    if file.len() == len {
        return Ok(Zeroizing::new(file.to_vec()));
    }
    let trimmed = file.trim_ascii();
    if trimmed.len() == len.saturating_mul(2)
        && let Some(bytes) = hex(trimmed)
    {
        return Ok(bytes);
    }
    // Decoded straight into a zeroizing buffer, so no copy of the key is left behind.
    if trimmed.len() <= len.saturating_mul(2) {
        let mut decoded = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(trimmed.len())]);
        if let Ok(n) = STANDARD.decode_slice(trimmed, decoded.as_mut_slice())
            && n == len
        {
            decoded.truncate(n);
            return Ok(decoded);
        }
    }
    Err(format!(
        "a {spec} key is {len} raw bytes, or their hex ({} characters) or base64 as text; \
         this file has {} bytes that are none of these",
        len.saturating_mul(2),
        file.len()
    ))
}

/// Hex digits (either case) to bytes; `None` unless every character is a hex digit and
/// there is an even number of them.
fn hex(digits: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(digits.len() / 2));
    for pair in digits.chunks_exact(2) {
        let (high, low) = match pair {
            [high, low] => (nibble(*high)?, nibble(*low)?),
            _ => return None,
        };
        out.push(high << 4 | low);
    }
    Some(out)
}

fn asymmetric(spec: KeySpec, file: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let trimmed = file.trim_ascii_start();
    if !trimmed.starts_with(b"-----BEGIN") {
        // DER PKCS#8, or an SM2 scalar; the wrapping checks it against the spec.
        return Ok(Zeroizing::new(file.to_vec()));
    }
    let pem = std::str::from_utf8(file).map_err(|_| "a PEM file that is not text".to_owned())?;
    let label = pem
        .trim_start()
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("-----BEGIN "))
        .and_then(|line| line.strip_suffix("-----"))
        .unwrap_or("");
    if label != PRIVATE_KEY_LABEL {
        return Err(format!(
            "a {spec} key must be unencrypted PKCS#8 (-----BEGIN PRIVATE KEY-----), not \
             -----BEGIN {label}-----; convert it with `openssl pkcs8 -topk8 -nocrypt`"
        ));
    }
    pem_decode(PRIVATE_KEY_LABEL, pem)
        .map(Zeroizing::new)
        .ok_or_else(|| "a PEM private key that does not decode".to_owned())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn symmetric_material_in_three_forms() {
        let raw: Vec<u8> = (0u8..32).collect();
        let lower: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let upper = lower.to_uppercase();
        let b64 = STANDARD.encode(&raw);
        for file in [
            raw.clone(),
            format!("{lower}\n").into_bytes(),
            upper.into_bytes(),
            format!("  {b64}\r\n").into_bytes(),
        ] {
            assert_eq!(
                material(KeySpec::Aes256, &file).map(|m| m.to_vec()),
                Ok(raw.clone())
            );
        }
        // 16 raw bytes are the SM4 key itself; their hex is 32 characters.
        let sm4 = material(KeySpec::Sm4, &lower.as_bytes()[..32]).map(|m| m.to_vec());
        assert_eq!(sm4, Ok(raw[..16].to_vec()));
        let wrong = material(KeySpec::Aes256, &raw[..31]);
        assert!(wrong.is_err_and(|e| e.contains("31 bytes")));
    }

    #[test]
    fn key_pairs_want_pkcs8() {
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let refused = material(KeySpec::Rsa2048, rsa.as_bytes());
        assert!(refused.is_err_and(|e| e.contains("pkcs8")));
        let pem = "-----BEGIN PRIVATE KEY-----\nAQID\n-----END PRIVATE KEY-----\n";
        let der = material(KeySpec::EcP256, pem.as_bytes()).map(|m| m.to_vec());
        assert_eq!(der, Ok(vec![1, 2, 3]));
        let raw = material(KeySpec::EcSm2, &[7; 32]).map(|m| m.to_vec());
        assert_eq!(raw, Ok(vec![7; 32]));
    }

    #[test]
    fn default_wrapping_follows_the_spec() {
        let pick = |spec| wrapping(spec, None, None).map(|(w, a)| (w.as_str(), a.as_str()));
        assert_eq!(
            pick(KeySpec::Aes256),
            Ok(("RSA_2048", "RSAES_OAEP_SHA_256"))
        );
        assert_eq!(pick(KeySpec::Sm4), Ok(("EC_SM2", "SM2PKE")));
        for spec in [KeySpec::Rsa2048, KeySpec::EcP256, KeySpec::EcP256K] {
            assert_eq!(
                pick(spec),
                Ok(("RSA_2048", "RSAES_OAEP_SHA_256_AES_256_ECB_PKCS7_PAD"))
            );
        }
        assert_eq!(pick(KeySpec::EcSm2), Ok(("EC_SM2", "SM2PKE_SM4_ECB")));
        assert!(wrapping(KeySpec::EcP256, Some("EC_SM2"), None).is_err());
        assert!(wrapping(KeySpec::Aes256, Some("EC_SM2"), Some("RSAES_OAEP_SHA_256")).is_err());
        assert_eq!(
            wrapping(KeySpec::Aes256, Some("EC_SM2"), None).map(|(_, a)| a),
            Ok(WrappingAlgorithm::Sm2Pke)
        );
    }
}
