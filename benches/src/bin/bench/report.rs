//! The markdown the benchmark prints: progress on stderr, result tables on stdout.

use std::time::Duration;

use uwsgi_router_bench::transfer::{RssTrace, Transfer};

use crate::memory::{Idle, Memory};
use crate::setup::Bench;
use crate::throughput::{Measured, Round, Row};

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// What was run, on what.
pub(crate) fn print_header(bench: &Bench) {
    let a = &bench.args;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("## uwsgi-router benchmark\n");
    println!(
        "{cores} cores; {} fast nodes; {} concurrent clients (closed loop, one request per connection); \
         {} interleaved rounds of {} s measured per throughput phase, each after {} s warm-up.\n",
        a.nodes, a.concurrency, a.rounds, a.duration, a.warmup
    );
    if let Some(bin) = &a.baseline_routerd {
        println!("Baseline routerd: {}.\n", bin.display());
    }
}

/// One line per finished phase and round, so a long run shows it is alive.
pub(crate) fn print_progress(name: &str, round: usize, res: &Result<Measured, String>) {
    match res {
        Ok(m) => eprintln!(
            "[bench] round {round}, {name}: {:.0} req/s, p99 {} ms, {} errors",
            m.load.rps(),
            ms(m.load.latency.p99),
            m.load.errors.total()
        ),
        Err(e) => eprintln!("[bench] round {round}, {name}: FAILED: {e}"),
    }
}

/// The throughput table; ratios are to the `direct` row.
pub(crate) fn print_throughput(bench: &Bench, rows: &[Row]) {
    if rows.is_empty() {
        return;
    }
    let direct = rows.iter().find(|r| r.name == "direct");
    println!("### Throughput and CPU\n");
    println!("| phase | req/s (median round) | vs direct (median of rounds) | p50 ms | p99 ms | max ms | errors | router CPU s/10k req | router CPU us/req | router peak RSS MiB | machine CPU busy (others) | nodes answering |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        match &row.result {
            Ok(m) => println!(
                "| {} | {} |",
                row.name,
                cells(
                    m,
                    direct.and_then(|d| row.ratio_to(d)),
                    bench.node_addrs.len()
                )
            ),
            Err(e) => println!("| {} | failed: {} |", row.name, one_line(e)),
        }
    }
    println!();
    for row in rows {
        println!("- {}: req/s by round: {}", row.name, by_round(&row.rounds));
        let first = row
            .result
            .as_ref()
            .ok()
            .and_then(|m| m.load.errors.first.as_ref());
        if let Some(first) = first {
            println!("  first error: {}", one_line(first));
        }
    }
    println!();
    let disturbed = rows
        .iter()
        .flat_map(|r| r.rounds.iter().flatten())
        .any(|r| r.foreign_pct > DISTURBED_PCT);
    if disturbed {
        println!(
            "Some rounds were disturbed: processes outside the benchmark took over \
             {DISTURBED_PCT:.0}% of the CPU. Rerun on an idle machine for clean numbers.\n"
        );
    }
}

/// Above this share of CPU taken by other processes, a round is called disturbed.
const DISTURBED_PCT: f64 = 5.0;

fn cells(m: &Measured, ratio: Option<f64>, nodes: usize) -> String {
    let l = &m.load;
    let done = (l.ok + l.errors.total()).max(1) as f64;
    let ratio = ratio.map_or("-".to_owned(), |r| format!("{r:.2}x"));
    let (per10k, per_req) = match m.router_cpu {
        Some(cpu) => {
            let us = |d: Duration| d.as_secs_f64() * 1e6 / done;
            (
                format!("{:.2}", cpu.total().as_secs_f64() * 10_000.0 / done),
                format!(
                    "{:.1} ({:.1} user + {:.1} sys)",
                    us(cpu.total()),
                    us(cpu.user),
                    us(cpu.system)
                ),
            )
        }
        None => ("-".to_owned(), "-".to_owned()),
    };
    let rss = m.router_peak_rss_kib.map_or("-".to_owned(), mib);
    format!(
        "{:.0} | {ratio} | {} | {} | {} | {} | {per10k} | {per_req} | {rss} | {:.0}% ({:.0}%) | {}/{nodes}",
        l.rps(),
        ms(l.latency.p50),
        ms(l.latency.p99),
        ms(l.latency.max),
        l.errors.total(),
        m.machine_busy_pct,
        m.foreign_pct,
        m.nodes_seen,
    )
}

fn by_round(rounds: &[Result<Round, String>]) -> String {
    let cells: Vec<String> = rounds
        .iter()
        .map(|r| match r {
            Ok(r) => format!("{:.0} (others {:.0}%)", r.rps, r.foreign_pct),
            Err(e) => format!("failed ({})", one_line(e)),
        })
        .collect();
    cells.join(", ")
}

/// The memory table.
pub(crate) fn print_memory(bench: &Bench, rows: &[Row], mem: &Result<Memory, String>) {
    println!("### routerd memory\n");
    println!("| measurement | result |");
    println!("|---|---|");
    let peak = rows
        .iter()
        .filter(|r| r.name.starts_with("routerd"))
        .filter_map(|r| r.result.as_ref().ok()?.router_peak_rss_kib)
        .max();
    if let Some(kib) = peak {
        println!(
            "| peak RSS (VmHWM) in the throughput phases | {} MiB |",
            mib(kib)
        );
    }
    let m = match mem {
        Ok(m) => m,
        Err(e) => return println!("| memory phase | failed: {} |", one_line(e)),
    };
    println!(
        "| RSS at start of the memory phase | {} MiB |",
        mib(m.start_rss_kib)
    );
    let gib = bench.args.big_bytes as f64 / f64::from(1u32 << 30);
    println!(
        "| {gib:.0} GiB request body, node sinks it | {} |",
        transfer(&m.upload)
    );
    println!(
        "| {gib:.0} GiB response body from a node | {} |",
        transfer(&m.download)
    );
    println!(
        "| {} idle client connections | {} |",
        bench.args.idle,
        idle(&m.idle)
    );
    println!(
        "| peak RSS (VmHWM) over the memory phase | {} MiB |\n",
        mib(m.peak_rss_kib)
    );
}

