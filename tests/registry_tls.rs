//! The control plane over TLS: with mTLS configured, a client certificate from the configured CA
//! admits an agent without a token; no certificate and no token is refused; plain text is refused.

mod support;

use support::registry_client::announce;
use support::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use uwsgi_router::api::registry_client::RegistryClient;
use uwsgi_router::api::{node_message::Msg, router_message::Msg as R, NodeMessage};

async fn open(channel: Channel, node: &FakeNode) -> Result<R, tonic::Status> {
    let mut client = RegistryClient::new(channel);
    let (tx, rx) = mpsc::channel(4);
    tx.send(NodeMessage {
        msg: Some(Msg::Announce(announce(
            "a",
            "default",
            &node.addr.to_string(),
        ))),
    })
    .await
    .unwrap();
    let mut stream = client.session(ReceiverStream::new(rx)).await?.into_inner();
    let first = stream
        .message()
        .await?
        .and_then(|m| m.msg)
        .expect("an answer");
    drop(tx);
    Ok(first)
}

#[tokio::test]
async fn mtls_admits_certified_agents_only() {
    let dir = tempfile::tempdir().unwrap();
    support::tls::make_certs(dir.path(), "agent");
    let p = |f: &str| dir.path().join(f).display().to_string();
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let toml = format!(
        "[pools.default]\n[control]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\ntls_client_ca = \"{}\"\n",
        p("router.pem"),
        p("router.key"),
        p("ca.pem")
    );
    let router = start_router(&toml).await;
    let url = format!("https://{}", router.control_addr().unwrap());
    let ca = Certificate::from_pem(std::fs::read(p("ca.pem")).unwrap());
    let identity = Identity::from_pem(
        std::fs::read(p("agent.pem")).unwrap(),
        std::fs::read(p("agent.key")).unwrap(),
    );

    // Without a client certificate (and no token): refused.
    let tls = ClientTlsConfig::new()
        .ca_certificate(ca.clone())
        .domain_name("localhost");
    let channel = Channel::from_shared(url.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let err = open(channel, &node).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    // Plain text to a TLS listener: no session.
    let plain = Channel::from_shared(control_url(&router))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plain {
        assert!(open(channel, &node).await.is_err());
    }

    // With a certificate signed by the CA: admitted, and the node serves.
    let tls = ClientTlsConfig::new()
        .ca_certificate(ca)
        .identity(identity)
        .domain_name("localhost");
    let channel = Channel::from_shared(url)
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert!(matches!(
        open(channel, &node).await.unwrap(),
        R::Accepted(_)
    ));
    assert_eq!(
        send(&router.local_addrs()[0], &get("h", "/"), b"")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn an_authenticated_tls_session_outlives_the_handshake_timeout_and_a_stalled_handshake_does_not(
) {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    support::tls::make_certs(dir.path(), "agent");
    let p = |f: &str| dir.path().join(f).display().to_string();
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let toml = format!(
        "[pools.default]\n[control]\nlisten = \"127.0.0.1:0\"\nhandshake_timeout = \"500ms\"\n\
         tls_cert = \"{}\"\ntls_key = \"{}\"\ntls_client_ca = \"{}\"\n",
        p("router.pem"),
        p("router.key"),
        p("ca.pem")
    );
    let router = start_router(&toml).await;
    let control = router.control_addr().unwrap();

    // A client that starts a TLS handshake and stalls is closed after the timeout.
    let mut stalled = tokio::net::TcpStream::connect(control).await.unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stalled.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a stalled TLS handshake is closed");

    // A certified agent's session goes on well past it.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(p("ca.pem")).unwrap()))
        .identity(Identity::from_pem(
            std::fs::read(p("agent.pem")).unwrap(),
            std::fs::read(p("agent.key")).unwrap(),
        ))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{control}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = RegistryClient::new(channel);
    let (tx, rx) = mpsc::channel(4);
    tx.send(NodeMessage {
        msg: Some(Msg::Announce(announce(
            "a",
            "default",
            &node.addr.to_string(),
        ))),
    })
    .await
    .unwrap();
    let mut stream = client
        .session(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().and_then(|m| m.msg);
    assert!(matches!(first, Some(R::Accepted(_))), "{first:?}");
    for _ in 0..6 {
        tx.send(NodeMessage {
            msg: Some(Msg::Report(Default::default())),
        })
        .await
        .unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(250), stream.message()).await;
        assert!(quiet.is_err(), "the session goes on: {quiet:?}");
    }
    tx.send(NodeMessage {
        msg: Some(Msg::Leave(Default::default())),
    })
    .await
    .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("the router answers the Leave");
    assert!(
        matches!(end, Ok(None)),
        "ended cleanly after 1.5 s: {end:?}"
    );
}
