//! The published examples of the Chinese national standards, run through the public API.
//!
//! Sources (the vectors below are those of these annexes; the same values appear in the
//! tests of several independent public SM implementations, in C, Go and Python):
//! - SM2: GB/T 32918.5-2017 (from GM/T 0003.5-2012), Annex A, the examples on
//!   the recommended 256-bit curve: the key pair `d_A`/`P_A`, the digital signature of
//!   "message digest" with `ID_A = 1234567812345678` (with its `Z_A`, `e`, `k`, `r`,
//!   `s`), and the public-key encryption of "encryption standard" (`C1`, `C2`, `C3`)
//!   under the same key. The curve constants come from GB/T 32918.5-2017 §3.
//! - SM3: GB/T 32905-2016, Annex A: example 1 ("abc") and example 2 ("abcd" × 16).
//! - SM4: GB/T 32907-2016, Annex A: example 1 (one block) and example 2 (the same
//!   block encrypted 1 000 000 times).
//!
//! The standards fix the signature and encryption nonce `k`, which our API never lets a
//! caller choose, so the published signature and ciphertext are checked by verifying
//! and decrypting them; our own signatures and ciphertexts are checked for validity and
//! shape, and against independent implementations in `interop`.

use std::time::Instant;

use strongroom_crypto::SM2_DEFAULT_ID;
use strongroom_crypto::error::CryptoError;
use strongroom_crypto::hash::hash;
use strongroom_crypto::key::{DecryptParams, EncryptParams, Key};
use strongroom_crypto::material::KeyMaterial;
use strongroom_crypto::public::PublicKey;
use strongroom_crypto::spec::{
    Algorithm, HashAlgorithm, KeySpec, KeyUsage, MessageType, PaddingMode,
};

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test vector is valid hex")
}

// --- SM2: GB/T 32918.5-2017 Annex A -------------------------------------------------

/// The private key `d_A` (`d_B` in the encryption example: it is the same key).
const SM2_D: &str = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8";
/// The public key `P_A = (x_A, y_A)`.
const SM2_X: &str = "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020";
const SM2_Y: &str = "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13";

/// The signature example: message, ID, `Z_A`, `e` and the signature `(r, s)`. (The
/// annex's nonce, `k = 59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21`,
/// cannot be passed through our API, which always draws `k` itself.)
const SIG_MESSAGE: &[u8] = b"message digest";
const SIG_ID: &str = "1234567812345678";
const SIG_Z_A: &str = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3";
const SIG_E: &str = "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640";
const SIG_R: &str = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3";
const SIG_S: &str = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";

/// The encryption example: plaintext and ciphertext `C1 = (x1, y1)`, `C3`, `C2`.
const ENC_PLAINTEXT: &[u8] = b"encryption standard";
const ENC_C1_X: &str = "04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73";
const ENC_C1_Y: &str = "E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0";
const ENC_C3: &str = "59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766";
const ENC_C2: &str = "21886CA989CA9C7D58087307CA93092D651EFA";

/// The recommended curve (GB/T 32918.5-2017 §3): `a`, `b`, `x_G`, `y_G`.
const CURVE_A: &str = "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC";
const CURVE_B: &str = "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93";
const CURVE_GX: &str = "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7";
const CURVE_GY: &str = "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0";

/// DER prefix of an SM2 SubjectPublicKeyInfo: `SEQUENCE { SEQUENCE { id-ecPublicKey,
/// sm2p256v1 (1.2.156.10197.1.301) }, BIT STRING (0 unused bits) }`, followed by the
/// 65-byte uncompressed point `04 ‖ x ‖ y`.
const SM2_SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a811ccf5501822d034200";

// A minimal DER encoder, enough for `SEQUENCE { INTEGER, ... }` and OCTET STRINGs.

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap());
    } else if len <= 0xFF {
        out.extend([0x81, u8::try_from(len).unwrap()]);
    } else {
        out.push(0x82);
        out.extend(u16::try_from(len).unwrap().to_be_bytes());
    }
    out.extend_from_slice(content);
    out
}

/// A non-negative INTEGER from big-endian magnitude bytes: minimal (leading zero bytes
/// removed), with one 0x00 added back when the high bit is set so it stays positive.
fn der_uint(magnitude: &[u8]) -> Vec<u8> {
    let first = magnitude.iter().position(|b| *b != 0);
    let trimmed = first.map_or(&[0u8][..], |i| &magnitude[i..]);
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    der_tlv(0x02, &content)
}

fn der_sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    der_tlv(0x30, &parts.concat())
}

