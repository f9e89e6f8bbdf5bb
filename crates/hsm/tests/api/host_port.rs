//! The host port: every operation of the link, and the node surviving bad input.

use strongroom_certs::pki::{CertificateAuthority, KeyType, Validity};
use strongroom_certs::tls::{TlsVersions, mtls_client_config};
use strongroom_crypto::public::PublicKey;
use strongroom_crypto::spec::{Algorithm, KeySpec, MessageType};
use strongroom_proto::hsm::v1::{self as pb, error::Code, request::Op, response::Result as R};
use strongroom_proto::hsm::{self as frames, Request};

use crate::support::{self, RawHost, Scratch, generate_key, key_ref};

async fn serving_node(scratch: &Scratch) -> strongroom_hsm::node::Node {
    let node = support::start(&scratch.path("n"), "zone-a").await;
    support::configure(&node, scratch).await;
    node
}

#[tokio::test]
async fn every_key_spec_works_through_the_host_port() {
    let scratch = Scratch::new();
    let node = serving_node(&scratch).await;
    let mut host = RawHost::guide(node.host_addr(), &scratch).await;
    for spec in KeySpec::ALL {
        for usage in strongroom_crypto::policy::usages(*spec) {
            let id = format!("key-{spec}-{usage}");
            let generated = generate_key(&mut host, &id, spec.as_str(), usage.as_str()).await;
            assert_eq!(generated.public_key.is_empty(), !spec.is_asymmetric());
            let key = key_ref(&id, spec.as_str(), usage.as_str(), &generated.blob);
            let algorithm = strongroom_crypto::policy::default_algorithm(*spec, usage).unwrap();
            if usage == strongroom_crypto::spec::KeyUsage::SignVerify {
                let message = format!("message for {id}").into_bytes();
                let R::Sign(signed) = host
                    .ok(Op::Sign(pb::Sign {
                        key: Some(key.clone()),
                        algorithm: String::new(),
                        message: message.clone(),
                        message_type: "RAW".to_owned(),
                    }))
                    .await
                else {
                    panic!()
                };
                assert_eq!(signed.algorithm, algorithm.as_str());
                // Checked outside the node, with the public key it returned.
                let public = PublicKey::from_der(*spec, &generated.public_key).unwrap();
                assert!(
                    public
                        .verify(algorithm, &message, MessageType::Raw, &signed.signature)
                        .unwrap(),
                    "{id}"
                );
                let R::Verify(verified) = host
                    .ok(Op::Verify(pb::Verify {
                        key: Some(key.clone()),
                        algorithm: String::new(),
                        message,
                        message_type: String::new(),
                        signature: signed.signature,
                    }))
                    .await
                else {
                    panic!()
                };
                assert!(verified.valid);
            } else {
                let R::Encrypt(encrypted) = host
                    .ok(Op::Encrypt(pb::Encrypt {
                        key: Some(key.clone()),
                        plaintext: b"plaintext".to_vec(),
                        ..Default::default()
                    }))
                    .await
                else {
                    panic!()
                };
                let R::Decrypt(decrypted) = host
                    .ok(Op::Decrypt(pb::Decrypt {
                        key: Some(key.clone()),
                        ciphertext: encrypted.ciphertext,
                        algorithm: encrypted.algorithm,
                        iv: encrypted.iv,
                        aad: Vec::new(),
                        padding_mode: encrypted.padding_mode,
                    }))
                    .await
                else {
                    panic!()
                };
                assert_eq!(decrypted.plaintext, b"plaintext");
            }
            if spec.is_asymmetric() {
                let R::GetPublicKey(public) = host
                    .ok(Op::GetPublicKey(pb::GetPublicKey { key: Some(key) }))
                    .await
                else {
                    panic!()
                };
                assert_eq!(public.public_key, generated.public_key);
            }
        }
    }
    node.shutdown().await;
}

