//! A token file and the flags and configs of agents that use it.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::process::Command;

use tempfile::TempDir;
use uwsgi_router::agent::config::FileConfig;
use uwsgi_router::agent::{AgentConfig, Flags};

use super::TOKEN;
use crate::support::process::Process;

/// Path of the agent binary.
pub const AGENT: &str = env!("CARGO_BIN_EXE_router-agent");

/// A token file and agent configs pointing at it.
pub struct AgentSetup {
    pub dir: TempDir,
    pub token_file: PathBuf,
}

impl AgentSetup {
    /// A temp dir holding a token file with [`TOKEN`].
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("registry.token");
        std::fs::write(&token_file, format!("\n  {TOKEN}  \n")).unwrap();
        Self { dir, token_file }
    }

    /// The flags of an agent for node `node` with stats at `stats`, reporting to `routers` every
    /// [`INTERVAL`]; `extra` flags are appended and replace the defaults of the same flag.
    pub fn args(
        &self,
        routers: &[String],
        stats: SocketAddr,
        node: &str,
        extra: &[&str],
    ) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        for r in routers {
            args.extend(["--router".to_owned(), r.clone()]);
        }
        let defaults = [
            ("--pool", "web"),
            ("--node", node),
            ("--interval", "100ms"),
            ("--drain-timeout", "5s"),
            ("--label", "zone=test"),
            ("--weight", "5"),
        ];
        for (flag, value) in defaults {
            if !extra.contains(&flag) {
                args.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        args.extend(["--stats".to_owned(), stats.to_string()]);
        args.extend([
            "--token-file".to_owned(),
            self.token_file.display().to_string(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// The validated config of [`AgentSetup::args`].
    pub fn config(
        &self,
        routers: &[String],
        stats: SocketAddr,
        node: &str,
        extra: &[&str],
    ) -> AgentConfig {
        use clap::Parser;
        let mut argv = vec!["router-agent".to_owned()];
        argv.extend(self.args(routers, stats, node, extra));
        let flags = Flags::try_parse_from(argv).expect("agent flags");
        AgentConfig::merge(FileConfig::default(), flags).expect("agent config")
    }

    /// Runs the router-agent binary with `args`, as its operators run it, logging at info to
    /// `agent.log` in the temp dir.
    pub fn spawn_agent(&self, args: &[String]) -> Process {
        let mut cmd = Command::new(AGENT);
        cmd.args(args).env("RUST_LOG", "info").env("NO_COLOR", "1");
        Process::spawn("agent", cmd, self.dir.path())
    }
}
