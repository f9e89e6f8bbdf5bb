//! Two KMS nodes over one PostgreSQL database under racing requests from both (issue
//! #11): no lost update — quotas, aliases, tags and descriptions of one key, client-key
//! counts, secret quotas and secret stages all hold when both nodes write at once — and,
//! on a PostgreSQL server of its own, stopping the database makes requests fail cleanly
//! (`SerivceUnvailableTemporary`, 503, in bounded time) and recover by themselves when it
//! returns. That background tasks run once on two nodes is `maintenance.rs`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use strongroom_server::RunningServer;
use strongroom_server::client::{ClientError, ManagementClient};

use crate::support::{self, Hsms};

async fn start(dir: &Path, url: &str, key: &Path) -> RunningServer {
    strongroom_server::start(support::config(dir, Some(url), Some(key)))
        .await
        .unwrap()
}

fn code(result: &Result<Value, ClientError>) -> String {
    match result {
        Ok(_) => "OK".to_owned(),
        Err(ClientError::Api { code, .. }) => code.clone(),
        Err(other) => format!("transport: {other}"),
    }
}

/// How many answers had each code.
fn tally(results: &[Result<Value, ClientError>]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for r in results {
        *counts.entry(code(r)).or_insert(0) += 1;
    }
    counts
}

/// Sends `n` calls built by `params(i)`, alternating between the two nodes, all at once.
async fn race(
    nodes: &[ManagementClient; 2],
    action: &str,
    n: usize,
    params: impl Fn(usize) -> Vec<(String, String)>,
) -> Vec<Result<Value, ClientError>> {
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let p = params(i);
        let node = nodes[i % 2].clone();
        let action = action.to_owned();
        tasks.push(tokio::spawn(async move {
            let borrowed: Vec<(&str, &str)> =
                p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            node.call(&action, &borrowed).await
        }));
    }
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let hsms = Hsms::start(&dir.path().join("hsm")).await;
    let url = support::fresh_database().await;
    let (a, b) = support::two_kms_on(dir.path(), &url).await;
    let nodes = [
        support::client(&a.server, &a.access_key_id, &a.access_key_secret),
        support::client(&b.server, &b.access_key_id, &b.access_key_secret),
    ];
    let c = &nodes[0];
    let instance =
        support::connected_instance(c, &hsms, &[("KeyNum", "100"), ("SecretNum", "5")]).await;

    // 1. The key quota (100 versions): 110 creations at once, from both nodes.
    let created = race(&nodes, "CreateKey", 110, |_| {
        kv(&[("DKMSInstanceId", &instance)])
    })
    .await;
    assert_eq!(
        tally(&created),
        [
            ("OK".to_owned(), 100),
            ("Rejected.LimitExceeded".to_owned(), 10)
        ]
        .into(),
        "exactly the quota is granted"
    );
    let keys: Vec<String> = created
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|v| v["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned())
        .collect();
    let listed = c.call("ListKeys", &[("PageSize", "100")]).await.unwrap();
    assert_eq!(listed["TotalCount"], 100);
    let quota = c
        .call(
            "GetKmsInstanceQuotaInfos",
            &[("KmsInstanceId", &instance), ("ResourceType", "key")],
        )
        .await
        .unwrap();
    assert_eq!(quota["KmsInstanceQuotaInfos"][0]["UsedQuantity"], 100);

    // 2. One alias name claimed by ten keys at once: one wins; then re-pointed by ten
    // at once: it names exactly one of them, the same on both nodes.
    let claimed = race(&nodes, "CreateAlias", 10, |i| {
        kv(&[("AliasName", "alias/contested"), ("KeyId", &keys[i])])
    })
    .await;
    assert_eq!(
        tally(&claimed),
        [("OK".to_owned(), 1), ("Rejected.AliasExist".to_owned(), 9)].into()
    );
    let repointed = race(&nodes, "UpdateAlias", 10, |i| {
        kv(&[("AliasName", "alias/contested"), ("KeyId", &keys[i])])
    })
    .await;
    assert_eq!(tally(&repointed), [("OK".to_owned(), 10)].into());
    let mut targets = BTreeSet::new();
    for node in &nodes {
        let by_alias = node
            .call("DescribeKey", &[("KeyId", "alias/contested")])
            .await
            .unwrap();
        targets.insert(
            by_alias["KeyMetadata"]["KeyId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(targets.len(), 1, "both nodes see one target");
    assert!(keys[..10].contains(targets.first().unwrap()));

    // 3. One key: 16 tags added at once (each a read-modify-write of the key), state
    // toggles and description changes racing with them. Every tag is kept.
    let key = &keys[99];
    let tagged = race(&nodes, "TagResource", 16, |i| {
        kv(&[
            ("KeyId", key),
            (
                "Tags",
                &json!([{"TagKey": format!("t{i}"), "TagValue": format!("v{i}")}]).to_string(),
            ),
        ])
    });
    let toggled = race(&nodes, "DisableKey", 6, |_| kv(&[("KeyId", key)]));
    let described = race(&nodes, "UpdateKeyDescription", 6, |i| {
        kv(&[("KeyId", key), ("Description", &format!("d{i}"))])
    });
    let (tagged, toggled, described) = tokio::join!(tagged, toggled, described);
    assert_eq!(tally(&tagged), [("OK".to_owned(), 16)].into());
    assert_eq!(tally(&toggled), [("OK".to_owned(), 6)].into());
    assert_eq!(tally(&described), [("OK".to_owned(), 6)].into());
    let tags = c.call("ListResourceTags", &[("KeyId", key)]).await.unwrap();
    let got: BTreeSet<String> = tags["Tags"]["Tag"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}={}",
                t["TagKey"].as_str().unwrap(),
                t["TagValue"].as_str().unwrap()
            )
        })
        .collect();
    let want: BTreeSet<String> = (0..16).map(|i| format!("t{i}=v{i}")).collect();
    assert_eq!(got, want, "no tag is lost");
    let meta = c.call("DescribeKey", &[("KeyId", key)]).await.unwrap();
    assert_eq!(meta["KeyMetadata"]["KeyState"], "Disabled");
    let description = meta["KeyMetadata"]["Description"].as_str().unwrap();
    assert!(
        (0..6).any(|i| description == format!("d{i}")),
        "{description}"
    );
    c.call("EnableKey", &[("KeyId", key)]).await.unwrap();

    // 4. Client keys: at most three per access point, ten asked for at once.
    support::key_access_point(c, &instance).await;
    let client_keys = race(&nodes, "CreateClientKey", 10, |_| {
        kv(&[("AapName", "app"), ("Password", "Racing-pw-1")])
    })
    .await;
    assert_eq!(
        tally(&client_keys),
        [
            ("OK".to_owned(), 3),
            ("Rejected.LimitExceeded".to_owned(), 7)
        ]
        .into()
    );
    let listed = c
        .call("ListClientKeys", &[("AapName", "app")])
        .await
        .unwrap();
    assert_eq!(listed["ClientKeys"].as_array().unwrap().len(), 3);

    // 5. Secrets: the quota of 5 under 9 creations at once; then 8 versions put at once
    // to one secret: every put is kept, and exactly one version is current and one
    // previous.
    let aes = &keys[0];
    let secrets = race(&nodes, "CreateSecret", 9, |i| {
        kv(&[
            ("SecretName", &format!("s{i}")),
            ("SecretData", "v"),
            ("VersionId", "v0"),
            ("EncryptionKeyId", aes),
        ])
    })
    .await;
    assert_eq!(
        tally(&secrets),
        [
            ("OK".to_owned(), 5),
            ("Rejected.LimitExceeded".to_owned(), 4)
        ]
        .into()
    );
    let name = secrets
        .iter()
        .enumerate()
        .find(|(_, r)| r.is_ok())
        .map(|(i, _)| format!("s{i}"))
        .unwrap();
    let puts = race(&nodes, "PutSecretValue", 8, |i| {
        kv(&[
            ("SecretName", &name),
            ("VersionId", &format!("p{i}")),
            ("SecretData", &format!("value {i}")),
        ])
    })
    .await;
    assert_eq!(tally(&puts), [("OK".to_owned(), 8)].into());
    let versions = c
        .call(
            "ListSecretVersionIds",
            &[("SecretName", &name), ("IncludeDeprecated", "true")],
        )
        .await
        .unwrap();
    let all = versions["VersionIds"]["VersionId"].as_array().unwrap();
    assert_eq!(all.len(), 9, "the first version and the eight puts");
    let holders = |stage: &str| -> Vec<String> {
        all.iter()
            .filter(|v| {
                v["VersionStages"]["VersionStage"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s == stage)
            })
            .map(|v| v["VersionId"].as_str().unwrap().to_owned())
            .collect()
    };
    let (current, previous) = (holders("ACSCurrent"), holders("ACSPrevious"));
    assert_eq!((current.len(), previous.len()), (1, 1), "{versions}");
    let read = nodes[1]
        .call("GetSecretValue", &[("SecretName", &name)])
        .await
        .unwrap();
    assert_eq!(read["VersionId"], current[0].as_str());
    let n: usize = current[0][1..].parse().unwrap();
    assert_eq!(read["SecretData"], format!("value {n}"));

    a.server.shutdown().await;
    b.server.shutdown().await;
    hsms.primary.shutdown().await;
    hsms.member.shutdown().await;
}

