//! routerctl over TLS: with the router's CA and a client certificate (mTLS) it is admitted; with
//! no certificate and no token it is refused (exit 3); an https:// router without --tls-ca is a
//! clear error.

mod routerctl_support;
mod support;

use routerctl_support::*;
use support::*;

#[tokio::test]
async fn mtls_admits_routerctl_with_a_certificate_only() {
    let dir = tempfile::tempdir().unwrap();
    support::tls::make_certs(dir.path(), "operator");
    let p = |f: &str| dir.path().join(f).display().to_string();
    let node = FakeNode::start("a", Behaviour::Echo).await;
    let toml = format!(
        "{}[control]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\ntls_client_ca = \"{}\"\n",
        pool_toml("round-robin", &[&node]),
        p("router.pem"),
        p("router.key"),
        p("ca.pem")
    );
    let router = start_router(&toml).await;
    let routers = [format!("https://{}", router.control_addr().unwrap())];
    let (ca, cert, key) = (p("ca.pem"), p("operator.pem"), p("operator.key"));

    let args = [
        "--tls-ca",
        &ca,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "nodes",
        "--json",
    ];
    let json = routerctl(&routers, &args).await.json();
    assert_eq!(json["nodes"][0]["id"], node.addr.to_string());
    // The same from the environment.
    let env = [
        ("ROUTERCTL_TLS_CA", ca.as_str()),
        ("ROUTERCTL_TLS_CERT", cert.as_str()),
        ("ROUTERCTL_TLS_KEY", key.as_str()),
    ];
    routerctl_env(&routers, &["status"], &env).await.ok();

    let run = routerctl(&routers, &["--tls-ca", &ca, "nodes"]).await;
    assert!(run.fails(3).contains("refused the credentials"), "{run:?}");
    let run = routerctl(&routers, &["nodes"]).await;
    assert!(run.fails(1).contains("--tls-ca"), "{run:?}");
    let plain = [routers[0].replace("https://", "http://")];
    let run = routerctl(&plain, &["--tls-ca", &ca, "nodes"]).await;
    assert_eq!(run.code, 3, "plain text to a TLS listener: {run:?}");
}
