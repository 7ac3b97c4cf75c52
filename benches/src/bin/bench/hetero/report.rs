//! The heterogeneous pool's markdown: the contenders' table, routerd's view of its nodes, the
//! kill phase, and the targets.

use std::time::Duration;

use super::{Contender, Hetero, Kill, Measured, Row};

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// One line per finished contender and round.
pub(crate) fn print_progress(c: Contender, round: usize, res: &Result<Measured, String>) {
    match res {
        Ok(m) => eprintln!(
            "[bench] round {round}, hetero {}: {:.0} req/s, p99 {} ms, {} errors",
            c.name(),
            m.load.rps(),
            ms(m.load.latency.p99),
            m.load.errors.total()
        ),
        Err(e) => eprintln!("[bench] round {round}, hetero {}: FAILED: {e}", c.name()),
    }
}

impl Row {
    /// The round with the median p99 (the lower middle for an even count).
    fn median(&self) -> Result<&Measured, String> {
        let mut ok: Vec<&Measured> = self.rounds.iter().filter_map(|r| r.as_ref().ok()).collect();
        if ok.is_empty() {
            return Err(self
                .rounds
                .iter()
                .find_map(|r| r.as_ref().err().cloned())
                .unwrap_or_else(|| "not run".to_owned()));
        }
        ok.sort_by_key(|m| m.load.latency.p99);
        Ok(ok[(ok.len() - 1) / 2])
    }

    /// `f(self's round) / f(base's round)` for every round both have, then the median.
    fn ratio(&self, base: &Row, f: impl Fn(&Measured) -> f64) -> Option<f64> {
        let mut r: Vec<f64> = self
            .rounds
            .iter()
            .zip(&base.rounds)
            .filter_map(|(a, b)| Some(f(a.as_ref().ok()?) / f(b.as_ref().ok()?).max(1e-9)))
            .collect();
        r.sort_by(f64::total_cmp);
        r.get(r.len().checked_sub(1)? / 2).copied()
    }
}

fn p99_ms(m: &Measured) -> f64 {
    m.load.latency.p99.as_secs_f64() * 1e3
}

fn rps(m: &Measured) -> f64 {
    m.load.rps()
}

/// Everything the group measured.
pub(crate) fn print(h: &Hetero, concurrency: usize, rounds: u16, duration: f64) {
    let nodes: Vec<String> = h
        .nodes
        .iter()
        .map(|(n, d)| format!("{n} sleeps {d} ms"))
        .collect();
    println!("### Heterogeneous pool\n");
    println!(
        "3 uWSGI nodes of 2 processes ({}); {concurrency} concurrent HTTP clients (closed loop, \
         keep-alive) on nginx, which passes each request to the contender; {rounds} interleaved \
         rounds of {duration} s per contender; each row is its median-p99 round. Node columns: \
         share of the requests, their mean latency, and the requests in flight on that node by \
         Little's law (share of req/s x mean latency).\n",
        nodes.join(", ")
    );
    if !h.rows.is_empty() {
        print_table(h);
        print_notes(h);
    }
    if let Some(k) = &h.kill {
        print_kill(k);
    }
    print_targets(h);
}

fn print_table(h: &Hetero) {
    let base = h
        .rows
        .iter()
        .find(|r| r.contender == Contender::NginxLeastConn);
    let node_heads: Vec<String> = h
        .nodes
        .iter()
        .map(|(n, d)| format!("{n} ({d} ms): share, mean ms, in flight"))
        .collect();
    println!(
        "| contender | req/s | vs nginx least_conn | p50 ms | p90 ms | p99 ms | max ms | p99 / nginx least_conn's | errors | {} | machine CPU busy (others) |",
        node_heads.join(" | ")
    );
    println!(
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|{}---:|",
        "---:|".repeat(h.nodes.len())
    );
    for row in &h.rows {
        let m = match row.median() {
            Ok(m) => m,
            Err(e) => {
                println!("| {} | failed: {} |", row.contender.name(), one_line(&e));
                continue;
            }
        };
        let l = &m.load;
        let ratio = |f: fn(&Measured) -> f64| {
            base.and_then(|b| row.ratio(b, f))
                .map_or("-".to_owned(), |r| format!("{r:.2}x"))
        };
        let secs = l.elapsed.as_secs_f64().max(1e-9);
        let node_cells: Vec<String> = h
            .nodes
            .iter()
            .map(|(n, _)| match l.by_node.get(n) {
                Some(t) => {
                    let share = 100.0 * t.count as f64 / l.ok.max(1) as f64;
                    let in_flight = t.count as f64 / secs * t.mean().as_secs_f64();
                    format!("{share:.1}%, {}, {in_flight:.1}", ms(t.mean()))
                }
                None => "0%".to_owned(),
            })
            .collect();
        println!(
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0}% ({:.0}%) |",
            row.contender.name(),
            l.rps(),
            ratio(rps),
            ms(l.latency.p50),
            ms(l.latency.p90),
            ms(l.latency.p99),
            ms(l.latency.max),
            ratio(p99_ms),
            errors(l),
            node_cells.join(" | "),
            m.machine_busy_pct,
            m.foreign_pct
        );
    }
    println!();
}

