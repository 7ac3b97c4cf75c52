//! `[access_log]`: one line per request, off unless enabled, to stderr or a file; and
//! `[request_id]`, the id each request carries to its node, its log line and the router's replies.

use std::path::PathBuf;

use serde::Deserialize;

use super::Problems;

/// Default of `access_log.queue_size`.
pub const DEFAULT_ACCESS_LOG_QUEUE: usize = 4096;
/// Upper bound of `access_log.queue_size`.
const MAX_ACCESS_LOG_QUEUE: usize = 1 << 20;

/// `[access_log]`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogConfig {
    /// Where the lines go; `None` (the default): no access log.
    pub target: Option<AccessLogTarget>,
    /// How a line is written.
    pub format: AccessLogFormat,
    /// Lines waiting for the writer at most; a line that finds the queue full is dropped (and
    /// counted), so a slow disk never slows a request.
    pub queue_size: usize,
}

/// Where access log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// routerd's stderr, with its own log lines (`path = ""`).
    Stderr,
    /// A file, appended to, created if missing, reopened on SIGUSR1 (for logrotate).
    File(PathBuf),
}

/// The shape of an access log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessLogFormat {
    /// One JSON object per line, every field named.
    #[default]
    Json,
    /// nginx's `combined` line, then the router's own fields as `key=value`.
    Combined,
}

/// `[access_log]` as written; each key is described on [`AccessLogConfig`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAccessLog {
    pub(super) enabled: bool,
    /// `""`: stderr; else an absolute file path.
    pub(super) path: String,
    pub(super) format: AccessLogFormat,
    pub(super) queue_size: usize,
}

impl Default for RawAccessLog {
    fn default() -> Self {
        Self {
            enabled: false,
            path: String::new(),
            format: AccessLogFormat::default(),
            queue_size: DEFAULT_ACCESS_LOG_QUEUE,
        }
    }
}

impl RawAccessLog {
    /// The typed `[access_log]`, every problem recorded in `p`.
    pub(super) fn build(&self, p: &mut Problems) -> AccessLogConfig {
        if !(1..=MAX_ACCESS_LOG_QUEUE).contains(&self.queue_size) {
            p.add(
                "access_log.queue_size",
                format_args!("use 1 to {MAX_ACCESS_LOG_QUEUE} lines"),
            );
        }
        let path = PathBuf::from(&self.path);
        let target = if self.path.is_empty() {
            AccessLogTarget::Stderr
        } else if path.is_absolute() && path.file_name().is_some() {
            AccessLogTarget::File(path)
        } else {
            p.add(
                "access_log.path",
                format_args!(
                    "{:?} is not an absolute file path: write e.g. \"/var/log/uwsgi-router/access.log\", or \"\" for stderr",
                    self.path
                ),
            );
            AccessLogTarget::Stderr
        };
        AccessLogConfig {
            target: self.enabled.then_some(target),
            format: self.format,
            queue_size: self.queue_size,
        }
    }
}

/// `[request_id]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestIdConfig {
    /// Give every request an id: the client's `X-Request-Id` (`HTTP_X_REQUEST_ID`) when usable,
    /// else a new one added to the vars the node gets.
    pub enabled: bool,
}

impl Default for RequestIdConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{AccessLogFormat, AccessLogTarget, Config};

    #[test]
    fn off_by_default_and_stderr_unless_a_path_is_given() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.access_log.target, None);
        assert!(c.request_id.enabled);
        let c = Config::parse("[access_log]\nenabled = true\n").unwrap();
        assert_eq!(c.access_log.target, Some(AccessLogTarget::Stderr));
        assert_eq!(c.access_log.format, AccessLogFormat::Json);
        let c = Config::parse(
            "[access_log]\nenabled = true\npath = \"/var/log/a.log\"\nformat = \"combined\"\n\
             [request_id]\nenabled = false\n",
        )
        .unwrap();
        assert_eq!(
            c.access_log.target,
            Some(AccessLogTarget::File("/var/log/a.log".into()))
        );
        assert_eq!(c.access_log.format, AccessLogFormat::Combined);
        assert!(!c.request_id.enabled);
    }

    #[test]
    fn names_each_bad_key_and_what_to_write() {
        let e = Config::parse("[access_log]\npath = \"access.log\"\nqueue_size = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("access_log.queue_size: use 1 to 1048576 lines"),
            "{e}"
        );
        assert!(
            e.contains("access_log.path: \"access.log\" is not an absolute file path"),
            "{e}"
        );
        let e = Config::parse("[access_log]\nformat = \"xml\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("json") && e.contains("combined"), "{e}");
    }
}
