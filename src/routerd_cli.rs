//! `routerd`'s command line, in the library so that its manual and completions are generated from
//! the same definition the binary parses ([`crate::manuals`]).

use std::path::PathBuf;

use crate::logging::LogFormat;

/// Routes uwsgi requests (from nginx `uwsgi_pass` or any uwsgi client) across pools of uWSGI nodes.
#[derive(Debug, clap::Parser)]
#[command(name = "routerd", version = env!("UWSGI_ROUTER_VERSION"), about)]
pub struct RouterdArgs {
    /// Config file (TOML). Without one, embedded defaults: listen on 127.0.0.1:3031, one empty
    /// default pool.
    #[arg(long, short, env = "ROUTERD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Validate FILE and exit: 0 if it is usable, 1 with every problem listed if not.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    pub check_config: Option<PathBuf>,
    /// Log lines as `text` (coloured only on a terminal without NO_COLOR) or `json`; default:
    /// the config's `log_format`, else text.
    #[arg(long, env = "ROUTERD_LOG_FORMAT", value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Write the manual pages and shell completions of routerd, router-agent and routerctl under
    /// DIR (e.g. /usr/local/share: man/man1/, bash-completion/, zsh/, fish/) and exit. A packaging
    /// step, so not in --help.
    #[arg(long, value_name = "DIR", hide = true, conflicts_with_all = ["config", "check_config"])]
    pub write_manuals: Option<PathBuf>,
}
