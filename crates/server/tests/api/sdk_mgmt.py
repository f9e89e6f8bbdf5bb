"""Drives a Strongroom KMS node with the official management SDK
(alibabacloud-kms20160120 on alibabacloud-tea-openapi), exactly as an application would,
and prints what it saw as one JSON object for the Rust test to check.

Environment: SR_ENDPOINT (host:port), optionally SR_ENDPOINT2 (a second node over the same
database: every read then goes there), SR_CA (management CA file), SR_AK, SR_SK,
SR_NODES (JSON of the HSM nodes), SR_P12 (client.p12 path), SR_P12_PASSWORD, SR_ROOTCA.
"""
import base64
import json
import os
import time

from alibabacloud_kms20160120 import models as kms
from alibabacloud_kms20160120.client import Client
from alibabacloud_tea_openapi import utils_models as om
from alibabacloud_tea_openapi.utils import Utils
from darabonba.runtime import RuntimeOptions

E = os.environ
RT = RuntimeOptions(ca=E["SR_CA"])


def client(secret=None, algorithm=None, endpoint=None):
    return Client(om.Config(
        access_key_id=E["SR_AK"],
        access_key_secret=secret or E["SR_SK"],
        endpoint=endpoint or E["SR_ENDPOINT"],
        protocol="https",
        region_id="cn-hangzhou",
        signature_algorithm=algorithm,
    ))


def generic(c, action, query, method="POST"):
    """The SDK's generic call, for our own actions and extended parameters."""
    params = om.Params(action=action, version="2016-01-20", protocol="HTTPS", pathname="/",
                       method=method, auth_type="AK", style="RPC",
                       req_body_type="formData", body_type="json")
    return c.call_api(params, om.OpenApiRequest(query=Utils.query(query)), RT)["body"]


def failure(call):
    try:
        call()
    except Exception as e:  # the SDK raises ClientException / TeaException subclasses
        return {"code": getattr(e, "code", None),
                "status": getattr(e, "status_code", None) or (getattr(e, "data", None) or {}).get("httpCode")}
    return {"code": "OK"}


c = client()
r = client(endpoint=E.get("SR_ENDPOINT2"))  # reads
out = {}

created = generic(c, "CreateKmsInstance", {
    "InstanceName": "sdk", "Quantity": "2", "VpcNum": "2", "KeyNum": "2000",
    "SecretNum": "50", "Spec": "1000", "Period": "12", "AutoRenew": "false"})
ids = [x["KmsInstanceId"] for x in created["KmsInstances"]["KmsInstance"]]
out["created"] = created

out["list"] = r.list_kms_instances_with_options(
    kms.ListKmsInstancesRequest(page_number=1, page_size=100), RT).body.to_map()
out["get_before"] = r.get_kms_instance_with_options(
    kms.GetKmsInstanceRequest(kms_instance_id=ids[0]), RT).body.to_map()

vpc = generic(c, "CreateVpc", {"VpcName": "apps", "CidrBlocks": '["10.0.0.0/8","fd00::/8"]'})["VpcId"]
cluster = generic(c, "RegisterHsmCluster", {"HsmClusterName": "guide", "Nodes": E["SR_NODES"]})["HsmClusterId"]
with open(E["SR_P12"], "rb") as f:
    p12 = base64.b64encode(f.read()).decode()
with open(E["SR_ROOTCA"]) as f:
    rootca = f.read()
connect = {"KmsInstanceId": ids[0], "KMProvider": "Aliyun", "HsmClusterId": cluster,
           "ClientCertificate": p12, "ClientCertificatePassword": E["SR_P12_PASSWORD"],
           "HsmRootCaPem": rootca, "VpcId": vpc, "ZoneIds": '["zone-a","zone-b"]'}
out["connect"] = generic(c, "ConnectKmsInstance", connect)
deadline = time.time() + 60
while True:
    got = r.get_kms_instance_with_options(kms.GetKmsInstanceRequest(kms_instance_id=ids[0]), RT)
    status = got.body.kms_instance.status
    if status in ("Connected", "Error") or time.time() > deadline:
        break
    time.sleep(0.5)