fn errors(l: &uwsgi_router_bench::http_load::HttpLoadReport) -> String {
    let n = l.errors.total();
    if n == 0 || l.error_statuses.is_empty() {
        return n.to_string();
    }
    let st: Vec<String> = l
        .error_statuses
        .iter()
        .map(|(s, c)| format!("{c}x{s}"))
        .collect();
    format!("{n} ({})", st.join(", "))
}

fn print_notes(h: &Hetero) {
    for row in &h.rows {
        let rounds: Vec<String> = row
            .rounds
            .iter()
            .map(|r| match r {
                Ok(m) => format!(
                    "{:.0} req/s p99 {} ms (others {:.0}%)",
                    m.load.rps(),
                    ms(m.load.latency.p99),
                    m.foreign_pct
                ),
                Err(e) => format!("failed ({})", one_line(e)),
            })
            .collect();
        println!("- {}: {}", row.contender.name(), rounds.join("; "));
        if let Ok(m) = row.median() {
            if let Some(first) = &m.load.errors.first {
                println!("  first error: {}", one_line(first));
            }
            if !m.router_view.is_empty() {
                let views: Vec<String> = m
                    .router_view
                    .iter()
                    .map(|v| {
                        let mut s = format!(
                            "{}: in flight {:.1}, latency estimate {:.1} ms ({:.1}..{:.1})",
                            v.node, v.in_flight, v.latency_ms, v.latency_min_ms, v.latency_max_ms
                        );
                        if let (Some(b), Some(q)) = (v.busy, v.queue) {
                            s.push_str(&format!(", reported busy {b:.1} + queue {q:.1}"));
                        }
                        s
                    })
                    .collect();
                println!(
                    "  routerd's view (mean of samples every 200 ms): {}",
                    views.join("; ")
                );
            }
        }
    }
    let disturbed = h
        .rows
        .iter()
        .flat_map(|r| r.rounds.iter().flatten())
        .any(|m| m.foreign_pct > 5.0);
    if disturbed {
        println!(
            "\nSome rounds were disturbed: processes outside the benchmark took over 5% of the CPU."
        );
    }
    println!();
}