/// The published `(r, s)` as a DER `SEQUENCE { r INTEGER, s INTEGER }`, our signature
/// encoding.
fn published_signature_der() -> Vec<u8> {
    der_sequence(&[der_uint(&unhex(SIG_R)), der_uint(&unhex(SIG_S))])
}

/// The published `C1`, `C3`, `C2` as GM/T 0009 DER `SEQUENCE { x INTEGER, y INTEGER,
/// hash OCTET STRING (C3), ciphertext OCTET STRING (C2) }`, our SM2PKE encoding.
fn published_ciphertext_der(c3: &[u8], c2: &[u8]) -> Vec<u8> {
    der_sequence(&[
        der_uint(&unhex(ENC_C1_X)),
        der_uint(&unhex(ENC_C1_Y)),
        der_tlv(0x04, c3),
        der_tlv(0x04, c2),
    ])
}

fn annex_material() -> KeyMaterial {
    KeyMaterial::import_sm2_scalar(&unhex(SM2_D)).expect("the annex private key imports")
}

fn annex_key(usage: KeyUsage) -> Key {
    Key::new(annex_material(), usage).unwrap()
}

#[test]
fn der_encoder_follows_the_rules() {
    assert_eq!(der_uint(&[0x7F]), [0x02, 0x01, 0x7F]);
    assert_eq!(der_uint(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
    assert_eq!(der_uint(&[0x00, 0x00, 0x01]), [0x02, 0x01, 0x01]);
    assert_eq!(der_uint(&[0x00, 0x00]), [0x02, 0x01, 0x00]);
    assert_eq!(der_tlv(0x04, &[0xAA; 200])[..3], [0x04, 0x81, 200]);
    // r and s both have the high bit set: 2 + 2 × (2 + 33) bytes.
    let sig = published_signature_der();
    assert_eq!(sig.len(), 72);
    assert_eq!(sig[..4], [0x30, 0x46, 0x02, 0x21]);
}

/// GB/T 32918.5-2017 Annex A: `P_A = [d_A]G`.
#[test]
fn sm2_annex_public_key_matches_the_private_key() {
    let material = annex_material();
    assert_eq!(material.spec(), KeySpec::EcSm2);
    let public = material.public_key().unwrap();
    let expected_spki = format!("{SM2_SPKI_PREFIX}04{SM2_X}{SM2_Y}").to_lowercase();
    assert_eq!(hex::encode(public.to_der()), expected_spki);
    // The uncompressed point is the SPKI's last 65 bytes.
    let der = public.to_der();
    let point = &der[der.len() - 65..];
    assert_eq!(point[0], 0x04);
    assert_eq!(point[1..33], unhex(SM2_X)[..]);
    assert_eq!(point[33..], unhex(SM2_Y)[..]);
    // The published public key, parsed on its own, is the same key.
    let parsed = PublicKey::from_der(KeySpec::EcSm2, &unhex(&expected_spki)).unwrap();
    assert_eq!(parsed, public);
    // The PKCS#8 export re-imports to the same key pair.
    let pkcs8 = material.to_secret_bytes().unwrap();
    let reimported = KeyMaterial::import(KeySpec::EcSm2, pkcs8.expose_secret()).unwrap();
    assert_eq!(reimported.public_key().unwrap(), public);
}

/// GB/T 32918.5-2017 Annex A, signature example: the published `(r, s)` over
/// "message digest" with ID `1234567812345678` verifies, through the key and through
/// the bare public key.
#[test]
fn sm2_annex_signature_verifies() {
    assert_eq!(SM2_DEFAULT_ID, SIG_ID, "our fixed ID is the annex's ID");
    let key = annex_key(KeyUsage::SignVerify);
    let signature = published_signature_der();

    let (algorithm, valid) = key
        .verify(None, SIG_MESSAGE, MessageType::Raw, &signature)
        .unwrap();
    assert_eq!(algorithm, Algorithm::Sm2Dsa);
    assert!(
        valid,
        "the published GB/T 32918.5 signature does not verify with Key::verify"
    );

    let public = key.public_key().unwrap();
    assert!(
        public
            .verify(Algorithm::Sm2Dsa, SIG_MESSAGE, MessageType::Raw, &signature)
            .unwrap(),
        "the published GB/T 32918.5 signature does not verify with PublicKey::verify"
    );

    // A changed message, a changed signature, and the raw `r ‖ s` form do not verify.
    for message in [&b"message digesT"[..], b"message digest ", b""] {
        let (_, valid) = key
            .verify(None, message, MessageType::Raw, &signature)
            .unwrap();
        assert!(!valid, "verified for message {message:?}");
    }
    let mut changed = signature.clone();
    *changed.last_mut().unwrap() ^= 0x01;
    assert!(
        !public
            .verify(Algorithm::Sm2Dsa, SIG_MESSAGE, MessageType::Raw, &changed)
            .unwrap()
    );
    let raw_rs = [unhex(SIG_R), unhex(SIG_S)].concat();
    assert!(
        !public
            .verify(Algorithm::Sm2Dsa, SIG_MESSAGE, MessageType::Raw, &raw_rs)
            .unwrap()
    );
}

/// GB/T 32918.5-2017 Annex A, signature example: `Z_A` and `e = SM3(Z_A ‖ M)`, and the
/// published signature verified over `e` in DIGEST mode.
#[test]
fn sm2_annex_digest_and_digest_mode_verify() {
    let key = annex_key(KeyUsage::SignVerify);
    let public = key.public_key().unwrap();
    let signature = published_signature_der();

    let e = public.sm2_signing_digest(SIG_MESSAGE).unwrap();
    let (_, valid) = key
        .verify(None, &e, MessageType::Digest, &signature)
        .unwrap();
    assert!(
        valid,
        "the published signature does not verify over our e = SM3(Z_A ‖ M) in DIGEST mode"
    );
    assert_eq!(hex::encode_upper(&e), SIG_E);

    // Z_A recomputed here from its definition (GB/T 32918.2 §5.5):
    // Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A), ENTL_A = bit length of ID_A.
    let entl = u16::try_from(SIG_ID.len() * 8).unwrap().to_be_bytes();
    let z_input = [
        entl.to_vec(),
        SIG_ID.as_bytes().to_vec(),
        unhex(CURVE_A),
        unhex(CURVE_B),
        unhex(CURVE_GX),
        unhex(CURVE_GY),
        unhex(SM2_X),
        unhex(SM2_Y),
    ]
    .concat();
    let z_a = hash(HashAlgorithm::Sm3, &z_input);
    assert_eq!(hex::encode_upper(&z_a), SIG_Z_A);
    let e_independent = hash(HashAlgorithm::Sm3, &[z_a, SIG_MESSAGE.to_vec()].concat());
    assert_eq!(e_independent, e);

    // The digest of another message, and a digest of the wrong length.
    let other = public.sm2_signing_digest(b"message digesT").unwrap();
    assert!(
        !public
            .verify(Algorithm::Sm2Dsa, &other, MessageType::Digest, &signature)
            .unwrap()
    );
    assert_eq!(
        key.verify(None, &e[..31], MessageType::Digest, &signature),
        Err(CryptoError::InvalidDigestLength {
            expected: 32,
            actual: 31
        })
    );
}

/// Our own signatures with the annex key verify in both modes, and RAW and DIGEST
/// signing agree.
#[test]
fn sm2_own_signatures_with_the_annex_key_verify() {
    let key = annex_key(KeyUsage::SignVerify);
    let public = key.public_key().unwrap();
    let e = public.sm2_signing_digest(SIG_MESSAGE).unwrap();

    let (algorithm, raw_sig) = key.sign(None, SIG_MESSAGE, MessageType::Raw).unwrap();
    assert_eq!(algorithm, Algorithm::Sm2Dsa);
    let (_, digest_sig) = key.sign(None, &e, MessageType::Digest).unwrap();
    for signature in [&raw_sig, &digest_sig] {
        // DER SEQUENCE { r, s }: at most 2 + 2 × 35 bytes.
        assert_eq!(signature[0], 0x30);
        assert!(signature.len() <= 72);
        assert!(
            public
                .verify(Algorithm::Sm2Dsa, SIG_MESSAGE, MessageType::Raw, signature)
                .unwrap()
        );
        assert!(
            public
                .verify(Algorithm::Sm2Dsa, &e, MessageType::Digest, signature)
                .unwrap()
        );
        assert!(
            !public
                .verify(
                    Algorithm::Sm2Dsa,
                    b"message digesT",
                    MessageType::Raw,
                    signature
                )
                .unwrap()
        );
    }
    // GB/T 32918.2 uses a random k: two signatures of one message differ.
    assert_ne!(
        raw_sig,
        key.sign(None, SIG_MESSAGE, MessageType::Raw).unwrap().1
    );
}

/// GB/T 32918.5-2017 Annex A, encryption example: the published `C1 ‖ C3 ‖ C2`, in our
/// GM/T 0009 DER form, decrypts to "encryption standard".
#[test]
fn sm2_annex_ciphertext_decrypts() {
    let key = annex_key(KeyUsage::EncryptDecrypt);
    let c3 = unhex(ENC_C3);
    let c2 = unhex(ENC_C2);
    assert_eq!(c2.len(), ENC_PLAINTEXT.len());
    let params = DecryptParams {
        algorithm: Some(Algorithm::Sm2Pke),
        ..DecryptParams::default()
    };

    let plaintext = key
        .decrypt(&published_ciphertext_der(&c3, &c2), &params)
        .expect("the published GB/T 32918.5 ciphertext does not decrypt");
    assert_eq!(plaintext.expose_secret(), ENC_PLAINTEXT);
    // SM2PKE is the EC_SM2 ENCRYPT/DECRYPT default.
    let plaintext = key
        .decrypt(
            &published_ciphertext_der(&c3, &c2),
            &DecryptParams::default(),
        )
        .unwrap();
    assert_eq!(plaintext.expose_secret(), ENC_PLAINTEXT);

    // A flipped bit anywhere in C3 or C2 fails, opaquely.
    for i in [0, 17, c3.len() - 1] {
        let mut bad = c3.clone();
        bad[i] ^= 0x01;
        assert_eq!(
            key.decrypt(&published_ciphertext_der(&bad, &c2), &params),
            Err(CryptoError::DecryptionFailed),
            "C3 byte {i} flipped"
        );
    }
    for i in [0, c2.len() - 1] {
        let mut bad = c2.clone();
        bad[i] ^= 0x80;
        assert_eq!(
            key.decrypt(&published_ciphertext_der(&c3, &bad), &params),
            Err(CryptoError::DecryptionFailed),
            "C2 byte {i} flipped"
        );
    }
    // The C1C3C2 concatenation of the annex (not DER) is refused, not misread.
    let concatenated = [
        vec![0x04],
        unhex(ENC_C1_X),
        unhex(ENC_C1_Y),
        c3.clone(),
        c2.clone(),
    ]
    .concat();
    assert_eq!(
        key.decrypt(&concatenated, &params),
        Err(CryptoError::DecryptionFailed)
    );
}

/// Our own SM2PKE ciphertext under the annex key has the GM/T 0009 shape the annex
/// ciphertext was built into above, and decrypts.
#[test]
fn sm2_own_ciphertext_has_the_gmt_0009_shape() {
    let key = annex_key(KeyUsage::EncryptDecrypt);
    let encrypted = key
        .encrypt(ENC_PLAINTEXT, &EncryptParams::default())
        .unwrap();
    assert_eq!(encrypted.algorithm, Algorithm::Sm2Pke);
    assert!(encrypted.iv.is_empty());
    let der = &encrypted.ciphertext;
    // SEQUENCE, short length (the whole thing is under 128 bytes here).
    assert_eq!(der[0], 0x30);
    assert_eq!(usize::from(der[1]), der.len() - 2);
    let mut at = 2;
    let mut field = |tag: u8| {
        assert_eq!(der[at], tag, "tag at offset {at}");
        let len = usize::from(der[at + 1]);
        let value = der[at + 2..at + 2 + len].to_vec();
        at += 2 + len;
        value
    };
    let x = field(0x02);
    let y = field(0x02);
    let c3 = field(0x04);
    let c2 = field(0x04);
    assert!(x.len() <= 33 && y.len() <= 33);
    assert_eq!(c3.len(), 32);
    assert_eq!(c2.len(), ENC_PLAINTEXT.len());
    assert_eq!(at, der.len());
    assert_eq!(
        key.decrypt(der, &DecryptParams::default())
            .unwrap()
            .expose_secret(),
        ENC_PLAINTEXT
    );
}

// --- SM3: GB/T 32905-2016 Annex A ---------------------------------------------------

#[test]
fn sm3_annex_examples() {
    // Example 1: "abc".
    assert_eq!(
        hex::encode_upper(hash(HashAlgorithm::Sm3, b"abc")),
        "66C7F0F462EEEDD9D1F2D46BDC10E4E24167C4875CF2F7A2297DA02B8F4BA8E0"
    );
    // Example 2: "abcd" repeated 16 times (512 bits).
    let message = b"abcd".repeat(16);
    assert_eq!(message.len(), 64);
    assert_eq!(
        hex::encode_upper(hash(HashAlgorithm::Sm3, &message)),
        "DEBE9FF92275B8A138604889C18E5A4D6FDB70E5387E5765293DCBA39C0C5732"
    );
}

// --- SM4: GB/T 32907-2016 Annex A ---------------------------------------------------

const SM4_KEY: &str = "0123456789ABCDEFFEDCBA9876543210";
const SM4_PLAINTEXT: &str = "0123456789ABCDEFFEDCBA9876543210";
const SM4_ONCE: &str = "681EDF34D206965E86B3E94F536E4246";
const SM4_MILLION: &str = "595298C7C6FD271F0402F804C33D3F66";

/// The API offers no ECB. CBC over exactly one block with an all-zero IV and no padding
/// is the bare block cipher: `C1 = E_K(P1 ⊕ IV) = E_K(P1)` (and `P1 = D_K(C1) ⊕ IV =
/// D_K(C1)`), so the annex's single-block encryptions can be run through SM4_CBC.
const ZERO_IV: [u8; 16] = [0; 16];

fn sm4_annex_key() -> Key {
    let material = KeyMaterial::import(KeySpec::Sm4, &unhex(SM4_KEY)).unwrap();
    Key::new(material, KeyUsage::EncryptDecrypt).unwrap()
}

fn encrypt_block(key: &Key, block: &[u8]) -> Vec<u8> {
    let encrypted = key
        .encrypt(
            block,
            &EncryptParams {
                algorithm: Some(Algorithm::Sm4Cbc),
                iv: Some(&ZERO_IV),
                aad: &[],
                padding: Some(PaddingMode::NoPadding),
            },
        )
        .unwrap();
    encrypted.ciphertext
}

fn decrypt_block(key: &Key, block: &[u8]) -> Vec<u8> {
    key.decrypt(
        block,
        &DecryptParams {
            algorithm: Some(Algorithm::Sm4Cbc),
            iv: &ZERO_IV,
            aad: &[],
            padding: Some(PaddingMode::NoPadding),
        },
    )
    .unwrap()
    .expose_secret()
    .to_vec()
}

/// Example 1: one block, key = plaintext.
#[test]
fn sm4_annex_single_block() {
    let key = sm4_annex_key();
    let encrypted = key
        .encrypt(
            &unhex(SM4_PLAINTEXT),
            &EncryptParams {
                algorithm: Some(Algorithm::Sm4Cbc),
                iv: Some(&ZERO_IV),
                aad: &[],
                padding: Some(PaddingMode::NoPadding),
            },
        )
        .unwrap();
    assert_eq!(encrypted.algorithm, Algorithm::Sm4Cbc);
    assert_eq!(encrypted.iv, ZERO_IV);
    assert_eq!(encrypted.padding, Some(PaddingMode::NoPadding));
    assert_eq!(hex::encode_upper(&encrypted.ciphertext), SM4_ONCE);
    assert_eq!(
        hex::encode_upper(decrypt_block(&key, &encrypted.ciphertext)),
        SM4_PLAINTEXT
    );
    // With PKCS#7 the same block is followed by the encrypted padding block.
    let padded = key
        .encrypt(
            &unhex(SM4_PLAINTEXT),
            &EncryptParams {
                algorithm: Some(Algorithm::Sm4Cbc),
                iv: Some(&ZERO_IV),
                ..EncryptParams::default()
            },
        )
        .unwrap();
    assert_eq!(padded.ciphertext.len(), 32);
    assert_eq!(hex::encode_upper(&padded.ciphertext[..16]), SM4_ONCE);
}

/// Example 2: the block encrypted 1 000 000 times with the same key, each output the
/// next input, every round a full `Key::encrypt` call (policy check, key schedule,
/// CBC). The last round is then decrypted back to the 999 999th output. (Decrypting all
/// 1 000 000 rounds back would double the run time for little: decryption of the
/// annex block is already checked in `sm4_annex_single_block`.)
#[test]
fn sm4_annex_one_million_rounds() {
    const ROUNDS: usize = 1_000_000;
    let key = sm4_annex_key();

    let start = Instant::now();
    let mut previous = Vec::new();
    let mut block = unhex(SM4_PLAINTEXT);
    for _ in 0..ROUNDS {
        let next = encrypt_block(&key, &block);
        previous = core::mem::replace(&mut block, next);
    }
    let elapsed = start.elapsed();
    assert_eq!(hex::encode_upper(&block), SM4_MILLION);
    assert_eq!(decrypt_block(&key, &block), previous);

    eprintln!("SM4 GB/T 32907 example 2: {ROUNDS} encryptions through Key::encrypt in {elapsed:?}");
}
