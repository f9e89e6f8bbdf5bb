"""Drives an instance endpoint of a Strongroom KMS node with the official dedicated-KMS
SDK for Python (alibabacloud-dkms-gcs 1.0.2, its sync client, exactly as an application
uses it) and prints what it saw as one JSON object for the Rust test (sdk_instance.rs).

Every result is checked independently of Strongroom where the material allows it:
signatures with the public key GetPublicKey gives (`cryptography`; SM2 with `gmssl`),
RSA and SM2 ciphertexts made here with the public key and decrypted by the endpoint,
data keys and data key pairs decrypted back, Advance ciphertexts decrypted from the blob
alone. Symmetric keys never leave the HSM, so for them the check is the round trip.

Output: {"checks": {name: bool}, "refusals": {name: {"code", "status", "message"}},
"errors": {section: traceback}, "facts": {...}}. The Rust side asserts every check is
true and every refusal has its documented code.

Environment: SR_ENDPOINT (host:port), SR_CA (PrivateKmsCA_<instance>.pem), SR_CLIENTS
(JSON {name: {"key_file", "password"}} with the names main, limited, wrong_network,
expiring), SR_EXPIRES_AT (Unix time the `expiring` client key ends), SR_KEYS (JSON list
of {"id", "spec", "usage", "alias"}), SR_DISABLED (a disabled key of the instance),
SR_ROTATED (JSON {"key", "initial", "primary"}: a key with a second version).
"""
import base64
import hashlib
import json
import os
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils as asym_utils
from gmssl import sm2 as gm_sm2
from openapi_util.models import RuntimeOptions
from sdk import models as m

from dkms_support import CLIENTS, E, NO_RETRY, check, client, out, refusal, section

KEYS = json.loads(E["SR_KEYS"])
MISSING_KEY = "key-" + "0" * 24


def key(spec, usage):
    return next(k for k in KEYS if k["spec"] == spec and k["usage"] == usage)


def sm2_point(der):
    point = der[-65:]
    assert point[0] == 0x04, der.hex()
    return point[1:33].hex() + point[33:].hex()


def sm2_engine(der):
    engine = gm_sm2.CryptSM2(private_key=None, public_key="04" + sm2_point(der), mode=1)
    # gmssl's constructor strips "04" with lstrip, which can eat digits of x.
    engine.public_key = sm2_point(der)
    return engine


def der_read(data, i):
    """One DER TLV at i: (tag, value, next index)."""
    tag, length = data[i], data[i + 1]
    i += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[i:i + n], "big")
        i += n
    return tag, data[i:i + length], i + length


def der_len(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_int(value):
    body = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    if body[0] & 0x80:
        body = b"\x00" + body
    return b"\x02" + der_len(len(body)) + body


def der_octets(value):
    return b"\x04" + der_len(len(value)) + value


def der_seq(*items):
    body = b"".join(items)
    return b"\x30" + der_len(len(body)) + body


def sm2_encrypt_der(public_der, plaintext):
    """SM2 encryption by gmssl (C1 ‖ C3 ‖ C2), re-encoded as GM/T 0009 DER."""
    raw = sm2_engine(public_der).encrypt(plaintext)
    x, y, c3, c2 = raw[:32], raw[32:64], raw[64:96], raw[96:]
    return der_seq(der_int(int.from_bytes(x, "big")), der_int(int.from_bytes(y, "big")),
                   der_octets(c3), der_octets(c2))


def sm2_verifies(public_der, message, signature_der):
    tag, seq, _ = der_read(signature_der, 0)
    _, r, i = der_read(seq, 0)
    _, s, _ = der_read(seq, i)
    rs = "%064x%064x" % (int.from_bytes(r, "big"), int.from_bytes(s, "big"))
    return tag == 0x30 and sm2_engine(public_der).verify_with_sm3(rs, message)


def pem_der(pem):
    lines = pem.strip().splitlines()
    return base64.b64decode("".join(lines[1:-1]))


def python_verifies(public, algorithm, message, signature, digest=False):
    hashed = asym_utils.Prehashed(hashes.SHA256()) if digest else hashes.SHA256()
    try:
        if algorithm == "RSA_PSS_SHA_256":
            public.verify(signature, message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                          salt_length=padding.PSS.DIGEST_LENGTH),
                          hashed)
        elif algorithm == "RSA_PKCS1_SHA_256":
            public.verify(signature, message, padding.PKCS1v15(), hashed)
        else:
            public.verify(signature, message, ec.ECDSA(hashed))
        return True
    except InvalidSignature:
        return False


