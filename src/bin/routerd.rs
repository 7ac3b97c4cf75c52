//! `routerd`: the uwsgi load-balancing daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use uwsgi_router::config::Config;
use uwsgi_router::daemon::{Daemon, Signals};
use uwsgi_router::logging::{self, LogFormat};

/// Routes uwsgi requests (from nginx `uwsgi_pass` or any uwsgi client) across pools of uWSGI nodes.
#[derive(Debug, Parser)]
#[command(version = env!("UWSGI_ROUTER_VERSION"), about)]
struct Args {
    /// Config file (TOML). Without one, embedded defaults: listen on 127.0.0.1:3031, one empty
    /// default pool.
    #[arg(long, short, env = "ROUTERD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate FILE and exit: 0 if it is usable, 1 with every problem listed if not.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    check_config: Option<PathBuf>,
    /// Log lines as `text` (coloured only on a terminal without NO_COLOR) or `json`; default:
    /// the config's `log_format`, else text.
    #[arg(long, env = "ROUTERD_LOG_FORMAT", value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.check_config {
        return match Config::load(path) {
            Ok(_) => {
                println!("{}: ok", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                ExitCode::FAILURE
            }
        };
    }
    let config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("routerd: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => Config::default(),
    };
    logging::init(args.log_format.unwrap_or(config.log_format));
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the tokio runtime");
    runtime.block_on(async move {
        let signals = match Signals::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("routerd: cannot handle signals: {e}");
                return ExitCode::FAILURE;
            }
        };
        let daemon = match Daemon::start(config, args.config).await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("routerd: {e}");
                return ExitCode::FAILURE;
            }
        };
        daemon.run_until_signalled(signals).await;
        ExitCode::SUCCESS
    })
}
