//! What can go wrong in routerctl, classified by cause: each error has its exit code and a
//! one-line message that tells the operator what to do next.

use tonic::{Code, Status};

/// Exit code of an operation that failed (the message says why).
pub const EXIT_FAILED: u8 = 1;
/// Exit code of a usage error (clap's own).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when a router cannot be reached or refuses the credentials.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code when some routers answered and others could not be reached: the output is theirs.
pub const EXIT_PARTIAL: u8 = 4;

/// Why a routerctl command failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// No connection to the router, or it stopped answering.
    #[error("cannot reach router {router}: {cause} — {}", reach_hint(router))]
    Unreachable {
        /// The router's URL.
        router: String,
        /// What the connection attempt ran into.
        cause: String,
    },
    /// The router refused the credentials.
    #[error("router {router} refused the credentials ({cause}) — give an admin token with --token-file or ROUTERCTL_TOKEN_FILE (a token of the router's [control] admin_token_files)")]
    Unauthorised {
        /// The router's URL.
        router: String,
        /// The router's answer.
        cause: String,
    },
    /// The router answered the request with an error.
    #[error("{action} failed on {router}: {message}{}", refusal_hint(action, *code))]
    Refused {
        /// What was asked ("drain", "reload", ...).
        action: &'static str,
        /// The router's URL.
        router: String,
        /// The gRPC status code.
        code: Code,
        /// The router's explanation.
        message: String,
    },
    /// Something failed on this side, or did not complete in time; the text says what.
    #[error("{0}")]
    Failed(String),
    /// Some routers answered, these could not be reached (each already reported on stderr).
    #[error("{} of {total} routers could not be reached ({}): the output shows what the others say", unreachable.len(), unreachable.join(", "))]
    Partial {
        /// The URLs of those that did not answer.
        unreachable: Vec<String>,
        /// Routers asked.
        total: usize,
    },
    /// Writing to stdout failed.
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
}

impl CtlError {
    /// Classifies a failed call to `router` by its status code.
    pub fn from_status(action: &'static str, router: &str, status: &Status) -> Self {
        let router = router.to_owned();
        match status.code() {
            // A status with a source was made on this side from a connection failure; the
            // router's own answers carry none.
            Code::Unavailable => Self::Unreachable {
                router,
                cause: status_cause(status),
            },
            _ if std::error::Error::source(status).is_some() => Self::Unreachable {
                router,
                cause: status_cause(status),
            },
            Code::Unimplemented => Self::Unreachable {
                router,
                cause: "it does not serve the Admin API (is this routerd's control listener?)"
                    .to_owned(),
            },
            Code::Unauthenticated | Code::PermissionDenied => Self::Unauthorised {
                router,
                cause: status.message().to_owned(),
            },
            code => Self::Refused {
                action,
                router,
                code,
                message: one_line(status.message()),
            },
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Unreachable { .. } | Self::Unauthorised { .. } => EXIT_UNREACHABLE,
            Self::Partial { .. } => EXIT_PARTIAL,
            // `routerctl watch | head` ends when head does: not a failure.
            Self::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
            _ => EXIT_FAILED,
        }
    }

    /// The router this error is about, when it could not be reached (or refused the
    /// credentials).
    pub fn unreachable_router(&self) -> Option<&str> {
        match self {
            Self::Unreachable { router, .. } | Self::Unauthorised { router, .. } => Some(router),
            _ => None,
        }
    }

    /// Whether there is anything to tell the operator (a closed pipe is not worth a line).
    pub fn is_silent(&self) -> bool {
        self.exit_code() == 0
    }
}

/// A router's message on one line: a list of problems ("invalid config:\n  - a: ...\n  - b: ...")
/// becomes "invalid config: a: ...; b: ...".
fn one_line(message: &str) -> String {
    let mut parts = message
        .lines()
        .map(|l| l.trim().trim_start_matches("- ").trim())
        .filter(|l| !l.is_empty());
    let mut text = parts.next().unwrap_or_default().to_owned();
    for (i, part) in parts.enumerate() {
        text.push_str(if i == 0 && text.ends_with(':') {
            " "
        } else {
            "; "
        });
        text.push_str(part);
    }
    text
}

