"""Drives the secret actions of a Strongroom KMS node (docs/secrets.md) with the official
management SDK (alibabacloud-kms20160120), through its typed request and response models,
and prints what it saw as one JSON object for the Rust test (sdk_secrets.rs): checks that
must be true, refusals with their codes, and the secrets it left for the instance SDK to
read (sdk_secrets_instance.py).

Environment: that of sdk_support.py, and SR_INSTANCE (a Connected instance with SecretNum
6), SR_AES (an AES-256 key), SR_SM4 (an SM4 key), SR_RSA (an RSA_2048 ENCRYPT/DECRYPT key),
SR_DISABLE (an AES key this script uses, then disables), SR_ALIAS (an alias of SR_AES).
"""
import base64
import json
import os
import time

from alibabacloud_kms20160120 import models as kms

from sdk_support import RT, client, failure, generic, sections, unix

E = os.environ
INSTANCE = E["SR_INSTANCE"]
c = client()
out = {"checks": {}, "refusals": {}, "facts": {}}
section = sections(out)

DB_V1 = "correct horse battery staple \u2603"
DB_V2 = "Tr0ub4dor&3 second password"
CANARY = "canary value"
BINARY = bytes(range(256)) + b"\x00\xff\x00"
EXTENDED = json.dumps({"DBName": "orders", "Port": 5432})


def check(name, value):
    out["checks"][name] = bool(value)


def refusal(name, call):
    out["refusals"][name] = failure(call)


def create(name, data, key, version="v1", data_type=None, **kw):
    return c.create_secret_with_options(kms.CreateSecretRequest(
        secret_name=name, secret_data=data, version_id=version, encryption_key_id=key,
        secret_data_type=data_type, **kw), RT).body


def get(name, **kw):
    return c.get_secret_value_with_options(
        kms.GetSecretValueRequest(secret_name=name, **kw), RT).body


def put(name, version, data, stages=None, data_type=None):
    return c.put_secret_value_with_options(kms.PutSecretValueRequest(
        secret_name=name, version_id=version, secret_data=data, secret_data_type=data_type,
        version_stages=json.dumps(stages) if stages is not None else None), RT).body


def versions(name, deprecated=False):
    body = c.list_secret_version_ids_with_options(kms.ListSecretVersionIdsRequest(
        secret_name=name, include_deprecated="true" if deprecated else None,
        page_size=100), RT).body
    return {v.version_id: sorted(v.version_stages.version_stage)
            for v in body.version_ids.version_id}


def move(name, stage, remove_from=None, move_to=None):
    return c.update_secret_version_stage_with_options(kms.UpdateSecretVersionStageRequest(
        secret_name=name, version_stage=stage, remove_from_version=remove_from,
        move_to_version=move_to), RT).body


def delete(name, **kw):
    return c.delete_secret_with_options(kms.DeleteSecretRequest(secret_name=name, **kw), RT).body


@section("create")
def _():
    now = int(time.time())
    made = create("db-password", DB_V1, E["SR_AES"], description="orders database",
                  dkmsinstance_id=INSTANCE, extended_config=json.loads(EXTENDED),
                  tags=json.dumps([{"TagKey": "env", "TagValue": "prod"},
                                   {"TagKey": "team", "TagValue": "orders"}]))
    check("create answers the name", made.secret_name == "db-password")
    check("create answers the version", made.version_id == "v1")
    check("create answers the type", made.secret_type == "Generic")
    check("create answers the instance", made.dkmsinstance_id == INSTANCE)
    check("create answers rotation disabled", made.automatic_rotation == "Disabled")
    check("create answers the arn", made.arn.startswith("acs:kms:cn-hangzhou:")
          and made.arn.endswith(":secret/db-password"))
    # An alias names the key as well as its id.
    binary = create("tls/key", base64.b64encode(BINARY).decode(), E["SR_SM4"],
                    data_type="binary")
    check("binary create answers its version", binary.version_id == "v1")
    create("app.token@svc", "token-one", E["SR_ALIAS"], version="2026-11")
    create("on-disabled", "value under a key about to be disabled", E["SR_DISABLE"])

    d = c.describe_secret_with_options(kms.DescribeSecretRequest(
        secret_name="db-password", fetch_tags="true"), RT).body
    check("describe: description", d.description == "orders database")
    check("describe: key", d.encryption_key_id == E["SR_AES"])
    check("describe: instance", d.dkmsinstance_id == INSTANCE)
    check("describe: type", d.secret_type == "Generic")
    check("describe: extended config", json.loads(d.extended_config) == json.loads(EXTENDED))
    check("describe: create time is now", abs(unix(d.create_time) - now) < 120)
    check("describe: update time", abs(unix(d.update_time) - now) < 120)
    check("describe: no planned deletion", d.planned_delete_time is None)
    check("describe: tags in order", [(t.tag_key, t.tag_value) for t in d.tags.tag]
          == [("env", "prod"), ("team", "orders")])
    check("describe: arn", d.arn == made.arn)
    aliased = c.describe_secret_with_options(
        kms.DescribeSecretRequest(secret_name="app.token@svc"), RT).body
    check("an alias resolves to its key", aliased.encryption_key_id == E["SR_AES"])
    return {"arn": made.arn}


