//! Re-import of key material (`UnwrapKeyMaterial.bound`) on the software engine: the
//! node unwraps the new material, opens the key version's current blob, and accepts
//! only the same key; the comparison never leaves the node. Material is wrapped the way
//! a user would, with [`strongroom_crypto::wrap::wrap_key_material`].

use strongroom_crypto::blob::DomainKey;
use strongroom_crypto::material::KeyMaterial;
use strongroom_crypto::public::PublicKey;
use strongroom_crypto::random::public_bytes;
use strongroom_crypto::spec::{Algorithm, KeySpec, MessageType, WrappingAlgorithm};
use strongroom_crypto::wrap::wrap_key_material;
use strongroom_hsm::backend::{Backend, Op};
use strongroom_hsm::error::HsmError;
use strongroom_hsm::software::SoftwareBackend;
use strongroom_proto::hsm::v1::{self as pb, error::Code, response::Result as R};

const ENC: &str = "ENCRYPT/DECRYPT";
const SIGN: &str = "SIGN/VERIFY";
const DIFFERS: &str = "the material differs from the material this key version already holds";

fn backend() -> SoftwareBackend {
    SoftwareBackend::new(DomainKey::generate().unwrap(), pb::StatusReply::default()).unwrap()
}

fn key_ref(key_id: &str, version_id: &str, spec: &str, usage: &str, blob: &[u8]) -> pb::KeyRef {
    pb::KeyRef {
        key_id: key_id.to_owned(),
        version_id: version_id.to_owned(),
        key_spec: spec.to_owned(),
        key_usage: usage.to_owned(),
        blob: blob.to_vec(),
    }
}

/// A wrapping key of `spec` for key `k`, as GetParametersForImport makes it.
struct Wrapping {
    key: pb::KeyRef,
    public_key: Vec<u8>,
}

fn wrapping_key(backend: &SoftwareBackend, spec: &str) -> Wrapping {
    let R::GenerateWrappingKey(made) = backend
        .execute(Op::GenerateWrappingKey(pb::GenerateWrappingKey {
            key_id: "k".to_owned(),
            version_id: "import-token".to_owned(),
            wrapping_key_spec: spec.to_owned(),
        }))
        .unwrap()
    else {
        panic!()
    };
    Wrapping {
        key: key_ref("k", "import-token", spec, ENC, &made.blob),
        public_key: made.public_key,
    }
}

/// UnwrapKeyMaterial of `material` (wrapped here, freshly) into version `v1` of `k`.
fn import(
    backend: &SoftwareBackend,
    wrapping: &Wrapping,
    algorithm: WrappingAlgorithm,
    (spec, usage): (&str, &str),
    material: &[u8],
    bound: Option<pb::KeyRef>,
) -> Result<pb::KeyBlobReply, HsmError> {
    let target: KeySpec = spec.parse().unwrap();
    let encrypted = wrap_key_material(&wrapping.public_key, algorithm, target, material).unwrap();
    backend
        .execute(Op::UnwrapKeyMaterial(pb::UnwrapKeyMaterial {
            wrapping_key: Some(wrapping.key.clone()),
            wrapping_algorithm: algorithm.to_string(),
            encrypted_key_material: encrypted,
            key_id: "k".to_owned(),
            version_id: "v1".to_owned(),
            key_spec: spec.to_owned(),
            key_usage: usage.to_owned(),
            bound,
        }))
        .map(|reply| {
            let R::UnwrapKeyMaterial(made) = reply else {
                panic!("another reply: {reply:?}")
            };
            made
        })
}

fn assert_code(result: Result<pb::KeyBlobReply, HsmError>, code: Code, what: &str) -> HsmError {
    match result {
        Err(e) if e.code == code => e,
        other => panic!("{what}: expected {code:?}, got {other:?}"),
    }
}

fn encrypt(backend: &SoftwareBackend, key: &pb::KeyRef, plaintext: &[u8]) -> pb::EncryptReply {
    let R::Encrypt(out) = backend
        .execute(Op::Encrypt(pb::Encrypt {
            key: Some(key.clone()),
            plaintext: plaintext.to_vec(),
            ..Default::default()
        }))
        .unwrap()
    else {
        panic!()
    };
    out
}

fn decrypt(backend: &SoftwareBackend, key: &pb::KeyRef, encrypted: &pb::EncryptReply) -> Vec<u8> {
    let R::Decrypt(out) = backend
        .execute(Op::Decrypt(pb::Decrypt {
            key: Some(key.clone()),
            ciphertext: encrypted.ciphertext.clone(),
            iv: encrypted.iv.clone(),
            ..Default::default()
        }))
        .unwrap()
    else {
        panic!()
    };
    out.plaintext
}