fn reach_hint(router: &str) -> &'static str {
    if router.starts_with("https://") {
        "is routerd running with [control] listen and tls_cert? check --tls-ca (and --tls-cert/--tls-key for mTLS); set --router or ROUTERCTL_ROUTER"
    } else {
        "is routerd running with [control] listen (https:// if it has tls_cert)? set --router or ROUTERCTL_ROUTER"
    }
}

fn refusal_hint(action: &str, code: Code) -> &'static str {
    match (action, code) {
        ("reload", _) => {
            " — fix the config file and run `routerctl reload` again; the old config stays in force"
        }
        (_, Code::InvalidArgument) => " — see `routerctl help`",
        _ => "",
    }
}

/// The most telling cause of a transport failure: the OS error if there is one ("connection
/// refused"), else the innermost message. Looked up by type, never by message text.
pub fn cause_of(e: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        innermost = s.to_string();
        source = s.source();
    }
    io_cause(e).unwrap_or(innermost)
}

/// The cause of a failed call: the OS error under it if any, else the status message.
fn status_cause(status: &Status) -> String {
    io_cause(status).unwrap_or_else(|| status.message().to_owned())
}

fn io_cause(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            // An OS error reads best as its kind; a wrapped one (TLS) as itself.
            return Some(match (io.raw_os_error(), io.get_ref()) {
                (Some(_), _) | (None, None) => io.kind().to_string(),
                (None, Some(inner)) => inner.to_string(),
            });
        }
        source = s.source();
    }
    None
}

/// The end of a read over `total` routers, some of which `answered` (their output printed):
/// when every error is an unreachable router, each is told on stderr and the exit code says the
/// output is partial; otherwise as [`worst`].
pub fn partial(answered: bool, total: usize, errors: Vec<CtlError>) -> Result<(), CtlError> {
    let all_unreachable = errors.iter().all(|e| e.unreachable_router().is_some());
    if !answered || errors.is_empty() || !all_unreachable {
        return worst(errors);
    }
    for e in &errors {
        eprintln!("routerctl: {e}");
    }
    Err(CtlError::Partial {
        unreachable: unreachable_routers(&errors),
        total,
    })
}

/// The URLs of the routers `errors` say could not be reached.
pub fn unreachable_routers(errors: &[CtlError]) -> Vec<String> {
    errors
        .iter()
        .filter_map(|e| e.unreachable_router().map(str::to_owned))
        .collect()
}

/// Of several errors, the one that decides the exit code (unreachable beats failed); the others
/// are printed on stderr first, one line each.
pub fn worst(errors: Vec<CtlError>) -> Result<(), CtlError> {
    // `rev`: of equals, max_by_key keeps the last, and the first one named should win.
    let Some(pick) = (0..errors.len())
        .rev()
        .max_by_key(|&i| errors[i].exit_code())
    else {
        return Ok(());
    };
    let mut errors = errors;
    let chosen = errors.remove(pick);
    for e in errors.iter().filter(|e| !e.is_silent()) {
        eprintln!("routerctl: {e}");
    }
    Err(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_by_code() {
        let e = |s: Status| CtlError::from_status("drain", "http://r", &s);
        assert_eq!(e(Status::unavailable("x")).exit_code(), EXIT_UNREACHABLE);
        assert_eq!(
            e(Status::unauthenticated("x")).exit_code(),
            EXIT_UNREACHABLE
        );
        assert_eq!(e(Status::unimplemented("x")).exit_code(), EXIT_UNREACHABLE);
        assert_eq!(e(Status::not_found("x")).exit_code(), EXIT_FAILED);
        let broken = Status::failed_precondition(
            "invalid config:\n  - routes[0].pool: no pool\n  - listen: bad\n",
        );
        let text = CtlError::from_status("reload", "http://r", &broken).to_string();
        assert!(
            text.starts_with("reload failed on http://r: invalid config: routes[0].pool: no pool; listen: bad — "),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }

    #[test]
    fn the_worst_error_decides_the_exit_code() {
        let failed = CtlError::Failed("x".into());
        let down = CtlError::Unreachable {
            router: "http://r".into(),
            cause: "connection refused".into(),
        };
        assert_eq!(
            worst(vec![failed, down]).unwrap_err().exit_code(),
            EXIT_UNREACHABLE
        );
        assert!(worst(Vec::new()).is_ok());
    }
}
