"""Drives the key actions of a Strongroom KMS node (docs/keys.md) with the official
management SDK (alibabacloud-kms20160120), through its typed request and response
models, and prints what it saw as one JSON object for the Rust test (sdk_keys.rs) to
check.

Import wrapping and every check of what the node made (ciphertexts, signatures, public
keys) is done only with independent implementations: `cryptography` and `gmssl`.

Every section runs on its own: an exception in one is reported under
`out["errors"][<section>]` and the others still run. Sections named in NOT_YET_SERVED
are not run at all (a handler the node does not have yet) and are listed in
`out["skipped"]`; the Rust test says so instead of checking them.

Environment: SR_ENDPOINT (host:port), SR_CA (management CA file), SR_AK, SR_SK,
SR_NODES (JSON of the HSM nodes), SR_P12 (client.p12 path), SR_P12_PASSWORD, SR_ROOTCA.
"""
import base64
import datetime
import hashlib
import json
import os
import time
import traceback

from alibabacloud_kms20160120 import models as kms
from alibabacloud_kms20160120.client import Client
from alibabacloud_tea_openapi import utils_models as om
from alibabacloud_tea_openapi.utils import Utils
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, padding as sympad, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils as asym_utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from darabonba.runtime import RuntimeOptions
from gmssl import sm2 as gm_sm2

# Sections whose actions the node does not serve yet; they are skipped, not faked.
NOT_YET_SERVED = set()

E = os.environ
RT = RuntimeOptions(ca=E["SR_CA"])
MISSING_KEY = "key-" + "0" * 24


def client():
    return Client(om.Config(
        access_key_id=E["SR_AK"], access_key_secret=E["SR_SK"], endpoint=E["SR_ENDPOINT"],
        protocol="https", region_id="cn-hangzhou"))


def generic(action, query):
    """The SDK's generic call: our own actions and parameters the models do not have."""
    params = om.Params(action=action, version="2016-01-20", protocol="HTTPS", pathname="/",
                       method="POST", auth_type="AK", style="RPC",
                       req_body_type="formData", body_type="json")
    return c.call_api(params, om.OpenApiRequest(query=Utils.query(query)), RT)["body"]


def failure(call):
    """The error code and HTTP status of a call that should fail ({"code": "OK"} if not)."""
    try:
        call()
    except Exception as e:  # the SDK raises ClientException / TeaException subclasses
        return {"code": getattr(e, "code", None),
                "status": getattr(e, "status_code", None)
                or (getattr(e, "data", None) or {}).get("httpCode"),
                "message": str(getattr(e, "message", e))[:300]}
    return {"code": "OK"}


def unix(iso):
    """An ISO 8601 UTC time (`2026-11-28T23:05:34Z`) in Unix seconds."""
    at = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    return int(at.timestamp())


def seconds_until(iso):
    return unix(iso) - int(time.time())


def seconds_between(a, b):
    return unix(b) - unix(a)


def b64(data):
    return base64.b64encode(data).decode()


def fields(model, names):
    return {n: getattr(model, n) for n in names}


META = ["key_id", "arn", "key_spec", "key_usage", "key_state", "origin", "protection_level",
        "description", "creator", "creation_date", "delete_date", "automatic_rotation",
        "rotation_interval", "last_rotation_date", "next_rotation_date", "primary_key_version",
        "material_expire_time", "dkmsinstance_id"]
DESCRIBE = META + ["deletion_protection", "deletion_protection_description"]
VERSION = ["key_id", "key_version_id", "creation_date"]

c = client()
out = {"errors": {}, "skipped": sorted(NOT_YET_SERVED)}
made = []  # every key this script created, in order
versions_made = [0]  # every key version this script created (each key starts with one)


def section(name):
    def run(body):
        if name in NOT_YET_SERVED:
            return body
        try:
            out[name] = body()
        except Exception:
            out["errors"][name] = traceback.format_exc()
        return body
    return run


def create(**kwargs):
    """CreateKey through the typed model; the typed KeyMetadata."""
    meta = c.create_key_with_options(
        kms.CreateKeyRequest(dkmsinstance_id=instance, **kwargs), RT).body.key_metadata
    made.append(meta.key_id)
    versions_made[0] += 1
    return meta


def new_version(key_id):
    """CreateKeyVersion through the typed model; the typed KeyVersion."""
    made_version = c.create_key_version_with_options(
        kms.CreateKeyVersionRequest(key_id=key_id), RT).body.key_version
    versions_made[0] += 1
    return made_version


def describe(key_id):
    return c.describe_key_with_options(kms.DescribeKeyRequest(key_id=key_id), RT).body.key_metadata


def state(key_id):
    return describe(key_id).key_state


def list_keys(filters, page_number=1, page_size=100):
    body = c.list_keys_with_options(kms.ListKeysRequest(
        filters=json.dumps(filters), page_number=page_number, page_size=page_size), RT).body
    return {"total": body.total_count, "page_number": body.page_number,
            "page_size": body.page_size, "ids": [k.key_id for k in body.keys.key],
            "arns": [k.key_arn for k in body.keys.key]}


def public_key(key_id, version=None):
    return c.get_public_key_with_options(
        kms.GetPublicKeyRequest(key_id=key_id, key_version_id=version), RT).body


# ---------------------------------------------------------------------------------------
# Setup: two instances (one stays Uninitialized), a cluster, the first one connected.
# The connected instance has KeyNum=100, the minimum: the quota section fills it last.

created = generic("CreateKmsInstance", {
    "InstanceName": "sdk-keys", "Quantity": "2", "VpcNum": "1", "KeyNum": "100",
    "SecretNum": "0", "Spec": "1000", "Period": "12"})
instance, idle_instance = [x["KmsInstanceId"] for x in created["KmsInstances"]["KmsInstance"]]
cluster = generic("RegisterHsmCluster", {"HsmClusterName": "keys", "Nodes": E["SR_NODES"]})["HsmClusterId"]
with open(E["SR_P12"], "rb") as f:
    p12 = b64(f.read())
with open(E["SR_ROOTCA"]) as f:
    rootca = f.read()
generic("ConnectKmsInstance", {
    "KmsInstanceId": instance, "HsmClusterId": cluster, "ClientCertificate": p12,
    "ClientCertificatePassword": E["SR_P12_PASSWORD"], "HsmRootCaPem": rootca})
