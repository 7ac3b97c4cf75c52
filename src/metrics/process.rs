//! The standard `process_*` series (CPU, memory, file descriptors, threads, start time), read from
//! the kernel at scrape time, so running out of descriptors shows before accepts start failing.

use metrics_process::collector;

use super::text::Writer;
use super::{
    PROCESS_CPU, PROCESS_MAX_FDS, PROCESS_OPEN_FDS, PROCESS_RESIDENT_MEMORY, PROCESS_START_TIME,
    PROCESS_THREADS, PROCESS_VIRTUAL_MEMORY,
};

/// Appends the process families to a scrape body. A value the kernel does not give (no `/proc`)
/// leaves its family out rather than showing a made-up 0.
pub fn render_process(out: &mut String) {
    let m = collector::collect();
    let mut w = Writer::new(out);
    let series = [
        (&PROCESS_CPU, m.cpu_seconds_total),
        (&PROCESS_OPEN_FDS, m.open_fds.map(|v| v as f64)),
        (&PROCESS_MAX_FDS, m.max_fds.map(|v| v as f64)),
        (
            &PROCESS_RESIDENT_MEMORY,
            m.resident_memory_bytes.map(|v| v as f64),
        ),
        (
            &PROCESS_VIRTUAL_MEMORY,
            m.virtual_memory_bytes.map(|v| v as f64),
        ),
        (&PROCESS_START_TIME, m.start_time_seconds.map(|v| v as f64)),
        (&PROCESS_THREADS, m.threads.map(|v| v as f64)),
    ];
    for (family, value) in series {
        if let Some(v) = value {
            w.family(family);
            w.sample(family.name, &[], v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_read_on_linux() {
        let mut out = String::new();
        render_process(&mut out);
        for name in [
            "process_open_fds",
            "process_cpu_seconds_total",
            "process_threads",
        ] {
            let line = out
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} missing:\n{out}"));
            let value: f64 = line[name.len() + 1..].parse().unwrap();
            assert!(value >= 0.0, "{line}");
        }
        assert!(out.contains("# TYPE process_cpu_seconds_total counter\n"));
    }
}
