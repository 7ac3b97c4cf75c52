//! Bounds on the connections of an operations listener (the gRPC control plane, the metrics
//! endpoint), so that clients which connect and send nothing cannot hold file descriptors the
//! uwsgi listener needs, nor lock out the clients the listener is for.
//!
//! Each listener has its own [`Limiter`]: at most `max` connections at once. A connection is
//! *unproven* until it shows it is a real client (the control plane: its first call passes the
//! credentials; the metrics endpoint: its request head arrived); the listener closes unproven
//! connections after a deadline. When every slot is taken, the oldest unproven connection is
//! closed to make room for the next one, so a flood of idle connections costs a legitimate client
//! nothing but a few accepts; only when every slot holds a proven connection does the listener
//! stop accepting (new connections then wait in the kernel's backlog).
//!
//! [`raise_nofile_limit`] and [`share_of_fds`] size those limits against the process's
//! `RLIMIT_NOFILE`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;

/// Evictions are logged at most this often (a flood would otherwise log every connection).
const WARN_EVERY_MS: u64 = 10_000;
/// `last_warn_ms` before the first warning.
const NEVER: u64 = u64::MAX;

/// The connection limit of one listener. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Limiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Names the listener and its config key in logs: `control.max_connections`.
    key: &'static str,
    max: usize,
    state: Mutex<State>,
    /// A connection closed: room may have been made.
    freed: Notify,
    evicted_since_warn: AtomicU64,
    last_warn_ms: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// Connections open (accepted, not yet closed), proven or not.
    live: usize,
    /// The unproven ones, oldest first.
    unproven: BTreeMap<u64, Unproven>,
    /// Unproven ones by (local, remote) address, for [`Limiter::prove_peer`].
    by_peer: HashMap<(SocketAddr, SocketAddr), u64>,
    /// An eviction was asked and its connection has not closed yet.
    evicting: bool,
    next_id: u64,
}

#[derive(Debug)]
struct Unproven {
    evict: CancellationToken,
    proven: Arc<AtomicBool>,
    peer: Option<(SocketAddr, SocketAddr)>,
}

