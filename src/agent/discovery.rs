//! Router discovery: the agent's routers are its `--router` URLs plus every address of each
//! `dns:///NAME:PORT`, resolved with the system resolver (`/etc/hosts`, then DNS) at start and
//! each `router_resolve_interval`. A failed resolution (an error, a timeout, no address) keeps
//! the routers that name gave last, so a DNS outage never drops a router; it is logged once, then
//! at most once a minute while it lasts, and retried sooner (with backoff) until it resolves.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::config::{DnsName, RouterTarget};
use super::counters::AgentCounters;
use super::router_set::{RouterSet, Wanted};

/// Bound on one resolution (the system resolver's own retries can take longer).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
/// While a name keeps failing, a warning at most this often (the others at debug).
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

/// Why a name gave no routers this time.
#[derive(Debug, thiserror::Error)]
enum ResolveError {
    /// The resolver answered with an error.
    #[error("{0}")]
    Lookup(#[source] std::io::Error),
    /// The resolver did not answer in time.
    #[error("no answer within {RESOLVE_TIMEOUT:?}")]
    Timeout,
    /// The name has no A or AAAA record.
    #[error("no address")]
    Empty,
}

/// One `dns:///` name: the addresses it gave last, and its failures since.
struct Name {
    target: DnsName,
    addrs: BTreeSet<IpAddr>,
    failing: Option<Failing>,
}

/// A run of failed resolutions of one name.
struct Failing {
    attempts: u64,
    since: Instant,
    logged: Instant,
}

/// The discovery task: the router set and what feeds it.
pub(crate) struct Discovery {
    pub(crate) routers: RouterSet,
    pub(crate) targets: Vec<RouterTarget>,
    pub(crate) every: Duration,
    pub(crate) counters: Arc<AgentCounters>,
    pub(crate) stop: CancellationToken,
}

impl Discovery {
    /// Starts the sessions of the URLs, then resolves the names each interval and keeps the
    /// sessions matching, until stop; then waits for every session to drain and leave.
    pub(crate) async fn run(mut self) {
        let mut names: Vec<Name> = self
            .targets
            .iter()
            .filter_map(|t| match t {
                RouterTarget::Dns(target) => Some(Name {
                    target: target.clone(),
                    addrs: BTreeSet::new(),
                    failing: None,
                }),
                RouterTarget::Url(_) => None,
            })
            .collect();
        self.routers.set(wanted(&self.targets, &names));
        let mut backoff = Backoff::new();
        while !names.is_empty() {
            tokio::select! {
                () = resolve_all(&mut names, &self.counters) => {}
                () = self.stop.cancelled() => break,
            }
            self.routers.set(wanted(&self.targets, &names));
            let delay = if names.iter().any(|n| n.failing.is_some()) {
                backoff.next_delay().min(self.every)
            } else {
                backoff.reset();
                self.every
            };
            if !self.wait(Instant::now() + delay).await {
                break;
            }
        }
        // Without names, or stopping: only sessions ending are left to handle.
        self.wait_stop().await;
        self.routers.join_all().await;
    }

    /// Until `deadline`, tends the sessions that end; false when stop came first.
    async fn wait(&mut self, deadline: Instant) -> bool {
        loop {
            tokio::select! {
                () = sleep_until(deadline) => return true,
                () = self.stop.cancelled() => return false,
                Some(id) = self.routers.next_end() => self.routers.ended(id),
            }
        }
    }

    /// Until stop, tends the sessions that end.
    async fn wait_stop(&mut self) {
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                Some(id) = self.routers.next_end() => self.routers.ended(id),
            }
        }
    }
}

/// The URLs wanted: every `--router` URL, and each address of each name (an address that is
/// also a URL given has one session, as that URL).
fn wanted(targets: &[RouterTarget], names: &[Name]) -> Wanted {
    let mut wanted = Wanted::new();
    for target in targets {
        if let RouterTarget::Url(url) = target {
            wanted.entry(url.clone()).or_insert(None);
        }
    }
    for name in names {
        let tls_name = name.target.tls.then(|| name.target.host.clone());
        for ip in &name.addrs {
            wanted
                .entry(name.target.url(*ip))
                .or_insert_with(|| tls_name.clone());
        }
    }
    wanted
}

/// Resolves every name at once and records what each gave.
async fn resolve_all(names: &mut [Name], counters: &AgentCounters) {
    let lookups: Vec<_> = names
        .iter()
        .map(|n| tokio::spawn(resolve(n.target.host.clone(), n.target.port)))
        .collect();
    for (name, lookup) in names.iter_mut().zip(lookups) {
        let result = lookup
            .await
            .unwrap_or_else(|e| Err(ResolveError::Lookup(std::io::Error::other(e))));
        match result {
            Ok(addrs) => name.resolved(addrs),
            Err(e) => {
                AgentCounters::inc(&counters.resolve_failures);
                name.failed(&e);
            }
        }
    }
}