deadline = time.time() + 60
while True:
    status = c.get_kms_instance_with_options(
        kms.GetKmsInstanceRequest(kms_instance_id=instance), RT).body.kms_instance.status
    if status in ("Connected", "Error") or time.time() > deadline:
        break
    time.sleep(0.5)
out["setup"] = {"instance": instance, "idle_instance": idle_instance, "status": status}
if status != "Connected":
    print(json.dumps(out))
    raise SystemExit(0)

SPECS = [
    ("Aliyun_AES_256", "ENCRYPT/DECRYPT"), ("Aliyun_AES_192", "ENCRYPT/DECRYPT"),
    ("Aliyun_AES_128", "ENCRYPT/DECRYPT"), ("Aliyun_SM4", "ENCRYPT/DECRYPT"),
    ("RSA_2048", "ENCRYPT/DECRYPT"), ("RSA_2048", "SIGN/VERIFY"),
    ("RSA_3072", "ENCRYPT/DECRYPT"), ("RSA_3072", "SIGN/VERIFY"),
    ("RSA_4096", "ENCRYPT/DECRYPT"), ("RSA_4096", "SIGN/VERIFY"),
    ("EC_SM2", "ENCRYPT/DECRYPT"), ("EC_SM2", "SIGN/VERIFY"),
    ("EC_P256", "SIGN/VERIFY"), ("EC_P256K", "SIGN/VERIFY"),
]
by_spec = {}  # (spec, usage) -> key id


# 1. Every spec with every usage it allows; the defaults.
@section("create")
def _():
    rows = []
    for i, (spec, usage) in enumerate(SPECS):
        extra = {}
        if i % 3 == 0:
            extra = {"description": f"the {spec} key",
                     "tags": json.dumps([{"TagKey": "spec", "TagValue": spec},
                                         {"TagKey": "made-by", "TagValue": "sdk_keys.py"}])}
        meta = create(key_spec=spec, key_usage=usage, **extra)
        by_spec[(spec, usage)] = meta.key_id
        rows.append({"spec": spec, "usage": usage, "asked": extra,
                     "created": fields(meta, META),
                     "described": fields(describe(meta.key_id), DESCRIBE),
                     "tags": [fields(t, ["key_id", "tag_key", "tag_value"]) for t in
                              c.list_resource_tags_with_options(kms.ListResourceTagsRequest(
                                  key_id=meta.key_id), RT).body.tags.tag]})
    defaults = {}
    for name, kwargs in [("none", {}), ("EC_P256", {"key_spec": "EC_P256"}),
                         ("RSA_2048", {"key_spec": "RSA_2048"}), ("EC_SM2", {"key_spec": "EC_SM2"}),
                         ("Aliyun_SM4", {"key_spec": "Aliyun_SM4"}),
                         ("explicit", {"key_spec": "Aliyun_AES_256", "protection_level": "HSM",
                                       "origin": "Aliyun_KMS",
                                       "key_storage_mechanism": "HsmEncryptedDatabase"})]:
        meta = create(**kwargs)
        defaults[name] = fields(meta, META)
    return {"rows": rows, "defaults": defaults}


# 2. Refusals of CreateKey; the additional key usage.
@section("invalid")
def _():
    def refused(**kwargs):
        kwargs.setdefault("dkmsinstance_id", instance)
        return failure(lambda: c.create_key_with_options(kms.CreateKeyRequest(**kwargs), RT))

    r = {
        "sm2_bogus_usage": refused(key_spec="EC_SM2", key_usage="BOGUS/USAGE"),
        "aes_sign": refused(key_spec="Aliyun_AES_256", key_usage="SIGN/VERIFY"),
        "sm4_sign": refused(key_spec="Aliyun_SM4", key_usage="SIGN/VERIFY"),
        "p256_encrypt": refused(key_spec="EC_P256", key_usage="ENCRYPT/DECRYPT"),
        "p256k_encrypt": refused(key_spec="EC_P256K", key_usage="ENCRYPT/DECRYPT"),
        "unknown_spec": refused(key_spec="Aliyun_AES_512"),
        "software": refused(key_spec="Aliyun_AES_256", protection_level="SOFTWARE"),
        "hsm_internal": refused(key_spec="Aliyun_AES_256", key_storage_mechanism="HsmInternal"),
        "unknown_origin": refused(origin="Elsewhere"),
        "rotation_rsa": refused(key_spec="RSA_2048", key_usage="SIGN/VERIFY",
                                enable_automatic_rotation=True),
        "rotation_external": refused(key_spec="Aliyun_AES_256", origin="EXTERNAL",
                                     enable_automatic_rotation=True),
        "long_description": refused(description="d" * 8193),
        "unknown_instance": refused(dkmsinstance_id="kst-nosuchinstance0000000"),
        "idle_instance": refused(dkmsinstance_id=idle_instance),
        "no_instance": failure(lambda: generic("CreateKey", {"KeySpec": "Aliyun_AES_256"})),
        "additional_on_p256": failure(lambda: generic("CreateKey", {
            "DKMSInstanceId": instance, "KeySpec": "EC_P256", "KeyUsage": "SIGN/VERIFY",
            "AdditionalKeyUsage": "ENCRYPT/DECRYPT"})),
        "additional_on_aes": failure(lambda: generic("CreateKey", {
            "DKMSInstanceId": instance, "KeySpec": "Aliyun_AES_256",
            "AdditionalKeyUsage": "SIGN/VERIFY"})),
        "additional_same": failure(lambda: generic("CreateKey", {
            "DKMSInstanceId": instance, "KeySpec": "RSA_2048", "KeyUsage": "SIGN/VERIFY",
            "AdditionalKeyUsage": "SIGN/VERIFY"})),
    }
    # Accepted on RSA (through the generic call: the models do not know the parameter),
    # shown by DescribeKey, and found by a KeyUsage filter on either usage.
    made_rsa = generic("CreateKey", {"DKMSInstanceId": instance, "KeySpec": "RSA_2048",
                                     "KeyUsage": "SIGN/VERIFY",
                                     "AdditionalKeyUsage": "ENCRYPT/DECRYPT",
                                     "Tags": json.dumps([{"TagKey": "additional", "TagValue": "rsa"}])})
    rsa_id = made_rsa["KeyMetadata"]["KeyId"]
    made.append(rsa_id)
    versions_made[0] += 1
    r["additional_rsa_created"] = made_rsa["KeyMetadata"]
    r["additional_rsa_described"] = generic("DescribeKey", {"KeyId": rsa_id})["KeyMetadata"]
    r["additional_rsa_by_encrypt"] = list_keys([{"Key": "TagKey", "Values": ["additional"]},
                                                {"Key": "KeyUsage", "Values": ["ENCRYPT/DECRYPT"]}])["ids"]
    r["additional_rsa_by_sign"] = list_keys([{"Key": "TagKey", "Values": ["additional"]},
                                             {"Key": "KeyUsage", "Values": ["SIGN/VERIFY"]}])["ids"]
    r["additional_rsa_id"] = rsa_id
    # A key without one does not show the field.
    plain = create(key_spec="RSA_2048", key_usage="SIGN/VERIFY")
    r["plain_rsa_described"] = generic("DescribeKey", {"KeyId": plain.key_id})["KeyMetadata"]
    return r


