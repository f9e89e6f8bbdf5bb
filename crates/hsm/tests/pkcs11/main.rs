//! The PKCS#11 backend against a real SoftHSM2 token.
//!
//! Every test runs in a child process of this binary with its own domain key label
//! (see `support.rs`). Signatures are checked by the crypto core's verifiers (aws-lc-rs
//! for RSA and P-256, k256 for secp256k1), not by the token. Ciphertexts cannot be
//! checked outside the token (the key never leaves it), so decryption is checked to
//! fail on every tampering instead. When SoftHSM2 is missing the tests fail and say to
//! run `scripts/test.sh`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::as_conversions,
    reason = "tests"
)]

#[macro_use]
mod support;

use std::sync::Arc;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use strongroom_crypto::blob::DomainKey;
use strongroom_crypto::hash;
use strongroom_crypto::material::KeyMaterial;
use strongroom_crypto::public::PublicKey;
use strongroom_crypto::spec::{Algorithm, KeySpec, MessageType};
use strongroom_hsm::backend::{Backend, Op};
use strongroom_hsm::pkcs11::Pkcs11Backend;
use strongroom_hsm::software::SoftwareBackend;
use strongroom_proto::hsm::v1::{self as pb, error::Code};

use support::{Token, assert_code, call, generate, key_ref};

const ENC: &str = "ENCRYPT/DECRYPT";
const SIGN: &str = "SIGN/VERIFY";

/// A test that runs against SoftHSM2 in a child process.
macro_rules! softhsm_test {
    ($(#[$meta:meta])* fn $name:ident($token:ident) $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            support::in_softhsm(stringify!($name), |$token: &Token| $body)
        }
    };
}

fn encrypt(
    backend: &dyn Backend,
    key: &pb::KeyRef,
    plaintext: &[u8],
    aad: &[u8],
) -> pb::EncryptReply {
    reply!(
        backend.execute(Op::Encrypt(pb::Encrypt {
            key: Some(key.clone()),
            plaintext: plaintext.to_vec(),
            aad: aad.to_vec(),
            ..Default::default()
        })),
        Encrypt
    )
}

fn decrypt_op(key: &pb::KeyRef, ciphertext: &[u8], iv: &[u8], aad: &[u8]) -> Op {
    Op::Decrypt(pb::Decrypt {
        key: Some(key.clone()),
        ciphertext: ciphertext.to_vec(),
        iv: iv.to_vec(),
        aad: aad.to_vec(),
        ..Default::default()
    })
}

fn sign(
    backend: &Pkcs11Backend,
    key: &pb::KeyRef,
    algorithm: &str,
    message: &[u8],
    message_type: &str,
) -> pb::SignReply {
    reply!(
        call(
            backend,
            Op::Sign(pb::Sign {
                key: Some(key.clone()),
                algorithm: algorithm.into(),
                message: message.to_vec(),
                message_type: message_type.into(),
            })
        ),
        Sign
    )
}

/// The `s` of a DER ECDSA signature, left-padded to 32 bytes.
fn ecdsa_s(der: &[u8]) -> [u8; 32] {
    assert_eq!(der[0], 0x30);
    assert_eq!(der[1] as usize, der.len() - 2);
    assert_eq!(der[2], 0x02);
    let r_len = der[3] as usize;
    let s_at = 4 + r_len;
    assert_eq!(der[s_at], 0x02);
    let s = &der[s_at + 2..s_at + 2 + der[s_at + 1] as usize];
    let s = s.strip_prefix(&[0]).unwrap_or(s);
    let mut out = [0u8; 32];
    out[32 - s.len()..].copy_from_slice(s);
    out
}

softhsm_test! {
    /// The domain and binding keys are created once and found again by a second
    /// backend: blobs made by the first open under the second, and the fingerprint
    /// stays. Another label is another domain key.
    fn open_creates_the_domain_key_once_and_reopen_finds_it(token) {
        let first = token.open("reopen");
        let status = first.status();
        assert!(!status.sealed && status.synced);
        assert_eq!(status.role, "pkcs11");
        assert!(status.node_id.starts_with("strongroom-test/"), "{}", status.node_id);
        assert_eq!(status.domain_key_fingerprint.len(), 32);
        assert_eq!(first.fingerprint(), status.domain_key_fingerprint);
        assert_eq!(
            reply!(call(&first, Op::Status(pb::Status {})), Status),
            status
        );

        let blob = generate(&first, "k", "Aliyun_AES_256", ENC);
        let key = key_ref("k", "Aliyun_AES_256", ENC, &blob);
        let sealed = encrypt(&first, &key, b"survives a reopen", b"");
        let fingerprint = first.fingerprint().to_owned();
        drop(first);

        let second = token.open("reopen");
        assert_eq!(second.fingerprint(), fingerprint);
        let opened = reply!(call(&second, decrypt_op(&key, &sealed.ciphertext, &sealed.iv, b"")), Decrypt);
        assert_eq!(opened.plaintext, b"survives a reopen");

        let other = token.open("reopen-other");
        assert_ne!(other.fingerprint(), fingerprint);
        assert_code(call(&other, decrypt_op(&key, &sealed.ciphertext, &sealed.iv, b"")), Code::InvalidBlob);

        // One domain key and one binding key under the label, however often opened.
        let (_ctx, session) = token_session(token);
        for label in ["reopen", "reopen-binding"] {
            let found = session
                .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
                .unwrap();
            assert_eq!(found.len(), 1, "{label}");
        }
    }
}

