//! `router-agent`: the sidecar next to a uWSGI node that registers it with every router, reports
//! its load, and drains it on SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use uwsgi_router::agent::{self, AgentConfig, Flags};

fn main() -> ExitCode {
    let flags = Flags::parse();
    uwsgi_router::logging::init(flags.log_format);
    let config = match AgentConfig::load(flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("router-agent: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the tokio runtime");
    match runtime.block_on(agent::run(config)) {
        Ok(()) => {
            tracing::info!("exit");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("router-agent: {e}");
            ExitCode::FAILURE
        }
    }
}