main = client("main")
# A client key that expires while the script runs: first it works (the end is checked
# in the section refusals).
expiring = client("expiring")
check("expiring client key works before its end", expiring.encrypt(
    m.EncryptRequest(key_id=key("Aliyun_AES_256", "ENCRYPT/DECRYPT")["id"], plaintext=b"x")).key_id
    == key("Aliyun_AES_256", "ENCRYPT/DECRYPT")["id"])


# 1. Symmetric keys: Encrypt/Decrypt (GCM with AAD, CBC with an IV and padding), by id
#    and by alias; data keys; Advance ciphertexts from the blob alone; tampering refused.
@section("symmetric")
def _():
    for spec, gcm, cbc in [("Aliyun_AES_256", "AES_GCM", "AES_CBC"),
                           ("Aliyun_AES_192", "AES_GCM", "AES_CBC"),
                           ("Aliyun_AES_128", "AES_GCM", "AES_CBC"),
                           ("Aliyun_SM4", "SM4_GCM", "SM4_CBC")]:
        k = key(spec, "ENCRYPT/DECRYPT")
        plain = b"hello dkms " + os.urandom(8)
        enc = main.encrypt(m.EncryptRequest(key_id=k["id"], plaintext=plain, aad=b"aad-bytes"))
        check(f"{spec} encrypt answers the key id", enc.key_id == k["id"])
        check(f"{spec} encrypt default algorithm", enc.algorithm == gcm)
        check(f"{spec} gcm iv 12 bytes", len(enc.iv) == 12)
        check(f"{spec} gcm blob carries the tag", len(enc.ciphertext_blob) == len(plain) + 16)
        dec = main.decrypt(m.DecryptRequest(key_id=k["id"], ciphertext_blob=enc.ciphertext_blob,
                                            iv=enc.iv, algorithm=enc.algorithm, aad=b"aad-bytes"))
        check(f"{spec} gcm round trip", dec.plaintext == plain and dec.key_id == k["id"])
        refusal(f"{spec} wrong aad", lambda: main.decrypt(m.DecryptRequest(
            key_id=k["id"], ciphertext_blob=enc.ciphertext_blob, iv=enc.iv,
            algorithm=enc.algorithm, aad=b"other")))
        tampered = bytearray(enc.ciphertext_blob)
        tampered[0] ^= 1
        refusal(f"{spec} tampered ciphertext", lambda: main.decrypt(m.DecryptRequest(
            key_id=k["id"], ciphertext_blob=bytes(tampered), iv=enc.iv, algorithm=enc.algorithm,
            aad=b"aad-bytes")))
        iv = os.urandom(16)
        cbc_enc = main.encrypt(m.EncryptRequest(key_id=k["id"], plaintext=plain, algorithm=cbc,
                                                iv=iv, padding_mode="PKCS7_PADDING"))
        check(f"{spec} cbc uses the given iv", cbc_enc.iv == iv and cbc_enc.algorithm == cbc)
        check(f"{spec} cbc pads", len(cbc_enc.ciphertext_blob) % 16 == 0)
        cbc_dec = main.decrypt(m.DecryptRequest(key_id=k["id"], ciphertext_blob=cbc_enc.ciphertext_blob,
                                                iv=iv, algorithm=cbc, padding_mode="PKCS7_PADDING"))
        check(f"{spec} cbc round trip", cbc_dec.plaintext == plain)
        by_alias = main.encrypt(m.EncryptRequest(key_id=k["alias"], plaintext=plain))
        check(f"{spec} alias answers the key id", by_alias.key_id == k["id"])
        check(f"{spec} alias round trip", main.decrypt(m.DecryptRequest(
            key_id=k["alias"], ciphertext_blob=by_alias.ciphertext_blob, iv=by_alias.iv,
            algorithm=by_alias.algorithm)).plaintext == plain)

        dk = main.generate_data_key(m.GenerateDataKeyRequest(key_id=k["id"], aad=b"dk"))
        check(f"{spec} data key default 32 bytes", len(dk.plaintext) == 32)
        back = main.decrypt(m.DecryptRequest(key_id=k["id"], ciphertext_blob=dk.ciphertext_blob,
                                             iv=dk.iv, algorithm=dk.algorithm, aad=b"dk"))
        check(f"{spec} data key decrypts back", back.plaintext == dk.plaintext)
        dk64 = main.generate_data_key(m.GenerateDataKeyRequest(key_id=k["id"], number_of_bytes=64))
        check(f"{spec} data key of 64 bytes", len(dk64.plaintext) == 64)
        refusal(f"{spec} data key of 1025 bytes", lambda: main.generate_data_key(
            m.GenerateDataKeyRequest(key_id=k["id"], number_of_bytes=1025)))

        adv = main.advance_encrypt(m.AdvanceEncryptRequest(key_id=k["id"], plaintext=plain, aad=b"x"))
        check(f"{spec} advance blob names its version",
              adv.ciphertext_blob[:36].decode() == adv.key_version_id and len(adv.key_version_id) == 36)
        alone = main.advance_decrypt(m.AdvanceDecryptRequest(ciphertext_blob=adv.ciphertext_blob, aad=b"x"))
        check(f"{spec} advance decrypt from the blob alone",
              alone.plaintext == plain and alone.key_id == k["id"]
              and alone.key_version_id == adv.key_version_id)
        with_key = main.advance_decrypt(m.AdvanceDecryptRequest(
            key_id=k["alias"], ciphertext_blob=adv.ciphertext_blob, aad=b"x"))
        check(f"{spec} advance decrypt with the alias", with_key.plaintext == plain)
        of_encrypt = main.advance_decrypt(m.AdvanceDecryptRequest(
            key_id=k["id"], ciphertext_blob=enc.ciphertext_blob, iv=enc.iv,
            algorithm=enc.algorithm, aad=b"aad-bytes"))
        check(f"{spec} advance decrypt of an Encrypt ciphertext", of_encrypt.plaintext == plain)
        adk = main.advance_generate_data_key(m.AdvanceGenerateDataKeyRequest(
            key_id=k["id"], number_of_bytes=16, aad=b"y"))
        check(f"{spec} advance data key", len(adk.plaintext) == 16 and main.advance_decrypt(
            m.AdvanceDecryptRequest(ciphertext_blob=adk.ciphertext_blob, aad=b"y")).plaintext == adk.plaintext)
        # The transfer SDKs' extension: the version used comes back in a header, and a
        # Decrypt naming only that version (no KeyId) finds the key.
        rt = RuntimeOptions(response_headers=["x-kms-migrationkeyversionid"])
        tagged = main.encrypt_with_options(m.EncryptRequest(key_id=k["id"], plaintext=plain), rt)
        version = (tagged.response_headers or {}).get("x-kms-migrationkeyversionid")
        check(f"{spec} migration header on encrypt", version is not None and len(version) == 36)
        if version:
            moved = main.decrypt(m.DecryptRequest(
                ciphertext_blob=tagged.ciphertext_blob, iv=tagged.iv, algorithm=tagged.algorithm,
                request_headers={"x-kms-migrationkeyversionid": version}))
            check(f"{spec} decrypt by migration header", moved.plaintext == plain and moved.key_id == k["id"])


