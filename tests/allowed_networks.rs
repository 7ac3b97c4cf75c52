//! `allowed_networks` fails closed: a reload whose list holds a bad entry is refused, on SIGHUP's
//! path and on routerctl's, naming the entry's key, and the pool goes on refusing nodes from
//! outside the networks in force. Were bad entries dropped on the way instead, a list could end up
//! empty, which means any address, or admit the networks of its good entries early.

mod support;

use std::net::SocketAddr;

use support::registry_client::{announce, NodeSession};
use tonic::Request;
use uwsgi_router::api::admin_client::AdminClient;
use uwsgi_router::api::{router_message::Msg as R, RejectCode, ReloadRequest};
use uwsgi_router::config::Config;
use uwsgi_router::daemon::Daemon;

/// A config whose pool admits `networks` (TOML), with ephemeral listeners.
fn config(networks: &str) -> String {
    format!(
        "[listen]\nuwsgi = [\"127.0.0.1:0\"]\n[control]\nlisten = \"127.0.0.1:0\"\n\
         [pools.default]\nallowed_networks = {networks}\n"
    )
}

/// What the router answers a node `id` at `address` announcing itself for the pool.
async fn announce_at(control: SocketAddr, id: &str, address: &str) -> R {
    let (_session, first) = NodeSession::open(control, None, announce(id, "default", address))
        .await
        .expect("the session opens");
    first
}

fn assert_not_allowed(answer: &R, what: &str) {
    match answer {
        R::Rejected(r) => assert_eq!(
            r.code,
            RejectCode::AddressNotAllowed as i32,
            "{what}: {r:?}"
        ),
        other => panic!("{what}: expected AddressNotAllowed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_reload_with_a_bad_network_is_refused_and_the_pool_stays_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routerd.toml");
    std::fs::write(&path, config(r#"["127.0.0.0/8"]"#)).unwrap();
    let router = Daemon::start(Config::load(&path).unwrap(), Some(path.clone()))
        .await
        .expect("router starts");
    let control = router.control_addr().unwrap();
    let mut admin = AdminClient::connect(format!("http://{control}"))
        .await
        .unwrap();
    assert_not_allowed(
        &announce_at(control, "outside-0", "10.9.9.9:3031").await,
        "before any reload",
    );

    for (i, (networks, key)) in [
        // Its only entry dropped, this list would be empty: any address.
        (r#"["10.0.0.0/33"]"#, "pools.default.allowed_networks[0]"),
        // Its bad entry dropped, this one would already admit 10.9.9.9.
        (
            r#"["10.9.0.0/16", "10.0.0.0/33"]"#,
            "pools.default.allowed_networks[1]",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(&path, config(networks)).unwrap();
        // What SIGHUP runs.
        let err = router.reload().expect_err("a bad network is refused");
        assert!(err.to_string().contains(key), "names {key}: {err}");
        // What `routerctl reload` asks for.
        let status = admin
            .reload(Request::new(ReloadRequest {}))
            .await
            .expect_err("a bad network is refused");
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(
            status.message().contains(key),
            "names {key}: {}",
            status.message()
        );

        assert_not_allowed(
            &announce_at(control, &format!("outside-{}", i + 1), "10.9.9.9:3031").await,
            networks,
        );
        let inside = announce_at(control, &format!("inside-{i}"), "127.0.0.1:3031").await;
        assert!(
            matches!(inside, R::Accepted(_)),
            "{networks}: the networks in force still admit their nodes: {inside:?}"
        );
    }
}