/// The refusals every target shares: `bound` presented as another key version, or a
/// blob that does not open as this version.
fn assert_bound_is_checked(
    backend: &SoftwareBackend,
    wrapping: &Wrapping,
    algorithm: WrappingAlgorithm,
    (spec, usage): (&str, &str),
    material: &[u8],
    current: &pb::KeyRef,
) {
    let target = (spec, usage);
    for (what, change) in [
        (
            "another key id",
            (|r: &mut pb::KeyRef| r.key_id = "other".into()) as fn(&mut _),
        ),
        ("another version id", |r| r.version_id = "v0".into()),
        ("another usage", |r| {
            r.key_usage = "SIGN/VERIFY/OTHER".into()
        }),
        ("a tampered blob", |r| {
            let last = r.blob.len() - 1;
            r.blob[last] ^= 1;
        }),
        ("an empty blob", |r| r.blob.clear()),
    ] {
        let mut bound = current.clone();
        change(&mut bound);
        let e = assert_code(
            import(backend, wrapping, algorithm, target, material, Some(bound)),
            Code::InvalidBlob,
            what,
        );
        assert!(!e.message.contains(DIFFERS), "{what}: {e}");
    }
    // The blob of another key, presented with this version's binding.
    let R::GenerateKey(other) = backend
        .execute(Op::GenerateKey(pb::GenerateKey {
            key_id: "other".into(),
            version_id: "v1".into(),
            key_spec: spec.into(),
            key_usage: usage.into(),
        }))
        .unwrap()
    else {
        panic!()
    };
    let moved = key_ref("k", "v1", spec, usage, &other.blob);
    assert_code(
        import(backend, wrapping, algorithm, target, material, Some(moved)),
        Code::InvalidBlob,
        "another key's blob",
    );
}

#[test]
fn symmetric_reimport_accepts_only_the_same_material() {
    let backend = backend();
    let wrapping = wrapping_key(&backend, "RSA_2048");
    let algorithm = WrappingAlgorithm::RsaesOaepSha256;
    let target = ("Aliyun_AES_256", ENC);
    let material = public_bytes(32).unwrap();

    let first = import(&backend, &wrapping, algorithm, target, &material, None).unwrap();
    let current = key_ref("k", "v1", target.0, ENC, &first.blob);

    // The same material, wrapped afresh: a new blob of the same key.
    let again = import(
        &backend,
        &wrapping,
        algorithm,
        target,
        &material,
        Some(current.clone()),
    )
    .unwrap();
    assert!(again.public_key.is_empty());
    assert_ne!(again.blob, first.blob, "a fresh blob");
    let renewed = key_ref("k", "v1", target.0, ENC, &again.blob);
    let sealed = encrypt(&backend, &renewed, b"re-imported");
    assert_eq!(decrypt(&backend, &current, &sealed), b"re-imported");
    let sealed = encrypt(&backend, &current, b"original");
    assert_eq!(decrypt(&backend, &renewed, &sealed), b"original");

    // Other material: refused, and the message says why.
    let mut other = material.clone();
    other[31] ^= 1;
    let e = assert_code(
        import(
            &backend,
            &wrapping,
            algorithm,
            target,
            &other,
            Some(current.clone()),
        ),
        Code::ImportFailed,
        "other material",
    );
    assert_eq!(e.message, DIFFERS);
    // Without `bound` the node has nothing to compare with (a first import).
    import(&backend, &wrapping, algorithm, target, &other, None).unwrap();

    // A bound blob of another spec: refused before anything is compared.
    let mut aes128 = current.clone();
    aes128.key_spec = "Aliyun_AES_128".into();
    assert_code(
        import(
            &backend,
            &wrapping,
            algorithm,
            target,
            &material,
            Some(aes128),
        ),
        Code::InvalidBlob,
        "another spec",
    );
    assert_bound_is_checked(&backend, &wrapping, algorithm, target, &material, &current);
}

#[test]
fn sm4_reimport_through_sm2pke() {
    let backend = backend();
    let wrapping = wrapping_key(&backend, "EC_SM2");
    let algorithm = WrappingAlgorithm::Sm2Pke;
    let target = ("Aliyun_SM4", ENC);
    let material = public_bytes(16).unwrap();
    let first = import(&backend, &wrapping, algorithm, target, &material, None).unwrap();
    let current = key_ref("k", "v1", target.0, ENC, &first.blob);
    let again = import(
        &backend,
        &wrapping,
        algorithm,
        target,
        &material,
        Some(current.clone()),
    )
    .unwrap();
    let renewed = key_ref("k", "v1", target.0, ENC, &again.blob);
    let sealed = encrypt(&backend, &renewed, b"sm4");
    assert_eq!(decrypt(&backend, &current, &sealed), b"sm4");
    let e = assert_code(
        import(
            &backend,
            &wrapping,
            algorithm,
            target,
            &public_bytes(16).unwrap(),
            Some(current),
        ),
        Code::ImportFailed,
        "other SM4 material",
    );
    assert_eq!(e.message, DIFFERS);
}