/// A logged-in session of the test's own on the token (the module is shared with the
/// backends of this process).
fn token_session(token: &Token) -> (Pkcs11, cryptoki::session::Session) {
    let ctx = Pkcs11::new(support::module_path(token)).unwrap();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::CryptokiAlreadyInitialized,
            _,
        )) => {}
        Err(e) => panic!("{e}"),
    }
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == support::TOKEN_LABEL)
        .unwrap();
    let session = ctx.open_rw_session(slot).unwrap();
    match session.login(UserType::User, Some(&AuthPin::from(support::USER_PIN))) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
        }
        Err(e) => panic!("{e}"),
    }
    (ctx, session)
}

softhsm_test! {
    /// The domain key cannot leave the token: not extractable, sensitive, its value
    /// unreadable, and it cannot even be wrapped.
    fn domain_key_is_not_extractable(token) {
        let _backend = token.open("sealed-in");
        let (_ctx, session) = token_session(token);
        for label in ["sealed-in", "sealed-in-binding"] {
            let found = session
                .find_objects(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::Label(label.as_bytes().to_vec()),
                ])
                .unwrap();
            let key = found[0];
            let attributes = session
                .get_attributes(
                    key,
                    &[
                        AttributeType::Extractable,
                        AttributeType::Sensitive,
                        AttributeType::Token,
                        AttributeType::Value,
                    ],
                )
                .unwrap();
            assert!(attributes.contains(&Attribute::Extractable(false)), "{label}: {attributes:?}");
            assert!(attributes.contains(&Attribute::Sensitive(true)), "{label}");
            assert!(attributes.contains(&Attribute::Token(true)), "{label}");
            assert!(
                !attributes.iter().any(|a| matches!(a, Attribute::Value(_))),
                "{label}: the value was readable"
            );
        }
        let domain = session
            .find_objects(&[Attribute::Label(b"sealed-in".to_vec())])
            .unwrap()[0];
        assert!(session.wrap_key(&Mechanism::AesKeyWrapPad, domain, domain).is_err());
    }
}

