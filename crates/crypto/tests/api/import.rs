//! Importing key material: every spec round-trips through its export form, and
//! material of the wrong length, curve or size is refused.

use std::process::Command;

use strongroom_crypto::error::CryptoError;
use strongroom_crypto::material::KeyMaterial;
use strongroom_crypto::spec::KeySpec;

fn invalid(spec: KeySpec, bytes: &[u8]) -> bool {
    matches!(
        KeyMaterial::import(spec, bytes),
        Err(CryptoError::InvalidKeyMaterial { spec: s, .. }) if s == spec
    )
}

#[test]
fn every_spec_round_trips_through_its_export_form() {
    for spec in KeySpec::ALL {
        let material = KeyMaterial::generate(*spec).unwrap();
        let exported = material.to_secret_bytes().unwrap();
        let imported = KeyMaterial::import(*spec, exported.expose_secret()).unwrap();
        assert_eq!(imported.spec(), *spec);
        assert_eq!(imported.to_secret_bytes().unwrap(), exported, "{spec}");
        if spec.is_asymmetric() {
            assert_eq!(
                imported.public_key().unwrap(),
                material.public_key().unwrap()
            );
        } else {
            assert_eq!(Some(exported.len()), spec.symmetric_key_len());
        }
    }
}

#[test]
fn symmetric_material_of_the_wrong_length_is_refused() {
    for spec in [
        KeySpec::Aes256,
        KeySpec::Aes192,
        KeySpec::Aes128,
        KeySpec::Sm4,
    ] {
        let right = spec.symmetric_key_len().unwrap();
        for len in [0, 1, right - 1, right + 1, 64] {
            assert!(
                invalid(spec, &vec![0x42; len]),
                "{spec} accepted {len} bytes"
            );
        }
        assert!(KeyMaterial::import(spec, &vec![0x42; right]).is_ok());
    }
}

#[test]
fn key_pairs_of_another_kind_are_refused() {
    let export = |spec| {
        KeyMaterial::generate(spec)
            .unwrap()
            .to_secret_bytes()
            .unwrap()
    };
    let rsa2048 = export(KeySpec::Rsa2048);
    let p256 = export(KeySpec::EcP256);
    let k256 = export(KeySpec::EcP256K);
    let sm2 = export(KeySpec::EcSm2);
    // Wrong RSA size in either direction.
    assert!(invalid(KeySpec::Rsa3072, rsa2048.expose_secret()));
    assert!(invalid(KeySpec::Rsa4096, rsa2048.expose_secret()));
    // Wrong curve, every pairing.
    for (bytes, name) in [
        (&p256, "P-256"),
        (&k256, "secp256k1"),
        (&sm2, "SM2"),
        (&rsa2048, "RSA"),
    ] {
        for spec in [KeySpec::EcP256, KeySpec::EcP256K, KeySpec::EcSm2] {
            let same = matches!(
                (name, spec),
                ("P-256", KeySpec::EcP256)
                    | ("secp256k1", KeySpec::EcP256K)
                    | ("SM2", KeySpec::EcSm2)
            );
            assert_eq!(
                !invalid(spec, bytes.expose_secret()),
                same,
                "{name} as {spec}"
            );
        }
    }
    for spec in [
        KeySpec::Rsa2048,
        KeySpec::EcP256,
        KeySpec::EcP256K,
        KeySpec::EcSm2,
    ] {
        assert!(invalid(spec, b""), "{spec}: empty");
        assert!(invalid(spec, b"not DER at all"), "{spec}: garbage");
        // A truncated PKCS#8 document.
        let whole = export(spec);
        let cut = &whole.expose_secret()[..whole.len() / 2];
        assert!(invalid(spec, cut), "{spec}: truncated");
    }
}

#[test]
fn weak_rsa_keys_are_refused() {
    // A 1024-bit key from an independent generator (OpenSSL; installed by scripts/test.sh).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rsa1024.der");
    let status = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-outform",
            "DER",
            "-out",
        ])
        .arg(&path)
        .status()
        .expect("openssl must be installed: run scripts/test.sh");
    assert!(status.success());
    let der = std::fs::read(&path).unwrap();
    for spec in [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096] {
        assert!(invalid(spec, &der), "1024-bit key accepted as {spec}");
    }
}

#[test]
fn sm2_scalars_are_validated() {
    assert!(
        KeyMaterial::import_sm2_scalar(&[0u8; 32]).is_err(),
        "zero scalar"
    );
    assert!(
        KeyMaterial::import_sm2_scalar(&[0xff; 32]).is_err(),
        "scalar above the order"
    );
    assert!(
        KeyMaterial::import_sm2_scalar(&[1u8; 31]).is_err(),
        "short scalar"
    );
    let material = KeyMaterial::import_sm2_scalar(&[1u8; 32]).unwrap();
    assert_eq!(material.spec(), KeySpec::EcSm2);
}

#[test]
fn material_never_prints() {
    let material = KeyMaterial::import(KeySpec::Aes128, &[0xab; 16]).unwrap();
    let printed = format!("{material:?}");
    assert!(!printed.to_lowercase().contains("abab"), "{printed}");
    assert!(printed.contains("Aes128"));
}
