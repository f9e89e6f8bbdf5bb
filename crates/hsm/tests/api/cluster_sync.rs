//! The cluster: the guide's step 2 on two nodes in two zones, sync, and who may sync.

use strongroom_hsm::admin;
use strongroom_hsm::node::Node;
use strongroom_hsm::officer::{NodeStatus, OfficerRequest};
use strongroom_hsm::state::Peer;
use strongroom_proto::hsm::v1::{self as pb, error::Code, request::Op, response::Result as R};

use crate::support::{self, RawHost, Scratch, generate_key, key_ref};

async fn status(node: &Node) -> NodeStatus {
    let mut officer = support::officer(node).await;
    officer.call_as(&OfficerRequest::Status).await.unwrap()
}

#[tokio::test]
async fn after_sync_both_nodes_serve_the_same_keys() {
    let scratch = Scratch::new();
    let (primary, member) = support::cluster(&scratch).await;
    let p = status(&primary).await;
    let m = status(&member).await;
    assert_eq!(p.zone, "zone-a");
    assert_eq!(m.zone, "zone-b");
    assert_eq!(m.role.as_deref(), Some("member"));
    assert!(m.synced && m.host.serving, "{m:?}");
    assert_eq!(p.domain_key_fingerprint, m.domain_key_fingerprint);
    assert_eq!(p.members.len(), 1);
    assert!(p.members[0].synced);
    assert_eq!(m.client_certificates, p.client_certificates);
    assert_eq!(m.server_certificate, p.server_certificate);

    let mut a = RawHost::guide(primary.host_addr(), &scratch).await;
    let mut b = RawHost::guide(member.host_addr(), &scratch).await;
    for (spec, usage) in [
        ("Aliyun_AES_256", "ENCRYPT/DECRYPT"),
        ("Aliyun_SM4", "ENCRYPT/DECRYPT"),
        ("RSA_2048", "SIGN/VERIFY"),
        ("EC_SM2", "SIGN/VERIFY"),
    ] {
        let generated = generate_key(&mut a, spec, spec, usage).await;
        let key = key_ref(spec, spec, usage, &generated.blob);
        if usage == "ENCRYPT/DECRYPT" {
            let R::Encrypt(e) = a
                .ok(Op::Encrypt(pb::Encrypt {
                    key: Some(key.clone()),
                    plaintext: b"across the cluster".to_vec(),
                    ..Default::default()
                }))
                .await
            else {
                panic!()
            };
            let R::Decrypt(d) = b
                .ok(Op::Decrypt(pb::Decrypt {
                    key: Some(key),
                    ciphertext: e.ciphertext,
                    algorithm: e.algorithm,
                    iv: e.iv,
                    ..Default::default()
                }))
                .await
            else {
                panic!()
            };
            assert_eq!(d.plaintext, b"across the cluster");
        } else {
            let R::Sign(s) = b
                .ok(Op::Sign(pb::Sign {
                    key: Some(key.clone()),
                    message: b"signed on the member".to_vec(),
                    ..Default::default()
                }))
                .await
            else {
                panic!()
            };
            let R::Verify(v) = a
                .ok(Op::Verify(pb::Verify {
                    key: Some(key),
                    message: b"signed on the member".to_vec(),
                    signature: s.signature,
                    ..Default::default()
                }))
                .await
            else {
                panic!()
            };
            assert!(v.valid);
        }
    }

    // Sync is idempotent.
    let mut officer = support::officer(&primary).await;
    for _ in 0..2 {
        let results = officer.call(&OfficerRequest::SyncCluster).await.unwrap();
        assert_eq!(results[0]["synced"], true);
    }
    assert_eq!(
        status(&member).await.domain_key_fingerprint,
        p.domain_key_fingerprint
    );
    primary.shutdown().await;
    member.shutdown().await;
}