softhsm_test! {
    /// AES-128/192/256 with GCM and CBC round-trip; a flipped tag or ciphertext bit,
    /// another AAD or IV fail with DECRYPTION_FAILED; parameters are checked like the
    /// software engine checks them.
    fn aes_round_trips_and_tampering_fails(token) {
        let backend = token.open("aes");
        for spec in ["Aliyun_AES_128", "Aliyun_AES_192", "Aliyun_AES_256"] {
            let blob = generate(&backend, spec, spec, ENC);
            assert!(blob.public_key.is_empty());
            let key = key_ref(spec, spec, ENC, &blob);
            let out = encrypt(&backend, &key, b"attack at dawn", b"context");
            assert_eq!(out.algorithm, "AES_GCM");
            assert_eq!(out.iv.len(), 12);
            assert_eq!(out.ciphertext.len(), 14 + 16);
            assert!(out.padding_mode.is_empty());
            let plain = reply!(call(&backend, decrypt_op(&key, &out.ciphertext, &out.iv, b"context")), Decrypt);
            assert_eq!(plain.plaintext, b"attack at dawn");
            assert_eq!(plain.algorithm, "AES_GCM");

            let mut tag = out.ciphertext.clone();
            *tag.last_mut().unwrap() ^= 1;
            assert_code(call(&backend, decrypt_op(&key, &tag, &out.iv, b"context")), Code::DecryptionFailed);
            let mut body = out.ciphertext.clone();
            body[0] ^= 0x80;
            assert_code(call(&backend, decrypt_op(&key, &body, &out.iv, b"context")), Code::DecryptionFailed);
            assert_code(call(&backend, decrypt_op(&key, &out.ciphertext, &out.iv, b"other")), Code::DecryptionFailed);
            let mut iv = out.iv.clone();
            iv[0] ^= 1;
            assert_code(call(&backend, decrypt_op(&key, &out.ciphertext, &iv, b"context")), Code::DecryptionFailed);
            assert_code(call(&backend, decrypt_op(&key, &out.ciphertext[..10], &out.iv, b"context")), Code::DecryptionFailed);

            // Empty plaintext, caller's IV.
            let given = reply!(
                call(&backend, Op::Encrypt(pb::Encrypt {
                    key: Some(key.clone()),
                    iv: vec![7; 12],
                    ..Default::default()
                })),
                Encrypt
            );
            assert_eq!(given.iv, vec![7; 12]);
            assert_eq!(given.ciphertext.len(), 16);

            // CBC, both paddings.
            for (padding, plaintext, expected_len) in [
                ("PKCS7_PADDING", &b"seventeen bytes!!"[..], 32),
                ("PKCS7_PADDING", &[4u8; 16][..], 32),
                ("NO_PADDING", &[5u8; 32][..], 32),
            ] {
                let out = reply!(
                    call(&backend, Op::Encrypt(pb::Encrypt {
                        key: Some(key.clone()),
                        plaintext: plaintext.to_vec(),
                        algorithm: "AES_CBC".into(),
                        padding_mode: padding.into(),
                        ..Default::default()
                    })),
                    Encrypt
                );
                assert_eq!(out.iv.len(), 16);
                assert_eq!(out.padding_mode, padding);
                assert_eq!(out.ciphertext.len(), expected_len);
                let plain = reply!(
                    call(&backend, Op::Decrypt(pb::Decrypt {
                        key: Some(key.clone()),
                        ciphertext: out.ciphertext.clone(),
                        algorithm: "AES_CBC".into(),
                        iv: out.iv.clone(),
                        padding_mode: padding.into(),
                        ..Default::default()
                    })),
                    Decrypt
                );
                assert_eq!(plain.plaintext, plaintext);
                assert_eq!(plain.algorithm, "AES_CBC");
            }
        }
    }
}

softhsm_test! {
    /// RSA signatures made in the token verify with the crypto core (aws-lc-rs), for
    /// PSS and PKCS#1 v1.5, RAW and DIGEST; the backend's own Verify agrees.
    fn rsa_signatures_verify_in_the_crypto_core(token) {
        let backend = token.open("rsa");
        for spec in [KeySpec::Rsa2048, KeySpec::Rsa3072] {
            let blob = generate(&backend, "rsa", spec.as_str(), SIGN);
            let public = PublicKey::from_der(spec, &blob.public_key).unwrap();
            let key = key_ref("rsa", spec.as_str(), SIGN, &blob);
            let got = reply!(call(&backend, Op::GetPublicKey(pb::GetPublicKey { key: Some(key.clone()) })), GetPublicKey);
            assert_eq!(got.public_key, blob.public_key);
            let message = b"pay 10 to bob";
            let digest = hash::sha256(message);
            for algorithm in [Algorithm::RsaPssSha256, Algorithm::RsaPkcs1Sha256] {
                for (input, message_type) in [(&message[..], MessageType::Raw), (&digest[..], MessageType::Digest)] {
                    let signed = sign(&backend, &key, algorithm.as_str(), input, message_type.as_str());
                    assert_eq!(signed.algorithm, algorithm.as_str());
                    assert_eq!(signed.signature.len() * 8, spec.rsa_bits().unwrap());
                    assert!(public.verify(algorithm, message, MessageType::Raw, &signed.signature).unwrap(), "{spec} {algorithm} {message_type}");
                    assert!(!public.verify(algorithm, b"pay 99 to bob", MessageType::Raw, &signed.signature).unwrap());
                    let verified = reply!(
                        call(&backend, Op::Verify(pb::Verify {
                            key: Some(key.clone()),
                            algorithm: algorithm.as_str().into(),
                            message: message.to_vec(),
                            signature: signed.signature.clone(),
                            ..Default::default()
                        })),
                        Verify
                    );
                    assert!(verified.valid);
                }
            }
            // The default is PSS.
            let signed = sign(&backend, &key, "", message, "");
            assert_eq!(signed.algorithm, "RSA_PSS_SHA_256");
        }
    }
}

