//! router-agent over TLS: an `https://` router verified against `--tls-ca`, and a client
//! certificate (`--tls-cert`/`--tls-key`) as the only credentials when the router uses mTLS.

mod agent_support;
mod support;

use agent_support::{AgentSetup, FakeStats};
use clap::Parser;
use support::{node_of, start_router, wait_answer, Behaviour, FakeNode};
use uwsgi_router::agent::config::FileConfig;
use uwsgi_router::agent::{Agent, AgentConfig, Flags};

#[tokio::test]
async fn a_certified_agent_joins_an_mtls_router_without_a_token() {
    let setup = AgentSetup::new();
    let dir = setup.dir.path();
    support::tls::make_certs(dir, "agent");
    let p = |f: &str| dir.join(f).display().to_string();
    let router = start_router(&format!(
        "default_pool = \"web\"\n[pools.web]\nslow_start = \"0s\"\n[control]\n\
         listen = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\ntls_client_ca = \"{}\"\n",
        p("router.pem"),
        p("router.key"),
        p("ca.pem")
    ))
    .await;
    let node = FakeNode::start("n1", Behaviour::Echo).await;
    let stats = FakeStats::start("idle").await;
    let url = format!("https://{}", router.control_addr().unwrap());
    let tls = [
        "--tls-ca",
        &p("ca.pem"),
        "--tls-cert",
        &p("agent.pem"),
        "--tls-key",
        &p("agent.key"),
    ];
    let mut argv = vec!["router-agent".to_owned()];
    let args = setup.args(&[url], stats.addr, &node.addr.to_string(), &tls);
    // No token: the certificate is the credential.
    let token_at = args.iter().position(|a| a == "--token-file").unwrap();
    argv.extend(
        args[..token_at]
            .iter()
            .chain(&args[token_at + 2..])
            .cloned(),
    );
    let config =
        AgentConfig::merge(FileConfig::default(), Flags::try_parse_from(argv).unwrap()).unwrap();
    assert_eq!(config.token_file, None);
    let agent = Agent::start(config).unwrap();

    let addr = router.local_addrs()[0].clone();
    wait_answer(&addr, "app.example.com", "the node to take traffic", |r| {
        r.status == 200 && node_of(r) == "n1"
    })
    .await;
    agent.shutdown().await;
}
