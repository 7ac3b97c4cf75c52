//! `routerd`: the uwsgi load-balancing daemon.

use std::process::ExitCode;

use clap::Parser;
use uwsgi_router::config::Config;
use uwsgi_router::daemon::{Daemon, Signals};
use uwsgi_router::logging;
use uwsgi_router::routerd_cli::RouterdArgs;

fn main() -> ExitCode {
    let args = RouterdArgs::parse();
    if let Some(dir) = &args.write_manuals {
        return match uwsgi_router::manuals::write_all(dir) {
            Ok(()) => {
                println!(
                    "manual pages and shell completions written under {}",
                    dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("routerd: cannot write the manuals: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