# 3. ListKeys: filters and paging over five keys tagged for this section.
@section("list")
def _():
    tag = [{"TagKey": "sdk-list", "TagValue": "yes"}]
    ids = [create(key_spec=s, key_usage=u, tags=json.dumps(tag)).key_id for s, u in [
        ("Aliyun_AES_256", "ENCRYPT/DECRYPT"), ("Aliyun_AES_256", "ENCRYPT/DECRYPT"),
        ("Aliyun_AES_128", "ENCRYPT/DECRYPT"), ("Aliyun_SM4", "ENCRYPT/DECRYPT"),
        ("EC_P256", "SIGN/VERIFY")]]
    c.disable_key_with_options(kms.DisableKeyRequest(key_id=ids[1]), RT)
    c.create_alias_with_options(kms.CreateAliasRequest(alias_name="alias/sdk-list-one",
                                                       key_id=ids[2]), RT)
    mine = {"Key": "TagKey", "Values": ["sdk-list"]}
    pages = [list_keys([mine], page_number=n, page_size=2) for n in (1, 2, 3)]
    default_page = c.list_keys_with_options(kms.ListKeysRequest(), RT).body
    return {
        "ids": ids,
        "all_made": list(made),
        "tag": list_keys([mine]),
        "enabled": list_keys([mine, {"Key": "KeyState", "Values": ["Enabled"]}]),
        "disabled": list_keys([mine, {"Key": "KeyState", "Values": ["Disabled"]}]),
        "sm4": list_keys([mine, {"Key": "KeySpec", "Values": ["Aliyun_SM4"]}]),
        "sm4_or_p256": list_keys([mine, {"Key": "KeySpec", "Values": ["Aliyun_SM4", "EC_P256"]}]),
        "sign": list_keys([mine, {"Key": "KeyUsage", "Values": ["SIGN/VERIFY"]}]),
        "in_instance": list_keys([mine, {"Key": "DKMSInstanceId", "Values": [instance]}]),
        "in_idle_instance": list_keys([mine, {"Key": "DKMSInstanceId", "Values": [idle_instance]}]),
        "alias": list_keys([{"Key": "AliasName", "Values": ["alias/sdk-list-one"]}]),
        "instance_all": list_keys([{"Key": "DKMSInstanceId", "Values": [instance]}]),
        "unfiltered": list_keys([], page_size=100),
        "pages": pages,
        "default_page": {"total": default_page.total_count, "page_size": default_page.page_size,
                         "page_number": default_page.page_number,
                         "count": len(default_page.keys.key)},
        "bad_filter": failure(lambda: list_keys([{"Key": "Color", "Values": ["red"]}])),
        "bad_page_size": failure(lambda: list_keys([], page_size=101)),
    }


# 4. Lifecycle.
@section("lifecycle")
def _():
    key = create(key_spec="Aliyun_AES_256", description="before").key_id
    arn = describe(key).arn
    r = {"key": key}
    c.update_key_description_with_options(
        kms.UpdateKeyDescriptionRequest(key_id=key, description="after"), RT)
    r["description"] = describe(key).description
    c.disable_key_with_options(kms.DisableKeyRequest(key_id=key), RT)
    r["disabled"] = state(key)
    r["disabled_new_version"] = failure(lambda: new_version(key))
    r["disabled_cancel"] = failure(lambda: c.cancel_key_deletion_with_options(
        kms.CancelKeyDeletionRequest(key_id=key), RT))
    c.enable_key_with_options(kms.EnableKeyRequest(key_id=key), RT)
    r["enabled"] = state(key)
    r["enabled_cancel"] = failure(lambda: c.cancel_key_deletion_with_options(
        kms.CancelKeyDeletionRequest(key_id=key), RT))

    def schedule(days, key_id=key):
        return failure(lambda: c.schedule_key_deletion_with_options(
            kms.ScheduleKeyDeletionRequest(key_id=key_id, pending_window_in_days=days), RT))

    r["window_6"] = schedule(6)
    r["window_367"] = schedule(367)
    r["window_missing"] = failure(lambda: generic("ScheduleKeyDeletion", {"KeyId": key}))
    r["window_7"] = schedule(7)
    pending = describe(key)
    r["pending"] = fields(pending, DESCRIBE)
    r["delete_in"] = seconds_until(pending.delete_date)
    r["pending_disable"] = failure(lambda: c.disable_key_with_options(kms.DisableKeyRequest(key_id=key), RT))
    r["pending_enable"] = failure(lambda: c.enable_key_with_options(kms.EnableKeyRequest(key_id=key), RT))
    r["pending_description"] = failure(lambda: c.update_key_description_with_options(
        kms.UpdateKeyDescriptionRequest(key_id=key, description="x"), RT))
    r["pending_schedule"] = schedule(7)
    r["pending_protection"] = failure(lambda: c.set_deletion_protection_with_options(
        kms.SetDeletionProtectionRequest(protected_resource_arn=arn, enable_deletion_protection=True), RT))
    r["pending_new_version"] = failure(lambda: new_version(key))
    r["pending_listed"] = list_keys([{"Key": "KeyId", "Values": [key]},
                                     {"Key": "KeyState", "Values": ["PendingDeletion"]}])["ids"]
    c.cancel_key_deletion_with_options(kms.CancelKeyDeletionRequest(key_id=key), RT)
    back = describe(key)
    r["cancelled"] = fields(back, DESCRIBE)

    c.set_deletion_protection_with_options(kms.SetDeletionProtectionRequest(
        protected_resource_arn=arn, enable_deletion_protection=True,
        deletion_protection_description="keep it"), RT)
    protected = describe(key)
    r["protected"] = {"deletion_protection": protected.deletion_protection,
                      "description": protected.deletion_protection_description}
    r["protected_schedule"] = schedule(7)
    r["protected_state"] = state(key)
    # Lifted again, named by KeyId this time; the deletion is then allowed.
    r["unprotect"] = failure(lambda: generic("SetDeletionProtection", {
        "KeyId": key, "EnableDeletionProtection": "false"}))
    r["unprotected"] = describe(key).deletion_protection
    r["unprotected_schedule"] = schedule(30)
    r["unprotected_delete_in"] = seconds_until(describe(key).delete_date)
    c.cancel_key_deletion_with_options(kms.CancelKeyDeletionRequest(key_id=key), RT)

    r["unknown_describe"] = failure(lambda: describe(MISSING_KEY))
    r["unknown_enable"] = failure(lambda: c.enable_key_with_options(kms.EnableKeyRequest(key_id=MISSING_KEY), RT))
    r["unknown_schedule"] = schedule(7, MISSING_KEY)
    r["by_arn"] = describe(arn).key_id
    return r


