//! Compiles the gRPC API in `proto/` with a vendored protoc, so a fresh machine needs no system
//! protoc, and records the git commit for the build-info metric.

use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        // routerctl's --json output is the API's own messages, field names and all.
        .type_attribute(".uwsgi_router.v1", "#[derive(serde::Serialize)]")
        .compile_protos(
            &[
                "proto/uwsgi_router/v1/registry.proto",
                "proto/uwsgi_router/v1/admin.proto",
            ],
            &["proto"],
        )?;
    // The Registry server once more, on the control module's lean codec: a registry holds one
    // stream per node for as long as the node serves, and tonic's default codec allocates 8 KiB
    // each way per stream up front. The messages are the ones above.
    let lean = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("lean");
    std::fs::create_dir_all(&lean)?;
    tonic_prost_build::configure()
        .build_client(false)
        .extern_path(".uwsgi_router.v1", "crate::api")
        .codec_path("crate::control::codec::LeanCodec")
        .out_dir(&lean)
        .compile_protos(&["proto/uwsgi_router/v1/registry.proto"], &["proto"])?;

    // Outside a git checkout (a source tarball) the commit is simply unknown.
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if let Some(commit) = &commit {
        println!("cargo:rustc-env=UWSGI_ROUTER_GIT_COMMIT={commit}");
    }
    // What `--version` prints: the version and the commit it was built from.
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = commit.as_deref().unwrap_or("unknown");
    println!("cargo:rustc-env=UWSGI_ROUTER_VERSION={version} (commit {commit})");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    Ok(())
}
