//! The management API through our client on a SQLite node: access keys, VPCs, an
//! enabling that fails and says why, expiry and renewal, release, limits, plain HTTP.

use std::time::Duration;

use serde_json::Value;
use strongroom_server::client::{ClientError, Credentials, ManagementClient, Transport};
use strongroom_server::{Config, Overrides};
use strongroom_store::{SqliteStore, Store};
use zeroize::Zeroizing;

use crate::support::{self, Hsms, Kms, P12_PASSWORD};

fn client_for(kms: &Kms, id: &str, secret: &str) -> ManagementClient {
    ManagementClient::new(
        &kms.endpoint,
        Transport::Https {
            ca_file: kms.ca_file.clone(),
            server_name: None,
        },
        Credentials {
            access_key_id: id.to_owned(),
            access_key_secret: Zeroizing::new(secret.to_owned()),
        },
    )
    .unwrap()
}

fn admin(kms: &Kms) -> ManagementClient {
    client_for(kms, &kms.access_key_id, &kms.access_key_secret)
}

/// The code and HTTP status of a refused call.
async fn refused(
    c: &ManagementClient,
    action: &str,
    params: &[(&str, &str)],
) -> (String, u16, String) {
    match c.call(action, params).await {
        Err(ClientError::Api {
            code,
            status,
            message,
            ..
        }) => (code, status, message),
        other => panic!("{action} should have been refused: {other:?}"),
    }
}