# 5. Aliases.
@section("aliases")
def _():
    one = create(key_spec="Aliyun_AES_256").key_id
    two = create(key_spec="Aliyun_AES_256").key_id

    def make(name, key_id=one):
        return failure(lambda: c.create_alias_with_options(
            kms.CreateAliasRequest(alias_name=name, key_id=key_id), RT))

    longest = "alias/" + "a" * 255
    r = {"one": one, "two": two,
         "create": make("alias/sdk-app"),
         "create_nested": make("alias/sdk/app_1-x"),
         "create_longest": make(longest),
         "duplicate": make("alias/sdk-app", two),
         "no_prefix": make("sdk-app"),
         "acs": make("alias/acs-app"),
         "acs_bare": make("alias/acs"),
         "bad_characters": make("alias/bad name!"),
         "dot": make("alias/a.b"),
         "empty": make("alias/"),
         "too_long": make("alias/" + "a" * 256),
         "unknown_key": make("alias/sdk-nokey", MISSING_KEY)}
    r["by_alias"] = describe("alias/sdk-app").key_id
    account = describe(one).arn.split(":")[3]
    r["by_alias_arn"] = describe(f"acs:kms:cn-hangzhou:{account}:alias/sdk-app").key_id
    c.update_alias_with_options(kms.UpdateAliasRequest(alias_name="alias/sdk-app", key_id=two), RT)
    r["moved"] = describe("alias/sdk-app").key_id
    r["update_unknown"] = failure(lambda: c.update_alias_with_options(
        kms.UpdateAliasRequest(alias_name="alias/sdk-none", key_id=two), RT))
    r["update_to_unknown_key"] = failure(lambda: c.update_alias_with_options(
        kms.UpdateAliasRequest(alias_name="alias/sdk-app", key_id=MISSING_KEY), RT))
    body = c.list_aliases_with_options(kms.ListAliasesRequest(page_number=1, page_size=100), RT).body
    r["list"] = {"total": body.total_count, "page_size": body.page_size,
                 "aliases": [fields(a, ["alias_name", "alias_arn", "key_id"]) for a in body.aliases.alias]}
    default_page = c.list_aliases_with_options(kms.ListAliasesRequest(), RT).body
    r["list_default_page_size"] = default_page.page_size
    for name, key_id in [("by_key_one", one), ("by_key_two", two)]:
        body = c.list_aliases_by_key_id_with_options(
            kms.ListAliasesByKeyIdRequest(key_id=key_id, page_number=1, page_size=100), RT).body
        r[name] = {"total": body.total_count,
                   "aliases": [fields(a, ["alias_name", "alias_arn", "key_id"]) for a in body.aliases.alias]}
    c.delete_alias_with_options(kms.DeleteAliasRequest(alias_name="alias/sdk-app"), RT)
    r["deleted_describe"] = failure(lambda: describe("alias/sdk-app"))
    r["deleted_again"] = failure(lambda: c.delete_alias_with_options(
        kms.DeleteAliasRequest(alias_name="alias/sdk-app"), RT))
    r["after_delete_two"] = c.list_aliases_by_key_id_with_options(
        kms.ListAliasesByKeyIdRequest(key_id=two), RT).body.total_count
    r["reused"] = make("alias/sdk-app", two)
    return r


# 6. Tags.
@section("tags")
def _():
    key = create(key_spec="Aliyun_AES_256", tags=json.dumps([{"TagKey": "born", "TagValue": "with"}])).key_id

    def tags():
        return sorted([fields(t, ["key_id", "tag_key", "tag_value"]) for t in c.list_resource_tags_with_options(
            kms.ListResourceTagsRequest(key_id=key), RT).body.tags.tag], key=lambda t: t["tag_key"])

    def tag(pairs):
        return failure(lambda: c.tag_resource_with_options(kms.TagResourceRequest(
            key_id=key, tags=json.dumps([{"TagKey": k, "TagValue": v} for k, v in pairs])), RT))

    r = {"key": key, "born": tags()}
    r["tag"] = tag([("env", "prod"), ("team", "a b/c:d@e")])
    r["tagged"] = tags()
    r["replace"] = tag([("env", "dev")])
    r["replaced"] = tags()
    c.untag_resource_with_options(kms.UntagResourceRequest(key_id=key, tag_keys=json.dumps(["team", "born"])), RT)
    r["untagged"] = tags()
    r["aliyun_prefix"] = tag([("aliyun-x", "v")])
    r["acs_prefix"] = tag([("acs:x", "v")])
    r["bad_character"] = tag([("a#b", "v")])
    r["too_long"] = tag([("k" * 129, "v")])
    r["too_many"] = tag([(f"k{i}", "v") for i in range(20)])  # with env: 21
    r["after_refusals"] = tags()
    r["unknown_key"] = failure(lambda: c.list_resource_tags_with_options(
        kms.ListResourceTagsRequest(key_id=MISSING_KEY), RT))
    return r


