//! Key blobs: material sealed under the domain key, bound to key id, version id and
//! key spec (DESIGN.md).

use strongroom_crypto::blob::{BlobBinding, DomainKey};
use strongroom_crypto::error::CryptoError;
use strongroom_crypto::material::KeyMaterial;
use strongroom_crypto::secret::SecretBytes;
use strongroom_crypto::spec::KeySpec;

const KEY: &str = "key-hzz6700000000000000001";
const VERSION: &str = "2ab1a983-7072-4bbc-a582-584b5bd80001";

fn binding(spec: KeySpec) -> BlobBinding<'static> {
    BlobBinding {
        key_id: KEY,
        version_id: VERSION,
        spec,
    }
}

#[test]
fn every_spec_seals_and_opens() {
    let domain = DomainKey::generate().unwrap();
    for spec in KeySpec::ALL {
        let material = KeyMaterial::generate(*spec).unwrap();
        let blob = domain.seal_key(&binding(*spec), &material).unwrap();
        let plain = material.to_secret_bytes().unwrap();
        // The blob does not contain the material in the clear.
        assert!(
            !blob
                .windows(16)
                .any(|w| plain.expose_secret().windows(16).any(|p| p == w)),
            "{spec}: plaintext visible in blob"
        );
        let opened = domain.open_key(&binding(*spec), &blob).unwrap();
        assert_eq!(opened.to_secret_bytes().unwrap(), plain);
    }
}

#[test]
fn a_blob_moved_to_another_key_version_or_spec_does_not_open() {
    let domain = DomainKey::generate().unwrap();
    let material = KeyMaterial::generate(KeySpec::Aes256).unwrap();
    let blob = domain
        .seal_key(&binding(KeySpec::Aes256), &material)
        .unwrap();
    let other_key = BlobBinding {
        key_id: "key-hzz6700000000000000002",
        ..binding(KeySpec::Aes256)
    };
    let other_version = BlobBinding {
        version_id: "2ab1a983-7072-4bbc-a582-584b5bd80002",
        ..binding(KeySpec::Aes256)
    };
    // Same 32-byte length, so only the binding can tell.
    let other_spec = binding(KeySpec::Sm4);
    // Shifting a character between fields must not collide.
    let shifted = BlobBinding {
        key_id: "key-hzz67000000000000000012",
        version_id: "ab1a983-7072-4bbc-a582-584b5bd80001",
        spec: KeySpec::Aes256,
    };
    for wrong in [other_key, other_version, other_spec, shifted] {
        assert_eq!(
            domain.open_key(&wrong, &blob).unwrap_err(),
            CryptoError::UnsealFailed,
            "{wrong:?}"
        );
    }
}

#[test]
fn another_domain_key_or_tampering_does_not_open() {
    let domain = DomainKey::generate().unwrap();
    let other = DomainKey::generate().unwrap();
    let material = KeyMaterial::generate(KeySpec::EcP256).unwrap();
    let blob = domain
        .seal_key(&binding(KeySpec::EcP256), &material)
        .unwrap();
    assert_eq!(
        other
            .open_key(&binding(KeySpec::EcP256), &blob)
            .unwrap_err(),
        CryptoError::UnsealFailed
    );
    for i in [0, 1, 12, 13, blob.len() / 2, blob.len() - 1] {
        let mut bad = blob.clone();
        bad[i] ^= 0x80;
        assert!(
            domain.open_key(&binding(KeySpec::EcP256), &bad).is_err(),
            "flip at {i}"
        );
    }
    assert!(
        domain
            .open_key(&binding(KeySpec::EcP256), &blob[..10])
            .is_err()
    );
    assert!(domain.open_key(&binding(KeySpec::EcP256), &[]).is_err());
}

#[test]
fn the_binding_spec_must_match_the_material() {
    let domain = DomainKey::generate().unwrap();
    let material = KeyMaterial::generate(KeySpec::Aes128).unwrap();
    assert!(domain.seal_key(&binding(KeySpec::Sm4), &material).is_err());
}

#[test]
fn domain_keys_restore_and_fingerprint() {
    let domain = DomainKey::generate().unwrap();
    let copy = DomainKey::from_secret(domain.expose_secret().clone()).unwrap();
    assert_eq!(domain.fingerprint().unwrap(), copy.fingerprint().unwrap());
    assert_eq!(domain.fingerprint().unwrap().len(), 32);
    assert_ne!(
        domain.fingerprint().unwrap(),
        DomainKey::generate().unwrap().fingerprint().unwrap()
    );
    // The fingerprint is not the key.
    let secret_hex: String = domain
        .expose_secret()
        .expose_secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!secret_hex.contains(&domain.fingerprint().unwrap()));
    // A blob sealed by one copy opens with the other (what cluster sync relies on).
    let material = KeyMaterial::generate(KeySpec::EcSm2).unwrap();
    let blob = domain
        .seal_key(&binding(KeySpec::EcSm2), &material)
        .unwrap();
    assert!(copy.open_key(&binding(KeySpec::EcSm2), &blob).is_ok());
    assert!(DomainKey::from_secret(SecretBytes::zeroed(31)).is_err());
    assert_eq!(format!("{domain:?}"), "DomainKey([REDACTED])");
}