softhsm_test! {
    /// ECDSA on P-256 and secp256k1 through raw CKM_ECDSA: DER signatures that the
    /// crypto core verifies, low-S on secp256k1 every time.
    fn ecdsa_signatures_verify_and_secp256k1_is_low_s(token) {
        let backend = token.open("ecdsa");
        let half_order = hex::decode("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0").unwrap();
        for spec in [KeySpec::EcP256, KeySpec::EcP256K] {
            let blob = generate(&backend, "ec", spec.as_str(), SIGN);
            let public = PublicKey::from_der(spec, &blob.public_key).unwrap();
            let key = key_ref("ec", spec.as_str(), SIGN, &blob);
            for i in 0..24u8 {
                let message = [i; 40];
                let (input, message_type) = if i % 2 == 0 {
                    (message.to_vec(), "RAW")
                } else {
                    (hash::sha256(&message).to_vec(), "DIGEST")
                };
                let signed = sign(&backend, &key, "ECDSA_SHA_256", &input, message_type);
                assert!(public.verify(Algorithm::EcdsaSha256, &message, MessageType::Raw, &signed.signature).unwrap(), "{spec}");
                if spec == KeySpec::EcP256K {
                    assert!(ecdsa_s(&signed.signature).as_slice() <= half_order.as_slice(), "high S");
                }
            }
            assert_code(
                call(&backend, Op::Sign(pb::Sign {
                    key: Some(key.clone()),
                    message: vec![1; 31],
                    message_type: "DIGEST".into(),
                    ..Default::default()
                })),
                Code::InvalidParameter,
            );
        }
    }
}

softhsm_test! {
    /// A blob opens only as the key it was made for, and not after any change.
    fn blobs_are_bound_and_tamper_evident(token) {
        let backend = token.open("binding");
        let aes = generate(&backend, "key-a", "Aliyun_AES_256", ENC);
        let rsa = generate(&backend, "key-r", "RSA_2048", SIGN);
        let good = key_ref("key-a", "Aliyun_AES_256", ENC, &aes);
        encrypt(&backend, &good, b"ok", b"");
        let sign_op = |key: pb::KeyRef| Op::Sign(pb::Sign { key: Some(key), message: b"m".to_vec(), ..Default::default() });

        let mut other_id = good.clone();
        other_id.key_id = "key-b".into();
        let mut other_version = good.clone();
        other_version.version_id = "v2".into();
        let mut other_spec = good.clone();
        other_spec.key_spec = "Aliyun_AES_128".into();
        for moved in [other_id, other_version, other_spec] {
            let e = assert_code(call(&backend, Op::Encrypt(pb::Encrypt { key: Some(moved), plaintext: b"x".to_vec(), ..Default::default() })), Code::InvalidBlob);
            assert!(!e.message.is_empty());
        }
        // An RSA blob presented as another size.
        let mut resized = key_ref("key-r", "RSA_3072", SIGN, &rsa);
        assert_code(call(&backend, sign_op(resized.clone())), Code::InvalidBlob);
        resized.key_spec = "RSA_2048".into();
        sign(&backend, &resized, "", b"m", "");

        for blob in [&aes.blob, &rsa.blob] {
            let (id, spec, usage) = if blob == &aes.blob { ("key-a", "Aliyun_AES_256", ENC) } else { ("key-r", "RSA_2048", SIGN) };
            let mut variants: Vec<Vec<u8>> = (0..blob.len()).step_by(7).map(|i| {
                let mut b = blob.clone();
                b[i] ^= 0x01;
                b
            }).collect();
            variants.push(blob[..blob.len() - 1].to_vec());
            variants.push([blob.as_slice(), &[0]].concat());
            variants.push(Vec::new());
            variants.push(vec![1; 80]);
            for tampered in variants {
                let key = pb::KeyRef { key_id: id.into(), version_id: "v1".into(), key_spec: spec.into(), key_usage: usage.into(), blob: tampered };
                let op = if spec == "RSA_2048" { sign_op(key) } else { Op::Encrypt(pb::Encrypt { key: Some(key), plaintext: b"x".to_vec(), ..Default::default() }) };
                assert_code(call(&backend, op), Code::InvalidBlob);
            }
        }
        // The blob of a software HSM node is not a token blob.
        let software = SoftwareBackend::new(DomainKey::generate().unwrap(), pb::StatusReply::default()).unwrap();
        let foreign = reply!(software.execute(Op::GenerateKey(pb::GenerateKey {
            key_id: "key-a".into(), version_id: "v1".into(), key_spec: "Aliyun_AES_256".into(), key_usage: ENC.into(),
        })), GenerateKey);
        let foreign = key_ref("key-a", "Aliyun_AES_256", ENC, &foreign);
        assert_code(call(&backend, Op::Encrypt(pb::Encrypt { key: Some(foreign), plaintext: b"x".to_vec(), ..Default::default() })), Code::InvalidBlob);
    }
}

