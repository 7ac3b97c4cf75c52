//! What recording a request's metrics costs on the hot path, in ns per request:
//!
//! ```sh
//! cargo run --release --example metrics_hot_path          # with the Prometheus recorder
//! cargo run --release --example metrics_hot_path -- off   # no recorder (metrics.listen = "")
//! ```
//!
//! Each line times N requests' worth of recording on 1 and on 2 threads (the same node, the worst
//! case for contention): what routerd does now (`start_request`, `connected` and `finish_request`:
//! atomics on the node, its latency estimate and health, pre-registered per-pool histograms), and,
//! for comparison, the same series recorded
//! through the `metrics` macros with labels on every call (a registry lookup per request).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use uwsgi_router::cluster::{Pool, PoolSettings};
use uwsgi_router::metrics;
use uwsgi_router::node::{Evidence, Node, Outcome, Source};

const N: u32 = 2_000_000;

fn time(threads: u32, work: impl Fn(u32) + Sync) -> f64 {
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for i in 0..N {
                    work(i);
                }
            });
        }
    });
    started.elapsed().as_nanos() as f64 / f64::from(N)
}

fn main() {
    let on = std::env::args().nth(1).as_deref() != Some("off");
    if on {
        metrics::install().expect("no other recorder");
    }
    let pool = Pool::new("web", PoolSettings::default(), Default::default());
    let node = Arc::new(Node::new(
        "10.0.0.1:3031",
        "10.0.0.1:3031".parse().unwrap(),
        Source::Static,
        1,
    ));
    let (pool_name, node_id): (Arc<str>, Arc<str>) = (pool.name.clone(), node.id().clone());
    let took = |i: u32| Duration::from_micros(u64::from(i % 5000));

    println!("recorder: {}", if on { "installed" } else { "none" });
    for threads in [1, 2] {
        let empty = time(threads, |i| {
            black_box(took(i));
        });
        let now = time(threads, |i| {
            let request = node.start_request();
            pool.metrics.connected(took(i));
            let answered = Evidence::Answered(took(i), Some(200));
            pool.finish_request(request, Outcome::Responded(Some(200)), answered, took(i));
        });
        let lookups = time(threads, |i| {
            ::metrics::counter!("bench_requests_total", "pool" => pool_name.clone(), "node" => node_id.clone(), "outcome" => "ok").increment(1);
            ::metrics::histogram!("bench_request_duration_seconds", "pool" => pool_name.clone())
                .record(took(i).as_secs_f64());
            ::metrics::histogram!("bench_connect_duration_seconds", "pool" => pool_name.clone())
                .record(took(i).as_secs_f64());
        });
        println!(
            "{threads} thread(s): empty loop {empty:.1} ns/request, routerd's recording {:.1} ns/request, macros with labels per call {:.1} ns/request",
            now - empty,
            lookups - empty
        );
    }
    if on {
        let body = uwsgi_router::scrape::render(&Default::default(), None);
        assert!(body.contains("uwsgi_router_request_duration_seconds_count{pool=\"web\"}"));
    }
}
