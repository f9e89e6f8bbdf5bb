//! The officer channel: login, sealing, certificates, properties, restart, trust.

use strongroom_hsm::admin::{AdminError, OfficerClient, Trust};
use strongroom_hsm::node::Node;
use strongroom_hsm::officer::{NodeStatus, OfficerRequest};
use zeroize::Zeroizing;

use crate::support::{self, PASSWORD, RawHost, Scratch};

async fn status(client: &mut OfficerClient) -> NodeStatus {
    client.call_as(&OfficerRequest::Status).await.unwrap()
}

#[tokio::test]
async fn everything_but_hello_needs_a_login_and_a_wrong_password_is_refused() {
    let scratch = Scratch::new();
    let node = support::start(&scratch.path("n"), "zone-a").await;
    let mut client = support::connect_officer(&node).await;
    let hello = client.call(&OfficerRequest::Hello).await.unwrap();
    assert_eq!(hello["sealed"], false);
    let refused = client.call(&OfficerRequest::Status).await.unwrap_err();
    assert!(refused.to_string().contains("log in first"), "{refused}");
    let wrong = client
        .login(&Zeroizing::new("not-the-password".to_owned()))
        .await
        .unwrap_err();
    assert!(wrong.to_string().contains("wrong password"), "{wrong}");
    client
        .login(&Zeroizing::new(PASSWORD.to_owned()))
        .await
        .unwrap();
    let s = status(&mut client).await;
    assert!(!s.sealed);
    assert_eq!(s.role.as_deref(), Some("primary"));
    assert!(s.synced);
    assert!(!s.host.serving);
    node.shutdown().await;
}

#[tokio::test]
async fn a_node_started_without_credential_is_sealed_until_the_officer_logs_in() {
    let scratch = Scratch::new();
    let state = scratch.path("n");
    let node = support::start(&state, "zone-a").await;
    support::configure(&node, &scratch).await;
    let fingerprint = {
        let mut host = RawHost::guide(node.host_addr(), &scratch).await;
        match host
            .ok(strongroom_proto::hsm::v1::request::Op::Status(
                Default::default(),
            ))
            .await
        {
            strongroom_proto::hsm::v1::response::Result::Status(s) => s.domain_key_fingerprint,
            other => panic!("{other:?}"),
        }
    };
    node.shutdown().await;

    let mut options = support::options(&state, "zone-a");
    options.password = None;
    let node = Node::start(options).await.unwrap();
    assert!(node.status().sealed);
    // Sealed: the host port closes every connection, so no crypto is served.
    let refused = RawHost::connect(
        node.host_addr(),
        support::client_tls(&scratch, strongroom_certs::tls::TlsVersions::Tls12Only),
    )
    .await;
    match refused {
        Err(_) => {}
        Ok(mut host) => assert!(host.read().await.is_none()),
    }
    let mut client = support::connect_officer(&node).await;
    let hello = client.call(&OfficerRequest::Hello).await.unwrap();
    assert_eq!(hello["sealed"], true);
    client
        .login(&Zeroizing::new(PASSWORD.to_owned()))
        .await
        .unwrap();
    assert!(!node.status().sealed);
    let mut host = RawHost::guide(node.host_addr(), &scratch).await;
    match host
        .ok(strongroom_proto::hsm::v1::request::Op::Status(
            Default::default(),
        ))
        .await
    {
        strongroom_proto::hsm::v1::response::Result::Status(s) => {
            assert_eq!(s.domain_key_fingerprint, fingerprint);
        }
        other => panic!("{other:?}"),
    }
    node.shutdown().await;
}

#[tokio::test]
async fn certificates_and_properties_are_staged_until_restart() {
    let scratch = Scratch::new();
    let node = support::start(&scratch.path("n"), "zone-a").await;
    let mut client = support::officer(&node).await;
    let pem = std::fs::read_to_string(&scratch.certs.client_pem).unwrap();
    let added = client
        .call(&OfficerRequest::ImportClientCert { pem: pem.clone() })
        .await
        .unwrap();
    let fingerprint = added[0]["fingerprint"].as_str().unwrap().to_owned();
    // Importing twice keeps one copy.
    client
        .call(&OfficerRequest::ImportClientCert { pem })
        .await
        .unwrap();
    let list = client.call(&OfficerRequest::ListClientCerts).await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    support::import_server(&mut client, &scratch).await;
    let s = status(&mut client).await;
    assert!(s.host.restart_pending);
    assert!(!s.host.serving);
    client.call(&OfficerRequest::Restart).await.unwrap();
    let s = status(&mut client).await;
    assert!(s.host.serving, "{:?}", s.host);
    assert!(!s.host.restart_pending);
    let mut host = RawHost::guide(node.host_addr(), &scratch).await;
    host.ok(strongroom_proto::hsm::v1::request::Op::GenerateRandom(
        strongroom_proto::hsm::v1::GenerateRandom { length: 16 },
    ))
    .await;

    // Removing the client certificate and restarting locks the client out.
    client
        .call(&OfficerRequest::RemoveClientCert {
            fingerprint: format!("SHA256:{fingerprint}"),
        })
        .await
        .unwrap();
    client.call(&OfficerRequest::Restart).await.unwrap();
    assert!(
        host.read().await.is_none(),
        "restart closes old connections"
    );
    let s = status(&mut client).await;
    assert!(!s.host.serving);
    assert_eq!(
        s.host.reason.as_deref(),
        Some("no client certificate imported")
    );
    let missing = client
        .call(&OfficerRequest::RemoveClientCert { fingerprint })
        .await
        .unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("no imported client certificate")
    );
    node.shutdown().await;
}

