//! Test certificates made with the openssl CLI, as the README tells operators to make them.

use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed (run bash tests/run.sh)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes into `dir`: `ca.pem`/`ca.key`, `router.pem`/`router.key` (a server certificate for
/// 127.0.0.1 and localhost) and `{client}.pem`/`{client}.key` (a client certificate).
pub fn make_certs(dir: &Path, client: &str) {
    make_certs_for(dir, client, "IP:127.0.0.1,DNS:localhost");
}

/// Like [`make_certs`], the router's certificate valid for `router_names` only (openssl's
/// subjectAltName list, e.g. `DNS:routers.test`).
pub fn make_certs_for(dir: &Path, client: &str, router_names: &str) {
    let ca =
        "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem";
    openssl(dir, &ca.split(' ').collect::<Vec<_>>());
    let router_ext = format!("subjectAltName={router_names}");
    for (name, ext) in [
        ("router", router_ext.as_str()),
        (client, "extendedKeyUsage=clientAuth"),
    ] {
        let req = format!(
            "req -newkey rsa:2048 -nodes -subj /CN={name} -keyout {name}.key -out {name}.csr"
        );
        openssl(dir, &req.split(' ').collect::<Vec<_>>());
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let sign = format!("x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out {name}.pem -extfile {name}.ext");
        openssl(dir, &sign.split(' ').collect::<Vec<_>>());
    }
}