/// The addresses of `host` (A and AAAA), by the system resolver.
async fn resolve(host: String, port: u16) -> Result<BTreeSet<IpAddr>, ResolveError> {
    let addrs = timeout(
        RESOLVE_TIMEOUT,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    .map_err(|_| ResolveError::Timeout)?
    .map_err(ResolveError::Lookup)?;
    let ips: BTreeSet<IpAddr> = addrs.map(|a| a.ip()).collect();
    if ips.is_empty() {
        return Err(ResolveError::Empty);
    }
    Ok(ips)
}

impl Name {
    /// Takes the addresses of a resolution that succeeded, logging what changed.
    fn resolved(&mut self, addrs: BTreeSet<IpAddr>) {
        if let Some(f) = self.failing.take() {
            tracing::info!(name = %self.target, failures = f.attempts, "the routers' name resolves again");
        }
        if addrs == self.addrs {
            return;
        }
        let added: Vec<String> = addrs
            .difference(&self.addrs)
            .map(|ip| ip.to_string())
            .collect();
        let removed: Vec<String> = self
            .addrs
            .difference(&addrs)
            .map(|ip| ip.to_string())
            .collect();
        tracing::info!(name = %self.target, routers = addrs.len(), added = ?added, removed = ?removed, "the routers' name resolved");
        self.addrs = addrs;
    }

    /// Keeps the addresses of the last success; logs the first failure of a run and then at most
    /// one per [`FAILURE_LOG_EVERY`].
    fn failed(&mut self, error: &ResolveError) {
        let now = Instant::now();
        let kept = self.addrs.len();
        let Some(f) = &mut self.failing else {
            self.failing = Some(Failing {
                attempts: 1,
                since: now,
                logged: now,
            });
            tracing::warn!(name = %self.target, %error, kept, "cannot resolve the routers' name; keeping the routers it gave last and retrying");
            return;
        };
        f.attempts += 1;
        if now.duration_since(f.logged) >= FAILURE_LOG_EVERY {
            f.logged = now;
            let failing_for = now.duration_since(f.since);
            tracing::warn!(name = %self.target, %error, kept, failures = f.attempts, ?failing_for, "still cannot resolve the routers' name; keeping the routers it gave last");
        } else {
            tracing::debug!(name = %self.target, %error, kept, failures = f.attempts, "cannot resolve the routers' name");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(host: &str, tls: bool, addrs: &[&str]) -> Name {
        Name {
            target: DnsName {
                host: host.to_owned(),
                port: 9032,
                tls,
            },
            addrs: ips(addrs),
            failing: None,
        }
    }

    fn ips(addrs: &[&str]) -> BTreeSet<IpAddr> {
        addrs.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn a_failed_resolution_keeps_the_routers_and_a_success_replaces_them() {
        let mut n = name("routers.test", false, &["10.0.0.2", "10.0.0.3"]);
        n.failed(&ResolveError::Timeout);
        n.failed(&ResolveError::Empty);
        assert_eq!(n.addrs, ips(&["10.0.0.2", "10.0.0.3"]));
        assert_eq!(n.failing.as_ref().map(|f| f.attempts), Some(2));
        n.resolved(ips(&["10.0.0.3", "10.0.0.4"]));
        assert_eq!(n.addrs, ips(&["10.0.0.3", "10.0.0.4"]));
        assert!(n.failing.is_none());
    }

    #[test]
    fn urls_and_the_addresses_of_names_are_wanted_once_each() {
        let targets = [
            RouterTarget::Url("http://10.0.0.3:9032".into()),
            RouterTarget::Dns(name("plain.test", false, &[]).target),
            RouterTarget::Dns(name("tls.test", true, &[]).target),
        ];
        let names = [
            name("plain.test", false, &["10.0.0.2", "10.0.0.3", "fd00::2"]),
            name("tls.test", true, &["10.0.0.5"]),
        ];
        let wanted = wanted(&targets, &names);
        let expected: Wanted = [
            ("http://10.0.0.2:9032", None),
            ("http://10.0.0.3:9032", None),
            ("http://[fd00::2]:9032", None),
            ("https://10.0.0.5:9032", Some("tls.test")),
        ]
        .into_iter()
        .map(|(u, n)| (u.to_owned(), n.map(str::to_owned)))
        .collect();
        assert_eq!(wanted, expected);
    }

    #[tokio::test]
    async fn the_system_resolver_reads_etc_hosts() {
        let addrs = resolve("localhost".to_owned(), 9032).await.unwrap();
        assert!(addrs.iter().all(|ip| ip.is_loopback()), "{addrs:?}");
    }
}
