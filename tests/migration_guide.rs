//! The README's "Migrating from nginx upstream / FastRouter" section: the nginx site and the
//! routerd config it quotes are `deploy/migration/` as they are, `nginx -t` accepts the site and
//! `routerd --check-config` the config.

mod support;

use std::process::Command;

use support::command::{run, said};
use support::nginx_check::nginx_t_accepts;
use support::programs::repo_path;

/// The fenced code blocks of the README's migration section.
fn quoted_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    let start = readme
        .find("## Migrating from nginx upstream / FastRouter")
        .expect("the README has a migration section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        match (&mut current, line.starts_with("```")) {
            (None, true) => current = Some(String::new()),
            (Some(block), true) => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), false) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, false) => {}
        }
    }
    blocks
}

#[test]
fn the_readme_quotes_the_migration_files_as_they_are() {
    let blocks = quoted_blocks();
    for file in [
        "deploy/migration/nginx.conf",
        "deploy/migration/routerd.toml",
    ] {
        let text = std::fs::read_to_string(repo_path(file)).unwrap();
        assert!(
            blocks.contains(&text),
            "the README's migration section does not quote {file} as it is:\n{text}"
        );
    }
}

#[test]
fn the_migrated_nginx_site_passes_nginx_t() {
    nginx_t_accepts(&repo_path("deploy/migration/nginx.conf"));
}

#[test]
fn the_migration_routerd_config_passes_check_config() {
    let out = run(Command::new(env!("CARGO_BIN_EXE_routerd"))
        .arg("--check-config")
        .arg(repo_path("deploy/migration/routerd.toml")));
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("routerd.toml: ok"), "{}", said(&out));
}
