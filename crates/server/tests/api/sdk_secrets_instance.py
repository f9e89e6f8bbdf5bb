"""Reads the secrets sdk_secrets.py made through an instance endpoint with the official
dedicated-KMS SDK for Python (alibabacloud-dkms-gcs, its sync client, as an application
uses it), with three client keys: one whose policy grants `secret/*`, one granted only
`secret/db-password`, and one whose policy names secrets but grants only the key
permission. Prints {"checks", "refusals", "errors"} as JSON for sdk_secrets.rs.

Environment: SR_ENDPOINT (host:port), SR_CA (PrivateKmsCA_<instance>.pem), SR_CLIENTS
(JSON {name: {"key_file", "password"}} for all, one, keys_only), SR_FACTS (the facts
sdk_secrets.py printed).
"""
import base64
import json
import time

from sdk import models as m

from dkms_support import E, NO_RETRY, check, client, out, refusal, section

FACTS = json.loads(E["SR_FACTS"])


def get(c, name, **kw):
    return c.get_secret_value_with_options(
        m.GetSecretValueRequest(secret_name=name, **kw), NO_RETRY)


@section("all")
def _():
    c = client("all")
    for name, want in FACTS["secrets"].items():
        got = get(c, name)
        check(f"{name}: data", got.secret_data == want["data"])
        check(f"{name}: data type", got.secret_data_type == want["type"])
        check(f"{name}: name", got.secret_name == name)
        check(f"{name}: type", got.secret_type == "Generic")
        check(f"{name}: current stage", "ACSCurrent" in got.version_stages)
        check(f"{name}: request id", bool(got.request_id))
        created = time.strptime(got.create_time, "%Y-%m-%dT%H:%M:%SZ")
        check(f"{name}: create time", abs(time.mktime(created) - time.mktime(
            time.gmtime())) < 600)
        check(f"{name}: rotation disabled", got.automatic_rotation == "Disabled")
    binary = get(c, "tls/key")
    check("binary bytes", base64.b64decode(binary.secret_data) == bytes(range(256))
          + b"\x00\xff\x00")
    current = get(c, "db-password")
    check("current version id", current.version_id == FACTS["db_current"])
    check("no extended config unless asked", not current.extended_config)
    prev = FACTS["previous"]
    by_stage = get(c, "db-password", version_stage=prev["stage"])
    check("by stage: data", by_stage.secret_data == prev["data"])
    check("by stage: version", by_stage.version_id == prev["version"])
    check("by stage: stages", by_stage.version_stages == ["ACSPrevious"])
    by_id = get(c, "db-password", version_id=prev["version"])
    check("by version id", by_id.secret_data == prev["data"])
    extended = get(c, "db-password", fetch_extended_config=True)
    check("extended config when asked",
          json.loads(extended.extended_config) == json.loads(FACTS["extended"]))
    refusal("all: unknown secret", lambda: get(c, "no-such-secret"))
    refusal("all: unknown version", lambda: get(c, "db-password", version_id="v404"))
    refusal("all: unknown stage", lambda: get(c, "db-password", version_stage="nope"))
    refusal("all: encryption key disabled", lambda: get(c, "on-disabled"))


@section("one")
def _():
    c = client("one")
    check("one: its secret", get(c, "db-password").secret_data
          == FACTS["secrets"]["db-password"]["data"])
    refusal("one: another secret", lambda: get(c, "tls/key"))
    refusal("one: an unknown secret", lambda: get(c, "no-such-secret"))


@section("keys_only")
def _():
    c = client("keys_only")
    refusal("keys_only: a secret", lambda: get(c, "db-password"))
    refusal("keys_only: an unknown secret", lambda: get(c, "no-such-secret"))


print(json.dumps(out))