#[tokio::test]
async fn properties_outside_what_the_host_port_does_are_refused_with_reasons() {
    let scratch = Scratch::new();
    let node = support::start(&scratch.path("n"), "zone-a").await;
    let mut client = support::officer(&node).await;
    let set = |header_len, encoding: &str, two_way, protocol: &str| OfficerRequest::SetProperties {
        keep_alive_secs: None,
        header_len: Some(header_len),
        encoding: Some(encoding.to_owned()),
        two_way: Some(two_way),
        protocol: Some(protocol.to_owned()),
    };
    for (request, expected) in [
        (set(2, "ASCII", true, "TLSv1.2"), "header length"),
        (set(0, "EBCDIC", true, "TLSv1.2"), "encoding"),
        (set(0, "ASCII", false, "TLSv1.2"), "one-way"),
        (set(0, "ASCII", true, "SSLv3"), "protocol"),
    ] {
        let e = client.call(&request).await.unwrap_err();
        assert!(e.to_string().contains(expected), "{e}");
    }
    let ok = client
        .call(&set(0, "ASCII", true, "TLSv1.3"))
        .await
        .unwrap();
    assert_eq!(ok["protocol"], "TLSv1.3");
    // A bad server.p12 password is a clear refusal.
    use base64::Engine as _;
    let der = std::fs::read(&scratch.certs.server_p12).unwrap();
    let e = client
        .call(&OfficerRequest::ImportServerCert {
            p12: base64::engine::general_purpose::STANDARD.encode(der),
            password: Zeroizing::new("wrong-password".to_owned()),
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("server.p12"), "{e}");
    node.shutdown().await;
}

#[tokio::test]
async fn tls_1_3_is_served_only_when_the_protocol_property_says_so() {
    use strongroom_certs::tls::TlsVersions;
    let scratch = Scratch::new();
    let node = support::start(&scratch.path("n"), "zone-a").await;
    support::configure(&node, &scratch).await;
    let only13 = {
        let mut c = support::client_tls(&scratch, TlsVersions::Tls12And13);
        c.enable_sni = true;
        c
    };
    // TLS 1.2 only: a client offering both negotiates 1.2.
    let host = RawHost::connect(node.host_addr(), only13.clone())
        .await
        .unwrap();
    assert_eq!(
        host.stream.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let mut client = support::officer(&node).await;
    client
        .call(&OfficerRequest::SetProperties {
            keep_alive_secs: None,
            header_len: None,
            encoding: None,
            two_way: None,
            protocol: Some("TLSv1.3".to_owned()),
        })
        .await
        .unwrap();
    client.call(&OfficerRequest::Restart).await.unwrap();
    let host = RawHost::connect(node.host_addr(), only13).await.unwrap();
    assert_eq!(
        host.stream.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    node.shutdown().await;
}

#[tokio::test]
async fn the_admin_tool_trusts_nodes_like_ssh_does() {
    let scratch = Scratch::new();
    let node = support::start(&scratch.path("n"), "zone-a").await;
    let address = node.officer_addr().to_string();
    let known = scratch.path("known_hsms");
    let strict = Trust::KnownNodes {
        file: known.clone(),
        accept_new: false,
    };
    let unknown = OfficerClient::connect(&address, &strict).await.unwrap_err();
    assert!(
        matches!(unknown, AdminError::UnknownNode { .. }),
        "{unknown}"
    );
    let accept = Trust::KnownNodes {
        file: known.clone(),
        accept_new: true,
    };
    OfficerClient::connect(&address, &accept).await.unwrap();
    let recorded = std::fs::read_to_string(&known).unwrap();
    assert!(recorded.contains(&node.identity_fingerprint()));
    OfficerClient::connect(&address, &strict).await.unwrap();
    node.shutdown().await;

    // Another node on the same address: refused, even with accept-new.
    let other = Node::start({
        let mut o = support::options(&scratch.path("other"), "zone-a");
        o.officer_listen = address.parse().unwrap();
        o
    })
    .await
    .unwrap();
    let changed = OfficerClient::connect(&address, &accept).await.unwrap_err();
    assert!(
        matches!(changed, AdminError::ChangedNode { .. }),
        "{changed}"
    );
    other.shutdown().await;
}
