//! The Prometheus recorder behind the `metrics` facade (installed once per process, with buckets
//! that fit web latencies), and its part of the `/metrics` body.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use super::{CONNECT_DURATION, REQUEST_DURATION};

/// Request duration buckets, in seconds: 1 ms to 60 s.
pub const REQUEST_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// Connect duration buckets, in seconds: 100 µs (same host) to 5 s.
pub const CONNECT_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder; later calls return the
/// same handle. `None` if some other recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.name.into()), &REQUEST_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(CONNECT_DURATION.name.into()), &CONNECT_BUCKETS)
                })
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    super::describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "another metrics recorder is installed; /metrics shows only the per-node series");
                    None
                }
            }
        })
        .as_ref()
}

/// The recorder's series in the text format (empty without a recorder).
pub fn render_recorder() -> String {
    HANDLE
        .get()
        .and_then(Option::as_ref)
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// Folds histogram samples into buckets every few seconds until `shutdown`, so that memory stays
/// bounded when nobody scrapes.
pub async fn upkeep(shutdown: CancellationToken) {
    let Some(handle) = HANDLE.get().and_then(Option::as_ref) else {
        return;
    };
    let mut tick = tokio::time::interval(UPKEEP);
    loop {
        tokio::select! {
            _ = tick.tick() => handle.run_upkeep(),
            () = shutdown.cancelled() => return,
        }
    }
}