# 7. Versions and rotation.
@section("versions")
def _():
    meta = create(key_spec="Aliyun_AES_256")
    key, first = meta.key_id, meta.primary_key_version
    made_version = new_version(key)
    r = {"key": key, "first": first, "created": fields(made_version, VERSION)}
    r["primary_after"] = describe(key).primary_key_version
    body = c.list_key_versions_with_options(kms.ListKeyVersionsRequest(key_id=key, page_number=1, page_size=10), RT).body
    r["list"] = {"total": body.total_count, "versions": [fields(v, VERSION) for v in body.key_versions.key_version]}
    # Oldest first, also for versions made within one second.
    several = create(key_spec="Aliyun_SM4")
    order = [several.primary_key_version] + [new_version(several.key_id).key_version_id for _ in range(4)]
    r["order_made"] = order
    r["order_listed"] = [v.key_version_id for v in c.list_key_versions_with_options(
        kms.ListKeyVersionsRequest(key_id=several.key_id, page_size=10), RT).body.key_versions.key_version]
    r["order_paged"] = [v.key_version_id for n in (1, 2, 3) for v in c.list_key_versions_with_options(
        kms.ListKeyVersionsRequest(key_id=several.key_id, page_number=n, page_size=2),
        RT).body.key_versions.key_version]
    r["describe_first"] = fields(c.describe_key_version_with_options(kms.DescribeKeyVersionRequest(
        key_id=key, key_version_id=first), RT).body.key_version, VERSION)
    r["describe_unknown"] = failure(lambda: c.describe_key_version_with_options(kms.DescribeKeyVersionRequest(
        key_id=key, key_version_id="00000000-0000-4000-8000-000000000000"), RT))

    def policy(enable, interval=None, key_id=key):
        return failure(lambda: c.update_rotation_policy_with_options(kms.UpdateRotationPolicyRequest(
            key_id=key_id, enable_automatic_rotation=enable, rotation_interval=interval), RT))

    def rotation():
        m = describe(key)
        return {"automatic_rotation": m.automatic_rotation, "rotation_interval": m.rotation_interval,
                "next_rotation_date": m.next_rotation_date, "last_rotation_date": m.last_rotation_date,
                "next_after_last": seconds_between(m.last_rotation_date, m.next_rotation_date)
                if m.next_rotation_date else None}

    r["policy_seconds"] = policy(True, "604800s")
    r["rotation_seconds"] = rotation()
    r["policy_days"] = policy(True, "30d")
    r["rotation_days"] = rotation()
    r["policy_one_day"] = policy(True, "1d")
    r["policy_731_days"] = policy(True, "731d")
    r["policy_garbage"] = policy(True, "soon")
    r["rotation_after_refusals"] = rotation()
    c.disable_key_with_options(kms.DisableKeyRequest(key_id=key), RT)
    r["rotation_disabled_key"] = describe(key).automatic_rotation
    r["policy_disabled_key"] = policy(True, "30d")
    c.enable_key_with_options(kms.EnableKeyRequest(key_id=key), RT)
    r["rotation_enabled_again"] = describe(key).automatic_rotation
    r["policy_off"] = policy(False)
    r["rotation_off"] = rotation()

    rsa_key = by_spec.get(("RSA_2048", "SIGN/VERIFY")) or create(key_spec="RSA_2048", key_usage="SIGN/VERIFY").key_id
    r["policy_rsa"] = policy(True, "30d", rsa_key)
    r["rsa_new_version"] = failure(lambda: new_version(rsa_key))
    rotating = create(key_spec="Aliyun_SM4", enable_automatic_rotation=True, rotation_interval="30d")
    r["created_rotating"] = fields(rotating, META)
    r["created_rotating_next_after_last"] = seconds_between(rotating.last_rotation_date, rotating.next_rotation_date)
    default_rotating = create(key_spec="Aliyun_AES_128", enable_automatic_rotation=True)
    r["created_default_interval"] = default_rotating.rotation_interval
    return r


SM2_P = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF", 16)
SM2_A = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC", 16)
SM2_B = int("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", 16)
OID_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")
OID_SM2 = bytes.fromhex("06082a811ccf5501822d")


def sm2_point(der):
    """x, y of an SM2 SubjectPublicKeyInfo, checked structurally and on the curve (the
    point is the last 65 bytes: the BIT STRING's uncompressed point)."""
    assert der[0] == 0x30 and OID_EC_PUBLIC_KEY in der and OID_SM2 in der, der.hex()
    point = der[-65:]
    assert point[0] == 0x04 and der[-68:-65] == bytes([0x03, 0x42, 0x00]), der.hex()
    x, y = int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big")
    assert (y * y - (x * x * x + SM2_A * x + SM2_B)) % SM2_P == 0, "not on the SM2 curve"
    return x, y


def describe_public_pem(pem):
    lines = pem.strip().splitlines()
    der = base64.b64decode("".join(lines[1:-1]))
    info = {"pem_head": lines[0], "pem_tail": lines[-1]}
    try:
        k = serialization.load_pem_public_key(pem.encode())
        info["parsed_by"] = "cryptography"
        if isinstance(k, rsa.RSAPublicKey):
            info["kind"], info["size"] = "rsa", k.key_size
        else:
            info["kind"], info["curve"] = "ec", k.curve.name
        info["der_round_trip"] = k.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == der
    except Exception as e:  # cryptography has no SM2 curve
        sm2_point(der)
        info["parsed_by"], info["kind"], info["curve"] = "sm2-der", "ec", "sm2"
        info["cryptography_error"] = str(e)[:120]
    return info


# 8. GetPublicKey: parsed by `cryptography`, stable across calls.
@section("public_keys")
def _():
    r = {}
    for spec, usage in [("RSA_2048", "SIGN/VERIFY"), ("RSA_3072", "ENCRYPT/DECRYPT"),
                        ("EC_P256", "SIGN/VERIFY"), ("EC_P256K", "SIGN/VERIFY"),
                        ("EC_SM2", "SIGN/VERIFY"), ("EC_SM2", "ENCRYPT/DECRYPT")]:
        key = by_spec[(spec, usage)]
        first, second = public_key(key), public_key(key)
        primary = describe(key).primary_key_version
        explicit = public_key(key, primary)
        r[f"{spec} {usage}"] = {
            "key_id": first.key_id, "version": first.key_version_id, "primary": primary,
            "stable": first.public_key == second.public_key == explicit.public_key,
            "explicit_version": explicit.key_version_id,
            **describe_public_pem(first.public_key)}
    aes = by_spec[("Aliyun_AES_256", "ENCRYPT/DECRYPT")]
    r["symmetric"] = failure(lambda: public_key(aes))
    r["unknown_version"] = failure(lambda: public_key(by_spec[("EC_P256", "SIGN/VERIFY")],
                                                      "00000000-0000-4000-8000-000000000000"))
    disabled = create(key_spec="EC_P256").key_id
    c.disable_key_with_options(kms.DisableKeyRequest(key_id=disabled), RT)
    r["disabled"] = failure(lambda: public_key(disabled))
    return r