#[tokio::test]
async fn data_keys_random_and_hashes() {
    let scratch = Scratch::new();
    let node = serving_node(&scratch).await;
    let mut host = RawHost::guide(node.host_addr(), &scratch).await;
    let generated = generate_key(&mut host, "k", "Aliyun_AES_256", "ENCRYPT/DECRYPT").await;
    let key = key_ref("k", "Aliyun_AES_256", "ENCRYPT/DECRYPT", &generated.blob);
    let R::GenerateDataKey(data_key) = host
        .ok(Op::GenerateDataKey(pb::GenerateDataKey {
            key: Some(key.clone()),
            length: 0,
            algorithm: String::new(),
            aad: b"context".to_vec(),
        }))
        .await
    else {
        panic!()
    };
    assert_eq!(data_key.plaintext.len(), 32);
    let R::Decrypt(decrypted) = host
        .ok(Op::Decrypt(pb::Decrypt {
            key: Some(key.clone()),
            ciphertext: data_key.ciphertext,
            algorithm: data_key.algorithm,
            iv: data_key.iv,
            aad: b"context".to_vec(),
            padding_mode: String::new(),
        }))
        .await
    else {
        panic!()
    };
    assert_eq!(decrypted.plaintext, data_key.plaintext);

    let R::GenerateDataKeyPair(pair) = host
        .ok(Op::GenerateDataKeyPair(pb::GenerateDataKeyPair {
            key: Some(key.clone()),
            key_pair_spec: "EC_P256".to_owned(),
            key_format: "PEM".to_owned(),
            algorithm: String::new(),
            aad: Vec::new(),
            without_plaintext: true,
        }))
        .await
    else {
        panic!()
    };
    assert!(pair.private_key_plaintext.is_empty());
    assert!(
        String::from_utf8(pair.public_key)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    let R::Decrypt(private) = host
        .ok(Op::Decrypt(pb::Decrypt {
            key: Some(key),
            ciphertext: pair.private_key_ciphertext,
            algorithm: pair.algorithm,
            iv: pair.iv,
            aad: Vec::new(),
            padding_mode: String::new(),
        }))
        .await
    else {
        panic!()
    };
    assert!(
        String::from_utf8(private.plaintext)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );

    let R::GenerateRandom(random) = host
        .ok(Op::GenerateRandom(pb::GenerateRandom { length: 1024 }))
        .await
    else {
        panic!()
    };
    assert_eq!(random.random.len(), 1024);
    for length in [0, 1025] {
        let e = host
            .error(Op::GenerateRandom(pb::GenerateRandom { length }))
            .await;
        assert_eq!(e.code(), Code::InvalidParameter);
    }
    let R::Hash(hash) = host
        .ok(Op::Hash(pb::Hash {
            algorithm: "SM3".to_owned(),
            message: b"abc".to_vec(),
        }))
        .await
    else {
        panic!()
    };
    // GB/T 32905 appendix A, example 1.
    assert_eq!(
        hex::encode(hash.digest),
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn imported_material_is_unwrapped_inside_the_node() {
    use strongroom_crypto::key::{DecryptParams, Key};
    use strongroom_crypto::material::KeyMaterial;
    use strongroom_crypto::spec::KeyUsage;

    let scratch = Scratch::new();
    let node = serving_node(&scratch).await;
    let mut host = RawHost::guide(node.host_addr(), &scratch).await;
    let R::GenerateWrappingKey(wrapping) = host
        .ok(Op::GenerateWrappingKey(pb::GenerateWrappingKey {
            key_id: "k".to_owned(),
            version_id: "import-token-1".to_owned(),
            wrapping_key_spec: "RSA_2048".to_owned(),
        }))
        .await
    else {
        panic!()
    };
    // The user's side: their own AES-256 key, wrapped with the public half.
    let material = [0x42u8; 32];
    let public = PublicKey::from_der(KeySpec::Rsa2048, &wrapping.public_key).unwrap();
    let wrapped = public
        .encrypt(Algorithm::RsaesOaepSha256, &material)
        .unwrap();
    let wrapping_key = pb::KeyRef {
        key_id: "k".to_owned(),
        version_id: "import-token-1".to_owned(),
        key_spec: "RSA_2048".to_owned(),
        key_usage: "ENCRYPT/DECRYPT".to_owned(),
        blob: wrapping.blob,
    };
    let R::UnwrapKeyMaterial(imported) = host
        .ok(Op::UnwrapKeyMaterial(pb::UnwrapKeyMaterial {
            wrapping_key: Some(wrapping_key.clone()),
            wrapping_algorithm: "RSAES_OAEP_SHA_256".to_owned(),
            encrypted_key_material: wrapped.clone(),
            key_id: "k".to_owned(),
            version_id: "v1".to_owned(),
            key_spec: "Aliyun_AES_256".to_owned(),
            key_usage: "ENCRYPT/DECRYPT".to_owned(),
            bound: None,
        }))
        .await
    else {
        panic!()
    };
    assert!(imported.public_key.is_empty());
    let R::Encrypt(encrypted) = host
        .ok(Op::Encrypt(pb::Encrypt {
            key: Some(key_ref(
                "k",
                "Aliyun_AES_256",
                "ENCRYPT/DECRYPT",
                &imported.blob,
            )),
            plaintext: b"secret".to_vec(),
            ..Default::default()
        }))
        .await
    else {
        panic!()
    };
    // The user's own copy of the material decrypts what the node encrypted.
    let theirs = Key::new(
        KeyMaterial::import(KeySpec::Aes256, &material).unwrap(),
        KeyUsage::EncryptDecrypt,
    )
    .unwrap();
    let plaintext = theirs
        .decrypt(
            &encrypted.ciphertext,
            &DecryptParams {
                iv: &encrypted.iv,
                ..DecryptParams::default()
            },
        )
        .unwrap();
    assert_eq!(plaintext.expose_secret(), b"secret");

    let refused = host
        .error(Op::UnwrapKeyMaterial(pb::UnwrapKeyMaterial {
            wrapping_key: Some(wrapping_key),
            wrapping_algorithm: "RSAES_OAEP_SHA_256".to_owned(),
            encrypted_key_material: wrapped[..100].to_vec(),
            key_id: "k".to_owned(),
            version_id: "v1".to_owned(),
            key_spec: "Aliyun_AES_256".to_owned(),
            key_usage: "ENCRYPT/DECRYPT".to_owned(),
            bound: None,
        }))
        .await;
    assert_eq!(refused.code(), Code::ImportFailed, "{}", refused.message);
    node.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_typed_errors_and_the_connection_carries_on() {
    let scratch = Scratch::new();
    let node = serving_node(&scratch).await;
    let mut host = RawHost::guide(node.host_addr(), &scratch).await;
    let generated = generate_key(&mut host, "k", "Aliyun_AES_256", "ENCRYPT/DECRYPT").await;

    // Bytes that are no protobuf message.
    host.send_raw(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await;
    let response = host.read().await.unwrap();
    let Some(R::Error(e)) = response.result else {
        panic!()
    };
    assert_eq!(e.code(), Code::MalformedRequest);

    // A request with no operation (or one from a newer client).
    host.send_raw(&[0, 0, 0, 5, 0x08, 0x09, 0x98, 0x06, 0x01])
        .await;
    let response = host.read().await.unwrap();
    assert_eq!(response.id, 9);
    let Some(R::Error(e)) = response.result else {
        panic!()
    };
    assert_eq!(e.code(), Code::UnknownOperation);

    // A blob presented as another key, a tampered blob, an unknown spec, a bad IV.
    let mut cases = Vec::new();
    cases.push((
        key_ref(
            "other",
            "Aliyun_AES_256",
            "ENCRYPT/DECRYPT",
            &generated.blob,
        ),
        Code::InvalidBlob,
    ));
    cases.push((
        key_ref("k", "Aliyun_AES_128", "ENCRYPT/DECRYPT", &generated.blob),
        Code::InvalidBlob,
    ));
    let mut tampered = generated.blob.clone();
    *tampered.last_mut().unwrap() ^= 1;
    cases.push((
        key_ref("k", "Aliyun_AES_256", "ENCRYPT/DECRYPT", &tampered),
        Code::InvalidBlob,
    ));
    cases.push((
        key_ref("k", "Aliyun_AES_999", "ENCRYPT/DECRYPT", &generated.blob),
        Code::InvalidParameter,
    ));
    cases.push((
        key_ref("k", "Aliyun_AES_256", "SIGN/VERIFY", &generated.blob),
        Code::InvalidParameter,
    ));
    cases.push((
        key_ref("k", "Aliyun_AES_256", "ENCRYPT/DECRYPT", &[]),
        Code::InvalidBlob,
    ));
    for (key, code) in cases {
        let e = host
            .error(Op::Encrypt(pb::Encrypt {
                key: Some(key),
                plaintext: b"x".to_vec(),
                ..Default::default()
            }))
            .await;
        assert_eq!(e.code(), code, "{}", e.message);
    }
    let good = key_ref("k", "Aliyun_AES_256", "ENCRYPT/DECRYPT", &generated.blob);
    let e = host
        .error(Op::Encrypt(pb::Encrypt {
            key: Some(good.clone()),
            plaintext: b"x".to_vec(),
            iv: vec![0; 5],
            ..Default::default()
        }))
        .await;
    assert_eq!(e.code(), Code::InvalidParameter);
    let e = host
        .error(Op::Decrypt(pb::Decrypt {
            key: Some(good.clone()),
            ciphertext: vec![0; 40],
            iv: vec![0; 12],
            ..Default::default()
        }))
        .await;
    assert_eq!(e.code(), Code::DecryptionFailed);
    let e = host.error(Op::Encrypt(pb::Encrypt::default())).await;
    assert_eq!(e.code(), Code::InvalidParameter);

    // Still the same connection, still working.
    host.ok(Op::Encrypt(pb::Encrypt {
        key: Some(good),
        plaintext: b"x".to_vec(),
        ..Default::default()
    }))
    .await;

    // An oversized frame: refused before its body is read, then the connection closes.
    host.send_raw(&[0x7f, 0xff, 0xff, 0xff]).await;
    let response = host.read().await.unwrap();
    let Some(R::Error(e)) = response.result else {
        panic!()
    };
    assert_eq!(e.code(), Code::FrameTooLarge);
    assert!(host.read().await.is_none());

    // The node itself is unharmed.
    let mut again = RawHost::guide(node.host_addr(), &scratch).await;
    again
        .ok(Op::GenerateRandom(pb::GenerateRandom { length: 8 }))
        .await;
    node.shutdown().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_by_id() {
    let scratch = Scratch::new();
    let node = serving_node(&scratch).await;
    let mut host = RawHost::guide(node.host_addr(), &scratch).await;
    let generated = generate_key(&mut host, "k", "EC_P256", "SIGN/VERIFY").await;
    let key = key_ref("k", "EC_P256", "SIGN/VERIFY", &generated.blob);
    let mut out = Vec::new();
    for id in 100..600u64 {
        let op = if id % 2 == 0 {
            Op::Sign(pb::Sign {
                key: Some(key.clone()),
                algorithm: String::new(),
                message: id.to_be_bytes().to_vec(),
                message_type: String::new(),
            })
        } else {
            Op::Hash(pb::Hash {
                algorithm: String::new(),
                message: id.to_be_bytes().to_vec(),
            })
        };
        frames::encode_frame(&Request { id, op: Some(op) }, usize::MAX >> 1, &mut out).unwrap();
    }
    host.send_raw(&out).await;
    let public = PublicKey::from_der(KeySpec::EcP256, &generated.public_key).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 100..600 {
        let response = host.read().await.unwrap();
        let message = response.id.to_be_bytes();
        match response.result.unwrap() {
            R::Sign(s) => {
                assert!(
                    public
                        .verify(
                            Algorithm::EcdsaSha256,
                            &message,
                            MessageType::Raw,
                            &s.signature
                        )
                        .unwrap()
                );
            }
            R::Hash(h) => assert_eq!(h.digest, strongroom_crypto::hash::sha256(&message)),
            other => panic!("{other:?}"),
        }
        assert!(seen.insert(response.id));
    }
    assert_eq!(seen.len(), 500);
    node.shutdown().await;
}

#[tokio::test]
async fn only_imported_client_certificates_complete_the_handshake() {
    let scratch = Scratch::new();
    let node = serving_node(&scratch).await;
    // A certificate from the right CA that the officer never imported.
    let rootca_key = std::fs::read_to_string(&scratch.certs.rootca_key).unwrap();
    let key_der = strongroom_crypto::pem::decode("PRIVATE KEY", &rootca_key).unwrap();
    let ca = CertificateAuthority::from_der(
        &strongroom_crypto::secret::SecretBytes::new(key_der),
        &scratch.certs.ca_certificate,
    )
    .unwrap();
    let stranger = ca
        .issue_client(
            "stranger",
            KeyType::EcP256,
            Validity::days_from_now(1).unwrap(),
        )
        .unwrap();
    let config = mtls_client_config(
        vec![stranger.certificate],
        &stranger.private_key,
        std::slice::from_ref(&scratch.certs.ca_certificate),
        TlsVersions::Tls12Only,
    )
    .unwrap();
    match RawHost::connect(node.host_addr(), config).await {
        Err(_) => {}
        Ok(mut host) => assert!(host.read().await.is_none(), "an unlisted client was served"),
    }
    // The guide's client.p12 is served.
    let mut host = RawHost::guide(node.host_addr(), &scratch).await;
    host.ok(Op::GenerateRandom(pb::GenerateRandom { length: 8 }))
        .await;
    node.shutdown().await;
}

#[tokio::test]
async fn random_and_mutated_frames_never_hurt_the_node() {
    let scratch = Scratch::new();
    let node = serving_node(&scratch).await;
    let mut host = RawHost::guide(node.host_addr(), &scratch).await;
    let generated = generate_key(&mut host, "k", "Aliyun_SM4", "ENCRYPT/DECRYPT").await;
    let valid = Request {
        id: 77,
        op: Some(Op::Encrypt(pb::Encrypt {
            key: Some(key_ref(
                "k",
                "Aliyun_SM4",
                "ENCRYPT/DECRYPT",
                &generated.blob,
            )),
            plaintext: b"mutate me".to_vec(),
            algorithm: "SM4_GCM".to_owned(),
            iv: vec![1; 12],
            aad: b"aad".to_vec(),
            padding_mode: String::new(),
        })),
    };
    let mut encoded = Vec::new();
    frames::encode_frame(&valid, usize::MAX >> 1, &mut encoded).unwrap();
    let body = encoded[4..].to_vec();
    let noise = strongroom_crypto::random::public_bytes(64 * 1024).unwrap();
    let mut sent = 0usize;
    let mut batch = Vec::new();
    for i in 0..3000usize {
        let mut mutated = body.clone();
        match i % 3 {
            // Flip a few bytes.
            0 => {
                for j in 0..3 {
                    let at = usize::from(noise[(i * 7 + j) % noise.len()]) % mutated.len();
                    mutated[at] ^= noise[(i * 13 + j) % noise.len()] | 1;
                }
            }
            // Truncate.
            1 => mutated.truncate(usize::from(noise[i % noise.len()]) % mutated.len()),
            // Pure noise.
            _ => {
                let start = (i * 31) % (noise.len() - 300);
                mutated = noise[start..start + usize::from(noise[i % noise.len()])].to_vec();
            }
        }
        batch.extend_from_slice(&u32::try_from(mutated.len()).unwrap().to_be_bytes());
        batch.extend_from_slice(&mutated);
        sent += 1;
    }
    host.send_raw(&batch).await;
    for _ in 0..sent {
        // Every frame gets an answer, success or typed error, on the same connection.
        host.read().await.expect("the node closed the connection");
    }
    host.ok(Op::GenerateRandom(pb::GenerateRandom { length: 8 }))
        .await;
    node.shutdown().await;
}
