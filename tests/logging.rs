//! routerd's log as a file or the journal gets it: no colour escape codes when stderr is not a
//! terminal (even without NO_COLOR), and with `--log-format json` (or `log_format = "json"`)
//! one JSON object per line with the event's fields.

mod support;

use std::time::Duration;

use support::binary::{routerd_command, STARTUP};
use support::process::Process;

const CONFIG: &str =
    "[listen]\nuwsgi = [\"127.0.0.1:0\"]\n[control]\nlisten = \"\"\n[metrics]\nlisten = \"\"\n";

/// Runs routerd on `config` until it listens, stops it, and returns its log.
fn log_of(config: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routerd.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = routerd_command(&path);
    // As under systemd: stderr a file, NO_COLOR not set.
    cmd.env_remove("NO_COLOR").args(args);
    let mut routerd = Process::spawn("routerd", cmd, dir.path());
    routerd.poll_log("routerd listening", STARTUP, |log| {
        log.contains("listening for uwsgi clients").then_some(())
    });
    routerd.stop("TERM", Duration::from_secs(10));
    routerd.log()
}

#[test]
fn a_log_file_gets_no_colour_codes() {
    let log = log_of(CONFIG, &[]);
    assert!(log.contains("listening for uwsgi clients"), "{log}");
    assert!(!log.contains('\u{1b}'), "escape codes in the log:\n{log}");
}

#[test]
fn json_lines_parse_with_their_fields() {
    for (config, args) in [
        (CONFIG.to_owned(), vec!["--log-format", "json"]),
        (format!("log_format = \"json\"\n{CONFIG}"), vec![]),
    ] {
        let log = log_of(&config, &args);
        let lines: Vec<serde_json::Value> = log
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let listening = lines
            .iter()
            .find(|l| l["message"] == "listening for uwsgi clients")
            .unwrap_or_else(|| panic!("no listening line in {log}"));
        assert_eq!(listening["level"], "INFO");
        assert!(
            listening["address"]
                .as_str()
                .is_some_and(|a| a.starts_with("127.0.0.1:")),
            "the event's fields are fields: {listening}"
        );
        assert!(listening["timestamp"].is_string());
    }
}
