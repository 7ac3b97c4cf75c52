//! The control plane over TLS: with mTLS configured, a client certificate from the configured CA
//! admits an agent without a token; no certificate and no token is refused; plain text is refused.

mod support;

use std::path::Path;

use support::registry_client::{announce, NodeSession};
use support::*;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use uwsgi_router::api::{node_message::Msg, router_message::Msg as R};
use uwsgi_router::daemon::Daemon;

/// Opens a session for node `a` at `node` over `channel`: the router's first answer.
async fn open(channel: Channel, node: &FakeNode) -> Result<R, tonic::Status> {
    let a = announce("a", "default", &node.addr.to_string());
    NodeSession::open_on(channel, None, a)
        .await
        .map(|(_, first)| first)
}

/// A router whose control listener takes TLS with client certificates from the test CA, plus
/// `control` lines; the certificates are in the returned dir.
async fn mtls_router(control: &str) -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    support::tls::make_certs(dir.path(), "agent");
    let p = |f: &str| dir.path().join(f).display().to_string();
    let toml = format!(
        "[pools.default]\n[control]\nlisten = \"127.0.0.1:0\"\n{control}tls_cert = \"{}\"\n\
         tls_key = \"{}\"\ntls_client_ca = \"{}\"\n",
        p("router.pem"),
        p("router.key"),
        p("ca.pem")
    );
    let router = start_router(&toml).await;
    (dir, router)
}

/// A TLS channel to `router`'s control listener, trusting the test CA, with the agent's
/// certificate when `certified`.
async fn tls_channel(router: &Daemon, dir: &Path, certified: bool) -> Channel {
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem")))
        .domain_name("localhost");
    if certified {
        tls = tls.identity(Identity::from_pem(read("agent.pem"), read("agent.key")));
    }
    Channel::from_shared(format!("https://{}", router.control_addr().unwrap()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn mtls_admits_certified_agents_only() {
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let (dir, router) = mtls_router("").await;

    // Without a client certificate (and no token): refused.
    let channel = tls_channel(&router, dir.path(), false).await;
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
    let channel = tls_channel(&router, dir.path(), true).await;
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

    let node = FakeNode::start("a", Behaviour::Echo).await;
    let (dir, router) = mtls_router("handshake_timeout = \"500ms\"\n").await;
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
    let channel = tls_channel(&router, dir.path(), true).await;
    let a = announce("a", "default", &node.addr.to_string());
    let (mut session, first) = NodeSession::open_on(channel, None, a).await.unwrap();
    assert!(matches!(first, R::Accepted(_)), "{first:?}");
    for _ in 0..6 {
        session.send(Msg::Report(Default::default())).await;
        assert!(
            session.quiet_for(Duration::from_millis(250)).await,
            "the session goes on"
        );
    }
    session.send(Msg::Leave(Default::default())).await;
    let end = session.next_status().await;
    assert!(
        matches!(end, Ok(None)),
        "ended cleanly after 1.5 s: {end:?}"
    );
}
