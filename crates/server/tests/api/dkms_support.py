"""What the dedicated-KMS SDK scripts share (sdk_instance.py, sdk_secrets_instance.py):
the official instance SDK's client for a named client key, and the record of checks,
refusals and sections they print for the Rust tests.

Environment: SR_ENDPOINT (host:port), SR_CA (PrivateKmsCA_<instance>.pem), SR_CLIENTS
(JSON {name: {"key_file", "password"}}).
"""
import json
import os
import traceback

from openapi.models import Config
from openapi_util.models import RuntimeOptions
from sdk.client import Client

E = os.environ
CLIENTS = json.loads(E["SR_CLIENTS"])
NO_RETRY = RuntimeOptions(autoretry=False)

out = {"checks": {}, "refusals": {}, "errors": {}, "facts": {}}


def client(name, key_file=None, password=None):
    spec = CLIENTS.get(name, {})
    return Client(Config(endpoint=E["SR_ENDPOINT"], ca_file_path=E["SR_CA"],
                         client_key_file=key_file or spec["key_file"],
                         password=password or spec["password"]))


def check(name, value):
    out["checks"][name] = bool(value)


def refusal(name, call):
    try:
        call()
        out["refusals"][name] = {"code": "OK"}
    except Exception as e:  # TeaException / UnretryableException
        data = getattr(e, "data", None) or {}
        out["refusals"][name] = {"code": getattr(e, "code", None),
                                 "status": data.get("httpCode"),
                                 "message": str(getattr(e, "message", e))[:200]}


def section(name):
    def run(body):
        try:
            body()
        except Exception:
            out["errors"][name] = traceback.format_exc()
        return body
    return run
