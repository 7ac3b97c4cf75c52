//! `fast-node`: a uwsgi node that answers as fast as it can, to benchmark what sits in front of it.

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use uwsgi_router_bench::node::{serve, NodeConfig};

/// A fast uwsgi node: answers `hello from <name>`, streams `/big/<bytes>`, discards any body.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TCP address to listen on, e.g. 127.0.0.1:3101 (port 0 picks one; it is printed).
    listen: String,
    /// Name put in responses (default: the listen address).
    #[arg(long)]
    name: Option<String>,
    /// Delay before each response, in milliseconds (to play a slow node).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Runtime threads; 1 runs everything on one thread, like one uWSGI worker's event loop.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = match args.threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()?,
    };
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!("fast-node listening on {addr}");
        let cfg = NodeConfig {
            name: args.name.unwrap_or_else(|| addr.to_string()),
            delay: Duration::from_millis(args.delay_ms),
        };
        serve(listener, cfg).await?;
        Ok(())
    })
}