#[test]
fn key_pair_reimport_accepts_only_the_same_key() {
    let backend = backend();
    let wrapping = wrapping_key(&backend, "RSA_2048");
    let algorithm = WrappingAlgorithm::RsaesOaepSha256Aes256EcbPkcs7Pad;
    let target = ("EC_P256", SIGN);
    let original = KeyMaterial::generate(KeySpec::EcP256).unwrap();
    let pkcs8 = original.to_secret_bytes().unwrap();

    let first = import(
        &backend,
        &wrapping,
        algorithm,
        target,
        pkcs8.expose_secret(),
        None,
    )
    .unwrap();
    let current = key_ref("k", "v1", target.0, SIGN, &first.blob);
    let again = import(
        &backend,
        &wrapping,
        algorithm,
        target,
        pkcs8.expose_secret(),
        Some(current.clone()),
    )
    .unwrap();
    assert_eq!(again.public_key, first.public_key);
    assert_eq!(
        again.public_key,
        original.public_key().unwrap().to_der(),
        "the user's own key"
    );
    // Signed with the new blob, verified with the old one and with the public key.
    let renewed = key_ref("k", "v1", target.0, SIGN, &again.blob);
    let R::Sign(signed) = backend
        .execute(Op::Sign(pb::Sign {
            key: Some(renewed),
            message: b"re-imported".to_vec(),
            ..Default::default()
        }))
        .unwrap()
    else {
        panic!()
    };
    let R::Verify(verified) = backend
        .execute(Op::Verify(pb::Verify {
            key: Some(current.clone()),
            message: b"re-imported".to_vec(),
            signature: signed.signature.clone(),
            ..Default::default()
        }))
        .unwrap()
    else {
        panic!()
    };
    assert!(verified.valid);
    let public = PublicKey::from_der(KeySpec::EcP256, &first.public_key).unwrap();
    assert!(
        public
            .verify(
                Algorithm::EcdsaSha256,
                b"re-imported",
                MessageType::Raw,
                &signed.signature
            )
            .unwrap()
    );

    // Another P-256 key: refused.
    let other = KeyMaterial::generate(KeySpec::EcP256)
        .unwrap()
        .to_secret_bytes()
        .unwrap();
    let e = assert_code(
        import(
            &backend,
            &wrapping,
            algorithm,
            target,
            other.expose_secret(),
            Some(current.clone()),
        ),
        Code::ImportFailed,
        "another P-256 key",
    );
    assert_eq!(e.message, DIFFERS);
    assert_bound_is_checked(
        &backend,
        &wrapping,
        algorithm,
        target,
        pkcs8.expose_secret(),
        &current,
    );
}

#[test]
fn sm2_reimport_accepts_the_scalar_form_of_the_same_key() {
    let backend = backend();
    let wrapping = wrapping_key(&backend, "EC_SM2");
    let algorithm = WrappingAlgorithm::Sm2PkeSm4Ecb;
    let target = ("EC_SM2", SIGN);
    let original = KeyMaterial::generate(KeySpec::EcSm2).unwrap();
    let pkcs8 = original.to_secret_bytes().unwrap();
    let first = import(
        &backend,
        &wrapping,
        algorithm,
        target,
        pkcs8.expose_secret(),
        None,
    )
    .unwrap();
    let current = key_ref("k", "v1", target.0, SIGN, &first.blob);
    // ECPrivateKey inside the PKCS#8: `version INTEGER 1, privateKey OCTET STRING (32)`.
    let der = pkcs8.expose_secret();
    let marker = [0x02, 0x01, 0x01, 0x04, 0x20];
    let at = der.windows(5).position(|w| w == marker).unwrap() + 5;
    let scalar = der[at..at + 32].to_vec();
    let again = import(
        &backend,
        &wrapping,
        algorithm,
        target,
        &scalar,
        Some(current.clone()),
    )
    .unwrap();
    assert_eq!(again.public_key, first.public_key);
    let other = KeyMaterial::generate(KeySpec::EcSm2)
        .unwrap()
        .to_secret_bytes()
        .unwrap();
    assert_code(
        import(
            &backend,
            &wrapping,
            algorithm,
            target,
            other.expose_secret(),
            Some(current),
        ),
        Code::ImportFailed,
        "another SM2 key",
    );
}