# 1b. Versions after a rotation: Encrypt and its kin keep the first version (their
#     ciphertexts name none); the Advance operations use the primary and name it.
@section("versions")
def _():
    r = json.loads(E["SR_ROTATED"])
    rt = RuntimeOptions(response_headers=["x-kms-migrationkeyversionid"])
    enc = main.encrypt_with_options(m.EncryptRequest(key_id=r["key"], plaintext=b"v"), rt)
    check("encrypt uses the first version",
          (enc.response_headers or {}).get("x-kms-migrationkeyversionid") == r["initial"])
    check("decrypt finds it", main.decrypt(m.DecryptRequest(
        key_id=r["key"], ciphertext_blob=enc.ciphertext_blob, iv=enc.iv,
        algorithm=enc.algorithm)).plaintext == b"v")
    adv = main.advance_encrypt(m.AdvanceEncryptRequest(key_id=r["key"], plaintext=b"v"))
    check("advance encrypt uses the primary version", adv.key_version_id == r["primary"])
    check("advance decrypt of the primary's blob", main.advance_decrypt(
        m.AdvanceDecryptRequest(ciphertext_blob=adv.ciphertext_blob)).plaintext == b"v")
    named = main.encrypt_with_options(m.EncryptRequest(
        key_id=r["key"], plaintext=b"v",
        request_headers={"x-kms-migrationkeyversionid": r["primary"]}), rt)
    check("encrypt with a named version",
          (named.response_headers or {}).get("x-kms-migrationkeyversionid") == r["primary"])
    check("decrypt needs the same version", main.decrypt(m.DecryptRequest(
        key_id=r["key"], ciphertext_blob=named.ciphertext_blob, iv=named.iv,
        algorithm=named.algorithm,
        request_headers={"x-kms-migrationkeyversionid": r["primary"]})).plaintext == b"v")
    refusal("decrypt with the other version", lambda: main.decrypt(m.DecryptRequest(
        key_id=r["key"], ciphertext_blob=named.ciphertext_blob, iv=named.iv,
        algorithm=named.algorithm)))
    refusal("encrypt with a version of another key", lambda: main.encrypt(m.EncryptRequest(
        key_id=key("Aliyun_AES_256", "ENCRYPT/DECRYPT")["id"], plaintext=b"v",
        request_headers={"x-kms-migrationkeyversionid": r["primary"]})))