@section("values")
def _():
    v1 = get("db-password")
    check("get: text data", v1.secret_data == DB_V1)
    check("get: data type", v1.secret_data_type == "text")
    check("get: version", v1.version_id == "v1")
    check("get: stages", v1.version_stages.version_stage == ["ACSCurrent"])
    check("get: type", v1.secret_type == "Generic")
    check("get: no extended config unless asked", v1.extended_config is None)
    with_config = get("db-password", fetch_extended_config=True)
    check("get: extended config when asked",
          json.loads(with_config.extended_config) == json.loads(EXTENDED))
    b = get("tls/key")
    check("get: binary data round trip", base64.b64decode(b.secret_data) == BINARY)
    check("get: binary type", b.secret_data_type == "binary")

    p2 = put("db-password", "v2", DB_V2)
    check("put: answers the version", p2.version_id == "v2")
    check("put: new version is current", p2.version_stages.version_stage == ["ACSCurrent"])
    check("put: stages moved", versions("db-password")
          == {"v1": ["ACSPrevious"], "v2": ["ACSCurrent"]})
    check("get: current is v2", get("db-password").secret_data == DB_V2)
    check("get: previous is v1",
          get("db-password", version_stage="ACSPrevious").secret_data == DB_V1)
    check("get: by version id", get("db-password", version_id="v1").secret_data == DB_V1)
    check("put: the same version again is the same call",
          put("db-password", "v2", DB_V2).version_stages.version_stage == ["ACSCurrent"])
    refusal("put the same version with other data",
            lambda: put("db-password", "v2", "something else"))
    put("db-password", "v3", CANARY, stages=["canary"])
    check("put with a custom stage leaves current alone", versions("db-password")
          == {"v1": ["ACSPrevious"], "v2": ["ACSCurrent"], "v3": ["canary"]})
    check("get by a custom stage",
          get("db-password", version_stage="canary").secret_data == CANARY)
    move("db-password", "ACSCurrent", remove_from="v2", move_to="v3")
    check("moving current makes the old one previous", versions("db-password")
          == {"v2": ["ACSPrevious"], "v3": ["ACSCurrent", "canary"]})
    check("a version without a stage is deprecated", "v1" not in versions("db-password")
          and versions("db-password", deprecated=True).get("v1") == [])
    move("db-password", "ACSCurrent", remove_from="v3", move_to="v2")
    move("db-password", "canary", remove_from="v3")
    check("rolled back", versions("db-password")
          == {"v2": ["ACSCurrent"], "v3": ["ACSPrevious"]})
    refusal("remove ACSCurrent", lambda: move("db-password", "ACSCurrent", remove_from="v2"))
    refusal("move to an unknown version",
            lambda: move("db-password", "beta", move_to="v404"))
    refusal("get an unknown version", lambda: get("db-password", version_id="v404"))
    refusal("get an unknown stage", lambda: get("db-password", version_stage="nope"))
    refusal("get an unknown secret", lambda: get("no-such-secret"))

    # Ten versions are kept: the oldest without a stage go first.
    for i in range(4, 16):
        put("db-password", f"v{i}", f"value {i}")
    put("db-password", "final", DB_V2)
    kept = versions("db-password", deprecated=True)
    check("at most ten versions", len(kept) == 10)
    check("the staged versions stay", kept.get("final") == ["ACSCurrent"]
          and kept.get("v15") == ["ACSPrevious"])
    check("the oldest went first", "v1" not in kept and "v2" not in kept)
    page = c.list_secret_version_ids_with_options(kms.ListSecretVersionIdsRequest(
        secret_name="db-password", include_deprecated="true", page_size=3, page_number=2),
        RT).body
    check("version pages", page.total_count == 10 and page.page_number == 2
          and len(page.version_ids.version_id) == 3)
    check("version create time", all(abs(unix(v.create_time) - time.time()) < 300
                                      for v in page.version_ids.version_id))
    out["facts"]["db_current"] = get("db-password").version_id
    return {"kept": sorted(kept)}