fn transfer(r: &Result<(Transfer, RssTrace), String>) -> String {
    match r {
        Ok((t, rss)) if rss.samples == 0 => {
            format!("{:.0} MiB/s; too quick to sample RSS", t.mib_per_s())
        }
        Ok((t, rss)) => format!(
            "{:.0} MiB/s; RSS before {} / during min {} max {} ({} samples) / after {} MiB",
            t.mib_per_s(),
            mib(rss.before),
            mib(rss.min),
            mib(rss.max),
            rss.samples,
            mib(rss.after)
        ),
        Err(e) => format!("failed: {}", one_line(e)),
    }
}

fn idle(r: &Result<Idle, String>) -> String {
    let i = match r {
        Ok(i) => i,
        Err(e) => return format!("failed: {}", one_line(e)),
    };
    let per_conn = i.rss_with.saturating_sub(i.rss_before) as f64 / i.opened.max(1) as f64;
    let req = match &i.request_ok {
        Ok(d) => format!("a request meanwhile took {} ms", ms(*d)),
        Err(e) => format!("a request meanwhile FAILED: {}", one_line(e)),
    };
    format!(
        "RSS {} -> {} MiB ({per_conn:.1} KiB per connection), {} MiB after closing; {} of {} accepted; {req}",
        mib(i.rss_before),
        mib(i.rss_with),
        mib(i.rss_after),
        i.accepted,
        i.opened
    )
}

/// Errors can span lines (logs); a table cell cannot.
fn one_line(s: &str) -> String {
    let flat = s.replace(['\n', '|'], " ");
    match flat.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &flat[..i]),
        None => flat,
    }
}

/// The design's targets, each next to the number that answers it.
pub(crate) fn print_targets(rows: &[Row], mem: Option<&Memory>) {
    println!("### Against the targets (routerd least-load)\n");
    println!("| target | measured |");
    println!("|---|---|");
    let row = |name: &str| rows.iter().find(|r| r.name == name);
    match row("routerd least-load") {
        Some(rd) => {
            print_router_targets(rd, row("direct"), rows);
            for variant in [
                "routerd least-load + access log",
                "routerd least-load without request id",
                "routerd least-load baseline",
            ] {
                if let Some(v) = row(variant) {
                    print_variant_cost(v, rd);
                }
            }
        }
        None => println!("| throughput and CPU | routerd least-load did not run |"),
    }
    if let Some(m) = mem {
        print_memory_targets(m);
    }
    println!();
}

fn print_router_targets(rd: &Row, direct: Option<&Row>, rows: &[Row]) {
    let fastrouters: Vec<&Row> = rows
        .iter()
        .filter(|r| r.name.starts_with("fastrouter"))
        .collect();
    if let Some(ratio) = direct.and_then(|d| rd.ratio_to(d)) {
        println!("| throughput >= 0.9x of direct | {ratio:.2}x |");
    }
    // Against the best FastRouter: the lowest of the ratios to each FastRouter phase.
    let vs_fr = fastrouters
        .iter()
        .filter_map(|f| rd.ratio_to(f))
        .fold(f64::INFINITY, f64::min);
    if vs_fr.is_finite() {
        println!("| throughput ahead of the best FastRouter | {vs_fr:.2}x of it |");
    }
    let least_fr = fastrouters
        .iter()
        .filter_map(|r| cpu_us(r.result.as_ref().ok()?))
        .fold(f64::INFINITY, f64::min);
    let rd_cpu = rd.result.as_ref().ok().and_then(cpu_us);
    if let (Some(rd_cpu), true) = (rd_cpu, least_fr.is_finite()) {
        println!("| CPU per request below FastRouter's | {rd_cpu:.1} us vs {least_fr:.1} us (its best) |");
    }
}

/// What a changed setting costs against the defaults: throughput ratio and CPU per request.
fn print_variant_cost(v: &Row, defaults: &Row) {
    let ratio = v
        .ratio_to(defaults)
        .map_or("-".to_owned(), |r| format!("{r:.2}x"));
    let cpu = |r: &Row| r.result.as_ref().ok().and_then(cpu_us);
    let cpu = match (cpu(v), cpu(defaults)) {
        (Some(a), Some(b)) => format!("{a:.1} vs {b:.1} us/req ({:+.1})", a - b),
        _ => "-".to_owned(),
    };
    let name = v.name.trim_start_matches("routerd least-load ");
    println!("| {name}: throughput and router CPU vs defaults | {ratio}; {cpu} |");
}

fn cpu_us(m: &Measured) -> Option<f64> {
    let done = (m.load.ok + m.load.errors.total()).max(1) as f64;
    m.router_cpu.map(|c| c.total().as_secs_f64() * 1e6 / done)
}

fn print_memory_targets(m: &Memory) {
    for (what, t) in [("upload", &m.upload), ("download", &m.download)] {
        if let Ok((_, rss)) = t {
            let growth = rss.max.saturating_sub(rss.before);
            println!("| memory flat during a 1 GiB {what} | RSS grew {growth} KiB |");
        }
    }
    if let Ok(i) = &m.idle {
        let n = i.opened;
        println!(
            "| RSS small with {n} idle connections | {} MiB |",
            mib(i.rss_with)
        );
    }
}