# 2. Data key pairs under a symmetric key: every pair spec, DER and PEM, the private key
#    decrypted back and matching the public key.
@section("data_key_pairs")
def _():
    master = key("Aliyun_AES_256", "ENCRYPT/DECRYPT")["id"]
    for spec in ["RSA_2048", "RSA_3072", "EC_P256", "EC_P256K", "EC_SM2"]:
        for fmt in ["DER", "PEM"]:
            pair = main.generate_data_key_pair(m.GenerateDataKeyPairRequest(
                key_id=master, key_pair_spec=spec, key_format=fmt, aad=b"pair"))
            back = main.decrypt(m.DecryptRequest(key_id=master, ciphertext_blob=pair.private_key_ciphertext_blob,
                                                 iv=pair.iv, algorithm=pair.algorithm, aad=b"pair"))
            check(f"pair {spec} {fmt} decrypts back", back.plaintext == pair.private_key_plaintext)
            check(f"pair {spec} {fmt} spec echoed", pair.key_pair_spec == spec)
            if fmt == "PEM":
                check(f"pair {spec} PEM armour", pair.private_key_plaintext.startswith(b"-----BEGIN PRIVATE KEY-----")
                      and pair.public_key.startswith(b"-----BEGIN PUBLIC KEY-----"))
            if spec != "EC_SM2":
                load_priv = serialization.load_der_private_key if fmt == "DER" else serialization.load_pem_private_key
                load_pub = serialization.load_der_public_key if fmt == "DER" else serialization.load_pem_public_key
                private = load_priv(pair.private_key_plaintext, password=None)
                public = load_pub(pair.public_key)
                check(f"pair {spec} {fmt} keys match",
                      private.public_key().public_bytes(serialization.Encoding.DER,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
                      == public.public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo))
        bare = main.generate_data_key_pair_without_plaintext(m.GenerateDataKeyPairWithoutPlaintextRequest(
            key_id=master, key_pair_spec=spec, key_format="DER"))
        opened = main.decrypt(m.DecryptRequest(key_id=master, ciphertext_blob=bare.private_key_ciphertext_blob,
                                               iv=bare.iv, algorithm=bare.algorithm))
        check(f"pair without plaintext {spec} opens", len(opened.plaintext) > 0 and len(bare.public_key) > 0)
        adv = main.advance_generate_data_key_pair(m.AdvanceGenerateDataKeyPairRequest(
            key_id=master, key_pair_spec=spec, key_format="DER", aad=b"a"))
        check(f"advance pair {spec} from the blob alone", main.advance_decrypt(m.AdvanceDecryptRequest(
            ciphertext_blob=adv.private_key_ciphertext_blob, aad=b"a")).plaintext == adv.private_key_plaintext)
        adv_bare = main.advance_generate_data_key_pair_without_plaintext(
            m.AdvanceGenerateDataKeyPairWithoutPlaintextRequest(key_id=master, key_pair_spec=spec, key_format="DER"))
        check(f"advance pair without plaintext {spec}",
              len(main.advance_decrypt(m.AdvanceDecryptRequest(
                  ciphertext_blob=adv_bare.private_key_ciphertext_blob)).plaintext) > 0
              and adv_bare.key_version_id == adv_bare.private_key_ciphertext_blob[:36].decode())
    refusal("pair of an unknown spec", lambda: main.generate_data_key_pair(m.GenerateDataKeyPairRequest(
        key_id=master, key_pair_spec="RSA_1024", key_format="DER")))