out["get_after"] = got.body.to_map()
# Every typed field, read through the SDK's model (not just the raw map).
k = got.body.kms_instance
out["typed"] = {
    "instance_id": k.instance_id, "status": k.status, "key_num": k.key_num,
    "secret_num": k.secret_num, "vpc_num": k.vpc_num, "spec": k.spec,
    "start_date": k.start_date, "end_date": k.end_date, "create_time": k.create_time,
    "zone_ids": k.zone_ids, "vpc_id": k.vpc_id,
    "bind_vpcs": [b.vpc_id for b in k.bind_vpcs.bind_vpc],
    "ca_pem_certs": k.ca_certificate_chain_pem.count("BEGIN CERTIFICATE"),
    "charge_type": k.charge_type, "sale_status": k.sale_status,
}

# The other instance: a typed UpdateKmsInstanceBindVpc, then the cluster already bound.
c.update_kms_instance_bind_vpc_with_options(kms.UpdateKmsInstanceBindVpcRequest(
    kms_instance_id=ids[1],
    bind_vpcs=json.dumps([{"VpcId": vpc, "VSwitchId": "vsw-1", "RegionId": "cn-hangzhou",
                           "VpcOwnerId": 1234}])), RT)
out["bound_second"] = r.get_kms_instance_with_options(
    kms.GetKmsInstanceRequest(kms_instance_id=ids[1]), RT).body.kms_instance.vpc_id
out["cluster_taken"] = failure(lambda: generic(c, "ConnectKmsInstance", dict(connect, KmsInstanceId=ids[1])))
out["connected_again"] = failure(lambda: generic(r, "ConnectKmsInstance", connect))
out["quota"] = c.get_kms_instance_quota_infos_with_options(
    kms.GetKmsInstanceQuotaInfosRequest(kms_instance_id=ids[0], resource_type="vpc"), RT).body.to_map()

# Classic v1 HMAC-SHA1 signatures (SDK 2.0 with signature_algorithm v2).
out["v1_get"] = client(algorithm="v2").get_kms_instance_with_options(
    kms.GetKmsInstanceRequest(kms_instance_id=ids[0]), RT).body.kms_instance.status

# GET, with both signatures.
out["get_acs3"] = generic(c, "ListHsmClusters", {}, method="GET")["TotalCount"]
out["get_v1"] = generic(client(algorithm="v2"), "ListHsmClusters", {}, method="GET")["TotalCount"]

# Refusals.
out["unknown_instance"] = failure(lambda: c.get_kms_instance_with_options(
    kms.GetKmsInstanceRequest(kms_instance_id="kst-nosuchinstance0000000"), RT))
out["bad_signature"] = failure(lambda: client(secret="not-the-secret").list_kms_instances_with_options(
    kms.ListKmsInstancesRequest(), RT))
out["bad_signature_v1"] = failure(lambda: client(secret="nope", algorithm="v2").list_kms_instances_with_options(
    kms.ListKmsInstancesRequest(), RT))
real_timestamp, real_nonce = Utils.get_timestamp, Utils.get_nonce
Utils.get_timestamp = staticmethod(lambda: "2020-01-01T00:00:00Z")
out["old_timestamp"] = failure(lambda: c.list_kms_instances_with_options(kms.ListKmsInstancesRequest(), RT))
Utils.get_timestamp = real_timestamp
Utils.get_nonce = staticmethod(lambda: "strongroom-fixed-nonce-1")
out["nonce_first"] = failure(lambda: c.list_kms_instances_with_options(kms.ListKmsInstancesRequest(), RT))
out["nonce_reused"] = failure(lambda: r.list_kms_instances_with_options(kms.ListKmsInstancesRequest(), RT))
Utils.get_nonce = real_nonce
out["too_many_vpcs"] = failure(lambda: c.update_kms_instance_bind_vpc_with_options(
    kms.UpdateKmsInstanceBindVpcRequest(kms_instance_id=ids[1], bind_vpcs=json.dumps(
        [{"VpcId": vpc}, {"VpcId": generic(c, "CreateVpc", {"CidrBlocks": "192.168.0.0/16"})["VpcId"]},
         {"VpcId": generic(c, "CreateVpc", {"CidrBlocks": "172.16.0.0/12"})["VpcId"]}])), RT))
out["missing_parameter"] = failure(lambda: generic(c, "RegisterHsmCluster", {"HsmClusterName": "x"}))
out["unknown_action"] = failure(lambda: generic(c, "NoSuchAction", {}))

print(json.dumps(out))