#[tokio::test]
async fn an_enrolled_member_refuses_crypto_until_synced() {
    let scratch = Scratch::new();
    let primary = support::start(&scratch.path("p"), "zone-a").await;
    let member = support::start(&scratch.path("m"), "zone-b").await;
    support::configure(&primary, &scratch).await;
    // The member gets certificates of its own so its host port serves, then joins.
    support::configure(&member, &scratch).await;
    let mut p = support::officer(&primary).await;
    let mut m = support::officer(&member).await;
    admin::add_member(&mut p, &mut m).await.unwrap();
    let s: NodeStatus = m.call_as(&OfficerRequest::Status).await.unwrap();
    assert!(!s.synced);
    assert!(s.domain_key_fingerprint.is_none());

    let mut host = RawHost::guide(member.host_addr(), &scratch).await;
    let e = host
        .error(Op::GenerateKey(pb::GenerateKey {
            key_id: "k".to_owned(),
            version_id: "v1".to_owned(),
            key_spec: "Aliyun_AES_256".to_owned(),
            key_usage: "ENCRYPT/DECRYPT".to_owned(),
        }))
        .await;
    assert_eq!(e.code(), Code::NotSynced);
    assert!(e.message.contains("sync"), "{}", e.message);
    let R::Status(reply) = host.ok(Op::Status(pb::Status {})).await else {
        panic!()
    };
    assert!(!reply.synced && !reply.sealed);

    p.call(&OfficerRequest::SyncCluster).await.unwrap();
    let mut host = RawHost::guide(member.host_addr(), &scratch).await;
    generate_key(&mut host, "k", "Aliyun_AES_256", "ENCRYPT/DECRYPT").await;
    primary.shutdown().await;
    member.shutdown().await;
}

#[tokio::test]
async fn only_the_enrolled_primary_can_push_a_domain_key() {
    let scratch = Scratch::new();
    let (primary, member) = support::cluster(&scratch).await;
    let before = status(&member).await.domain_key_fingerprint;

    // A rogue node that learnt the member's identity and enrolment key by logging in
    // elsewhere: it may add the member to its own list, but the member refuses it.
    let rogue = support::start(&scratch.path("rogue"), "zone-c").await;
    let mut r = support::officer(&rogue).await;
    let mut m = support::officer(&member).await;
    let info: strongroom_hsm::officer::IdentityInfo =
        m.call_as(&OfficerRequest::Identity).await.unwrap();
    r.call(&OfficerRequest::AddMember {
        member: Peer {
            address: member.officer_addr().to_string(),
            node_id: info.node_id,
            zone: info.zone,
            identity_fingerprint: info.identity_fingerprint,
            enrollment_public_key: info.enrollment_public_key,
            synced_fingerprint: String::new(),
        },
    })
    .await
    .unwrap();
    let results = r.call(&OfficerRequest::SyncCluster).await.unwrap();
    assert_eq!(results[0]["synced"], false);
    let error = results[0]["error"].as_str().unwrap();
    assert!(
        error.contains("not this node's enrolled primary"),
        "{error}"
    );
    let results = r.call(&OfficerRequest::Status).await.unwrap();
    assert_eq!(results["members"][0]["synced"], false);
    assert_eq!(status(&member).await.domain_key_fingerprint, before);

    // A push without any client certificate is refused too.
    let e = m
        .call(&OfficerRequest::SyncPush {
            node_id: member.node_id(),
            wrapped_key: "00".to_owned(),
            payload: "00".to_owned(),
        })
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("not this node's enrolled primary"),
        "{e}"
    );
    rogue.shutdown().await;
    primary.shutdown().await;
    member.shutdown().await;
}

#[tokio::test]
async fn a_sealed_member_is_reported_and_synced_once_unsealed() {
    let scratch = Scratch::new();
    let (primary, member) = support::cluster(&scratch).await;
    let state = scratch.path("member");
    let address = member.officer_addr();
    member.shutdown().await;
    let mut options = support::options(&state, "zone-b");
    options.password = None;
    options.officer_listen = address;
    let member = Node::start(options).await.unwrap();
    assert!(member.status().sealed);
    let mut p = support::officer(&primary).await;
    let results = p.call(&OfficerRequest::SyncCluster).await.unwrap();
    assert_eq!(results[0]["synced"], false);
    let error = results[0]["error"].as_str().unwrap();
    assert!(error.contains("member is sealed"), "{error}");
    // The officer unseals the member; the sync goes through.
    support::officer(&member).await;
    let results = p.call(&OfficerRequest::SyncCluster).await.unwrap();
    assert_eq!(results[0]["synced"], true, "{results}");
    primary.shutdown().await;
    member.shutdown().await;
}