/// A PostgreSQL server of this test's own (`scripts/postgres.sh`), which it stops and
/// starts.
struct OwnPostgres {
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnPostgres {
    fn script() -> String {
        format!("{}/../../scripts/postgres.sh", env!("CARGO_MANIFEST_DIR"))
    }

    fn start(&self) -> String {
        let out = std::process::Command::new("bash")
            .arg(Self::script())
            .arg("start")
            .arg(self.dir.path())
            .arg(self.port.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "postgres.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn stop(&self) {
        let out = std::process::Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .arg(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "postgres.sh stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_postgres_fails_requests_cleanly_and_they_recover() {
    let dir = tempfile::tempdir().unwrap();
    let pg = OwnPostgres {
        dir: tempfile::tempdir().unwrap(),
        port: support::free_port_range(1)
            .split('-')
            .next()
            .unwrap()
            .parse()
            .unwrap(),
    };
    let url = pg.start();
    let key_file = dir.path().join("a").join("node.key");
    let init = strongroom_server::init(&support::config(&dir.path().join("a"), Some(&url), None))
        .await
        .unwrap();
    let a = start(&dir.path().join("a"), &url, &key_file).await;
    let secret = init.access_key_secret.to_string();
    let c = support::client(&a, &init.access_key_id, &secret);
    let made = c.call("CreateKmsInstance", &[]).await.unwrap();
    let instance = made["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
        .as_str()
        .unwrap()
        .to_owned();

    pg.stop();
    // Every request fails with the unavailable code, each in bounded time, and the node
    // keeps answering.
    for action in ["GetKmsInstance", "ListKmsInstances", "CreateKmsInstance"] {
        let started = Instant::now();
        let params: &[(&str, &str)] = if action == "GetKmsInstance" {
            &[("KmsInstanceId", &instance)]
        } else {
            &[]
        };
        let got = c.call(action, params).await;
        let took = started.elapsed();
        assert_eq!(
            code(&got),
            "SerivceUnvailableTemporary",
            "{action}: {got:?}"
        );
        assert!(took < Duration::from_secs(15), "{action} took {took:?}");
        if let Err(ClientError::Api { status, .. }) = &got {
            assert_eq!(*status, 503);
        }
    }

    assert_eq!(pg.start(), url);
    // Back by itself: no restart of the node.
    support::eventually("requests succeed again", || async {
        c.call("GetKmsInstance", &[("KmsInstanceId", &instance)])
            .await
            .is_ok()
    })
    .await;
    let listed = c.call("ListKmsInstances", &[]).await.unwrap();
    assert_eq!(listed["TotalCount"], 1, "what was stored before is there");
    c.call("CreateKmsInstance", &[]).await.unwrap();
    a.shutdown().await;
}