softhsm_test! {
    /// What SoftHSM2 cannot do is refused with UNSUPPORTED, naming the token: SM2, SM4,
    /// SM3, RSA-OAEP with SHA-256 and the key import that needs it. OAEP with SHA-1
    /// works.
    fn sm_algorithms_and_oaep_sha256_are_unsupported(token) {
        let backend = token.open("unsupported");
        for (spec, usage) in [("Aliyun_SM4", ENC), ("EC_SM2", SIGN), ("EC_SM2", ENC)] {
            let e = assert_code(
                call(&backend, Op::GenerateKey(pb::GenerateKey { key_id: "k".into(), version_id: "v1".into(), key_spec: spec.into(), key_usage: usage.into() })),
                Code::Unsupported,
            );
            assert!(e.message.contains("strongroom-test"), "{e}");
        }
        let e = assert_code(call(&backend, Op::Hash(pb::Hash { algorithm: "SM3".into(), message: b"abc".to_vec() })), Code::Unsupported);
        assert!(e.message.contains("SM3"), "{e}");

        let blob = generate(&backend, "rsa-enc", "RSA_2048", ENC);
        let key = key_ref("rsa-enc", "RSA_2048", ENC, &blob);
        // The default for RSA ENCRYPT/DECRYPT is OAEP-SHA-256: refused both ways.
        let e = assert_code(call(&backend, Op::Encrypt(pb::Encrypt { key: Some(key.clone()), plaintext: b"x".to_vec(), ..Default::default() })), Code::Unsupported);
        assert!(e.message.contains("RSAES_OAEP_SHA_256"), "{e}");
        let public = PublicKey::from_der(KeySpec::Rsa2048, &blob.public_key).unwrap();
        let outside = public.encrypt(Algorithm::RsaesOaepSha256, b"secret").unwrap();
        assert_code(call(&backend, Op::Decrypt(pb::Decrypt { key: Some(key.clone()), ciphertext: outside, ..Default::default() })), Code::Unsupported);
        // SHA-1 OAEP: encrypted by the crypto core, decrypted by the token.
        let outside = public.encrypt(Algorithm::RsaesOaepSha1, b"secret").unwrap();
        let plain = reply!(call(&backend, Op::Decrypt(pb::Decrypt { key: Some(key.clone()), ciphertext: outside.clone(), algorithm: "RSAES_OAEP_SHA_1".into(), ..Default::default() })), Decrypt);
        assert_eq!(plain.plaintext, b"secret");
        let mut broken = outside;
        broken[10] ^= 1;
        assert_code(call(&backend, Op::Decrypt(pb::Decrypt { key: Some(key.clone()), ciphertext: broken, algorithm: "RSAES_OAEP_SHA_1".into(), ..Default::default() })), Code::DecryptionFailed);
        let sealed = reply!(call(&backend, Op::Encrypt(pb::Encrypt { key: Some(key.clone()), plaintext: b"round".to_vec(), algorithm: "RSAES_OAEP_SHA_1".into(), ..Default::default() })), Encrypt);
        let plain = reply!(call(&backend, Op::Decrypt(pb::Decrypt { key: Some(key.clone()), ciphertext: sealed.ciphertext, algorithm: "RSAES_OAEP_SHA_1".into(), ..Default::default() })), Decrypt);
        assert_eq!(plain.plaintext, b"round");

        for spec in ["RSA_2048", "EC_SM2"] {
            assert_code(
                call(&backend, Op::GenerateWrappingKey(pb::GenerateWrappingKey { key_id: "w".into(), version_id: "v1".into(), wrapping_key_spec: spec.into() })),
                Code::Unsupported,
            );
        }
        assert_code(
            call(&backend, Op::UnwrapKeyMaterial(pb::UnwrapKeyMaterial {
                wrapping_key: Some(key.clone()),
                wrapping_algorithm: "RSAES_OAEP_SHA_256".into(),
                encrypted_key_material: vec![1; 256],
                key_id: "imported".into(),
                version_id: "v1".into(),
                key_spec: "Aliyun_AES_256".into(),
                key_usage: ENC.into(),
                bound: None,
            })),
            Code::Unsupported,
        );
        let aes = generate(&backend, "cmk", "Aliyun_AES_256", ENC);
        assert_code(
            call(&backend, Op::GenerateDataKeyPair(pb::GenerateDataKeyPair {
                key: Some(key_ref("cmk", "Aliyun_AES_256", ENC, &aes)),
                key_pair_spec: "EC_SM2".into(),
                ..Default::default()
            })),
            Code::Unsupported,
        );
        // A KeyRef claiming an SM spec is refused before its blob is looked at.
        let mut sm4 = key_ref("cmk", "Aliyun_AES_256", ENC, &aes);
        sm4.key_spec = "Aliyun_SM4".into();
        assert_code(call(&backend, Op::Encrypt(pb::Encrypt { key: Some(sm4), plaintext: b"x".to_vec(), ..Default::default() })), Code::Unsupported);
    }
}

