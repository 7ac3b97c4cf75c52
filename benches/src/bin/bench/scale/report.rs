//! The scale group's markdown: one table over the fleet shapes (medians over the rounds with their
//! min..max), every round in brief, and issue #15's targets next to the measured values.

use super::{Measured, Row, Shape, INTERVAL};
use crate::spread::Spread;

/// The targets are set for this fleet size.
const TARGET_NODES: usize = 10_000;

/// One line per finished shape and round.
pub(crate) fn print_progress(shape: Shape, round: usize, res: &Result<Measured, String>) {
    let name = describe(shape);
    match res {
        Ok(m) => eprintln!(
            "[bench] round {round}, scale {name}: {}, CPU {:.1}%, RSS {:.0} MiB, \
             scrape {:.1} MB in {:.1} ms, churn {:.1}%, {} expired, {} stranded",
            visible(m),
            m.steady_cpu_pct,
            mib(m.rss_kib),
            m.scrape_bytes as f64 / 1e6,
            m.scrape.as_secs_f64() * 1e3,
            m.churn_cpu_pct,
            m.expired,
            m.stranded
        ),
        Err(e) => eprintln!("[bench] round {round}, scale {name}: FAILED: {e}"),
    }
}

/// When every node was in the pool, or how many were after the limit, and the agents stranded.
fn visible(m: &Measured) -> String {
    let v = match m.visible_after {
        Some(d) => format!("all visible after {:.2} s", d.as_secs_f64()),
        None => format!("only {} in the pool after 30 s", m.visible_nodes),
    };
    format!("{v} ({} stranded)", m.stranded_after_join)
}