# 3. Signatures: every signing spec, RAW and DIGEST, checked with the public key here;
#    Verify true for the node's own and false for a flipped byte.
@section("signatures")
def _():
    for spec, algorithms in [("RSA_2048", ["RSA_PSS_SHA_256", "RSA_PKCS1_SHA_256"]),
                             ("RSA_3072", ["RSA_PSS_SHA_256", "RSA_PKCS1_SHA_256"]),
                             ("RSA_4096", ["RSA_PKCS1_SHA_256"]),
                             ("EC_P256", ["ECDSA_SHA_256"]), ("EC_P256K", ["ECDSA_SHA_256"]),
                             ("EC_SM2", ["SM2DSA"])]:
        k = key(spec, "SIGN/VERIFY")
        pem = main.get_public_key(m.GetPublicKeyRequest(key_id=k["id"]))
        check(f"{spec} public key is PEM", pem.public_key.startswith("-----BEGIN PUBLIC KEY-----")
              and pem.key_id == k["id"])
        der = pem_der(pem.public_key)
        public = None if spec == "EC_SM2" else serialization.load_pem_public_key(pem.public_key.encode())
        for algorithm in algorithms:
            message = b"message for " + spec.encode() + os.urandom(4)
            signed = main.sign(m.SignRequest(key_id=k["id"], algorithm=algorithm, message=message))
            if spec == "EC_SM2":
                ok = sm2_verifies(der, message, signed.signature)
            else:
                ok = python_verifies(public, algorithm, message, signed.signature)
            check(f"{spec} {algorithm} RAW verified here", ok)
            check(f"{spec} {algorithm} RAW message type", signed.message_type == "RAW")
            check(f"{spec} {algorithm} node verifies", main.verify(m.VerifyRequest(
                key_id=k["id"], algorithm=algorithm, message=message, signature=signed.signature)).value)
            flipped = bytearray(signed.signature)
            flipped[len(flipped) // 2] ^= 1
            check(f"{spec} {algorithm} node rejects a flipped byte", not main.verify(m.VerifyRequest(
                key_id=k["id"], algorithm=algorithm, message=message, signature=bytes(flipped))).value)
            if spec != "EC_SM2":
                digest = hashlib.sha256(message).digest()
                by_digest = main.sign(m.SignRequest(key_id=k["id"], algorithm=algorithm, message=digest,
                                                    message_type="DIGEST"))
                check(f"{spec} {algorithm} DIGEST verified here",
                      python_verifies(public, algorithm, digest, by_digest.signature, digest=True))
                check(f"{spec} {algorithm} node verifies DIGEST", main.verify(m.VerifyRequest(
                    key_id=k["id"], algorithm=algorithm, message=digest, message_type="DIGEST",
                    signature=by_digest.signature)).value)
    refusal("sign with an encryption key", lambda: main.sign(m.SignRequest(
        key_id=key("Aliyun_AES_256", "ENCRYPT/DECRYPT")["id"], message=b"x")))
    refusal("sign with the wrong algorithm", lambda: main.sign(m.SignRequest(
        key_id=key("RSA_2048", "SIGN/VERIFY")["id"], algorithm="ECDSA_SHA_256", message=b"x")))
    refusal("public key of a symmetric key", lambda: main.get_public_key(m.GetPublicKeyRequest(
        key_id=key("Aliyun_AES_256", "ENCRYPT/DECRYPT")["id"])))


# 4. Asymmetric encryption: ciphertexts made here with the public key open in the node;
#    the node's own round trip.
@section("asymmetric_encryption")
def _():
    for spec, algorithm in [("RSA_2048", "RSAES_OAEP_SHA_256"), ("RSA_2048", "RSAES_OAEP_SHA_1"),
                            ("RSA_3072", "RSAES_OAEP_SHA_256"), ("EC_SM2", "SM2PKE")]:
        k = key(spec, "ENCRYPT/DECRYPT")
        pem = main.get_public_key(m.GetPublicKeyRequest(key_id=k["id"])).public_key
        plain = b"for " + spec.encode() + os.urandom(6)
        if spec == "EC_SM2":
            mine = sm2_encrypt_der(pem_der(pem), plain)
        else:
            h = hashes.SHA256() if algorithm.endswith("256") else hashes.SHA1()
            mine = serialization.load_pem_public_key(pem.encode()).encrypt(
                plain, padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None))
        opened = main.decrypt(m.DecryptRequest(key_id=k["id"], ciphertext_blob=mine, algorithm=algorithm))
        check(f"{spec} {algorithm} made here, opened by the node", opened.plaintext == plain)
        enc = main.encrypt(m.EncryptRequest(key_id=k["id"], plaintext=plain, algorithm=algorithm))
        check(f"{spec} {algorithm} round trip", main.decrypt(m.DecryptRequest(
            key_id=k["id"], ciphertext_blob=enc.ciphertext_blob, algorithm=enc.algorithm)).plaintext == plain)
    refusal("advance encrypt with an RSA key", lambda: main.advance_encrypt(m.AdvanceEncryptRequest(
        key_id=key("RSA_2048", "ENCRYPT/DECRYPT")["id"], plaintext=b"x")))


