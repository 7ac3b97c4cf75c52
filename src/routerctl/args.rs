//! routerctl's command line (clap derive): the global options that say which routers and how to
//! authenticate, and one subcommand per operation.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::client::Connect;

/// The router used when neither --router nor ROUTERCTL_ROUTER says otherwise.
pub const DEFAULT_ROUTER: &str = "http://127.0.0.1:9032";

/// See and steer uwsgi-router's routers through their Admin API.
#[derive(Debug, Parser)]
#[command(
    name = "routerctl",
    version = env!("UWSGI_ROUTER_VERSION"),
    after_help = "Node ids may be shortened to a unique prefix, as git does with commits.\n\
                  Exit codes: 0 ok, 1 the operation failed, 2 usage, 3 router unreachable or unauthorised,\n\
                  4 partial (some routers answered, others could not be reached)."
)]
pub struct Cli {
    /// Which routers, and how to reach them.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Router control URL (routerd's [control] listen); repeat it or give a comma list to
    /// address several routers: reads merge by node, writes apply to all.
    #[arg(
        long = "router",
        global = true,
        env = "ROUTERCTL_ROUTER",
        value_delimiter = ',',
        default_value = DEFAULT_ROUTER,
        value_parser = router_url,
        value_name = "URL"
    )]
    pub routers: Vec<String>,
    /// File whose first non-empty line is the admin token (a token of [control] admin_token_files).
    #[arg(long, global = true, env = "ROUTERCTL_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) that https:// routers' certificates chain to.
    #[arg(long, global = true, env = "ROUTERCTL_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mTLS.
    #[arg(
        long,
        global = true,
        env = "ROUTERCTL_TLS_CERT",
        requires = "tls_key",
        value_name = "FILE"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of the client certificate.
    #[arg(
        long,
        global = true,
        env = "ROUTERCTL_TLS_KEY",
        requires = "tls_cert",
        value_name = "FILE"
    )]
    pub tls_key: Option<PathBuf>,
    /// Print JSON for scripts instead of tables (field names are the Admin API's).
    #[arg(long, global = true)]
    pub json: bool,
    /// Why (drain, resume, weight, eject, remove): the routers log it with who asked, and
    /// `routerctl watch` shows it.
    #[arg(long, global = true, default_value = "", value_name = "TEXT")]
    pub reason: String,
}

impl Global {
    /// Where to connect, and with what.
    pub fn connect(&self) -> Connect {
        // The same router named twice is asked once.
        let mut routers = self.routers.clone();
        let mut seen = std::collections::HashSet::new();
        routers.retain(|r| seen.insert(r.clone()));
        Connect {
            routers,
            token_file: self.token_file.clone(),
            tls_ca: self.tls_ca.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
        }
    }
}

/// One routerctl operation.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pools: algorithm, node counts by state, traffic.
    Pools,
    /// Nodes, of every pool or one.
    Nodes {
        /// Only this pool.
        #[arg(long)]
        pool: Option<String>,
    },
    /// One node in detail.
    Node {
        /// Node id, or a unique prefix of one.
        id: String,
    },
    /// Stop sending new requests to a node; requests in flight finish. It then stays out of
    /// rotation until resumed (a registered node: in maintenance, on every router its agent
    /// talks to).
    Drain {
        /// Node id, or a unique prefix of one.
        id: String,
        /// Return only once nothing is in flight on the node (drained, in maintenance, or gone).
        #[arg(long)]
        wait: bool,
        /// How long --wait waits before giving up (exit 1).
        #[arg(long, default_value = "60s", value_parser = duration, requires = "wait")]
        timeout: Duration,
    },
    /// Take a node out of rotation at once, without waiting for its requests, until resumed (a
    /// registered node: on every router its agent talks to).
    Maintenance {
        /// Node id, or a unique prefix of one.
        id: String,
    },
    /// Take a draining, drained, in maintenance or ejected node back into rotation (a registered
    /// node: on every router its agent talks to).
    Resume {
        /// Node id, or a unique prefix of one.
        id: String,
    },
    /// Set (1..1000) or clear the operator's weight override of a node.
    Weight {
        /// Node id, or a unique prefix of one.
        id: String,
        /// The weight, 1 to 1000.
        #[arg(
            required_unless_present = "clear",
            value_parser = clap::value_parser!(u32).range(1..=1000)
        )]
        weight: Option<u32>,
        /// Clear the override: the configured or reported weight applies again.
        #[arg(long, conflicts_with = "weight")]
        clear: bool,
    },
    /// Eject a node for a while, as if it had failed its health checks.
    Eject {
        /// Node id, or a unique prefix of one.
        id: String,
        /// How long ("30s", "5m"); default: the pool's ejection base time.
        #[arg(long = "for", value_parser = duration, value_name = "DURATION")]
        time: Option<Duration>,
    },
    /// Remove a node now (a static node returns at the next reload, a registered one when its
    /// agent announces it again).
    Remove {
        /// Node id, or a unique prefix of one.
        id: String,
    },
    /// Re-read the config file, as SIGHUP does; a config with errors is refused and reported.
    Reload,
    /// The routers themselves: version, uptime, listeners, config.
    Status,
    /// Print cluster events as they happen, one line each.
    Watch,
    /// A live per-node view, redrawn every --interval; q or Ctrl-C quits.
    Top {
        /// Time between refreshes.
        #[arg(long, default_value = "1s", value_parser = duration)]
        interval: Duration,
        /// Only this pool.
        #[arg(long)]
        pool: Option<String>,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// A router URL; `host:port` alone means `http://host:port`.
fn router_url(s: &str) -> Result<String, String> {
    let url = if s.contains("://") {
        s.trim().to_owned()
    } else {
        format!("http://{}", s.trim())
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("{s:?}: use http://HOST:PORT or https://HOST:PORT"));
    }
    tonic::transport::Endpoint::from_shared(url.clone()).map_err(|e| format!("{s:?}: {e}"))?;
    Ok(url)
}

/// A duration such as `500ms`, `30s`, `5m`, `1h 30m`, greater than zero.
fn duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be more than 0".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (e.g. 500ms, 30s, 5m)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn routers_come_repeated_or_as_a_comma_list() {
        let cli = Cli::try_parse_from([
            "routerctl",
            "--router",
            "http://a:1,b:2",
            "--router",
            "https://c:3",
            "nodes",
        ])
        .unwrap();
        assert_eq!(
            cli.global.routers,
            ["http://a:1", "http://b:2", "https://c:3"]
        );
    }

    #[test]
    fn weights_are_in_range_or_cleared() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["routerctl", "weight"].iter().chain(args))
                .map(|c| c.command)
                .map_err(|e| e.exit_code())
        };
        assert!(matches!(
            parse(&["n", "7"]),
            Ok(Command::Weight {
                weight: Some(7),
                clear: false,
                ..
            })
        ));
        assert!(matches!(
            parse(&["n", "--clear"]),
            Ok(Command::Weight {
                weight: None,
                clear: true,
                ..
            })
        ));
        assert_eq!(parse(&["n", "0"]).unwrap_err(), 2);
        assert_eq!(parse(&["n"]).unwrap_err(), 2);
        assert_eq!(parse(&["n", "3", "--clear"]).unwrap_err(), 2);
    }
}
