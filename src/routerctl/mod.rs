//! routerctl, the operators' CLI: reads and steers one or more routers through the `Admin` gRPC
//! API. [`args`] is the command line; [`client`] connects (token, TLS) and classifies failures
//! into exit codes; [`resolve`] turns id prefixes into ids; [`merge`] joins several routers'
//! views; [`read`], [`write`], [`watch`] and [`top`] are the commands; [`table`] lays out text.

pub mod args;
pub mod client;
pub mod error;
pub mod merge;
pub mod read;
pub mod resolve;
pub mod table;
pub mod top;
pub mod watch;
pub mod write;

use std::io::Write;

use clap::CommandFactory;

pub use args::{Cli, Command};
pub use error::CtlError;

use client::Routers;
use write::Action;

/// Runs one command (all but `completions`, which needs no router: see [`completions`]).
pub async fn run(cli: Cli) -> Result<(), CtlError> {
    let json = cli.global.json;
    let why = cli.global.reason.as_str();
    let mut routers = Routers::connect(&cli.global.connect()).await?;
    let r = &routers;
    match cli.command {
        Command::Pools => read::pools(r, json).await,
        Command::Nodes { pool } => read::nodes(r, pool.as_deref(), json).await,
        Command::Node { id } => read::node(r, &id, json).await,
        Command::Status => read::status(r, json).await,
        Command::Drain { id, wait: false, .. } => write::act(r, &id, Action::Drain, why, json).await,
        Command::Drain { id, timeout, .. } => write::drain_and_wait(r, &id, timeout, why, json).await,
        Command::Maintenance { id } => write::act(r, &id, Action::Maintenance, why, json).await,
        Command::Resume { id } => write::act(r, &id, Action::Resume, why, json).await,
        Command::Weight { id, weight, .. } => write::act(r, &id, Action::Weight(weight), why, json).await,
        Command::Eject { id, time } => write::act(r, &id, Action::Eject(time), why, json).await,
        Command::Remove { id } => write::act(r, &id, Action::Remove, why, json).await,
        Command::Reload => write::reload(r, json).await,
        Command::Watch => watch::watch(r, json).await,
        Command::Top { .. } if json => Err(CtlError::Failed(
            "top is for people; scripts can poll `routerctl nodes --json` or follow `routerctl watch --json`".to_owned(),
        )),
        Command::Top { interval, pool } => {
            top::top(&mut routers, pool.as_deref(), interval).await
        }
        Command::Completions { shell } => completions(shell),
    }
}

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<(), CtlError> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "routerctl", &mut out);
    std::io::stdout().write_all(&out).map_err(CtlError::Output)
}

/// Writes `text` to stdout.
pub(crate) fn print(text: &str) -> Result<(), CtlError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(CtlError::Output)
}

/// Writes `value` as one line of JSON.
pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<(), CtlError> {
    let mut text = serde_json::to_string(value)
        .map_err(|e| CtlError::Failed(format!("cannot encode JSON: {e}")))?;
    text.push('\n');
    print(&text)
}
