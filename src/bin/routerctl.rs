//! `routerctl`: see and steer the routers from one command. Parses the command line and runs the
//! library's command; each failure is one line on stderr and an exit code (1 failed, 2 usage,
//! 3 router unreachable or unauthorised).

use std::process::ExitCode;

use clap::Parser;
use uwsgi_router::routerctl::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Completions { shell } => routerctl::completions(shell),
        _ => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(routerctl::run(cli)),
            Err(e) => Err(routerctl::CtlError::Failed(format!(
                "cannot start the tokio runtime: {e}"
            ))),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.is_silent() {
                eprintln!("routerctl: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