fn describe(s: Shape) -> String {
    if s.connections == s.nodes {
        format!("{} nodes, a connection each", s.nodes)
    } else {
        format!("{} nodes over {} connections", s.nodes, s.connections)
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl Row {
    fn ok(&self) -> impl Iterator<Item = &Measured> {
        self.rounds.iter().filter_map(|r| r.as_ref().ok())
    }

    fn spread(&self, f: impl Fn(&Measured) -> f64) -> Option<Spread> {
        Spread::of(self.ok().map(f).collect())
    }

    fn cell(&self, decimals: usize, f: impl Fn(&Measured) -> f64) -> String {
        self.spread(f)
            .map_or_else(|| "-".to_owned(), |s| s.show(decimals))
    }
}

/// The table, the rounds, the targets.
pub(crate) fn print(rows: &[Row], rounds: u16, window: f64, churn: u32) {
    println!("\n## The control plane at scale (issue #15)\n");
    println!(
        "A simulated agent per node (gRPC Registry session: announce, then a load report every {} s, \
         lease 3 s), on a fresh routerd per round, one pool; {rounds} rounds, windows of {window} s, \
         churn of {churn} membership changes/s (half leaves of the oldest nodes, half new nodes). \
         Each cell: median (min..max) over the rounds.\n",
        INTERVAL.as_secs()
    );
    println!(
        "| fleet | all visible after s | join CPU s | routerd CPU % of a core | RSS MiB | /metrics MB | \
         scrape ms | churn CPU % | churn changes/s | RSS after churn MiB | expired | rejoined after s | \
         stranded after join / after expiry (max) | machine busy % |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let stranded = r
            .ok()
            .map(|m| m.stranded_after_join)
            .max()
            .zip(r.ok().map(|m| m.stranded).max());
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            describe(r.shape),
            visible_cell(r),
            r.cell(2, |m| m.join_cpu.as_secs_f64()),
            r.cell(1, |m| m.steady_cpu_pct),
            r.cell(0, |m| mib(m.rss_kib)),
            r.cell(2, |m| m.scrape_bytes as f64 / 1e6),
            r.cell(1, |m| m.scrape.as_secs_f64() * 1e3),
            r.cell(1, |m| m.churn_cpu_pct),
            r.cell(0, |m| m.churn_rate),
            r.cell(0, |m| mib(m.churn_rss_kib)),
            r.cell(0, |m| m.expired as f64),
            rejoin_cell(r),
            stranded.map_or_else(|| "-".to_owned(), |(j, e)| format!("{j} / {e}")),
            r.cell(0, |m| m.machine_busy_pct),
        );
    }
    print_rounds(rows);
    print_targets(rows, churn);
}

/// Join times, or how many rounds did not have every node in the pool in time.
fn visible_cell(r: &Row) -> String {
    let late: Vec<&Measured> = r.ok().filter(|m| m.visible_after.is_none()).collect();
    match late.first() {
        None => r.cell(2, |m| m.visible_after.map_or(0.0, |d| d.as_secs_f64())),
        Some(m) => format!(
            "not within 30 s in {} round(s) (e.g. {} in the pool, {} agents stranded)",
            late.len(),
            m.visible_nodes,
            m.stranded_after_join
        ),
    }
}

/// Rejoin times, or how many rounds did not rejoin in time.
fn rejoin_cell(r: &Row) -> String {
    let late = r.ok().filter(|m| m.rejoin_after.is_none()).count();
    let times = Spread::of(
        r.ok()
            .filter_map(|m| m.rejoin_after)
            .map(|d| d.as_secs_f64())
            .collect(),
    );
    match (late, times) {
        (0, Some(s)) => s.show(2),
        (0, None) => "-".to_owned(),
        (n, _) => format!("not within 20 s in {n} round(s)"),
    }
}

fn print_rounds(rows: &[Row]) {
    println!();
    for r in rows {
        for (i, res) in r.rounds.iter().enumerate() {
            match res {
                Ok(m) => println!(
                    "- {}, round {}: {} ({:.2} s of CPU), {:.1}% CPU, {:.0} MiB, \
                     scrape {:.2} MB in {:.1} ms, churn {:.1}% at {:.0}/s, {} expired, {} Removed \
                     messages, {} stranded",
                    describe(r.shape),
                    i + 1,
                    visible(m),
                    m.join_cpu.as_secs_f64(),
                    m.steady_cpu_pct,
                    mib(m.rss_kib),
                    m.scrape_bytes as f64 / 1e6,
                    m.scrape.as_secs_f64() * 1e3,
                    m.churn_cpu_pct,
                    m.churn_rate,
                    m.expired,
                    m.removed_msgs,
                    m.stranded
                ),
                Err(e) => println!("- {}, round {}: FAILED: {e}", describe(r.shape), i + 1),
            }
        }
    }
}

/// A target's line: what, the measured spread, PASS or FAIL on the median (and the worst round
/// for stranded sessions, which must be 0 in every one).
fn target_line(what: &str, s: Option<Spread>, decimals: usize, pass: impl Fn(&Spread) -> bool) {
    match s {
        Some(s) => println!(
            "- {what}: {} -> {}",
            s.show(decimals),
            if pass(&s) { "PASS" } else { "FAIL" }
        ),
        None => println!("- {what}: no successful round -> FAIL"),
    }
}

fn print_targets(rows: &[Row], churn: u32) {
    let at_target: Vec<&Row> = rows
        .iter()
        .filter(|r| r.shape.nodes == TARGET_NODES)
        .collect();
    if at_target.is_empty() {
        return;
    }
    println!("\nIssue #15's targets, at {TARGET_NODES} nodes:\n");
    for r in at_target {
        let name = describe(r.shape);
        target_line(
            &format!("{name}: routerd CPU < 10% of a core"),
            r.spread(|m| m.steady_cpu_pct),
            1,
            |s| s.median < 10.0,
        );
        target_line(
            &format!("{name}: RSS < 120 MiB"),
            r.spread(|m| mib(m.rss_kib)),
            0,
            |s| s.median < 120.0,
        );
        target_line(
            &format!("{name}: all visible within 2 s"),
            r.spread(|m| m.visible_after.map_or(f64::INFINITY, |d| d.as_secs_f64())),
            2,
            |s| s.median < 2.0,
        );
        target_line(
            &format!("{name}: churn of {churn} changes/s < 20% of a core (the target is at 100/s)"),
            r.spread(|m| m.churn_cpu_pct),
            1,
            |s| s.median < 20.0,
        );
        target_line(
            &format!("{name}: scrape < 20 ms"),
            r.spread(|m| m.scrape.as_secs_f64() * 1e3),
            1,
            |s| s.median < 20.0,
        );
        let all_rounds = r.rounds.iter().all(Result::is_ok);
        target_line(&format!("{name}: 0 stranded sessions in every round (after the join and after the mass expiry)"), r.spread(|m| (m.stranded + m.stranded_after_join) as f64), 0, |s| s.max == 0.0 && all_rounds);
    }
}