# 5. GenerateRandom.
@section("random")
def _():
    default = main.generate_random(m.GenerateRandomRequest())
    check("random default 32 bytes", len(default.random) == 32 and len(default.request_id) == 36)
    check("random 1024 bytes", len(main.generate_random(m.GenerateRandomRequest(length=1024)).random) == 1024)
    check("random differs", default.random != main.generate_random(m.GenerateRandomRequest()).random)
    refusal("random of 1025 bytes", lambda: main.generate_random(m.GenerateRandomRequest(length=1025)))


# 6. The refusals of §11: unknown key, disabled key, wrong usage, secrets, access.
@section("refusals")
def _():
    aes = key("Aliyun_AES_256", "ENCRYPT/DECRYPT")["id"]
    other = key("Aliyun_AES_128", "ENCRYPT/DECRYPT")["id"]
    refusal("unknown key", lambda: main.encrypt(m.EncryptRequest(key_id=MISSING_KEY, plaintext=b"x")))
    refusal("unknown alias", lambda: main.encrypt(m.EncryptRequest(key_id="alias/none", plaintext=b"x")))
    refusal("disabled key", lambda: main.encrypt(m.EncryptRequest(key_id=E["SR_DISABLED"], plaintext=b"x")))
    refusal("encrypt with a signing key", lambda: main.encrypt(m.EncryptRequest(
        key_id=key("EC_P256", "SIGN/VERIFY")["id"], plaintext=b"x")))
    refusal("secret not found", lambda: main.get_secret_value(m.GetSecretValueRequest(secret_name="db")))
    limited = client("limited")
    check("limited client may use its key", limited.encrypt(m.EncryptRequest(key_id=aes, plaintext=b"x")).key_id == aes)
    refusal("resource outside the policy", lambda: limited.encrypt(m.EncryptRequest(key_id=other, plaintext=b"x")))
    refusal("secret without the secret permission", lambda: limited.get_secret_value(
        m.GetSecretValueRequest(secret_name="db")))
    refusal("source outside the network rule", lambda: client("wrong_network").encrypt(
        m.EncryptRequest(key_id=aes, plaintext=b"x")))
    # A client key file with the main key's id but another key's private key.
    with open(CLIENTS["main"]["key_file"]) as f:
        main_id = json.load(f)["KeyId"]
    with open(CLIENTS["limited"]["key_file"]) as f:
        forged = dict(json.load(f), KeyId=main_id)
    forged_file = os.path.join(os.path.dirname(CLIENTS["main"]["key_file"]), "forged.json")
    with open(forged_file, "w") as f:
        json.dump(forged, f)
    refusal("tampered signature", lambda: client("x", forged_file, CLIENTS["limited"]["password"]).encrypt(
        m.EncryptRequest(key_id=aes, plaintext=b"x")))
    unknown = dict(forged, KeyId="KAAP.00000000-0000-4000-8000-000000000000")
    unknown_file = os.path.join(os.path.dirname(CLIENTS["main"]["key_file"]), "unknown.json")
    with open(unknown_file, "w") as f:
        json.dump(unknown, f)
    refusal("unknown client key", lambda: client("x", unknown_file, CLIENTS["limited"]["password"]).encrypt(
        m.EncryptRequest(key_id=aes, plaintext=b"x")))
    wait = int(E["SR_EXPIRES_AT"]) - time.time() + 2.5
    if wait > 0:
        time.sleep(wait)
    refusal("expired client key", lambda: expiring.encrypt(m.EncryptRequest(key_id=aes, plaintext=b"x")))


print(json.dumps(out))
