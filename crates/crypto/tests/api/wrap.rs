//! The user's side of BYOK ([`strongroom_crypto::wrap`]): material wrapped by
//! [`wrap_key_material`] under a wrapping key's public half unwraps, with
//! [`unwrap_key_material`], to the same key, for every supported form and target. The
//! unwrapping side is itself checked against independent wrapping code (Python
//! `cryptography`, OpenSSL) in `import_wrapping`, so these round trips pin the wrapping
//! side to the same wire forms.
//!
//! Then the refusals: refused algorithms, targets an algorithm cannot carry, public keys
//! of the wrong kind, material of the wrong length or shape.

use strongroom_crypto::error::CryptoError;
use strongroom_crypto::import::{generate_wrapping_key, unwrap_key_material};
use strongroom_crypto::material::KeyMaterial;
use strongroom_crypto::random::public_bytes;
use strongroom_crypto::spec::{KeySpec, WrappingAlgorithm, WrappingKeySpec};
use strongroom_crypto::wrap::wrap_key_material;

const RSA_OAEP: WrappingAlgorithm = WrappingAlgorithm::RsaesOaepSha256;
const SM2PKE: WrappingAlgorithm = WrappingAlgorithm::Sm2Pke;
const RSA_ENVELOPE: WrappingAlgorithm = WrappingAlgorithm::RsaesOaepSha256Aes256EcbPkcs7Pad;
const SM2_ENVELOPE: WrappingAlgorithm = WrappingAlgorithm::Sm2PkeSm4Ecb;

/// A fresh wrapping key and the DER public key GetParametersForImport would hand out.
fn wrapping_key(spec: WrappingKeySpec) -> (KeyMaterial, Vec<u8>) {
    let key = generate_wrapping_key(spec).unwrap();
    let public = key.public_key().unwrap().to_der();
    (key, public)
}

/// The raw 32-byte scalar of an SM2 PKCS#8 key (RFC 5915 `ECPrivateKey`:
/// `version INTEGER 1, privateKey OCTET STRING (32)`).
fn sm2_scalar(pkcs8: &[u8]) -> Vec<u8> {
    let marker = [0x02, 0x01, 0x01, 0x04, 0x20];
    let at = pkcs8
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("an ECPrivateKey inside the PKCS#8")
        + marker.len();
    pkcs8[at..at + 32].to_vec()
}

fn assert_same_symmetric(unwrapped: &KeyMaterial, material: &[u8], what: &str) {
    assert_eq!(
        unwrapped.to_secret_bytes().unwrap().expose_secret(),
        material,
        "{what}"
    );
}

fn assert_same_pair(unwrapped: &KeyMaterial, original: &KeyMaterial, what: &str) {
    assert_eq!(unwrapped.spec(), original.spec(), "{what}");
    assert_eq!(
        unwrapped.public_key().unwrap(),
        original.public_key().unwrap(),
        "{what}"
    );
    assert!(unwrapped.is_same_key(original), "{what}");
}

// --- round trips ------------------------------------------------------------------------

#[test]
fn direct_algorithms_round_trip_every_symmetric_spec() {
    for (algorithm, spec) in [
        (RSA_OAEP, WrappingKeySpec::Rsa2048),
        (SM2PKE, WrappingKeySpec::EcSm2),
    ] {
        let (key, public) = wrapping_key(spec);
        for target in [
            KeySpec::Aes256,
            KeySpec::Aes192,
            KeySpec::Aes128,
            KeySpec::Sm4,
        ] {
            let what = format!("{algorithm} {target}");
            let material = public_bytes(target.symmetric_key_len().unwrap()).unwrap();
            let wrapped = wrap_key_material(&public, algorithm, target, &material).unwrap();
            if algorithm == RSA_OAEP {
                assert_eq!(wrapped.len(), 256, "{what}");
            } else {
                // GM/T 0009 DER, the form of this crate's SM2 encryption.
                assert_eq!(wrapped.first(), Some(&0x30), "{what}");
            }
            let unwrapped = unwrap_key_material(&key, algorithm, target, &wrapped).unwrap();
            assert_eq!(unwrapped.spec(), target, "{what}");
            assert_same_symmetric(&unwrapped, &material, &what);
            // Randomised: wrapping twice never gives the same bytes.
            let again = wrap_key_material(&public, algorithm, target, &material).unwrap();
            assert_ne!(wrapped, again, "{what}");
        }
    }
}

