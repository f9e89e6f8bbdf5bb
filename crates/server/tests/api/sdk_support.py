"""What the official-SDK scripts share: the management SDK client, its generic call,
the capture of a refusal's code and status, and sections that run on their own.

Environment: SR_ENDPOINT (host:port), SR_CA (management CA file), SR_AK, SR_SK.
"""
import datetime
import os
import traceback

from alibabacloud_kms20160120.client import Client
from alibabacloud_tea_openapi import utils_models as om
from alibabacloud_tea_openapi.utils import Utils
from darabonba.runtime import RuntimeOptions

E = os.environ
RT = RuntimeOptions(ca=E["SR_CA"])


def client():
    return Client(om.Config(
        access_key_id=E["SR_AK"], access_key_secret=E["SR_SK"], endpoint=E["SR_ENDPOINT"],
        protocol="https", region_id="cn-hangzhou"))


def generic(c, action, query):
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
    at = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)
    return int(at.timestamp())


def sections(out):
    """A decorator factory: `@section(name)` runs the body now and stores what it returns
    under `out[name]`, or its traceback under `out["errors"][name]`."""
    out.setdefault("errors", {})

    def section(name):
        def run(body):
            try:
                out[name] = body()
            except Exception:
                out["errors"][name] = traceback.format_exc()
            return body
        return run
    return section