# Helpers for using keys.
def encrypt(key_id, plaintext, context=None):
    return c.encrypt_with_options(kms.EncryptRequest(
        key_id=key_id, plaintext=plaintext, encryption_context=context), RT).body


def decrypt(blob, context=None):
    return c.decrypt_with_options(kms.DecryptRequest(
        ciphertext_blob=blob, encryption_context=context), RT).body


def context_aad(context):
    """The AAD an EncryptionContext binds: SHA-256 of `k1=v1&k2=v2…`, keys sorted."""
    return hashlib.sha256("&".join(f"{k}={v}" for k, v in sorted(context.items())).encode()).digest()


def open_blob(blob, material, cipher, context=None):
    """The node's CiphertextBlob opened here with the original material:
    base64(KeyVersionId 36 ASCII ‖ IV 12 ‖ ciphertext ‖ tag 16), AAD empty without an
    EncryptionContext."""
    raw = base64.b64decode(blob)
    version, iv, body = raw[:36].decode(), raw[36:48], raw[48:]
    aad = context_aad(context) if context else b""
    if cipher == "AES":
        plain = AESGCM(material).decrypt(iv, body, aad)
    else:
        d = Cipher(algorithms.SM4(material), modes.GCM(iv, body[-16:])).decryptor()
        d.authenticate_additional_data(aad)
        plain = d.update(body[:-16]) + d.finalize()
    return version, plain


def plaintext_form(sent, recovered):
    """How the node read `Plaintext`: as the text's bytes, or base64-decoded."""
    if recovered == sent.encode():
        return "text"
    if recovered == base64.b64decode(sent):
        return "base64"
    return "neither"


def sign(key_id, version, algorithm, digest):
    return c.asymmetric_sign_with_options(kms.AsymmetricSignRequest(
        key_id=key_id, key_version_id=version, algorithm=algorithm, digest=b64(digest)), RT).body


def verify(key_id, version, algorithm, digest, signature):
    return c.asymmetric_verify_with_options(kms.AsymmetricVerifyRequest(
        key_id=key_id, key_version_id=version, algorithm=algorithm, digest=b64(digest),
        value=b64(signature)), RT).body.value


def python_verifies(public, algorithm, digest, signature):
    try:
        if algorithm == "RSA_PSS_SHA_256":
            public.verify(signature, digest, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                         salt_length=padding.PSS.DIGEST_LENGTH),
                          asym_utils.Prehashed(hashes.SHA256()))
        elif algorithm == "RSA_PKCS1_SHA_256":
            public.verify(signature, digest, padding.PKCS1v15(), asym_utils.Prehashed(hashes.SHA256()))
        else:
            public.verify(signature, digest, ec.ECDSA(asym_utils.Prehashed(hashes.SHA256())))
        return True
    except InvalidSignature:
        return False


def python_signs(private, algorithm, digest):
    if algorithm == "RSA_PSS_SHA_256":
        return private.sign(digest, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                salt_length=padding.PSS.DIGEST_LENGTH),
                            asym_utils.Prehashed(hashes.SHA256()))
    return private.sign(digest, ec.ECDSA(asym_utils.Prehashed(hashes.SHA256())))


def sign_both_ways(key_id, version, public, private, algorithm):
    """The node signs, Python verifies; Python signs, the node verifies."""
    digest = hashlib.sha256(b"signed by " + key_id.encode()).digest()
    signed = sign(key_id, version, algorithm, digest)
    signature = base64.b64decode(signed.value)
    r = {"key_id": signed.key_id, "version": signed.key_version_id,
         "python_verifies": python_verifies(public, algorithm, digest, signature),
         "node_verifies_own": verify(key_id, version, algorithm, digest, signature),
         "node_rejects_other_digest": verify(key_id, version, algorithm,
                                             hashlib.sha256(b"other").digest(), signature)}
    if private is not None:
        mine = python_signs(private, algorithm, digest)
        r["node_verifies_python"] = verify(key_id, version, algorithm, digest, mine)
        tampered = bytearray(mine)
        tampered[len(tampered) // 2] ^= 1
        r["node_rejects_tampered"] = verify(key_id, version, algorithm, digest, bytes(tampered))
    return r


# 9. Use of keys made by the node (their material never leaves the HSM: round trips,
# and signatures checked with the public key GetPublicKey gives).
@section("use")
def _():
    r = {}
    aes = by_spec[("Aliyun_AES_256", "ENCRYPT/DECRYPT")]
    text = b64(b"secret data " + os.urandom(8))
    enc = encrypt(aes, text)
    raw = base64.b64decode(enc.ciphertext_blob)
    r["encrypt"] = {"key_id": enc.key_id, "version": enc.key_version_id,
                    "blob_version": raw[:36].decode(errors="replace"), "blob_len": len(raw),
                    "primary": describe(aes).primary_key_version}
    dec = decrypt(enc.ciphertext_blob)
    r["decrypt"] = {"key_id": dec.key_id, "version": dec.key_version_id, "round_trip": dec.plaintext == text}
    context = {"purpose": "test", "tenant": "42"}
    enc_ctx = encrypt(aes, text, context)
    r["decrypt_context"] = decrypt(enc_ctx.ciphertext_blob, context).plaintext == text
    r["decrypt_wrong_context"] = failure(lambda: decrypt(enc_ctx.ciphertext_blob, {"purpose": "other"}))
    r["decrypt_missing_context"] = failure(lambda: decrypt(enc_ctx.ciphertext_blob))
    tampered = bytearray(raw)
    tampered[-1] ^= 1
    r["decrypt_tampered"] = failure(lambda: decrypt(b64(bytes(tampered))))
    sm4 = by_spec[("Aliyun_SM4", "ENCRYPT/DECRYPT")]
    r["sm4_round_trip"] = decrypt(encrypt(sm4, text).ciphertext_blob).plaintext == text
    # After a new version: new encryptions use it, old ciphertexts still open.
    versions = create(key_spec="Aliyun_AES_256").key_id
    old = encrypt(versions, text)
    rotated_to = new_version(versions).key_version_id
    newer = encrypt(versions, text)
    r["rotated"] = {"new_version": rotated_to, "newer_version": newer.key_version_id,
                    "old_version": old.key_version_id,
                    "old_opens": decrypt(old.ciphertext_blob).plaintext == text,
                    "new_opens": decrypt(newer.ciphertext_blob).plaintext == text}
    disabled = create(key_spec="Aliyun_AES_256").key_id
    blob = encrypt(disabled, text).ciphertext_blob
    c.disable_key_with_options(kms.DisableKeyRequest(key_id=disabled), RT)
    r["disabled_encrypt"] = failure(lambda: encrypt(disabled, text))
    r["disabled_decrypt"] = failure(lambda: decrypt(blob))
    r["encrypt_with_sign_key"] = failure(lambda: encrypt(by_spec[("EC_P256", "SIGN/VERIFY")], text))
    r["sign_with_aes"] = failure(lambda: sign(aes, describe(aes).primary_key_version, "RSA_PSS_SHA_256",
                                              hashlib.sha256(b"x").digest()))
    r["encrypt_unknown_key"] = failure(lambda: encrypt(MISSING_KEY, text))
    r["encrypt_by_alias"] = failure(lambda: encrypt("alias/sdk-list-one", text))
    for spec, algorithm in [("RSA_2048", "RSA_PSS_SHA_256"), ("EC_P256", "ECDSA_SHA_256"),
                            ("EC_P256K", "ECDSA_SHA_256")]:
        key = by_spec[(spec, "SIGN/VERIFY")]
        got = public_key(key)
        public = serialization.load_pem_public_key(got.public_key.encode())
        r[f"sign {spec}"] = sign_both_ways(key, got.key_version_id, public, None, algorithm)
    rsa_key = by_spec[("RSA_2048", "SIGN/VERIFY")]
    r["sign_wrong_algorithm"] = failure(lambda: sign(rsa_key, describe(rsa_key).primary_key_version,
                                                     "ECDSA_SHA_256", hashlib.sha256(b"x").digest()))
    r["sign_short_digest"] = failure(lambda: sign(rsa_key, describe(rsa_key).primary_key_version,
                                                  "RSA_PSS_SHA_256", b"short"))
    return r


# 10. Import (BYOK), wrapping done here with `cryptography` and `gmssl` only.
def parameters(key_id, wrapping_spec, algorithm):
    return c.get_parameters_for_import_with_options(kms.GetParametersForImportRequest(
        key_id=key_id, wrapping_key_spec=wrapping_spec, wrapping_algorithm=algorithm), RT).body


def import_material(key_id, token, wrapped, expire=None):
    return failure(lambda: c.import_key_material_with_options(kms.ImportKeyMaterialRequest(
        key_id=key_id, import_token=token, encrypted_key_material=b64(wrapped),
        key_material_expire_unix=expire), RT))


def oaep_wrap(public_der, data):
    public = serialization.load_der_public_key(public_der)
    return public.encrypt(data, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                             algorithm=hashes.SHA256(), label=None))