impl Limiter {
    /// A limit of `max` connections (at least 1), named by its config key.
    pub fn new(key: &'static str, max: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                key,
                max: max.max(1),
                state: Mutex::default(),
                freed: Notify::new(),
                evicted_since_warn: AtomicU64::new(0),
                last_warn_ms: AtomicU64::new(NEVER),
            }),
        }
    }

    /// The limit.
    pub fn max(&self) -> usize {
        self.inner.max
    }

    /// Connections open now.
    pub fn live(&self) -> usize {
        self.inner.lock().live
    }

    /// Returns once a connection may be accepted without going over the limit. While the listener
    /// is full, closes the oldest unproven connection to make room; if every one is proven, waits
    /// for one to close.
    pub async fn make_room(&self) {
        loop {
            let freed = self.inner.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut st = self.inner.lock();
                if st.live < self.inner.max {
                    return;
                }
                if !st.evicting {
                    if let Some((id, _)) = st.unproven.first_key_value() {
                        let id = *id;
                        let u = st.remove_unproven(id).expect("just seen");
                        st.evicting = true;
                        u.evict.cancel();
                        self.inner.note_eviction();
                    }
                }
            }
            freed.await;
        }
    }

    /// Counts a just-accepted connection, unproven, from `peer` (local, remote) when known.
    pub fn admit(&self, peer: Option<(SocketAddr, SocketAddr)>) -> Ticket {
        let evict = CancellationToken::new();
        let proven = Arc::new(AtomicBool::new(false));
        let mut st = self.inner.lock();
        st.live += 1;
        let id = st.next_id;
        st.next_id += 1;
        if let Some(p) = peer {
            st.by_peer.insert(p, id);
        }
        st.unproven.insert(
            id,
            Unproven {
                evict: evict.clone(),
                proven: proven.clone(),
                peer,
            },
        );
        Ticket {
            inner: self.inner.clone(),
            id,
            evict,
            proven,
        }
    }

    /// Marks the connection between `local` and `remote` proven (its first call passed the
    /// credentials). Unknown or already proven connections are ignored.
    pub fn prove_peer(&self, local: Option<SocketAddr>, remote: Option<SocketAddr>) {
        let (Some(local), Some(remote)) = (local, remote) else {
            return;
        };
        let mut st = self.inner.lock();
        if let Some(id) = st.by_peer.get(&(local, remote)).copied() {
            if let Some(u) = st.remove_unproven(id) {
                u.proven.store(true, Relaxed);
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note_eviction(&self) {
        let evicted = self.evicted_since_warn.fetch_add(1, Relaxed) + 1;
        let now = now_ms();
        let last = self.last_warn_ms.load(Relaxed);
        if (last == NEVER || now.saturating_sub(last) >= WARN_EVERY_MS)
            && self
                .last_warn_ms
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            self.evicted_since_warn.fetch_sub(evicted, Relaxed);
            tracing::warn!(
                limit = self.max,
                closed = evicted,
                "{} reached: closing the oldest connections that have not authenticated or sent a request yet",
                self.key
            );
        }
    }
}

impl State {
    fn remove_unproven(&mut self, id: u64) -> Option<Unproven> {
        let u = self.unproven.remove(&id)?;
        if let Some(p) = u.peer {
            if self.by_peer.get(&p) == Some(&id) {
                self.by_peer.remove(&p);
            }
        }
        Some(u)
    }
}

/// One admitted connection's slot, freed when dropped.
#[derive(Debug)]
pub struct Ticket {
    inner: Arc<Inner>,
    id: u64,
    evict: CancellationToken,
    proven: Arc<AtomicBool>,
}

impl Ticket {
    /// The connection showed it is a real client: it is never evicted, and no longer timed.
    pub fn prove(&self) {
        let mut st = self.inner.lock();
        if st.remove_unproven(self.id).is_some() {
            self.proven.store(true, Relaxed);
        }
    }

    /// True once proven.
    pub fn is_proven(&self) -> bool {
        self.proven.load(Relaxed)
    }

    /// Cancelled when the listener closes this (unproven) connection to make room.
    pub fn evicted(&self) -> &CancellationToken {
        &self.evict
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        {
            let mut st = self.inner.lock();
            st.live -= 1;
            st.remove_unproven(self.id);
            if self.evict.is_cancelled() {
                st.evicting = false;
            }
        }
        self.inner.freed.notify_waiters();
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as Go programs and nginx do (the soft
/// default, often 1024, is far below what a router holding thousands of connections needs).
/// Returns the soft limit in force afterwards, `None` if it is unlimited or cannot be read.
pub fn raise_nofile_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(soft), Some(hard)) = (limit.current, limit.maximum) {
        if soft < hard {
            let raised = Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => tracing::info!(
                    from = soft,
                    to = hard,
                    "raised the open file limit (RLIMIT_NOFILE) to its hard limit"
                ),
                Err(e) => {
                    tracing::warn!(soft, hard, error = %e, "cannot raise the open file limit (RLIMIT_NOFILE)")
                }
            }
        }
    }
    getrlimit(Resource::Nofile).current
}

/// `configured`, bounded to `nofile / divisor` (at least 4) so that one operations listener can
/// never take the file descriptors the uwsgi listener needs; logs when it lowers it.
pub fn share_of_fds(key: &str, configured: usize, nofile: Option<u64>, divisor: u64) -> usize {
    let Some(nofile) = nofile else {
        return configured;
    };
    let share = usize::try_from((nofile / divisor).max(4)).unwrap_or(usize::MAX);
    if configured > share {
        tracing::warn!(
            configured,
            using = share,
            nofile,
            "{key} lowered to 1/{divisor} of the open file limit (RLIMIT_NOFILE): raise LimitNOFILE / ulimit -n to allow more"
        );
        share
    } else {
        configured
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[tokio::test]
    async fn a_full_listener_evicts_the_oldest_unproven_connection() {
        let l = Limiter::new("test.max_connections", 2);
        l.make_room().await;
        let a = l.admit(Some((addr(1), addr(10))));
        l.make_room().await;
        let b = l.admit(Some((addr(1), addr(11))));
        assert_eq!(l.live(), 2);
        // Full: making room evicts a, the oldest; room comes once a closes.
        let room = tokio::spawn({
            let l = l.clone();
            async move { l.make_room().await }
        });
        tokio::time::timeout(Duration::from_secs(5), a.evicted().cancelled())
            .await
            .expect("a is evicted");
        assert!(!b.evicted().is_cancelled());
        assert!(!room.is_finished());
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), room)
            .await
            .expect("room once a closed")
            .unwrap();
        let c = l.admit(None);
        // b proves itself: it is never evicted; c, unproven, is next.
        l.prove_peer(Some(addr(1)), Some(addr(11)));
        assert!(b.is_proven());
        let room = tokio::spawn({
            let l = l.clone();
            async move { l.make_room().await }
        });
        tokio::time::timeout(Duration::from_secs(5), c.evicted().cancelled())
            .await
            .expect("c is evicted");
        assert!(!b.evicted().is_cancelled(), "a proven connection stays");
        drop(c);
        room.await.unwrap();
    }

    #[tokio::test]
    async fn a_listener_full_of_proven_connections_waits() {
        let l = Limiter::new("test.max_connections", 1);
        let a = l.admit(None);
        a.prove();
        let room = tokio::spawn({
            let l = l.clone();
            async move { l.make_room().await }
        });
        tokio::task::yield_now().await;
        assert!(!room.is_finished() && !a.evicted().is_cancelled());
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), room)
            .await
            .expect("room once a closed")
            .unwrap();
        assert_eq!(l.live(), 0);
    }

    #[test]
    fn operations_listeners_get_a_share_of_the_fds() {
        assert_eq!(share_of_fds("k", 10_240, Some(1024), 4), 256);
        assert_eq!(share_of_fds("k", 64, Some(1024), 16), 64);
        assert_eq!(share_of_fds("k", 64, Some(16), 16), 4);
        assert_eq!(share_of_fds("k", 10_240, None, 4), 10_240);
    }
}
