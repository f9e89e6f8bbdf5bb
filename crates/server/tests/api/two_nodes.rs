//! Two KMS nodes over one PostgreSQL database serve the same instances: one management
//! CA, one node key, shared nonces and compare-and-set updates, and the one-cluster,
//! one-instance rule held when both nodes race to bind the same cluster.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use strongroom_server::client::{ClientError, ManagementClient};
use strongroom_server::node_key::NodeKeyError;
use strongroom_server::{RunningServer, StartError};

use crate::support::{self, Hsms, P12_PASSWORD};

async fn start(dir: &Path, url: &str, key: &Path) -> RunningServer {
    strongroom_server::start(support::config(dir, Some(url), Some(key)))
        .await
        .unwrap()
}

fn err_code(e: ClientError) -> String {
    match e {
        ClientError::Api { code, .. } => code,
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_serve_the_same_instances() {
    let dir = tempfile::tempdir().unwrap();
    let url = support::fresh_database().await;
    let key = dir.path().join("a").join("node.key");
    let init = strongroom_server::init(&support::config(&dir.path().join("a"), Some(&url), None))
        .await
        .unwrap();
    let a = start(&dir.path().join("a"), &url, &key).await;
    let b = start(&dir.path().join("b"), &url, &key).await;
    // One management CA for the deployment: a client trusts either node with one file.
    assert_eq!(
        std::fs::read(a.ca_file.as_ref().unwrap()).unwrap(),
        std::fs::read(b.ca_file.as_ref().unwrap()).unwrap()
    );
    let secret = init.access_key_secret.to_string();
    let ca = support::client(&a, &init.access_key_id, &secret);
    let cb = support::client(&b, &init.access_key_id, &secret);

    // A node with another key, or none, refuses to start instead of failing later.
    let other_key = dir.path().join("other.key");
    std::fs::write(&other_key, [7u8; 32]).unwrap();
    let refused = strongroom_server::start(support::config(
        &dir.path().join("c"),
        Some(&url),
        Some(&other_key),
    ))
    .await;
    assert!(
        matches!(
            refused,
            Err(StartError::NodeKey(NodeKeyError::WrongKey { .. }))
        ),
        "{refused:?}"
    );
    let missing = strongroom_server::start(support::config(
        &dir.path().join("d"),
        Some(&url),
        Some(&dir.path().join("absent.key")),
    ))
    .await;
    assert!(
        matches!(
            missing,
            Err(StartError::NodeKey(NodeKeyError::Missing { .. }))
        ),
        "{missing:?}"
    );

    // Made on one node, seen on the other.
    let created = ca
        .call(
            "CreateKmsInstance",
            &[("Quantity", "3"), ("InstanceName", "pg")],
        )
        .await
        .unwrap();
    let ids: Vec<String> = created["KmsInstances"]["KmsInstance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["KmsInstanceId"].as_str().unwrap().to_owned())
        .collect();
    let got = cb
        .call("GetKmsInstance", &[("KmsInstanceId", &ids[0])])
        .await
        .unwrap();
    assert_eq!(got["KmsInstance"]["InstanceName"], "pg");
    // An access key made on B signs requests A accepts.
    let made = cb.call("CreateAccessKey", &[]).await.unwrap();
    let second = support::client(
        &a,
        made["AccessKey"]["AccessKeyId"].as_str().unwrap(),
        made["AccessKey"]["AccessKeySecret"].as_str().unwrap(),
    );
    assert_eq!(
        second.call("ListKmsInstances", &[]).await.unwrap()["TotalCount"],
        3
    );

    // Both nodes race to create instances: nothing is lost.
    let mut tasks = Vec::new();
    for c in [ca.clone(), cb.clone()] {
        for _ in 0..5 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                c.call("CreateKmsInstance", &[]).await.unwrap();
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = ca
        .call("ListKmsInstances", &[("PageSize", "100")])
        .await
        .unwrap();
    assert_eq!(all["TotalCount"], 13);

    // Both nodes race to bind one HSM cluster to two instances: exactly one wins, and
    // the winner is enabled through the real HSM nodes.
    let hsms = Hsms::start(&dir.path().join("hsm")).await;
    let cluster = ca
        .call(
            "RegisterHsmCluster",
            &[("HsmClusterName", "shared"), ("Nodes", &hsms.nodes_json())],
        )
        .await
        .unwrap()["HsmClusterId"]
        .as_str()
        .unwrap()
        .to_owned();
    let p12 = hsms.client_p12_base64();
    let root = hsms.root_ca_pem();
    let connect = |c: ManagementClient, instance: String| {
        let (cluster, p12, root) = (cluster.clone(), p12.clone(), root.clone());
        tokio::spawn(async move {
            c.call(
                "ConnectKmsInstance",
                &[
                    ("KmsInstanceId", &instance),
                    ("HsmClusterId", &cluster),
                    ("ClientCertificate", &p12),
                    ("ClientCertificatePassword", P12_PASSWORD),
                    ("HsmRootCaPem", &root),
                ],
            )
            .await
            .map(|_| instance)
        })
    };
    let one = connect(ca.clone(), ids[1].clone());
    let two = connect(cb.clone(), ids[2].clone());
    let outcomes = [one.await.unwrap(), two.await.unwrap()];
    let winners: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok().cloned())
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let winner = winners[0].clone();
    let loser = outcomes.into_iter().find_map(Result::err).unwrap();
    assert_eq!(err_code(loser), "Rejected.ResourceInUse");
    let mut status = Value::Null;
    for _ in 0..120 {
        status = ca
            .call("GetKmsInstance", &[("KmsInstanceId", &winner)])
            .await
            .unwrap()["KmsInstance"]["Status"]
            .clone();
        if status != "Connecting" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status, "Connected");
    let from_b = cb
        .call("GetHsmCluster", &[("HsmClusterId", &cluster)])
        .await
        .unwrap();
    assert_eq!(from_b["HsmCluster"]["KmsInstanceId"], winner.as_str());

    a.shutdown().await;
    b.shutdown().await;
    hsms.primary.shutdown().await;
    hsms.member.shutdown().await;
}
