//! The control plane over TLS: with mTLS configured, a client certificate from the configured CA
//! admits an agent without a token; no certificate and no token is refused; plain text is refused.

mod support;

use support::registry_client::announce;
use support::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use uwsgi_router::control::proto::registry_client::RegistryClient;
use uwsgi_router::control::proto::{node_message::Msg, router_message::Msg as R, NodeMessage};

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
    let plain = Channel::from_shared(format!("http://{}", router.control_addr().unwrap()))
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
