//! The official management SDK (`alibabacloud-kms20160120` 3.3.1) against a node on
//! SQLite with two real HSM nodes: the guide's steps 1 and 3, every field read through
//! the SDK's models, and the refusals with the cloud's codes.

use serde_json::Value;

use crate::support::{self, Hsms, Kms, P12_PASSWORD};

fn code(v: &Value) -> (&str, i64) {
    (
        v["code"].as_str().unwrap(),
        v["status"].as_i64().unwrap_or(0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_on_one_node_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let hsms = Hsms::start(&dir.path().join("hsm")).await;
    let kms = support::kms(&dir.path().join("kms")).await;
    run_and_check(&kms, None, &hsms).await;
    kms.server.shutdown().await;
    hsms.primary.shutdown().await;
    hsms.member.shutdown().await;
}

/// Writes go to one node, reads to the other; nonces are shared (the replayed request
/// goes to the second node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_on_two_nodes_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let hsms = Hsms::start(&dir.path().join("hsm")).await;
    let url = support::fresh_database().await;
    let (a, b) = support::two_kms_on(dir.path(), &url).await;
    run_and_check(&a, Some(&b.endpoint), &hsms).await;
    a.server.shutdown().await;
    b.server.shutdown().await;
    hsms.primary.shutdown().await;
    hsms.member.shutdown().await;
}

async fn run_and_check(kms: &Kms, second: Option<&str>, hsms: &Hsms) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/sdk_mgmt.py");
    let output = tokio::process::Command::new(support::mgmt_python())
        .arg(script)
        .env("SR_ENDPOINT2", second.unwrap_or(&kms.endpoint))
        .env("SR_ENDPOINT", &kms.endpoint)
        .env("SR_CA", &kms.ca_file)
        .env("SR_AK", &kms.access_key_id)
        .env("SR_SK", &kms.access_key_secret)
        .env("SR_NODES", hsms.nodes_json())
        .env("SR_P12", &hsms.certs.client_p12)
        .env("SR_P12_PASSWORD", P12_PASSWORD)
        .env("SR_ROOTCA", &hsms.certs.rootca_pem)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the SDK script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();

    // Step 1: two instances provisioned, listed with ARNs.
    let created = out["created"]["KmsInstances"]["KmsInstance"]
        .as_array()
        .unwrap();
    assert_eq!(created.len(), 2);
    let first = created[0]["KmsInstanceId"].as_str().unwrap();
    assert!(first.starts_with("kst-"), "{first}");
    assert!(
        created[0]["KmsInstanceArn"]
            .as_str()
            .unwrap()
            .starts_with("acs:kms:cn-hangzhou:")
    );
    assert_eq!(out["list"]["TotalCount"], 2);
    assert_eq!(out["list"]["PageSize"], 100);
    let listed = out["list"]["KmsInstances"]["KmsInstance"]
        .as_array()
        .unwrap();
    assert!(listed.iter().any(|i| i["KmsInstanceId"] == first));

    let before = &out["get_before"]["KmsInstance"];
    assert_eq!(before["InstanceId"], first);
    assert_eq!(before["InstanceName"], "sdk");
    assert_eq!(before["Status"], "Uninitialized");
    assert_eq!(before["KeyNum"], 2000);
    assert_eq!(before["SecretNum"], "50");
    assert_eq!(before["VpcNum"], 2);
    assert_eq!(before["Spec"], 1000);
    assert_eq!(before["ChargeType"], "PREPAY");
    assert_eq!(before["SaleStatus"], "Normal");
    assert_eq!(before["StartDate"], "");
    assert!(before["EndDate"].as_str().unwrap().ends_with('Z'));
    assert!(out["get_before"]["RequestId"].as_str().unwrap().len() == 36);

    // Step 3: the cluster bound with its credentials; the node reached both HSMs.
    let after = &out["get_after"]["KmsInstance"];
    assert_eq!(after["Status"], "Connected", "{after}");
    let typed = &out["typed"];
    assert_eq!(typed["status"], "Connected");
    assert_eq!(typed["zone_ids"], serde_json::json!(["zone-a", "zone-b"]));
    assert!(typed["vpc_id"].as_str().unwrap().starts_with("vpc-"));
    assert_eq!(typed["bind_vpcs"][0], typed["vpc_id"]);
    assert_eq!(typed["ca_pem_certs"], 2);
    assert_eq!(typed["key_num"], 2000);
    assert_eq!(typed["secret_num"], "50");
    assert!(typed["start_date"].as_str().unwrap().ends_with('Z'));
    assert_eq!(out["bound_second"], typed["vpc_id"]);
    assert_eq!(
        out["quota"]["KmsInstanceQuotaInfos"][0],
        serde_json::json!({"ResourceType": "vpc", "ResourceQuota": 2, "UsedQuantity": 1})
    );

    // One cluster, one instance; a connected instance is not connected twice.
    assert_eq!(code(&out["cluster_taken"]), ("Rejected.ResourceInUse", 409));
    assert_eq!(
        code(&out["connected_again"]),
        ("Forbidden.DKMSInstanceStateInvalid", 403)
    );
    // v1 HMAC-SHA1 works too.
    assert_eq!(out["v1_get"], "Connected");
    assert_eq!(out["get_acs3"], 1);
    assert_eq!(out["get_v1"], 1);

    // Refusals with the cloud's codes.
    assert_eq!(
        code(&out["unknown_instance"]),
        ("Forbidden.DKMSInstanceNotFound", 403)
    );
    assert_eq!(code(&out["bad_signature"]), ("SignatureDoesNotMatch", 400));
    assert_eq!(code(&out["bad_signature_v1"]).0, "SignatureDoesNotMatch");
    assert_eq!(
        code(&out["old_timestamp"]),
        ("InvalidTimeStamp.Expired", 400)
    );
    assert_eq!(out["nonce_first"]["code"], "OK");
    assert_eq!(code(&out["nonce_reused"]), ("SignatureNonceUsed", 400));
    assert_eq!(code(&out["too_many_vpcs"]), ("Rejected.LimitExceeded", 400));
    assert_eq!(code(&out["missing_parameter"]), ("MissingParameter", 400));
    assert_eq!(
        code(&out["unknown_action"]),
        ("InvalidAction.NotFound", 404)
    );
}