fn print_kill(k: &Result<Kill, String>) {
    println!("#### A node SIGKILLed under load (nginx -> routerd least-load with agents)\n");
    println!("| measurement | result |");
    println!("|---|---|");
    let k = match k {
        Ok(k) => k,
        Err(e) => return println!("| kill phase | failed: {} |\n", one_line(e)),
    };
    let l = &k.load;
    let opt = |d: Option<Duration>| d.map_or("not seen".to_owned(), |d| format!("{} ms", ms(d)));
    println!(
        "| load | {:.0} req/s over {:.1} s, p99 {} ms, {} requests ok |",
        l.rps(),
        l.elapsed.as_secs_f64(),
        ms(l.latency.p99),
        l.ok
    );
    println!(
        "| node killed | {} ({} ms per request), master and workers, {:.2} s into the run |",
        k.node,
        k.delay_ms,
        k.kill_at.as_secs_f64()
    );
    println!(
        "| routerd's requests in flight on it, read just before the kill | {} |",
        k.in_flight_before
            .map_or("unknown".to_owned(), |v| format!("{v:.0}"))
    );
    println!(
        "| requests failed | {}: {} after the kill (the last {} after it), {} before |",
        errors(l),
        k.failed_after,
        opt(k.last_failure_after),
        k.failed_before
    );
    println!(
        "| node no longer active in routerd (ejected or gone) | {} after the kill |",
        opt(k.not_active_after)
    );
    println!(
        "| node removed from the pool (agent's lease ran out) | {} after the kill |",
        opt(k.removed_after)
    );
    println!(
        "| failures routerd counted on it after the kill (requests reset, then refused connects) | {:.0}, the last seen {} after the kill |",
        k.node_failures,
        opt(k.last_attempt_after)
    );
    println!(
        "| refused connects retried on another node (invisible to clients) | {:.0} |",
        k.retries
    );
    println!(
        "| requests each node served over the run | {} |",
        l.by_node
            .iter()
            .map(|(n, t)| format!("{n} {}", t.count))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();
    if let Some(first) = &l.errors.first {
        println!("First failure: {}\n", one_line(first));
    }
    println!(
        "Metrics are polled every 20 ms, so the times above are accurate to about that (watched {:.1} s after the kill).\n",
        k.watched.as_secs_f64()
    );
}

fn print_targets(h: &Hetero) {
    let row = |c: Contender| h.rows.iter().find(|r| r.contender == c);
    let nginx = row(Contender::NginxLeastConn);
    let rr = row(Contender::RouterdRoundRobin);
    let fr = row(Contender::FastRouter);
    println!("#### Heterogeneous pool against the targets\n");
    println!("| target | contender | measured (median of per-round ratios) | met |");
    println!("|---|---|---|---|");
    let yes = |b: bool| if b { "yes" } else { "no" };
    for c in [Contender::RouterdLeastLoad, Contender::RouterdAgents] {
        let Some(r) = row(c) else { continue };
        if let Some(b) = nginx {
            if let (Some(p), Some(t)) = (r.ratio(b, p99_ms), r.ratio(b, rps)) {
                println!(
                    "| issue #3: p99 <= 0.3x nginx least_conn's, at >= its req/s | {} | p99 {p:.2}x, req/s {t:.2}x | {} |",
                    c.name(),
                    yes(p <= 0.3 && t >= 1.0)
                );
            }
        }
        if let Some(p) = rr.and_then(|b| r.ratio(b, p99_ms)) {
            println!(
                "| design: p99 <= 0.5x round robin's | {} | {p:.2}x | {} |",
                c.name(),
                yes(p <= 0.5)
            );
        }
        let better: Vec<(f64, &str)> = [nginx, fr]
            .into_iter()
            .flatten()
            .filter_map(|b| Some((r.ratio(b, p99_ms)?, b.contender.name())))
            .collect();
        if !better.is_empty() {
            let text: Vec<String> = better
                .iter()
                .map(|(p, n)| format!("{p:.2}x of {n}"))
                .collect();
            println!(
                "| design: p99 better than nginx least_conn and FastRouter | {} | {} | {} |",
                c.name(),
                text.join(", "),
                yes(better.iter().all(|(p, _)| *p < 1.0))
            );
        }
    }
    if let Some(Ok(k)) = &h.kill {
        // Requests that had reached the node may fail; refused connects must all be retried.
        let reset = k.node_failures - k.retries;
        let failed = k.failed_after + k.failed_before;
        println!(
            "| failures only for requests in flight on the killed node | routerd least-load (agents) | {failed} failed; routerd counted {reset:.0} requests reset on the node and retried {:.0} refused connects elsewhere; {} were in flight on it just before | {} |",
            k.retries,
            k.in_flight_before.map_or("?".to_owned(), |v| format!("{v:.0}")),
            yes(failed as f64 <= reset)
        );
        let out = k
            .not_active_after
            .map_or(f64::INFINITY, |d| d.as_secs_f64());
        println!(
            "| killed node out of the pool within 2 s (agent) | routerd least-load (agents) | {} | {} |",
            k.not_active_after.map_or("not seen".to_owned(), |d| format!("{} ms", ms(d))),
            yes(out <= 2.0)
        );
    }
    println!();
}

/// Errors can span lines; a table cell cannot.
fn one_line(s: &str) -> String {
    let flat = s.replace(['\n', '|'], " ");
    match flat.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &flat[..i]),
        None => flat,
    }
}