def sm2_wrap(public_der, data):
    """SM2 encryption with gmssl, C1 ‖ C3 ‖ C2 (mode 1); C1 gets its 0x04 prefix here."""
    x, y = sm2_point(public_der)
    engine = gm_sm2.CryptSM2(private_key=None, public_key="04" + "%064x%064x" % (x, y), mode=1)
    # gmssl's constructor strips the prefix with lstrip("04"), which also eats leading
    # '0'/'4' digits of x: set the point directly.
    engine.public_key = "%064x%064x" % (x, y)
    wrapped = engine.encrypt(data)
    assert len(wrapped) == 64 + 32 + len(data), len(wrapped)  # gmssl omits the 0x04
    return b"\x04" + wrapped


def envelope_wrap(public_der, pkcs8):
    """RSAES_OAEP_SHA_256_AES_256_ECB_PKCS7_PAD: OAEP(K) ‖ AES-256-ECB-PKCS7_K(PKCS#8)."""
    transport = os.urandom(32)
    padder = sympad.PKCS7(128).padder()
    padded = padder.update(pkcs8) + padder.finalize()
    e = Cipher(algorithms.AES(transport), modes.ECB()).encryptor()
    return oaep_wrap(public_der, transport) + e.update(padded) + e.finalize()


def pkcs8(private):
    return private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())


