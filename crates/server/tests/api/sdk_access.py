"""Drives the application-access actions of a Strongroom KMS node (docs/access.md) with
the official management SDK (alibabacloud-kms20160120), through its typed request and
response models, and prints what it saw as one JSON object for the Rust test
(sdk_access.rs) to check.

Client keys are opened with `cryptography` only (PKCS#12 under the password), never
with our code. (That no secret of a client key reaches the store is shown by
`access_store.rs`, which searches the store after making keys.)

Environment: that of sdk_support.py.
"""
import base64
import json

from alibabacloud_kms20160120 import models as kms
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12

from sdk_support import RT, client, failure, generic, sections

KEY_USER = "RbacPermission/Template/CryptoServiceKeyUser"
SECRET_USER = "RbacPermission/Template/CryptoServiceSecretUser"

c = client()
out = {}
section = sections(out)

instance = generic(c, "CreateKmsInstance", {
    "InstanceName": "sdk-access", "Quantity": "1", "VpcNum": "1", "KeyNum": "1000",
    "SecretNum": "0", "Spec": "1000", "Period": "12"})["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
out["setup"] = {"instance": instance}


def rule_fields(body):
    return {"arn": body.arn, "name": getattr(body, "name", None), "type": body.type,
            "source_private_ip": json.loads(body.source_private_ip),
            "description": body.description}


def policy_fields(body):
    return {"arn": body.arn, "name": body.name, "kms_instance": body.kms_instance,
            "permissions": json.loads(body.permissions), "resources": json.loads(body.resources),
            "access_control_rules": json.loads(body.access_control_rules),
            "description": body.description}


def point_fields(body):
    return {"arn": body.arn, "name": body.name,
            "authentication_method": body.authentication_method,
            "policies": json.loads(body.policies), "description": body.description}


def create_rule(name, ips, **kw):
    return c.create_network_rule_with_options(kms.CreateNetworkRuleRequest(
        name=name, type=kw.pop("type", "Private"), source_private_ip=ips, **kw), RT).body


def create_policy(name, resources, rules, permissions=(KEY_USER,), inst=None, **kw):
    return c.create_policy_with_options(kms.CreatePolicyRequest(
        name=name, kms_instance=inst or instance, permissions=json.dumps(list(permissions)),
        resources=json.dumps(resources),
        access_control_rules=json.dumps({"NetworkRules": rules}), **kw), RT).body


def create_point(name, policies, **kw):
    return c.create_application_access_point_with_options(
        kms.CreateApplicationAccessPointRequest(
            name=name, authentication_method=kw.pop("method", "ClientKey"),
            policies=json.dumps(policies), **kw), RT).body


def create_client_key(aap, password, **kw):
    return c.create_client_key_with_options(kms.CreateClientKeyRequest(
        aap_name=aap, password=password, **kw), RT).body


def get_client_key(key_id):
    return c.get_client_key_with_options(kms.GetClientKeyRequest(client_key_id=key_id), RT).body


def client_key_fields(body):
    return {n: getattr(body, n) for n in [
        "client_key_id", "aap_name", "create_time", "key_algorithm", "key_origin",
        "not_before", "not_after", "public_key_data"]}


# 1. Network rules: both list forms, IPv6, update, listing with paging, refusals.
@section("network_rules")
def _():
    a = create_rule("rule-a", json.dumps(["10.0.0.0/8", "192.168.1.10", "fd00::/8"]),
                    description="office")
    b = create_rule("rule-b", "127.0.0.1, 172.16.0.0/12")
    described = c.describe_network_rule_with_options(
        kms.DescribeNetworkRuleRequest(name="rule-a"), RT).body
    c.update_network_rule_with_options(kms.UpdateNetworkRuleRequest(
        name="rule-b", source_private_ip=json.dumps(["127.0.0.1", "::1"]),
        description="loopback"), RT)
    updated = c.describe_network_rule_with_options(
        kms.DescribeNetworkRuleRequest(name="rule-b"), RT).body
    pages = []
    for number in (1, 2, 3):
        body = c.list_network_rules_with_options(kms.ListNetworkRulesRequest(
            page_number=number, page_size=1), RT).body
        pages.append({"total": body.total_count, "number": body.page_number,
                      "size": body.page_size,
                      "items": [{"name": r.name, "type": r.type}
                                for r in body.network_rules.network_rule]})
    refusals = {
        "bad_address": failure(lambda: create_rule("r-x", json.dumps(["10.0.0.300"]))),
        "host_bits": failure(lambda: create_rule("r-x", json.dumps(["10.0.0.1/8"]))),
        "one_bad_of_two": failure(lambda: create_rule("r-x", json.dumps(["10.0.0.0/8", "x"]))),
        "empty": failure(lambda: create_rule("r-x", json.dumps([]))),
        "public_type": failure(lambda: create_rule("r-x", "10.0.0.0/8", type="Public")),
        "bad_name": failure(lambda: create_rule("r x", "10.0.0.0/8")),
        "duplicate": failure(lambda: create_rule("rule-a", "10.0.0.0/8")),
        "update_bad": failure(lambda: c.update_network_rule_with_options(
            kms.UpdateNetworkRuleRequest(name="rule-a", source_private_ip="10.0.0.0/40"), RT)),
        "describe_missing": failure(lambda: c.describe_network_rule_with_options(
            kms.DescribeNetworkRuleRequest(name="no-such-rule"), RT)),
        "delete_missing": failure(lambda: c.delete_network_rule_with_options(
            kms.DeleteNetworkRuleRequest(name="no-such-rule"), RT)),
    }
    after_bad_update = c.describe_network_rule_with_options(
        kms.DescribeNetworkRuleRequest(name="rule-a"), RT).body
    return {"created": [rule_fields(a), rule_fields(b)], "described": rule_fields(described),
            "updated": rule_fields(updated), "pages": pages, "refusals": refusals,
            "after_bad_update": rule_fields(after_bad_update)}


# 2. Policies: fields round trip, update, refusals, references held.
@section("policies")
def _():
    p1 = create_policy("policy-keys", ["key/*"], ["rule-a", "rule-b"], description="keys")
    p2 = create_policy("policy-secrets", ["secret/*", "secret/app1-*"], ["rule-b"],
                       permissions=(SECRET_USER, KEY_USER))
    c.update_policy_with_options(kms.UpdatePolicyRequest(
        name="policy-secrets", permissions=json.dumps([SECRET_USER]),
        resources=json.dumps(["secret/db-password"]),
        access_control_rules=json.dumps({"NetworkRules": ["rule-a"]}),
        description="db"), RT)
    described = c.describe_policy_with_options(
        kms.DescribePolicyRequest(name="policy-secrets"), RT).body
    listed = c.list_policies_with_options(kms.ListPoliciesRequest(), RT).body
    refusals = {
        "unknown_permission": failure(lambda: create_policy(
            "p-x", ["key/*"], ["rule-a"], permissions=("RbacPermission/Template/Admin",))),
        "alias_resource": failure(lambda: create_policy("p-x", ["alias/app"], ["rule-a"])),
        "bare_star": failure(lambda: create_policy("p-x", ["*"], ["rule-a"])),
        "no_resources": failure(lambda: create_policy("p-x", [], ["rule-a"])),
        "unknown_rule": failure(lambda: create_policy("p-x", ["key/*"], ["no-such-rule"])),
        "unknown_instance": failure(lambda: create_policy(
            "p-x", ["key/*"], ["rule-a"], inst="kst-hzz000000000000000000")),
        "duplicate": failure(lambda: create_policy("policy-keys", ["key/*"], ["rule-a"])),
        "bad_rules_json": failure(lambda: c.create_policy_with_options(kms.CreatePolicyRequest(
            name="p-x", kms_instance=instance, permissions=json.dumps([KEY_USER]),
            resources=json.dumps(["key/*"]), access_control_rules="rule-a"), RT)),
        "rule_in_use": failure(lambda: c.delete_network_rule_with_options(
            kms.DeleteNetworkRuleRequest(name="rule-b"), RT)),
        "instance_in_use": failure(lambda: generic(
            c, "ReleaseKmsInstance", {"KmsInstanceId": instance})),
        "describe_missing": failure(lambda: c.describe_policy_with_options(
            kms.DescribePolicyRequest(name="no-such-policy"), RT)),
    }
    return {"created": [policy_fields(p1), policy_fields(p2)],
            "described": policy_fields(described),
            "listed": {"total": listed.total_count,
                       "names": [p.name for p in listed.policies.policy]},
            "refusals": refusals}


# 3. Access points.
@section("access_points")
def _():
    a = create_point("app1", ["policy-keys"], description="first app")
    create_point("app2", ["policy-secrets"])
    c.update_application_access_point_with_options(kms.UpdateApplicationAccessPointRequest(
        name="app2", policies=json.dumps(["policy-keys", "policy-secrets"]),
        description="second app"), RT)
    described = c.describe_application_access_point_with_options(
        kms.DescribeApplicationAccessPointRequest(name="app2"), RT).body
    listed = c.list_application_access_points_with_options(
        kms.ListApplicationAccessPointsRequest(page_size=10), RT).body
    create_policy("policy-3", ["key/key-a*"], ["rule-a"])
    create_policy("policy-4", ["key/key-b*"], ["rule-a"])
    refusals = {
        "four_policies": failure(lambda: create_point(
            "app-x", ["policy-keys", "policy-secrets", "policy-3", "policy-4"])),
        "no_policy": failure(lambda: create_point("app-x", [])),
        "unknown_policy": failure(lambda: create_point("app-x", ["no-such-policy"])),
        "ram_role": failure(lambda: create_point("app-x", ["policy-keys"], method="RAMRole")),
        "duplicate": failure(lambda: create_point("app1", ["policy-keys"])),
        "policy_in_use": failure(lambda: c.delete_policy_with_options(
            kms.DeletePolicyRequest(name="policy-keys"), RT)),
        "describe_missing": failure(lambda: c.describe_application_access_point_with_options(
            kms.DescribeApplicationAccessPointRequest(name="no-such-app"), RT)),
    }
    # Deleting an unreferenced policy works.
    c.delete_policy_with_options(kms.DeletePolicyRequest(name="policy-4"), RT)
    return {"created": point_fields(a), "described": point_fields(described),
            "listed": {"total": listed.total_count,
                       "items": [{"name": p.name, "method": p.authentication_method}
                                 for p in listed.application_access_points.application_access_point]},
            "refusals": refusals}


def open_p12(private_key_data, password):
    key, cert, extra = pkcs12.load_key_and_certificates(
        base64.b64decode(private_key_data), password.encode())
    return key, cert


# 4. Client keys: made, opened with the password only, certificate kept, limits.
@section("client_keys")
def _():
    passwords = ["Strongroom-Pass1", "abcd1234", "~!@#$%^&*?_-9"]
    made = [create_client_key("app1", passwords[0]),
            create_client_key("app1", passwords[1], not_before="2026-01-01T00:00:00Z",
                              not_after="2031-06-30T12:00:00Z"),
            create_client_key("app1", passwords[2])]
    rows = []
    for body, password in zip(made, passwords):
        key, cert = open_p12(body.private_key_data, password)
        got = get_client_key(body.client_key_id)
        kept = x509.load_pem_x509_certificate(got.public_key_data.encode())
        signature = key.sign(b"probe", padding.PKCS1v15(), hashes.SHA256())
        kept.public_key().verify(signature, b"probe", padding.PKCS1v15(), hashes.SHA256())
        wrong = failure(lambda: open_p12(body.private_key_data, password + "x"))
        rows.append({
            "created": {"client_key_id": body.client_key_id,
                        "key_algorithm": body.key_algorithm,
                        "not_before": body.not_before, "not_after": body.not_after},
            "got": client_key_fields(got),
            "rsa_bits": key.key_size if isinstance(key, rsa.RSAPrivateKey) else None,
            "p12_cert_is_kept_cert": cert.public_bytes(serialization.Encoding.DER)
            == kept.public_bytes(serialization.Encoding.DER),
            "cert_not_before": int(cert.not_valid_before_utc.timestamp()),
            "cert_not_after": int(cert.not_valid_after_utc.timestamp()),
            "wrong_password_opens": wrong["code"] == "OK",
        })
    listed = c.list_client_keys_with_options(kms.ListClientKeysRequest(aap_name="app1"), RT).body
    refusals = {
        "fourth": failure(lambda: create_client_key("app1", "Another-Pass1")),
        "short": failure(lambda: create_client_key("app2", "ab1")),
        "one_class": failure(lambda: create_client_key("app2", "abcdefghij")),
        "long": failure(lambda: create_client_key("app2", "a1" * 33)),
        "space": failure(lambda: create_client_key("app2", "abcd 1234")),
        "before_only": failure(lambda: create_client_key(
            "app2", "abcd1234", not_before="2026-01-01T00:00:00Z")),
        "after_only": failure(lambda: create_client_key(
            "app2", "abcd1234", not_after="2031-01-01T00:00:00Z")),
        "reversed": failure(lambda: create_client_key(
            "app2", "abcd1234", not_before="2031-01-01T00:00:00Z",
            not_after="2030-01-01T00:00:00Z")),
        "bad_time": failure(lambda: create_client_key(
            "app2", "abcd1234", not_before="2026-01-01", not_after="2031-01-01T00:00:00Z")),
        "unknown_aap": failure(lambda: create_client_key("no-such-app", "abcd1234")),
        "list_unknown_aap": failure(lambda: c.list_client_keys_with_options(
            kms.ListClientKeysRequest(aap_name="no-such-app"), RT)),
        "aap_in_use": failure(lambda: c.delete_application_access_point_with_options(
            kms.DeleteApplicationAccessPointRequest(name="app1"), RT)),
        "get_missing": failure(lambda: get_client_key("KAAP.00000000-0000-4000-8000-000000000000")),
    }
    # A slot freed by deleting a key can be used again.
    c.delete_client_key_with_options(
        kms.DeleteClientKeyRequest(client_key_id=made[2].client_key_id), RT)
    deleted = failure(lambda: get_client_key(made[2].client_key_id))
    again = create_client_key("app1", "Another-Pass1")
    open_p12(again.private_key_data, "Another-Pass1")
    return {"rows": rows, "listed": [client_key_fields(k) for k in listed.client_keys],
            "refusals": refusals, "deleted": deleted, "again": again.client_key_id}


# 5. Tearing down in the only order the references allow; the instance is then free.
@section("teardown")
def _():
    keys = c.list_client_keys_with_options(kms.ListClientKeysRequest(aap_name="app1"), RT).body
    for k in keys.client_keys:
        c.delete_client_key_with_options(
            kms.DeleteClientKeyRequest(client_key_id=k.client_key_id), RT)
    for name in ("app1", "app2"):
        c.delete_application_access_point_with_options(
            kms.DeleteApplicationAccessPointRequest(name=name), RT)
    for name in ("policy-keys", "policy-secrets", "policy-3"):
        c.delete_policy_with_options(kms.DeletePolicyRequest(name=name), RT)
    for name in ("rule-a", "rule-b"):
        c.delete_network_rule_with_options(kms.DeleteNetworkRuleRequest(name=name), RT)
    counts = {
        "rules": c.list_network_rules_with_options(
            kms.ListNetworkRulesRequest(), RT).body.total_count,
        "policies": c.list_policies_with_options(kms.ListPoliciesRequest(), RT).body.total_count,
        "points": c.list_application_access_points_with_options(
            kms.ListApplicationAccessPointsRequest(), RT).body.total_count,
    }
    released = failure(lambda: generic(c, "ReleaseKmsInstance", {"KmsInstanceId": instance}))
    return {"counts": counts, "released": released}


print(json.dumps(out))