async fn create_one(c: &ManagementClient, params: &[(&str, &str)]) -> String {
    let created = c.call("CreateKmsInstance", params).await.unwrap();
    created["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn instance(c: &ManagementClient, id: &str) -> Value {
    c.call("GetKmsInstance", &[("KmsInstanceId", id)])
        .await
        .unwrap()["KmsInstance"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_keys_are_shown_once_disabled_and_never_all_removed() {
    let dir = tempfile::tempdir().unwrap();
    let kms = support::kms(dir.path()).await;
    let c = admin(&kms);
    let made = c
        .call("CreateAccessKey", &[("Description", "ci")])
        .await
        .unwrap();
    let id = made["AccessKey"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = made["AccessKey"]["AccessKeySecret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("LTAI") && secret.len() == 30);
    let listed = c.call("ListAccessKeys", &[]).await.unwrap();
    assert_eq!(listed["TotalCount"], 2);
    assert!(
        !listed.to_string().contains(&secret),
        "a listing must never show a secret"
    );
    // The secret is stored only sealed: not in the database file in clear.
    let db = std::fs::read(dir.path().join("kms.db")).unwrap();
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()));

    let second = client_for(&kms, &id, &secret);
    second.call("ListVpcs", &[]).await.unwrap();
    c.call(
        "UpdateAccessKey",
        &[("UserAccessKeyId", &id), ("Status", "Inactive")],
    )
    .await
    .unwrap();
    assert_eq!(
        refused(&second, "ListVpcs", &[]).await.0,
        "InvalidAccessKeyId.Inactive"
    );
    // With the other key disabled, the first is the last active one.
    let (code, status, _) = refused(
        &c,
        "DeleteAccessKey",
        &[("UserAccessKeyId", &kms.access_key_id)],
    )
    .await;
    assert_eq!((code.as_str(), status), ("Rejected.ResourceInUse", 409));
    c.call("DeleteAccessKey", &[("UserAccessKeyId", &id)])
        .await
        .unwrap();
    assert_eq!(
        refused(&second, "ListVpcs", &[]).await.0,
        "InvalidAccessKeyId.NotFound"
    );
    assert_eq!(
        refused(&c, "DeleteAccessKey", &[("UserAccessKeyId", &id)])
            .await
            .0,
        "Forbidden.AccessKeyNotFound"
    );
    kms.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabling_fails_with_the_reason_when_a_node_is_unreachable_then_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let hsms = Hsms::start(&dir.path().join("hsm")).await;
    let mut config = support::config(&dir.path().join("kms"), None, None);
    config.enable_timeout = Duration::from_secs(3);
    let init = strongroom_server::init(&config).await.unwrap();
    let server = strongroom_server::start(config).await.unwrap();
    let kms = Kms {
        endpoint: server.local_addr.to_string(),
        ca_file: server.ca_file.clone().unwrap(),
        server,
        access_key_id: init.access_key_id,
        access_key_secret: init.access_key_secret.to_string(),
    };
    let c = admin(&kms);
    // A closed port in zone b instead of the member.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().to_string();
    drop(closed);
    let nodes = serde_json::json!([
        {"Address": hsms.primary.host_addr().to_string(), "ZoneId": "zone-a"},
        {"Address": dead, "ZoneId": "zone-b"},
    ])
    .to_string();
    let bad_cluster = c
        .call("RegisterHsmCluster", &[("Nodes", &nodes)])
        .await
        .unwrap()["HsmClusterId"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = create_one(&c, &[]).await;
    let (p12, root) = (hsms.client_p12_base64(), hsms.root_ca_pem());
    let connect = |cluster: &str, password: &str| {
        vec![
            ("KmsInstanceId".to_owned(), id.clone()),
            ("HsmClusterId".to_owned(), cluster.to_owned()),
            ("ClientCertificate".to_owned(), p12.clone()),
            ("ClientCertificatePassword".to_owned(), password.to_owned()),
            ("HsmRootCaPem".to_owned(), root.clone()),
        ]
    };
    let call = |params: Vec<(String, String)>| {
        let c = c.clone();
        async move {
            let refs: Vec<(&str, &str)> = params
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            c.call("ConnectKmsInstance", &refs).await
        }
    };
    // A wrong PKCS#12 password is refused at once.
    let wrong = call(connect(&bad_cluster, "wrong-password")).await;
    assert!(
        matches!(&wrong, Err(ClientError::Api { code, .. }) if code == "InvalidParameter"),
        "{wrong:?}"
    );
    call(connect(&bad_cluster, P12_PASSWORD)).await.unwrap();
    let mut got = instance(&c, &id).await;
    assert_eq!(got["Status"], "Connecting");
    for _ in 0..80 {
        got = instance(&c, &id).await;
        if got["Status"] != "Connecting" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got["Status"], "Error", "{got}");
    let reason = got["StatusReason"].as_str().unwrap();
    assert!(
        reason.contains(&dead) && reason.contains("zone-b"),
        "{reason}"
    );
    assert!(
        !reason.contains(&hsms.primary.host_addr().to_string()),
        "{reason}"
    );

    // From Error, connecting again (to the healthy cluster) enables the instance; the
    // failed cluster is free again.
    let good_cluster = c
        .call("RegisterHsmCluster", &[("Nodes", &hsms.nodes_json())])
        .await
        .unwrap()["HsmClusterId"]
        .as_str()
        .unwrap()
        .to_owned();
    call(connect(&good_cluster, P12_PASSWORD)).await.unwrap();
    for _ in 0..80 {
        got = instance(&c, &id).await;
        if got["Status"] != "Connecting" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got["Status"], "Connected", "{got}");
    assert_eq!(got["HsmClusterId"], good_cluster.as_str());
    assert!(got["StatusReason"].as_str().unwrap().contains("domain key"));
    let bad = c
        .call("GetHsmCluster", &[("HsmClusterId", &bad_cluster)])
        .await
        .unwrap();
    assert_eq!(bad["HsmCluster"]["KmsInstanceId"], "");
    c.call("DeregisterHsmCluster", &[("HsmClusterId", &bad_cluster)])
        .await
        .unwrap();
    assert_eq!(
        refused(
            &c,
            "DeregisterHsmCluster",
            &[("HsmClusterId", &good_cluster)]
        )
        .await
        .0,
        "Rejected.ResourceInUse"
    );
    // A connected instance is released only when forced; then its cluster is free.
    assert_eq!(
        refused(&c, "ReleaseKmsInstance", &[("KmsInstanceId", &id)])
            .await
            .0,
        "Forbidden.DKMSInstanceStateInvalid"
    );
    c.call(
        "ReleaseKmsInstance",
        &[("KmsInstanceId", &id), ("ForceDeleteWithoutBackup", "true")],
    )
    .await
    .unwrap();
    assert_eq!(
        refused(&c, "GetKmsInstance", &[("KmsInstanceId", &id)])
            .await
            .0,
        "Forbidden.DKMSInstanceNotFound"
    );
    c.call("DeregisterHsmCluster", &[("HsmClusterId", &good_cluster)])
        .await
        .unwrap();
    kms.server.shutdown().await;
    hsms.primary.shutdown().await;
    hsms.member.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_instance_keeps_its_data_until_renewed_and_auto_renew_rolls_on() {
    let dir = tempfile::tempdir().unwrap();
    let kms = support::kms(dir.path()).await;
    let c = admin(&kms);
    let id = create_one(&c, &[("Period", "1"), ("InstanceName", "short")]).await;
    let auto = create_one(&c, &[("Period", "1"), ("AutoRenew", "true")]).await;
    // Move both terms into the past, as time would.
    let store = SqliteStore::open(dir.path().join("kms.db")).await.unwrap();
    let past = time::OffsetDateTime::now_utc().unix_timestamp() - 86_400 * 40;
    for which in [&id, &auto] {
        let mut i = store.get_instance(which).await.unwrap();
        i.end_time = Some(past);
        store.update_instance(&i).await.unwrap();
    }
    let expired = instance(&c, &id).await;
    assert_eq!(expired["SaleStatus"], "Expired");
    assert_eq!(expired["InstanceName"], "short", "its data is kept");
    let (code, status, message) = refused(
        &c,
        "ConnectKmsInstance",
        &[
            ("KmsInstanceId", &id),
            ("HsmClusterId", "hsmc-x"),
            ("ClientCertificate", "eA=="),
            ("ClientCertificatePassword", "x"),
            ("HsmRootCaPem", "x"),
        ],
    )
    .await;
    assert_eq!(
        (code.as_str(), status),
        ("Forbidden.DKMSInstanceStateInvalid", 403)
    );
    assert!(
        message.contains("expired") && message.contains("renew"),
        "{message}"
    );
    let renewed = c
        .call(
            "RenewKmsInstance",
            &[("KmsInstanceId", &id), ("Period", "3")],
        )
        .await
        .unwrap();
    let end = time::OffsetDateTime::parse(
        renewed["EndDate"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    assert!(end > now + time::Duration::days(85) && end < now + time::Duration::days(95));
    assert_eq!(instance(&c, &id).await["SaleStatus"], "Normal");
    // Auto-renewal moves the end date on by whole terms, past now.
    let rolled = instance(&c, &auto).await;
    assert_eq!(rolled["SaleStatus"], "Normal");
    let end = time::OffsetDateTime::parse(
        rolled["EndDate"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(end > now && end < now + time::Duration::days(32), "{end}");
    assert_eq!(
        refused(
            &c,
            "RenewKmsInstance",
            &[("KmsInstanceId", &id), ("Period", "5")]
        )
        .await
        .0,
        "InvalidParameter"
    );
    kms.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpcs_parameters_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let kms = support::kms(dir.path()).await;
    let c = admin(&kms);
    let (code, _, message) =
        refused(&c, "CreateVpc", &[("CidrBlocks", "10.0.0.0/8,10.0.0.1/8")]).await;
    assert_eq!(code, "InvalidParameter");
    assert!(message.contains("10.0.0.1/8"), "{message}");
    let vpc = c
        .call(
            "CreateVpc",
            &[("VpcName", "v"), ("CidrBlocks", "10.0.0.0/8, 192.168.1.7")],
        )
        .await
        .unwrap()["VpcId"]
        .as_str()
        .unwrap()
        .to_owned();
    let described = c.call("DescribeVpc", &[("VpcId", &vpc)]).await.unwrap();
    assert_eq!(
        described["Vpc"]["CidrBlocks"]["CidrBlock"],
        serde_json::json!(["10.0.0.0/8", "192.168.1.7/32"])
    );
    let id = create_one(&c, &[("VpcNum", "1")]).await;
    let bind = serde_json::json!([{"VpcId": vpc, "RegionId": "cn-hangzhou"}]).to_string();
    c.call(
        "UpdateKmsInstanceBindVpc",
        &[("KmsInstanceId", &id), ("BindVpcs", &bind)],
    )
    .await
    .unwrap();
    assert_eq!(
        refused(&c, "DeleteVpc", &[("VpcId", &vpc)]).await.0,
        "Rejected.ResourceInUse"
    );
    let elsewhere = serde_json::json!([{"VpcId": vpc, "RegionId": "eu-central-1"}]).to_string();
    assert_eq!(
        refused(
            &c,
            "UpdateKmsInstanceBindVpc",
            &[("KmsInstanceId", &id), ("BindVpcs", &elsewhere)]
        )
        .await
        .0,
        "InvalidParameter"
    );
    assert_eq!(
        refused(
            &c,
            "UpdateKmsInstanceBindVpc",
            &[
                ("KmsInstanceId", &id),
                ("BindVpcs", r#"[{"VpcId":"vpc-none"}]"#)
            ]
        )
        .await
        .0,
        "Forbidden.VpcNotFound"
    );
    c.call(
        "UpdateKmsInstanceBindVpc",
        &[("KmsInstanceId", &id), ("BindVpcs", "[]")],
    )
    .await
    .unwrap();
    c.call("DeleteVpc", &[("VpcId", &vpc)]).await.unwrap();
    // Parameter rules name the parameter.
    for (params, name) in [
        (vec![("Spec", "300")], "Spec"),
        (vec![("Quantity", "21")], "Quantity"),
        (vec![("KeyNum", "99")], "KeyNum"),
        (vec![("Period", "5")], "Period"),
        (vec![("AutoRenew", "maybe")], "AutoRenew"),
    ] {
        let (code, status, message) = refused(&c, "CreateKmsInstance", &params).await;
        assert_eq!((code.as_str(), status), ("InvalidParameter", 400));
        assert!(message.contains(name), "{message}");
    }
    let one_zone = serde_json::json!([
        {"Address": "10.0.0.1:8020", "ZoneId": "a"},
        {"Address": "10.0.0.2:8020", "ZoneId": "a"},
    ])
    .to_string();
    let (code, _, message) = refused(&c, "RegisterHsmCluster", &[("Nodes", &one_zone)]).await;
    assert_eq!(code, "InvalidParameter");
    assert!(message.contains("two distinct zones"), "{message}");
    // Bodies over 1 MiB are refused with 413.
    let huge = "x".repeat(1_100_000);
    let (code, status, _) = refused(&c, "ListVpcs", &[("Padding", &huge)]).await;
    assert_eq!((code.as_str(), status), ("RequestEntityTooLarge", 413));
    kms.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_only_when_asked_and_only_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(
        None,
        Overrides {
            data_dir: Some(dir.path().to_owned()),
            listen: Some("127.0.0.1:0".into()),
            insecure_http: true,
            ..Overrides::default()
        },
    )
    .unwrap();
    let init = strongroom_server::init(&config).await.unwrap();
    assert!(init.ca_file.is_none());
    let server = strongroom_server::start(config).await.unwrap();
    assert_eq!(server.scheme, "http");
    let c = ManagementClient::new(
        &server.local_addr.to_string(),
        Transport::InsecureHttp,
        Credentials {
            access_key_id: init.access_key_id.clone(),
            access_key_secret: init.access_key_secret.clone(),
        },
    )
    .unwrap();
    assert_eq!(
        c.call("ListKmsInstances", &[]).await.unwrap()["TotalCount"],
        0
    );
    server.shutdown().await;
    let refused = Config::load(
        None,
        Overrides {
            data_dir: Some(dir.path().to_owned()),
            listen: Some("0.0.0.0:0".into()),
            insecure_http: true,
            ..Overrides::default()
        },
    );
    assert!(refused.is_err());
}