@section("list_and_update")
def _():
    def names(filters=None, **kw):
        body = c.list_secrets_with_options(kms.ListSecretsRequest(
            filters=json.dumps(filters) if filters is not None else None, page_size=100,
            **kw), RT).body
        return [s.secret_name for s in body.secret_list.secret], body

    everything, body = names()
    check("list: every secret", sorted(everything)
          == ["app.token@svc", "db-password", "on-disabled", "tls/key"])
    check("list: total", body.total_count == 4)
    check("list: by name substring",
          sorted(names([{"Key": "SecretName", "Values": ["token", "tls"]}])[0])
          == ["app.token@svc", "tls/key"])
    check("list: by tag key", names([{"Key": "TagKey", "Values": ["team"]}])[0]
          == ["db-password"])
    check("list: by description", names([{"Key": "Description", "Values": ["orders"]}])[0]
          == ["db-password"])
    check("list: filters combine",
          names([{"Key": "TagValue", "Values": ["prod"]},
                 {"Key": "SecretName", "Values": ["tls"]}])[0] == [])
    _, tagged = names([{"Key": "TagKey", "Values": ["env"]}], fetch_tags="true")
    check("list: tags when asked", [(t.tag_key, t.tag_value)
                                    for t in tagged.secret_list.secret[0].tags.tag]
          == [("env", "prod"), ("team", "orders")])
    first = c.list_secrets_with_options(kms.ListSecretsRequest(page_size=3), RT).body
    second = c.list_secrets_with_options(
        kms.ListSecretsRequest(page_size=3, page_number=2), RT).body
    check("list: pages", len(first.secret_list.secret) == 3
          and len(second.secret_list.secret) == 1 and second.total_count == 4)
    refusal("list with an unknown filter",
            lambda: names([{"Key": "Colour", "Values": ["red"]}]))

    def update(**kw):
        c.update_secret_with_options(kms.UpdateSecretRequest(secret_name="tls/key", **kw), RT)
        return c.describe_secret_with_options(
            kms.DescribeSecretRequest(secret_name="tls/key"), RT).body

    custom = kms.UpdateSecretRequestExtendedConfig(custom_data={"Host": "example.internal"})
    d = update(description="server key", extended_config=custom)
    check("update: description", d.description == "server key")
    check("update: extended config",
          json.loads(d.extended_config) == {"CustomData": {"Host": "example.internal"}})
    d = update(description="server key, again")
    check("update: only the fields given change", d.description == "server key, again"
          and json.loads(d.extended_config) == {"CustomData": {"Host": "example.internal"}})
    d = c.describe_secret_with_options(kms.DescribeSecretRequest(secret_name="db-password"),
                                       RT).body
    c.update_secret_with_options(kms.UpdateSecretRequest(
        secret_name="db-password",
        extended_config=kms.UpdateSecretRequestExtendedConfig(custom_data={"Owner": "ops"})),
        RT)
    merged = c.describe_secret_with_options(
        kms.DescribeSecretRequest(secret_name="db-password"), RT).body
    check("update: extended config keys merge", json.loads(merged.extended_config)
          == dict(json.loads(d.extended_config), CustomData={"Owner": "ops"}))
    out["facts"]["extended"] = merged.extended_config
    refusal("update with extended config that is not JSON", lambda: generic(
        c, "UpdateSecret", {"SecretName": "tls/key", "ExtendedConfig": "{nope"}))


@section("deletion")
def _():
    now = int(time.time())
    body = delete("app.token@svc", recovery_window_in_days="7")
    check("delete: planned in 7 days", abs(unix(body.planned_delete_time)
                                           - (now + 7 * 86400)) < 120)
    d = c.describe_secret_with_options(
        kms.DescribeSecretRequest(secret_name="app.token@svc"), RT).body
    check("describe shows the planned deletion", d.planned_delete_time is not None)
    listed = c.list_secrets_with_options(kms.ListSecretsRequest(
        filters=json.dumps([{"Key": "SecretName", "Values": ["app.token"]}])), RT).body
    check("list shows the planned deletion",
          listed.secret_list.secret[0].planned_delete_time == d.planned_delete_time)
    refusal("get a secret pending deletion", lambda: get("app.token@svc"))
    refusal("put to a secret pending deletion",
            lambda: put("app.token@svc", "v9", "new"))
    again = delete("app.token@svc", recovery_window_in_days="30")
    check("deleting again keeps the date", again.planned_delete_time == body.planned_delete_time)
    c.restore_secret_with_options(kms.RestoreSecretRequest(secret_name="app.token@svc"), RT)
    check("restored secrets read again", get("app.token@svc").secret_data == "token-one")

    create("short-lived", "gone soon", E["SR_AES"])
    forced = delete("short-lived", force_delete_without_recovery="true")
    check("forced deletion answers now", abs(unix(forced.planned_delete_time) - now) < 120)
    refusal("describe a destroyed secret", lambda: c.describe_secret_with_options(
        kms.DescribeSecretRequest(secret_name="short-lived"), RT))
    refusal("recovery window of 6 days",
            lambda: delete("db-password", recovery_window_in_days="6"))
    refusal("force and a window", lambda: delete(
        "db-password", recovery_window_in_days="7", force_delete_without_recovery="true"))
    refusal("delete an unknown secret", lambda: delete("no-such-secret"))
    refusal("schedule deletion of a key that encrypts secrets",
            lambda: c.schedule_key_deletion_with_options(kms.ScheduleKeyDeletionRequest(
                key_id=E["SR_SM4"], pending_window_in_days=7), RT))