#[test]
fn rsa_envelope_round_trips_every_key_pair_spec() {
    let (key, public) = wrapping_key(WrappingKeySpec::Rsa2048);
    for target in [
        KeySpec::Rsa2048,
        KeySpec::Rsa3072,
        KeySpec::EcP256,
        KeySpec::EcP256K,
        KeySpec::EcSm2,
    ] {
        let what = format!("{RSA_ENVELOPE} {target}");
        let original = KeyMaterial::generate(target).unwrap();
        let pkcs8 = original.to_secret_bytes().unwrap();
        let wrapped =
            wrap_key_material(&public, RSA_ENVELOPE, target, pkcs8.expose_secret()).unwrap();
        // OAEP(K) is 256 bytes; AES-ECB with PKCS#7 always adds 1..=16 bytes.
        let body = wrapped.len() - 256;
        assert_eq!(body % 16, 0, "{what}");
        assert!(body > pkcs8.len() && body <= pkcs8.len() + 16, "{what}");
        let unwrapped = unwrap_key_material(&key, RSA_ENVELOPE, target, &wrapped).unwrap();
        assert_same_pair(&unwrapped, &original, &what);
    }
}

#[test]
fn sm2_envelope_round_trips_pkcs8_and_raw_scalar() {
    let (key, public) = wrapping_key(WrappingKeySpec::EcSm2);
    let original = KeyMaterial::generate(KeySpec::EcSm2).unwrap();
    let pkcs8 = original.to_secret_bytes().unwrap();
    let scalar = sm2_scalar(pkcs8.expose_secret());
    for (form, material) in [("PKCS#8", pkcs8.expose_secret()), ("scalar", &scalar[..])] {
        let wrapped = wrap_key_material(&public, SM2_ENVELOPE, KeySpec::EcSm2, material).unwrap();
        // SM2(K) in DER, then SM4-ECB(d): exactly 32 bytes, no padding.
        assert_eq!(wrapped.first(), Some(&0x30), "{form}");
        let split = wrapped.len() - 32;
        assert_ne!(&wrapped[split..], &scalar[..], "{form}: d is encrypted");
        let unwrapped = unwrap_key_material(&key, SM2_ENVELOPE, KeySpec::EcSm2, &wrapped).unwrap();
        assert_same_pair(&unwrapped, &original, form);
    }
}

#[test]
fn a_wrapped_key_only_unwraps_under_its_own_wrapping_key() {
    let (_, public) = wrapping_key(WrappingKeySpec::Rsa2048);
    let (other, _) = wrapping_key(WrappingKeySpec::Rsa2048);
    let wrapped = wrap_key_material(&public, RSA_OAEP, KeySpec::Aes256, &[7; 32]).unwrap();
    assert_eq!(
        unwrap_key_material(&other, RSA_OAEP, KeySpec::Aes256, &wrapped).unwrap_err(),
        CryptoError::ImportUnwrapFailed
    );
}

// --- refusals ---------------------------------------------------------------------------

#[test]
fn refused_algorithms_are_refused() {
    let (_, public) = wrapping_key(WrappingKeySpec::Rsa2048);
    for algorithm in [
        WrappingAlgorithm::RsaesPkcs1V15,
        WrappingAlgorithm::RsaesOaepSha1,
    ] {
        assert_eq!(
            wrap_key_material(&public, algorithm, KeySpec::Aes256, &[7; 32]),
            Err(CryptoError::WrappingAlgorithmNotSupported(algorithm))
        );
    }
}

#[test]
fn targets_an_algorithm_cannot_carry_are_refused() {
    let (_, rsa) = wrapping_key(WrappingKeySpec::Rsa2048);
    let (_, sm2) = wrapping_key(WrappingKeySpec::EcSm2);
    for (public, algorithm, target) in [
        (&rsa, RSA_OAEP, KeySpec::Rsa2048),
        (&rsa, RSA_OAEP, KeySpec::EcSm2),
        (&sm2, SM2PKE, KeySpec::EcP256),
        (&rsa, RSA_ENVELOPE, KeySpec::Aes256),
        (&rsa, RSA_ENVELOPE, KeySpec::Sm4),
        (&sm2, SM2_ENVELOPE, KeySpec::EcP256),
        (&sm2, SM2_ENVELOPE, KeySpec::Sm4),
    ] {
        assert_eq!(
            wrap_key_material(public, algorithm, target, &[7; 32]),
            Err(CryptoError::ImportTargetNotAllowed { algorithm, target }),
            "{algorithm} {target}"
        );
    }
}

