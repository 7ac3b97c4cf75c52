//! `routerctl top`: a live per-node view, redrawn every interval on the terminal's alternate
//! screen, with request rates computed from the change in request counts; q, Esc or Ctrl-C quit.
//! Without a terminal it prints one frame after another until interrupted.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::{cursor, terminal, QueueableCommand};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::client::Routers;
use super::error::CtlError;
use super::merge::{self, Known};
use super::read::{list_nodes, load, push_routers, weight, with_routers};
use super::table::{age_ms, latency, left, rate, right, short_duration, Table};
use crate::api::NodeInfo;

/// Request counts at one refresh, to turn the next one's into rates.
type Sample = (Instant, HashMap<String, u64>);

/// `routerctl top`.
pub async fn top(
    routers: &mut Routers,
    pool: Option<&str>,
    interval: Duration,
) -> Result<(), CtlError> {
    let (mut screen, mut quit) = Screen::open()?;
    let mut previous: Option<Sample> = None;
    loop {
        routers.reconnect().await;
        let (ok, errors) = tokio::select! {
            r = list_nodes(routers, pool) => r,
            _ = quit.recv() => return Ok(()),
        };
        let nodes = merge::nodes(&ok);
        let now = Instant::now();
        let rates = rates(previous.as_ref(), now, &nodes);
        previous = Some((now, totals(&nodes)));
        let mut lines = vec![format!(
            "routerctl top  {}  {} node(s) on {} router(s), every {}; q quits",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
            nodes.len(),
            routers.list.len(),
            short_duration(interval)
        )];
        lines.extend(errors.iter().map(|e| format!("! {e}")));
        lines.push(String::new());
        lines.extend(
            frame(&nodes, &rates, routers.list.len() > 1)
                .lines()
                .map(str::to_owned),
        );
        screen.draw(&lines)?;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = quit.recv() => return Ok(()),
        }
    }
}

fn totals(nodes: &[Known<NodeInfo>]) -> HashMap<String, u64> {
    nodes
        .iter()
        .map(|n| (n.info.id.clone(), n.info.requests_total))
        .collect()
}

/// Requests per second of each node since the previous sample; none on the first frame.
fn rates(
    previous: Option<&Sample>,
    now: Instant,
    nodes: &[Known<NodeInfo>],
) -> HashMap<String, f64> {
    let Some((then, before)) = previous else {
        return HashMap::new();
    };
    let secs = now.duration_since(*then).as_secs_f64().max(1e-3);
    nodes
        .iter()
        .filter_map(|n| {
            let b = before.get(&n.info.id)?;
            // A count that went down belongs to a router that restarted: no rate this time.
            let delta = n.info.requests_total.checked_sub(*b)?;
            Some((n.info.id.clone(), delta as f64 / secs))
        })
        .collect()
}

fn frame(nodes: &[Known<NodeInfo>], rates: &HashMap<String, f64>, show_routers: bool) -> String {
    let mut cols = vec![
        left("POOL"),
        left("NODE"),
        left("STATE"),
        right("WEIGHT"),
        right("IN-FLIGHT"),
        right("REQ/S"),
        right("ERRORS"),
        right("LATENCY"),
        right("BUSY/CAP"),
        right("QUEUE"),
        right("REPORT"),
    ];
    with_routers(&mut cols, show_routers);
    let mut t = Table::new(&cols);
    for n in nodes {
        let i = &n.info;
        let mut row = vec![
            i.pool.clone(),
            i.id.clone(),
            i.state.clone(),
            weight(i),
            i.in_flight.to_string(),
            rates
                .get(&i.id)
                .map_or_else(|| "-".to_owned(), |r| rate(*r)),
            i.errors_total.to_string(),
            latency(i.latency_ms),
            load(i),
            i.queue.to_string(),
            age_ms(i.report_age_ms),
        ];
        push_routers(&mut row, &n.routers, show_routers);
        t.row(row);
    }
    t.render()
}

/// The terminal while top runs: raw mode and the alternate screen, restored when dropped; a
/// thread reading keys. Without a terminal, plain frames and Ctrl-C.
struct Screen {
    tty: bool,
    stop: Arc<AtomicBool>,
    keys: Option<std::thread::JoinHandle<()>>,
}