@section("quota")
def _():
    def used():
        body = generic(c, "GetKmsInstanceQuotaInfos",
                       {"KmsInstanceId": INSTANCE, "ResourceType": "secret"})
        info = body["KmsInstanceQuotaInfos"][0]
        return json.dumps(info)
    made = []
    while len(made) < 10:
        name = f"filler-{len(made)}"
        if failure(lambda: create(name, "x", E["SR_AES"]))["code"] != "OK":
            break
        made.append(name)
    check("the quota of 6 is filled exactly", len(made) == 2)
    refusal("one secret over the quota", lambda: create("filler-over", "x", E["SR_AES"]))
    out["facts"]["quota_after_fill"] = used()
    for name in made:
        delete(name, force_delete_without_recovery="true")
    out["facts"]["quota_after_delete"] = used()


@section("create_refusals")
def _():
    refusal("duplicate name", lambda: create("db-password", "x", E["SR_AES"]))
    refusal("bad name", lambda: create("bad name!", "x", E["SR_AES"]))
    refusal("reserved name", lambda: create("acs/x", "x", E["SR_AES"]))
    refusal("asymmetric key", lambda: create("rsa-secret", "x", E["SR_RSA"]))
    refusal("unknown key", lambda: create("nokey", "x", "key-" + "0" * 24))
    refusal("key of another instance named",
            lambda: create("elsewhere", "x", E["SR_AES"], dkmsinstance_id="kst-nope"))
    refusal("managed type", lambda: create("rds", "x", E["SR_AES"], secret_type="Rds"))
    refusal("automatic rotation",
            lambda: create("rot", "x", E["SR_AES"], enable_automatic_rotation=True))
    refusal("value too large", lambda: create("big", "x" * 30721, E["SR_AES"]))
    refusal("binary that is not base64",
            lambda: create("bin", "not base64!", E["SR_AES"], data_type="binary"))
    refusal("unknown data type", lambda: create("dt", "x", E["SR_AES"], data_type="json"))
    refusal("bad version id", lambda: create("vid", "x", E["SR_AES"], version="a/b"))
    refusal("no version id", lambda: create("vid", "x", E["SR_AES"], version=None))


@section("random_password")
def _():
    def pw(**kw):
        return c.get_random_password_with_options(
            kms.GetRandomPasswordRequest(**kw), RT).body.random_password
    default = pw()
    check("password: 32 by default", len(default) == 32)
    check("password: every kind by default",
          any(ch.islower() for ch in default) and any(ch.isupper() for ch in default)
          and any(ch.isdigit() for ch in default)
          and any(not ch.isalnum() for ch in default))
    long = pw(password_length="128", exclude_punctuation="true", exclude_characters="abc")
    check("password: length and exclusions", len(long) == 128 and long.isalnum()
          and not any(ch in "abc" for ch in long))
    check("passwords differ", pw() != pw())
    refusal("password of 7", lambda: pw(password_length="7"))


@section("disabled_key")
def _():
    c.disable_key_with_options(kms.DisableKeyRequest(key_id=E["SR_DISABLE"]), RT)
    refusal("get under a disabled key", lambda: get("on-disabled"))
    refusal("put under a disabled key", lambda: put("on-disabled", "v2", "x"))


# What the instance SDK reads next: every value as stored.
out["facts"]["secrets"] = {
    "db-password": {"data": DB_V2, "type": "text"},
    "tls/key": {"data": base64.b64encode(BINARY).decode(), "type": "binary"},
    "app.token@svc": {"data": "token-one", "type": "text"},
}
out["facts"]["previous"] = {"stage": "ACSPrevious", "version": "v15", "data": "value 15"}
out["facts"].setdefault("extended", EXTENDED)
print(json.dumps(out))
