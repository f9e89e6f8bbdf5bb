#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::as_conversions,
    reason = "tests"
)]
//! The cluster client against in-process HSM nodes: operations, pipelining, failover,
//! health, refused certificates and errors that must not be retried.

mod fixture;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use strongroom_hsm::backend::{Hsm as _, Op, Reply};
use strongroom_hsm::client::{ClusterClient, ClusterConfig, NodeAddress};
use strongroom_hsm::error::HsmError;
use strongroom_proto::hsm::v1::{self as pb, error::Code};
use tokio::task::JoinSet;

use fixture::{
    AES_KEY_ID, Cluster, config_for, decrypt, encrypt, eventually, generate_key, round_trip,
};

const AES: &str = "Aliyun_AES_256";
const ENCRYPT: &str = "ENCRYPT/DECRYPT";
const SIGN: &str = "SIGN/VERIFY";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_work_and_blobs_move_between_nodes() {
    let cluster = Cluster::start(2).await;
    let client = cluster.client();

    let aes = generate_key(&client, AES_KEY_ID, AES, ENCRYPT).await;
    round_trip(&client, &aes, b"attack at dawn").await.unwrap();

    let ec = generate_key(&client, "key-ec", "EC_P256", SIGN).await;
    assert!(!ec.public_key.is_empty());
    let digest = vec![7u8; 32];
    let Reply::Sign(signed) = client
        .call(Op::Sign(pb::Sign {
            key: Some(ec.key_ref()),
            algorithm: "ECDSA_SHA_256".into(),
            message: digest.clone(),
            message_type: "DIGEST".into(),
        }))
        .await
        .unwrap()
    else {
        panic!("not a Sign reply");
    };
    let verify = |signature: Vec<u8>| {
        Op::Verify(pb::Verify {
            key: Some(ec.key_ref()),
            algorithm: "ECDSA_SHA_256".into(),
            message: digest.clone(),
            message_type: "DIGEST".into(),
            signature,
        })
    };
    let Reply::Verify(good) = client.call(verify(signed.signature.clone())).await.unwrap() else {
        panic!("not a Verify reply");
    };
    assert!(good.valid);
    let mut forged = signed.signature.clone();
    *forged.last_mut().unwrap() ^= 1;
    match client.call(verify(forged)).await {
        Ok(Reply::Verify(bad)) => assert!(!bad.valid),
        Err(e) => assert_eq!(e.code, Code::InvalidParameter, "{e}"),
        Ok(other) => panic!("unexpected {other:?}"),
    }

    let Reply::GenerateRandom(random) = client
        .call(Op::GenerateRandom(pb::GenerateRandom { length: 48 }))
        .await
        .unwrap()
    else {
        panic!("not a GenerateRandom reply");
    };
    assert_eq!(random.random.len(), 48);
    let Reply::Hash(hash) = client
        .call(Op::Hash(pb::Hash {
            algorithm: "SHA_256".into(),
            message: b"abc".to_vec(),
        }))
        .await
        .unwrap()
    else {
        panic!("not a Hash reply");
    };
    assert_eq!(
        hex(&hash.digest),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );

    // A blob and a ciphertext made on node A open on node B.
    let only = |index: usize| {
        ClusterClient::connect(config_for(
            [cluster.nodes[index].address],
            cluster.pki.client_config(),
        ))
        .unwrap()
    };
    let (a, b) = (only(0), only(1));
    let key_a = generate_key(&a, "key-from-a", AES, ENCRYPT).await;
    let sealed = encrypt(&a, &key_a, b"made on A").await.unwrap();
    let before_b = cluster.nodes[1].calls();
    assert_eq!(decrypt(&b, &key_a, &sealed).await.unwrap(), b"made on A");
    assert_eq!(cluster.nodes[1].calls(), before_b + 1);

    let health = client.health();
    assert_eq!(health.len(), 2);
    assert!(
        eventually(Duration::from_secs(2), || client
            .health()
            .iter()
            .all(|h| h.healthy))
        .await
    );
    let status = client.health()[0].status.clone().unwrap();
    assert!(status.synced && !status.sealed);
    assert!(!status.domain_key_fingerprint.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_pipelined_requests_get_their_own_answers() {
    const REQUESTS: usize = 4000;
    let cluster = Cluster::start(2).await;
    let mut config = cluster.config();
    config.connections_per_node = 1;
    let client = Arc::new(ClusterClient::connect(config).unwrap());
    let key = Arc::new(generate_key(&*client, AES_KEY_ID, AES, ENCRYPT).await);

    let mut tasks = JoinSet::new();
    for i in 0..REQUESTS {
        let (client, key) = (Arc::clone(&client), Arc::clone(&key));
        tasks.spawn(async move {
            let plaintext = format!("message number {i}").into_bytes();
            let sealed = encrypt(&*client, &key, &plaintext).await.unwrap();
            (plaintext, sealed)
        });
    }
    let sealed: Vec<_> = tasks.join_all().await;
    assert_eq!(sealed.len(), REQUESTS);

    let mut tasks = JoinSet::new();
    for (plaintext, sealed) in sealed {
        let (client, key) = (Arc::clone(&client), Arc::clone(&key));
        tasks.spawn(async move {
            assert_eq!(decrypt(&*client, &key, &sealed).await.unwrap(), plaintext);
        });
    }
    tasks.join_all().await;

    let served: Vec<u64> = cluster.nodes.iter().map(|n| n.calls()).collect();
    assert_eq!(served.iter().sum::<u64>(), 2 * REQUESTS as u64 + 1);
    assert!(
        served.iter().all(|&n| n > 100),
        "load not spread: {served:?}"
    );
    for node in client.health() {
        assert_eq!(node.in_flight, 0);
        assert_eq!(node.connections, 1, "{node:?}");
    }
}

/// Runs `tasks` loops of Encrypt+Decrypt until `total` round trips are done; returns
/// the failures.
async fn load(
    client: &Arc<ClusterClient>,
    key: &Arc<fixture::TestKey>,
    tasks: usize,
    total: u64,
    done: &Arc<AtomicU64>,
) -> JoinSet<Vec<HsmError>> {
    let mut set = JoinSet::new();
    for t in 0..tasks {
        let (client, key, done) = (Arc::clone(client), Arc::clone(key), Arc::clone(done));
        set.spawn(async move {
            let mut errors = Vec::new();
            let mut i = 0u64;
            while done.fetch_add(1, Ordering::Relaxed) < total {
                let plaintext = format!("task {t} request {i}").into_bytes();
                if let Err(e) = round_trip(&*client, &key, &plaintext).await {
                    errors.push(e);
                }
                i += 1;
            }
            errors
        });
    }
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_dying_under_load_fails_no_request_and_is_used_again_when_back() {
    const TOTAL: u64 = 6000;
    let mut cluster = Cluster::start(2).await;
    let client = Arc::new(cluster.client());
    let key = Arc::new(generate_key(&*client, AES_KEY_ID, AES, ENCRYPT).await);
    let done = Arc::new(AtomicU64::new(0));

    let running = load(&client, &key, 12, TOTAL, &done).await;
    assert!(
        eventually(Duration::from_secs(10), || done.load(Ordering::Relaxed)
            >= TOTAL / 3)
        .await
    );
    assert!(
        cluster.nodes[0].calls() > 0,
        "node A served nothing before it died"
    );
    cluster.nodes[0].kill().await;
    assert!(
        done.load(Ordering::Relaxed) < TOTAL,
        "the load finished before node A died"
    );
    let a_at_death = cluster.nodes[0].calls();
    let b_at_death = cluster.nodes[1].calls();

    let errors: Vec<HsmError> = running.join_all().await.into_iter().flatten().collect();
    assert!(
        errors.is_empty(),
        "{} requests failed: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    // Requests A had already taken may still finish inside it (their answers are lost
    // with the connection and retried on B): at most one per task.
    assert!(cluster.nodes[0].calls() - a_at_death <= 12);
    let b_after = cluster.nodes[1].calls() - b_at_death;
    assert!(
        b_after > TOTAL,
        "node B served only {b_after} operations after A died"
    );
    let health = client.health();
    assert!(!health[0].healthy, "{health:?}");
    assert!(health[1].healthy, "{health:?}");

    // Node A comes back on the same port and gets work again.
    cluster.restart(0).await;
    assert!(eventually(Duration::from_secs(5), || client.health()[0].healthy).await);
    let done = Arc::new(AtomicU64::new(0));
    let errors: Vec<HsmError> = load(&client, &key, 8, 1000, &done)
        .await
        .join_all()
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        cluster.nodes[0].calls() > 100,
        "A served {}",
        cluster.nodes[0].calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsynced_node_is_skipped() {
    let mut cluster = Cluster::start(1).await;
    let unsynced = cluster
        .start_node(
            0,
            Some(HsmError::new(
                Code::NotSynced,
                "this member has not been synced",
            )),
        )
        .await;
    cluster.nodes.insert(0, unsynced);
    let client = cluster.client();
    let key = generate_key(&client, AES_KEY_ID, AES, ENCRYPT).await;
    // Even before the first probe, requests that land on it are retried elsewhere.
    for i in 0..200 {
        round_trip(&client, &key, format!("{i}").as_bytes())
            .await
            .unwrap();
    }
    assert_eq!(cluster.nodes[1].calls(), 401);
    assert!(
        eventually(Duration::from_secs(2), || client.health()[0]
            .reason
            .contains("not synced"))
        .await,
        "{:?}",
        client.health()
    );
    let health = client.health();
    assert!(!health[0].healthy);
    assert_eq!(health[0].status.as_ref().map(|s| s.synced), Some(false));
    assert!(health[1].healthy, "{health:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_unsynced_node_says_so() {
    let mut cluster = Cluster::start(0).await;
    let node = cluster
        .start_node(
            0,
            Some(HsmError::new(
                Code::NotSynced,
                "this member has not been synced",
            )),
        )
        .await;
    cluster.nodes.push(node);
    let client = cluster.client();
    let err = client
        .call(Op::GenerateRandom(pb::GenerateRandom { length: 8 }))
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::NotSynced, "{err}");
    assert!(
        err.message.contains("this member has not been synced"),
        "{err}"
    );
    assert!(
        err.message.contains(&cluster.nodes[0].address.to_string()),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_off_the_allow_list_cannot_connect() {
    let cluster = Cluster::start(1).await;
    let client = ClusterClient::connect(config_for(
        [cluster.nodes[0].address],
        cluster.pki.unlisted_client_config(),
    ))
    .unwrap();
    let err = client
        .call(Op::GenerateRandom(pb::GenerateRandom { length: 8 }))
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::Unavailable, "{err}");
    assert!(err.message.contains("handshake"), "{err}");
    assert_eq!(cluster.nodes[0].calls(), 0);
    let health = client.health();
    assert!(!health[0].healthy);
    assert!(health[0].reason.contains("handshake"), "{health:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_of_the_request_itself_are_not_retried() {
    let cluster = Cluster::start(2).await;
    let client = cluster.client();
    let mut key = generate_key(&client, AES_KEY_ID, AES, ENCRYPT).await;
    let sealed = encrypt(&client, &key, b"x").await.unwrap();
    let before: u64 = cluster.nodes.iter().map(|n| n.calls()).sum();

    key.blob[20] ^= 1;
    let err = decrypt(&client, &key, &sealed).await.unwrap_err();
    assert_eq!(err.code, Code::InvalidBlob, "{err}");
    let bad_length = client
        .call(Op::GenerateRandom(pb::GenerateRandom { length: 0 }))
        .await
        .unwrap_err();
    assert_eq!(bad_length.code, Code::InvalidParameter, "{bad_length}");

    let after: u64 = cluster.nodes.iter().map(|n| n.calls()).sum();
    assert_eq!(after - before, 2, "each failing request ran exactly once");
    assert!(
        client
            .health()
            .iter()
            .all(|h| h.reason != "ok" || h.healthy)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_node_down_the_error_lists_them() {
    let pki = fixture::Pki::new();
    let mut addresses = Vec::new();
    for _ in 0..2 {
        // A port that was just free and has no listener: connections are refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        addresses.push(listener.local_addr().unwrap());
    }
    let client =
        ClusterClient::connect(config_for(addresses.clone(), pki.client_config())).unwrap();
    let started = std::time::Instant::now();
    let err = client
        .call(Op::GenerateRandom(pb::GenerateRandom { length: 8 }))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(err.code, Code::Unavailable, "{err}");
    for address in &addresses {
        assert!(err.message.contains(&address.to_string()), "{err}");
    }
    assert!(err.message.contains("connect"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_client_refuses_requests() {
    let cluster = Cluster::start(1).await;
    let client = cluster.client();
    let key = generate_key(&client, AES_KEY_ID, AES, ENCRYPT).await;
    round_trip(&client, &key, b"before").await.unwrap();
    client.close();
    let err = encrypt(&client, &key, b"after").await.unwrap_err();
    assert_eq!(err.code, Code::Unavailable);
    assert!(err.message.contains("closed"), "{err}");
    assert_eq!(client.health()[0].connections, 0);
}

#[test]
fn configurations_are_checked() {
    let pki = fixture::Pki::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let node = NodeAddress::new("127.0.0.1:8020").unwrap();
    let empty = ClusterConfig::new(Vec::new(), pki.client_config());
    assert_eq!(
        ClusterClient::connect(empty).unwrap_err().code,
        Code::InvalidParameter
    );
    let mut zero = ClusterConfig::new(vec![node.clone()], pki.client_config());
    zero.connections_per_node = 0;
    assert_eq!(
        ClusterClient::connect(zero).unwrap_err().code,
        Code::InvalidParameter
    );
    let defaults = ClusterConfig::new(vec![node.clone(), node], pki.client_config());
    assert_eq!(defaults.max_attempts, 4);
    assert_eq!(defaults.connections_per_node, 2);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