impl Screen {
    fn open() -> Result<(Self, mpsc::Receiver<()>), CtlError> {
        let (tx, rx) = mpsc::channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let tty = std::io::stdout().is_terminal();
        let mut screen = Self {
            tty,
            stop: stop.clone(),
            keys: None,
        };
        if !tty {
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    let _ = tx.send(()).await;
                }
            });
            return Ok((screen, rx));
        }
        let fail = |e: std::io::Error| CtlError::Failed(format!("cannot use the terminal: {e}"));
        terminal::enable_raw_mode().map_err(fail)?;
        let mut out = std::io::stdout();
        out.queue(terminal::EnterAlternateScreen)
            .and_then(|o| o.queue(cursor::Hide))
            .and_then(|o| o.flush())
            .map_err(fail)?;
        screen.keys = Some(std::thread::spawn(move || read_keys(&stop, &tx)));
        Ok((screen, rx))
    }

    fn draw(&mut self, lines: &[String]) -> Result<(), CtlError> {
        let mut out = std::io::stdout().lock();
        if !self.tty {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            return out
                .write_all(format!("{text}\n").as_bytes())
                .map_err(CtlError::Output);
        }
        let (width, height) = terminal::size().unwrap_or((80, 24));
        let result = (|| {
            out.queue(cursor::MoveTo(0, 0))?;
            for (i, l) in fit(lines, width.into(), height.into()).iter().enumerate() {
                if i > 0 {
                    out.write_all(b"\r\n")?;
                }
                out.write_all(l.as_bytes())?;
                out.queue(terminal::Clear(terminal::ClearType::UntilNewLine))?;
            }
            out.queue(terminal::Clear(terminal::ClearType::FromCursorDown))?;
            out.flush()
        })();
        result.map_err(CtlError::Output)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(keys) = self.keys.take() {
            let _ = keys.join();
        }
        if self.tty {
            let mut out = std::io::stdout();
            let _ = out
                .queue(cursor::Show)
                .and_then(|o| o.queue(terminal::LeaveAlternateScreen))
                .and_then(|o| o.flush());
            let _ = terminal::disable_raw_mode();
        }
    }
}

/// Reads keys until a quitting one (q, Esc, Ctrl-C) or until told to stop.
fn read_keys(stop: &AtomicBool, quit: &mpsc::Sender<()>) {
    while !stop.load(Relaxed) {
        match event::poll(Duration::from_millis(100)) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(_) => return,
        }
        let Ok(Event::Key(k)) = event::read() else {
            continue;
        };
        let ctrl_c = k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
        let quits = matches!(k.code, KeyCode::Char('q' | 'Q') | KeyCode::Esc) || ctrl_c;
        if quits && k.kind != KeyEventKind::Release {
            let _ = quit.blocking_send(());
            return;
        }
    }
}

/// The lines cut to the screen: each to `width` characters, and at most `height` of them, the
/// last saying how many did not fit.
fn fit(lines: &[String], width: usize, height: usize) -> Vec<String> {
    let height = height.max(2);
    let mut shown: Vec<String> = lines
        .iter()
        .take(height)
        .map(|l| l.chars().take(width).collect())
        .collect();
    if lines.len() > height {
        shown.truncate(height - 1);
        shown.push(format!("... {} more", lines.len() - (height - 1)));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, requests: u64) -> Known<NodeInfo> {
        Known {
            info: NodeInfo {
                id: id.into(),
                requests_total: requests,
                ..Default::default()
            },
            routers: vec![],
        }
    }

    #[test]
    fn rates_come_from_request_count_deltas() {
        let t0 = Instant::now();
        let before = (t0, totals(&[node("a", 10), node("b", 50)]));
        let now = t0 + Duration::from_secs(2);
        let r = rates(
            Some(&before),
            now,
            &[node("a", 30), node("b", 40), node("c", 5)],
        );
        assert_eq!(r.get("a"), Some(&10.0));
        assert_eq!(r.get("b"), None, "counter went down: router restarted");
        assert_eq!(r.get("c"), None, "new node: no rate yet");
        assert!(rates(None, now, &[node("a", 1)]).is_empty());
    }

    #[test]
    fn frames_fit_the_screen() {
        let lines: Vec<String> = (0..10).map(|i| format!("line {i} is long")).collect();
        let shown = fit(&lines, 6, 4);
        assert_eq!(shown, ["line 0", "line 1", "line 2", "... 7 more"]);
        assert_eq!(fit(&lines[..2], 80, 4).len(), 2);
    }
}