def spki(public):
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@section("import")
def _():
    r = {}
    text = b64(b"imported " + os.urandom(8))

    def symmetric(spec, wrapping_spec, algorithm, wrap, size, cipher):
        meta = create(key_spec=spec, origin="EXTERNAL")
        key = meta.key_id
        s = {"created": fields(meta, META)}
        s["enable_pending"] = failure(lambda: c.enable_key_with_options(kms.EnableKeyRequest(key_id=key), RT))
        s["encrypt_pending"] = failure(lambda: encrypt(key, text))
        s["new_version_pending"] = failure(lambda: new_version(key))
        p = parameters(key, wrapping_spec, algorithm)
        public = base64.b64decode(p.public_key)
        s["params"] = {"key_id": p.key_id, "token_len": len(p.import_token or ""),
                       "expires_in": seconds_until(p.token_expire_time)}
        material = os.urandom(size)
        expire = int(time.time()) + 3600
        s["past_expiry"] = import_material(key, p.import_token, wrap(public, material), int(time.time()) - 60)
        s["import"] = import_material(key, p.import_token, wrap(public, material), expire)
        m = describe(key)
        s["after"] = fields(m, DESCRIBE)
        s["expire_in"] = seconds_until(m.material_expire_time) if m.material_expire_time else None
        s["expire_expected_in"] = expire - int(time.time())
        enc = encrypt(key, text)
        version, plain = open_blob(enc.ciphertext_blob, material, cipher)
        context = {"tenant": "42", "app": "sdk keys"}
        _, plain_ctx = open_blob(encrypt(key, text, context).ciphertext_blob, material, cipher, context)
        s["use"] = {"version": enc.key_version_id, "blob_version": version,
                    "plaintext_form": plaintext_form(text, plain),
                    "context_form": plaintext_form(text, plain_ctx),
                    "decrypt": decrypt(enc.ciphertext_blob).plaintext == text}
        # Re-import: the same material with a new token, then other material.
        p2 = parameters(key, wrapping_spec, algorithm)
        s["reimport_same"] = import_material(key, p2.import_token, wrap(base64.b64decode(p2.public_key), material))
        p3 = parameters(key, wrapping_spec, algorithm)
        s["reimport_other"] = import_material(key, p3.import_token,
                                              wrap(base64.b64decode(p3.public_key), os.urandom(size)))
        s["unknown_token"] = import_material(key, b64(os.urandom(48)), wrap(public, material))
        s["garbage"] = import_material(key, p3.import_token, os.urandom(len(wrap(public, material))))
        s["after_reimports"] = decrypt(enc.ciphertext_blob).plaintext == text
        c.delete_key_material_with_options(kms.DeleteKeyMaterialRequest(key_id=key), RT)
        s["deleted_state"] = state(key)
        s["deleted_encrypt"] = failure(lambda: encrypt(key, text))
        s["deleted_decrypt"] = failure(lambda: decrypt(enc.ciphertext_blob))
        # Imported again after the deletion: the same material is the key again.
        p4 = parameters(key, wrapping_spec, algorithm)
        s["restore"] = import_material(key, p4.import_token, wrap(base64.b64decode(p4.public_key), material))
        s["restored_state"] = state(key)
        s["restored_decrypt"] = decrypt(enc.ciphertext_blob).plaintext == text
        return key, s

    aes_key, r["aes"] = symmetric("Aliyun_AES_256", "RSA_2048", "RSAES_OAEP_SHA_256", oaep_wrap, 32, "AES")
    _, r["sm4"] = symmetric("Aliyun_SM4", "EC_SM2", "SM2PKE", sm2_wrap, 16, "SM4")

    # Token of one key used for another; refused algorithms.
    other = create(key_spec="Aliyun_AES_256", origin="EXTERNAL").key_id
    p_other = parameters(other, "RSA_2048", "RSAES_OAEP_SHA_256")
    r["foreign_token"] = import_material(aes_key, p_other.import_token,
                                         oaep_wrap(base64.b64decode(p_other.public_key), os.urandom(32)))
    r["pkcs1_refused"] = failure(lambda: parameters(other, "RSA_2048", "RSAES_PKCS1_V1_5"))
    r["oaep_sha1_refused"] = failure(lambda: parameters(other, "RSA_2048", "RSAES_OAEP_SHA_1"))
    r["mismatched_wrapping"] = failure(lambda: parameters(other, "EC_SM2", "RSAES_OAEP_SHA_256"))
    r["params_for_kms_key"] = failure(lambda: parameters(
        by_spec[("Aliyun_AES_256", "ENCRYPT/DECRYPT")], "RSA_2048", "RSAES_OAEP_SHA_256"))

    def asymmetric(spec, private, algorithm):
        meta = create(key_spec=spec, key_usage="SIGN/VERIFY", origin="EXTERNAL")
        key = meta.key_id
        s = {"created": fields(meta, META)}
        s["public_pending"] = failure(lambda: public_key(key))
        p = parameters(key, "RSA_2048", "RSAES_OAEP_SHA_256_AES_256_ECB_PKCS7_PAD")
        wrapped = envelope_wrap(base64.b64decode(p.public_key), pkcs8(private))
        s["import"] = import_material(key, p.import_token, wrapped)
        s["state"] = state(key)
        got = public_key(key)
        s["public_equal"] = serialization.load_pem_public_key(got.public_key.encode()).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == spki(private.public_key())
        s["use"] = sign_both_ways(key, got.key_version_id, private.public_key(), private, algorithm)
        p2 = parameters(key, "RSA_2048", "RSAES_OAEP_SHA_256_AES_256_ECB_PKCS7_PAD")
        s["reimport_same"] = import_material(key, p2.import_token, envelope_wrap(
            base64.b64decode(p2.public_key), pkcs8(private)))
        another = (rsa.generate_private_key(65537, 2048) if spec.startswith("RSA")
                   else ec.generate_private_key(private.curve))
        p3 = parameters(key, "RSA_2048", "RSAES_OAEP_SHA_256_AES_256_ECB_PKCS7_PAD")
        s["reimport_other"] = import_material(key, p3.import_token, envelope_wrap(
            base64.b64decode(p3.public_key), pkcs8(another)))
        c.delete_key_material_with_options(kms.DeleteKeyMaterialRequest(key_id=key), RT)
        s["deleted_state"] = state(key)
        s["deleted_sign"] = failure(lambda: sign(key, got.key_version_id, algorithm, hashlib.sha256(b"x").digest()))
        # The cloud's rule: after DeleteKeyMaterial only the same material may come back.
        p4 = parameters(key, "RSA_2048", "RSAES_OAEP_SHA_256_AES_256_ECB_PKCS7_PAD")
        s["deleted_import_other"] = import_material(key, p4.import_token, envelope_wrap(
            base64.b64decode(p4.public_key), pkcs8(another)))
        s["deleted_import_other_state"] = state(key)
        return s

    r["rsa"] = asymmetric("RSA_2048", rsa.generate_private_key(65537, 2048), "RSA_PSS_SHA_256")
    r["p256"] = asymmetric("EC_P256", ec.generate_private_key(ec.SECP256R1()), "ECDSA_SHA_256")
    # A P-256 key offered for an RSA key: unwraps, but does not fit.
    mismatch = create(key_spec="RSA_2048", key_usage="SIGN/VERIFY", origin="EXTERNAL").key_id
    p = parameters(mismatch, "RSA_2048", "RSAES_OAEP_SHA_256_AES_256_ECB_PKCS7_PAD")
    r["wrong_kind"] = import_material(mismatch, p.import_token, envelope_wrap(
        base64.b64decode(p.public_key), pkcs8(ec.generate_private_key(ec.SECP256R1()))))
    r["wrong_kind_state"] = state(mismatch)
    return r


# 11. Quota, last: fill the instance's KeyNum=100 with AES keys; the 101st version is
# refused.
@section("quota")
def _():
    def used():
        infos = c.get_kms_instance_quota_infos_with_options(kms.GetKmsInstanceQuotaInfosRequest(
            kms_instance_id=instance, resource_type="key"), RT).body.kms_instance_quota_infos
        return [fields(i, ["resource_type", "resource_quota", "used_quantity"]) for i in infos]

    before = used()
    versions_before = versions_made[0]
    filled = 0
    refusal = {"code": "OK"}
    while filled < 200:
        refusal = failure(lambda: create(key_spec="Aliyun_AES_128"))
        if refusal["code"] != "OK":
            break
        filled += 1
    return {"before": before, "versions_before": versions_before, "filled": filled,
            "refusal": refusal, "after": used(), "made": len(made),
            "new_version": failure(lambda: new_version(made[-1])),
            "listed": list_keys([{"Key": "DKMSInstanceId", "Values": [instance]}], page_size=1)["total"]}


print(json.dumps(out))
