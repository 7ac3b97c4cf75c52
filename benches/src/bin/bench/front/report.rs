//! The front group's markdown: one table of every phase (medians over the rounds with their
//! min..max), each round in brief, and issue #13's targets with the measured values.

use super::{Measured, Phase, Row};
use crate::spread::Spread;

/// One line per finished phase and round.
pub(crate) fn print_progress(p: Phase, round: usize, res: &Result<Measured, String>) {
    match res {
        Ok(m) => eprintln!(
            "[bench] round {round}, front {} {}: {:.0} req/s, p99 {:.2} ms, nginx {:.1} + router {:.1} us/req, {} errors",
            p.letter(),
            p.name(),
            m.load.rps(),
            ms(m.load.latency.p99),
            m.nginx_us(),
            m.router_us(),
            m.load.errors.total()
        ),
        Err(e) => eprintln!("[bench] round {round}, front {} {}: FAILED: {e}", p.letter(), p.name()),
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Row {
    fn ok(&self) -> impl Iterator<Item = &Measured> {
        self.rounds.iter().filter_map(|r| r.as_ref().ok())
    }

    fn spread(&self, f: impl Fn(&Measured) -> f64) -> Option<Spread> {
        Spread::of(self.ok().map(f).collect())
    }

    /// `f(self) / f(base)` round by round (interleaved rounds share conditions), over the rounds
    /// both have.
    fn ratio(&self, base: &Row, f: impl Fn(&Measured) -> f64) -> Option<Spread> {
        Spread::of(
            self.rounds
                .iter()
                .zip(&base.rounds)
                .filter_map(|(a, b)| Some(f(a.as_ref().ok()?) / f(b.as_ref().ok()?).max(1e-9)))
                .collect(),
        )
    }

    fn first_error(&self) -> Option<&str> {
        self.rounds
            .iter()
            .find_map(|r| r.as_ref().err())
            .map(String::as_str)
    }
}

fn rps(m: &Measured) -> f64 {
    m.load.rps()
}

fn p99(m: &Measured) -> f64 {
    ms(m.load.latency.p99)
}

fn cell(s: Option<Spread>, decimals: usize) -> String {
    s.map_or("-".to_owned(), |s| s.show(decimals))
}

/// Everything the group measured.
pub(crate) fn print(rows: &[Row], concurrency: usize, rounds: u16, duration: f64, nodes: &str) {
    if rows.is_empty() {
        return;
    }
    println!("### nginx in front (issue #13), {nodes}\n");
    println!(
        "{nodes}; {concurrency} concurrent HTTP/1.1 clients (closed loop, keep-alive) on \
         one nginx (1 worker), which passes each request on as the phase says; {rounds} interleaved \
         rounds of {duration} s per phase. Each cell: the median over the rounds, then (min..max). \
         Ratios are taken round by round, then the median. CPU per request: user + system time of \
         nginx (master and worker) and of the router's processes over the measured window, over the \
         requests served in it.\n"
    );
    print_table(rows);
    print_notes(rows);
    print_targets(rows);
}

fn print_table(rows: &[Row]) {
    let base = rows.iter().find(|r| r.phase == Phase::Direct);
    println!("| phase | req/s | vs (a) | p50 ms | p99 ms | nginx CPU us/req | router CPU us/req | nginx+router CPU us/req | errors (all rounds) | nodes answering | machine CPU busy % (others) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let name = format!("{} {}", row.phase.letter(), row.phase.name());
        if row.ok().next().is_none() {
            let e = row.first_error().unwrap_or("not run");
            println!("| {name} | failed: {} |", one_line(e));
            continue;
        }
        let errors: u64 = row.ok().map(|m| m.load.errors.total()).sum();
        let failed = row.rounds.iter().filter(|r| r.is_err()).count();
        let errors = if failed > 0 {
            format!("{errors} ({failed} rounds failed)")
        } else {
            errors.to_string()
        };
        let router = if row.phase == Phase::Direct {
            "-".to_owned()
        } else {
            cell(row.spread(Measured::router_us), 1)
        };
        let nodes = row.ok().map(|m| m.nodes_seen).min().unwrap_or(0);
        println!(
            "| {name} | {} | {} | {} | {} | {} | {router} | {} | {errors} | {nodes} | {} ({}) |",
            cell(row.spread(rps), 0),
            cell(base.and_then(|b| row.ratio(b, rps)), 2),
            cell(row.spread(|m| ms(m.load.latency.p50)), 2),
            cell(row.spread(p99), 2),
            cell(row.spread(Measured::nginx_us), 1),
            cell(row.spread(Measured::both_us), 1),
            cell(row.spread(|m| m.machine_busy_pct), 0),
            cell(row.spread(|m| m.foreign_pct), 0),
        );
    }
    println!();
}

fn print_notes(rows: &[Row]) {
    for row in rows {
        let rounds: Vec<String> = row
            .rounds
            .iter()
            .map(|r| match r {
                Ok(m) => format!(
                    "{:.0} req/s, p99 {:.2} ms, nginx+router {:.1} us/req (others {:.0}%)",
                    m.load.rps(),
                    p99(m),
                    m.both_us(),
                    m.foreign_pct
                ),
                Err(e) => format!("failed ({})", one_line(e)),
            })
            .collect();
        println!(
            "- {} {}: {}",
            row.phase.letter(),
            row.phase.name(),
            rounds.join("; ")
        );
        if let Some(first) = row.ok().find_map(|m| m.load.errors.first.as_ref()) {
            println!("  first error: {}", one_line(first));
        }
        let disturbed = row.ok().filter(|m| m.foreign_pct > 5.0).count();
        if disturbed > 0 {
            println!("  {disturbed} round(s) with more than 5% of the machine's CPU taken by other processes");
        }
    }
    println!();
}

/// One target: the measured ratio (median of rounds, with its range) against its bound.
fn target_line(what: &str, ratio: Option<Spread>, pass: impl Fn(f64) -> bool, detail: &str) {
    match ratio {
        Some(r) => {
            let mark = if pass(r.median) { "x" } else { " " };
            let verdict = if pass(r.median) { "PASS" } else { "FAIL" };
            println!(
                "- [{mark}] {what}: measured {:.2}x ({:.2}..{:.2} over the rounds){detail}: {verdict}",
                r.median, r.min, r.max
            );
        }
        None => println!("- [ ] {what}: not measured (a phase it needs failed or was not run)"),
    }
}

fn print_targets(rows: &[Row]) {
    let get = |p: Phase| rows.iter().find(|r| r.phase == p);
    println!("Issue #13's targets (median of the per-round ratios; the range in brackets):\n");
    for c in [Phase::RouterdHttp, Phase::RouterdHttpUnix] {
        let Some(row) = get(c) else { continue };
        let l = c.letter();
        let both = |base: Phase, f: fn(&Measured) -> f64| get(base).and_then(|b| row.ratio(b, f));
        let abs = |p: Phase, f: fn(&Measured) -> f64, unit: &str, d: usize| {
            get(p)
                .and_then(|r| r.spread(f))
                .map_or("-".to_owned(), |s| format!("{:.d$} {unit}", s.median))
        };
        target_line(
            &format!("{l} throughput >= 0.8x of (a)'s"),
            both(Phase::Direct, rps),
            |r| r >= 0.8,
            &format!(
                " ({} vs {})",
                abs(c, rps, "req/s", 0),
                abs(Phase::Direct, rps, "req/s", 0)
            ),
        );
        target_line(
            &format!("{l} nginx+router CPU per request <= 0.6x of (b)'s"),
            both(Phase::RouterdUwsgi, Measured::both_us),
            |r| r <= 0.6,
            &format!(
                " ({} vs {})",
                abs(c, Measured::both_us, "us", 1),
                abs(Phase::RouterdUwsgi, Measured::both_us, "us", 1)
            ),
        );
        target_line(
            &format!("{l} ahead of (d) in throughput (ratio > 1)"),
            both(Phase::UwsgiHttp, rps),
            |r| r > 1.0,
            &format!(
                " ({} vs {})",
                abs(c, rps, "req/s", 0),
                abs(Phase::UwsgiHttp, rps, "req/s", 0)
            ),
        );
        target_line(
            &format!("{l} p99 not above (e)'s (ratio <= 1)"),
            both(Phase::Haproxy, p99),
            |r| r <= 1.0,
            &format!(
                " ({} vs {})",
                abs(c, p99, "ms", 2),
                abs(Phase::Haproxy, p99, "ms", 2)
            ),
        );
    }
    println!();
}

fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    line.chars().take(200).collect()
}