softhsm_test! {
    /// Random bytes from the token, 1..=1024; SHA-2 digests from the token match the
    /// crypto core's.
    fn random_and_hash(token) {
        let backend = token.open("random");
        for length in [1u32, 16, 1024] {
            let a = reply!(call(&backend, Op::GenerateRandom(pb::GenerateRandom { length })), GenerateRandom);
            assert_eq!(a.random.len(), length as usize);
            if length >= 16 {
                let b = reply!(call(&backend, Op::GenerateRandom(pb::GenerateRandom { length })), GenerateRandom);
                assert_ne!(a.random, b.random);
            }
        }
        for length in [0u32, 1025, u32::MAX] {
            assert_code(call(&backend, Op::GenerateRandom(pb::GenerateRandom { length })), Code::InvalidParameter);
        }
        let abc = reply!(call(&backend, Op::Hash(pb::Hash { algorithm: String::new(), message: b"abc".to_vec() })), Hash);
        assert_eq!(hex::encode(abc.digest), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        for algorithm in [strongroom_crypto::spec::HashAlgorithm::Sha384, strongroom_crypto::spec::HashAlgorithm::Sha512] {
            let got = reply!(call(&backend, Op::Hash(pb::Hash { algorithm: algorithm.as_str().into(), message: b"message".to_vec() })), Hash);
            assert_eq!(got.digest, hash::hash(algorithm, b"message"));
        }
        assert_code(call(&backend, Op::Hash(pb::Hash { algorithm: "MD5".into(), message: vec![] })), Code::InvalidParameter);
    }
}

softhsm_test! {
    /// A data key and a data key pair, encrypted under the CMK in the token, decrypt
    /// back with Decrypt; the pair's private key matches its public key.
    fn data_keys_round_trip(token) {
        let backend = token.open("data-keys");
        let blob = generate(&backend, "cmk", "Aliyun_AES_256", ENC);
        let cmk = key_ref("cmk", "Aliyun_AES_256", ENC, &blob);
        let data_key = reply!(call(&backend, Op::GenerateDataKey(pb::GenerateDataKey { key: Some(cmk.clone()), aad: b"ctx".to_vec(), ..Default::default() })), GenerateDataKey);
        assert_eq!(data_key.plaintext.len(), 32);
        assert_eq!(data_key.algorithm, "AES_GCM");
        let opened = reply!(call(&backend, decrypt_op(&cmk, &data_key.ciphertext, &data_key.iv, b"ctx")), Decrypt);
        assert_eq!(opened.plaintext, data_key.plaintext);
        let sized = reply!(call(&backend, Op::GenerateDataKey(pb::GenerateDataKey { key: Some(cmk.clone()), length: 1024, ..Default::default() })), GenerateDataKey);
        assert_eq!(sized.plaintext.len(), 1024);
        assert_code(call(&backend, Op::GenerateDataKey(pb::GenerateDataKey { key: Some(cmk.clone()), length: 1025, ..Default::default() })), Code::InvalidParameter);

        for (spec, format) in [(KeySpec::EcP256, "DER"), (KeySpec::Rsa2048, "DER"), (KeySpec::EcP256K, "PEM")] {
            let pair = reply!(call(&backend, Op::GenerateDataKeyPair(pb::GenerateDataKeyPair {
                key: Some(cmk.clone()),
                key_pair_spec: spec.as_str().into(),
                key_format: format.into(),
                ..Default::default()
            })), GenerateDataKeyPair);
            let opened = reply!(call(&backend, decrypt_op(&cmk, &pair.private_key_ciphertext, &pair.iv, b"")), Decrypt);
            assert_eq!(opened.plaintext, pair.private_key_plaintext);
            if format == "DER" {
                let material = KeyMaterial::import(spec, &opened.plaintext).unwrap();
                assert_eq!(material.public_key().unwrap().to_der(), pair.public_key);
            } else {
                assert!(opened.plaintext.starts_with(b"-----BEGIN PRIVATE KEY-----"));
                PublicKey::from_pem(spec, std::str::from_utf8(&pair.public_key).unwrap()).unwrap();
            }
        }
        let hidden = reply!(call(&backend, Op::GenerateDataKeyPair(pb::GenerateDataKeyPair {
            key: Some(cmk.clone()),
            key_pair_spec: "EC_P256".into(),
            without_plaintext: true,
            ..Default::default()
        })), GenerateDataKeyPair);
        assert!(hidden.private_key_plaintext.is_empty());
        assert!(!hidden.private_key_ciphertext.is_empty());
    }
}

softhsm_test! {
    /// Many threads share one backend with fewer sessions than threads.
    fn concurrent_calls_share_one_backend(token) {
        let mut config = token.config("concurrency");
        config.max_sessions = 3;
        let backend = Arc::new(Pkcs11Backend::open(&config).unwrap());
        let aes = key_ref("aes", "Aliyun_AES_128", ENC, &generate(&backend, "aes", "Aliyun_AES_128", ENC));
        let ec_blob = generate(&backend, "ec", "EC_P256", SIGN);
        let ec = key_ref("ec", "EC_P256", SIGN, &ec_blob);
        let public = PublicKey::from_der(KeySpec::EcP256, &ec_blob.public_key).unwrap();
        let threads: Vec<_> = (0..8u8)
            .map(|t| {
                let (backend, aes, ec, public) = (Arc::clone(&backend), aes.clone(), ec.clone(), public.clone());
                std::thread::spawn(move || {
                    for i in 0..25u8 {
                        let message = [t, i, 42];
                        let out = encrypt(backend.as_ref(), &aes, &message, &[t]);
                        let plain = reply!(backend.execute(decrypt_op(&aes, &out.ciphertext, &out.iv, &[t])), Decrypt);
                        assert_eq!(plain.plaintext, message);
                        let signed = sign(&backend, &ec, "", &message, "");
                        assert!(public.verify(Algorithm::EcdsaSha256, &message, MessageType::Raw, &signed.signature).unwrap());
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    }
}

softhsm_test! {
    /// A token that is not there and a wrong PIN are configuration errors that never
    /// echo the PIN.
    fn open_refuses_a_missing_token_and_a_wrong_pin(token) {
        let mut config = token.config("refusals");
        config.token_label = "no-such-token".into();
        assert_code(Pkcs11Backend::open(&config), Code::InvalidParameter);
        let mut config = token.config("refusals");
        config.user_pin = AuthPin::from("not-the-pin-1234");
        let e = assert_code(Pkcs11Backend::open(&config), Code::InvalidParameter);
        assert!(!e.message.contains("not-the-pin-1234"), "{e}");
        assert!(!format!("{config:?}").contains("not-the-pin-1234"));
        let mut config = token.config("refusals");
        config.module = "/nonexistent/libpkcs11.so".into();
        assert_code(Pkcs11Backend::open(&config), Code::InvalidParameter);
        // With the right PIN the same configuration opens.
        token.open("refusals");
    }
}

softhsm_test! {
    /// Invalid requests get the software engine's error codes, and valid ones replies of
    /// the same shape: the KMS sees one behaviour from either backend.
    fn errors_and_shapes_match_the_software_engine(token) {
        let token_backend = token.open("parity");
        let software = SoftwareBackend::new(DomainKey::generate().unwrap(), pb::StatusReply::default()).unwrap();
        let backends: [(&str, &dyn Backend); 2] = [("pkcs11", &token_backend), ("software", &software)];
        let mut keys = Vec::new();
        for (_, backend) in backends {
            let generate = |spec: &str, usage: &str| {
                let blob = reply!(backend.execute(Op::GenerateKey(pb::GenerateKey { key_id: "k".into(), version_id: "v1".into(), key_spec: spec.into(), key_usage: usage.into() })), GenerateKey);
                key_ref("k", spec, usage, &blob)
            };
            keys.push((generate("Aliyun_AES_256", ENC), generate("EC_P256", SIGN)));
        }
        type Case = Box<dyn Fn(&pb::KeyRef, &pb::KeyRef) -> Op>;
        let cases: Vec<(&str, Case)> = vec![
            ("signature algorithm on AES", Box::new(|a, _| Op::Encrypt(pb::Encrypt { key: Some(a.clone()), algorithm: "RSA_PSS_SHA_256".into(), ..Default::default() }))),
            ("padding with GCM", Box::new(|a, _| Op::Encrypt(pb::Encrypt { key: Some(a.clone()), padding_mode: "PKCS7_PADDING".into(), ..Default::default() }))),
            ("short IV", Box::new(|a, _| Op::Encrypt(pb::Encrypt { key: Some(a.clone()), iv: vec![1; 5], ..Default::default() }))),
            ("CBC with AAD", Box::new(|a, _| Op::Encrypt(pb::Encrypt { key: Some(a.clone()), algorithm: "AES_CBC".into(), aad: b"x".to_vec(), ..Default::default() }))),
            ("unaligned NO_PADDING", Box::new(|a, _| Op::Encrypt(pb::Encrypt { key: Some(a.clone()), algorithm: "AES_CBC".into(), padding_mode: "NO_PADDING".into(), plaintext: vec![1; 15], ..Default::default() }))),
            ("long AAD", Box::new(|a, _| Op::Encrypt(pb::Encrypt { key: Some(a.clone()), aad: vec![0; 8193], ..Default::default() }))),
            ("unknown algorithm", Box::new(|a, _| Op::Encrypt(pb::Encrypt { key: Some(a.clone()), algorithm: "AES_ECB".into(), ..Default::default() }))),
            ("short GCM ciphertext", Box::new(|a, _| Op::Decrypt(pb::Decrypt { key: Some(a.clone()), ciphertext: vec![1; 3], iv: vec![0; 12], ..Default::default() }))),
            ("unaligned CBC ciphertext", Box::new(|a, _| Op::Decrypt(pb::Decrypt { key: Some(a.clone()), algorithm: "AES_CBC".into(), ciphertext: vec![1; 17], iv: vec![0; 16], ..Default::default() }))),
            ("decrypt with a bad IV length", Box::new(|a, _| Op::Decrypt(pb::Decrypt { key: Some(a.clone()), ciphertext: vec![1; 32], iv: vec![0; 11], ..Default::default() }))),
            ("sign with AES", Box::new(|a, _| Op::Sign(pb::Sign { key: Some(a.clone()), message: b"m".to_vec(), ..Default::default() }))),
            ("encrypt with a signing key", Box::new(|_, e| Op::Encrypt(pb::Encrypt { key: Some(e.clone()), plaintext: b"m".to_vec(), ..Default::default() }))),
            ("short digest", Box::new(|_, e| Op::Sign(pb::Sign { key: Some(e.clone()), message: vec![1; 20], message_type: "DIGEST".into(), ..Default::default() }))),
            ("unknown message type", Box::new(|_, e| Op::Sign(pb::Sign { key: Some(e.clone()), message: vec![1; 32], message_type: "digest".into(), ..Default::default() }))),
            ("public key of AES", Box::new(|a, _| Op::GetPublicKey(pb::GetPublicKey { key: Some(a.clone()) }))),
            ("no key", Box::new(|_, _| Op::Encrypt(pb::Encrypt::default()))),
            ("usage the spec lacks", Box::new(|_, _| Op::GenerateKey(pb::GenerateKey { key_id: "k".into(), version_id: "v".into(), key_spec: "Aliyun_AES_256".into(), key_usage: SIGN.into() }))),
            ("unknown spec", Box::new(|_, _| Op::GenerateKey(pb::GenerateKey { key_id: "k".into(), version_id: "v".into(), key_spec: "Aliyun_DES".into(), key_usage: ENC.into() }))),
            ("no key id", Box::new(|_, _| Op::GenerateKey(pb::GenerateKey { key_id: String::new(), version_id: "v".into(), key_spec: "Aliyun_AES_256".into(), key_usage: ENC.into() }))),
            ("data key too long", Box::new(|a, _| Op::GenerateDataKey(pb::GenerateDataKey { key: Some(a.clone()), length: 2000, ..Default::default() }))),
            ("symmetric data key pair", Box::new(|a, _| Op::GenerateDataKeyPair(pb::GenerateDataKeyPair { key: Some(a.clone()), key_pair_spec: "Aliyun_AES_256".into(), ..Default::default() }))),
        ];
        for (name, case) in &cases {
            let results: Vec<_> = backends
                .iter()
                .zip(&keys)
                .map(|((_, backend), (aes, ec))| backend.execute(case(aes, ec)).map_err(|e| e.code))
                .collect();
            let token_result = results[0].as_ref().map(|_| ()).map_err(|c| *c);
            let software_result = results[1].as_ref().map(|_| ()).map_err(|c| *c);
            assert!(token_result.is_err(), "{name}: the token accepted it");
            assert_eq!(token_result, software_result, "{name}");
        }
        // Shapes of successful replies.
        for ((_, backend), (aes, _)) in backends.iter().zip(&keys) {
            let gcm = encrypt(*backend, aes, b"0123456789", b"a");
            assert_eq!((gcm.algorithm.as_str(), gcm.iv.len(), gcm.ciphertext.len()), ("AES_GCM", 12, 26));
            let cbc = reply!(backend.execute(Op::Encrypt(pb::Encrypt { key: Some(aes.clone()), plaintext: b"0123456789".to_vec(), algorithm: "AES_CBC".into(), ..Default::default() })), Encrypt);
            assert_eq!((cbc.iv.len(), cbc.ciphertext.len(), cbc.padding_mode.as_str()), (16, 16, "PKCS7_PADDING"));
            let plain = reply!(backend.execute(decrypt_op(aes, &gcm.ciphertext, &gcm.iv, b"a")), Decrypt);
            assert_eq!(plain.algorithm, "AES_GCM");
        }
    }
}