#[test]
fn public_keys_of_the_wrong_kind_are_refused() {
    let (_, rsa) = wrapping_key(WrappingKeySpec::Rsa2048);
    let (_, sm2) = wrapping_key(WrappingKeySpec::EcSm2);
    let rsa3072 = KeyMaterial::generate(KeySpec::Rsa3072)
        .unwrap()
        .public_key()
        .unwrap()
        .to_der();
    let p256 = KeyMaterial::generate(KeySpec::EcP256)
        .unwrap()
        .public_key()
        .unwrap()
        .to_der();
    for (public, algorithm, target, what) in [
        (&sm2, RSA_OAEP, KeySpec::Aes256, "an SM2 key for RSA-OAEP"),
        (&rsa, SM2PKE, KeySpec::Aes256, "an RSA key for SM2PKE"),
        (&rsa3072, RSA_OAEP, KeySpec::Aes256, "RSA-3072 for RSA_2048"),
        (&p256, SM2_ENVELOPE, KeySpec::EcSm2, "a P-256 key for SM2"),
        (&vec![0x30, 0x00], RSA_ENVELOPE, KeySpec::EcP256, "junk"),
    ] {
        assert!(
            matches!(
                wrap_key_material(public, algorithm, target, &[7; 32]),
                Err(CryptoError::InvalidPublicKey { .. })
            ),
            "{what}"
        );
    }
}

#[test]
fn material_that_does_not_fit_the_target_is_refused() {
    let (_, rsa) = wrapping_key(WrappingKeySpec::Rsa2048);
    let (_, sm2) = wrapping_key(WrappingKeySpec::EcSm2);
    let p256 = KeyMaterial::generate(KeySpec::EcP256)
        .unwrap()
        .to_secret_bytes()
        .unwrap();
    let rsa2048 = KeyMaterial::generate(KeySpec::Rsa2048)
        .unwrap()
        .to_secret_bytes()
        .unwrap();
    let curve_order_plus_one =
        hex::decode("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54124").unwrap();
    // (wrapping public key, algorithm, target, material, what the case is)
    type Case<'a> = (&'a [u8], WrappingAlgorithm, KeySpec, &'a [u8], &'a str);
    let cases: Vec<Case> = vec![
        (
            &rsa,
            RSA_OAEP,
            KeySpec::Aes256,
            &[7; 31],
            "AES-256, 31 bytes",
        ),
        (
            &rsa,
            RSA_OAEP,
            KeySpec::Aes256,
            &[7; 16],
            "AES-256, 16 bytes",
        ),
        (
            &rsa,
            RSA_OAEP,
            KeySpec::Aes128,
            &[7; 32],
            "AES-128, 32 bytes",
        ),
        (&rsa, RSA_OAEP, KeySpec::Sm4, &[], "SM4, empty"),
        (&sm2, SM2PKE, KeySpec::Sm4, &[7; 32], "SM4, 32 bytes"),
        (&sm2, SM2PKE, KeySpec::Aes192, &[7; 25], "AES-192, 25 bytes"),
        (
            &rsa,
            RSA_ENVELOPE,
            KeySpec::Rsa2048,
            p256.expose_secret(),
            "P-256 for RSA",
        ),
        (
            &rsa,
            RSA_ENVELOPE,
            KeySpec::Rsa3072,
            rsa2048.expose_secret(),
            "RSA-2048 for RSA-3072",
        ),
        (
            &rsa,
            RSA_ENVELOPE,
            KeySpec::EcP256,
            &[7; 32],
            "a raw scalar for P-256",
        ),
        (&rsa, RSA_ENVELOPE, KeySpec::EcSm2, &[], "empty"),
        (
            &sm2,
            SM2_ENVELOPE,
            KeySpec::EcSm2,
            p256.expose_secret(),
            "P-256 PKCS#8 for SM2",
        ),
        (
            &sm2,
            SM2_ENVELOPE,
            KeySpec::EcSm2,
            &[7; 31],
            "a 31-byte scalar",
        ),
        (
            &sm2,
            SM2_ENVELOPE,
            KeySpec::EcSm2,
            &[0; 32],
            "the zero scalar",
        ),
        (
            &sm2,
            SM2_ENVELOPE,
            KeySpec::EcSm2,
            &curve_order_plus_one,
            "a scalar past the order",
        ),
        (&sm2, SM2_ENVELOPE, KeySpec::EcSm2, &[], "empty"),
    ];
    for (public, algorithm, target, material, what) in cases {
        match wrap_key_material(public, algorithm, target, material) {
            Err(CryptoError::InvalidKeyMaterial { spec, .. }) => assert_eq!(spec, target, "{what}"),
            other => panic!("{what}: expected InvalidKeyMaterial, got {other:?}"),
        }
    }
}
