//! The HSM link's frames.

use strongroom_proto::hsm::v1::{self, request, response};
use strongroom_proto::hsm::{self, DEFAULT_MAX_FRAME_LEN, FRAME_HEADER_LEN, Request, Response};
// Every protobuf message is one; the fuzz crate does not see prost itself.
use strongroom_proto::instance::Response as Message;

/// Frames read from one input at most (a stream of empty frames is cheap, not endless).
const MAX_FRAMES: usize = 256;

pub(crate) const DICTIONARY: &[&[u8]] = &[
    &[0x00, 0x00, 0x00, 0x00],
    &[0x00, 0x80, 0x00, 0x00],
    &[0x00, 0x80, 0x00, 0x01],
    &[0xff, 0xff, 0xff, 0xff],
    // Field 1 varint at the largest value.
    &[
        0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ],
    // Field 15 (Encrypt), length-delimited, a huge length.
    &[0x7a, 0xff, 0xff, 0xff, 0xff, 0x0f],
    // Field 2 (Error) with a code field.
    &[0x12, 0x02, 0x08, 0x7f],
    // A start group, an end group.
    &[0x0b],
    &[0x0c],
    // Nested key references.
    &[0x0a, 0x00],
    &[0x2a, 0x00],
];

/// The HSM-frame target: a byte stream of frames.
///
/// For each frame: [`hsm::body_len`] under the default limit and under small ones, then
/// the body (what is left of it) through [`hsm::decode_body`] as a [`Request`] and as a
/// [`Response`]; every message that decodes is framed again with [`hsm::encode_frame`]
/// and must decode to itself.
pub fn hsm_frame(data: &[u8]) {
    let mut rest = data;
    for _ in 0..MAX_FRAMES {
        let Some((header, after)) = rest.split_first_chunk::<FRAME_HEADER_LEN>() else {
            // A short header: the link would wait for more; decode the tail as a body.
            decode(rest);
            return;
        };
        for max in [0, 16, after.len()] {
            if let Ok(len) = hsm::body_len(*header, max) {
                assert!(len <= max, "body_len let through {len} > {max}");
            }
        }
        let Ok(len) = hsm::body_len(*header, DEFAULT_MAX_FRAME_LEN) else {
            return;
        };
        let (body, next) = after
            .split_at_checked(len.min(after.len()))
            .unwrap_or((after, &[]));
        decode(body);
        rest = next;
        if rest.is_empty() {
            return;
        }
    }
}

fn decode(body: &[u8]) {
    if let Ok(request) = hsm::decode_body::<Request>(body) {
        round_trip(&request);
    }
    if let Ok(response) = hsm::decode_body::<Response>(body) {
        round_trip(&response);
    }
}

fn round_trip<M>(message: &M)
where
    M: Message + Default + PartialEq + std::fmt::Debug,
{
    let mut framed = Vec::new();
    if hsm::encode_frame(message, DEFAULT_MAX_FRAME_LEN, &mut framed).is_err() {
        return;
    }
    let body = framed.get(FRAME_HEADER_LEN..).unwrap_or(&[]);
    let again = hsm::decode_body::<M>(body);
    assert_eq!(again.as_ref(), Ok(message), "a frame did not round-trip");
}

/// A frame of every request operation and every response result, and streams of them.
pub(crate) fn seeds() -> Vec<Vec<u8>> {
    let key = || {
        Some(v1::KeyRef {
            key_id: "key-00000000-0000-4000-8000-000000000001".into(),
            version_id: "ver-00000000-0000-4000-8000-000000000001".into(),
            key_spec: "Aliyun_AES_256".into(),
            key_usage: "ENCRYPT/DECRYPT".into(),
            blob: vec![0x5a; 64],
        })
    };
    let ops = vec![
        request::Op::Status(v1::Status {}),
        request::Op::GenerateKey(v1::GenerateKey {
            key_id: "key-1".into(),
            version_id: "ver-1".into(),
            key_spec: "RSA_2048".into(),
            key_usage: "SIGN/VERIFY".into(),
        }),
        request::Op::GenerateWrappingKey(v1::GenerateWrappingKey::default()),
        request::Op::UnwrapKeyMaterial(v1::UnwrapKeyMaterial {
            wrapping_key: key(),
            bound: key(),
            encrypted_key_material: vec![1; 256],
            ..Default::default()
        }),
        request::Op::GetPublicKey(v1::GetPublicKey { key: key() }),
        request::Op::Encrypt(v1::Encrypt {
            key: key(),
            plaintext: b"hello dkms".to_vec(),
            algorithm: "AES_GCM".into(),
            iv: vec![0; 12],
            aad: b"aad".to_vec(),
            padding_mode: String::new(),
        }),
        request::Op::Decrypt(v1::Decrypt {
            key: key(),
            ciphertext: vec![7; 32],
            ..Default::default()
        }),
        request::Op::Sign(v1::Sign {
            key: key(),
            algorithm: "RSA_PSS_SHA_256".into(),
            message: vec![3; 32],
            message_type: "DIGEST".into(),
        }),
        request::Op::Verify(v1::Verify {
            key: key(),
            signature: vec![9; 256],
            ..Default::default()
        }),
        request::Op::GenerateDataKey(v1::GenerateDataKey::default()),
        request::Op::GenerateDataKeyPair(v1::GenerateDataKeyPair::default()),
        request::Op::GenerateRandom(v1::GenerateRandom { length: 32 }),
        request::Op::Hash(v1::Hash {
            algorithm: "SHA_256".into(),
            message: b"abc".to_vec(),
        }),
    ];
    let results = vec![
        v1::Error::reply(1, v1::error::Code::InvalidBlob, "the blob does not open").result,
        Some(response::Result::Status(v1::StatusReply {
            sealed: false,
            synced: true,
            role: "primary".into(),
            node_id: "node-1".into(),
            zone: "zone-a".into(),
            domain_key_fingerprint: "ab".repeat(32),
        })),
        Some(response::Result::GenerateKey(v1::KeyBlobReply {
            blob: vec![1; 80],
            public_key: vec![2; 40],
        })),
        Some(response::Result::GetPublicKey(v1::PublicKeyReply::default())),
        Some(response::Result::Encrypt(v1::EncryptReply::default())),
        Some(response::Result::Decrypt(v1::DecryptReply::default())),
        Some(response::Result::Sign(v1::SignReply::default())),
        Some(response::Result::Verify(v1::VerifyReply::default())),
        Some(response::Result::GenerateDataKey(
            v1::GenerateDataKeyReply::default(),
        )),
        Some(response::Result::GenerateDataKeyPair(
            v1::GenerateDataKeyPairReply::default(),
        )),
        Some(response::Result::GenerateRandom(
            v1::GenerateRandomReply::default(),
        )),
        Some(response::Result::Hash(v1::HashReply::default())),
    ];
    let mut seeds = Vec::new();
    let mut stream = Vec::new();
    for (id, op) in (1u64..).zip(ops) {
        let mut frame = Vec::new();
        let request = Request { id, op: Some(op) };
        if hsm::encode_frame(&request, DEFAULT_MAX_FRAME_LEN, &mut frame).is_ok() {
            stream.extend_from_slice(&frame);
            seeds.push(frame);
        }
    }
    seeds.push(std::mem::take(&mut stream));
    for (id, result) in (1u64..).zip(results) {
        let mut frame = Vec::new();
        let response = Response { id, result };
        if hsm::encode_frame(&response, DEFAULT_MAX_FRAME_LEN, &mut frame).is_ok() {
            stream.extend_from_slice(&frame);
            seeds.push(frame);
        }
    }
    seeds.push(stream);
    seeds
}
