//! Shutdown of one router session: Drain, wait for Drained (reporting meanwhile, so the lease
//! holds) until the drain deadline, then Leave and let the router close the stream.

use tokio::time::{sleep_until, timeout, Instant};

use super::{message, End, RouterLink, Stream, LEAVE_GRACE, STOPPING};
use crate::api::{node_message, router_message, Drain, Leave, RouterMessage};

impl RouterLink {
    /// Shutdown: Drain, wait for Drained (bounded by the drain timeout, reporting meanwhile so
    /// the lease holds), then Leave and let the router close the stream.
    pub(super) async fn drain(&mut self, mut s: Stream, deadline: Instant) -> End {
        tracing::info!(router = %self.url, "draining");
        if s.tx
            .try_send(message(node_message::Msg::Drain(Drain {
                reason: STOPPING.to_owned(),
            })))
            .is_err()
        {
            return End::Stopped;
        }
        let mut node_open = true;
        let drained = loop {
            tokio::select! {
                () = sleep_until(deadline) => break false,
                changed = self.node.changed(), if node_open => match changed {
                    Err(_) => node_open = false,
                    Ok(()) => {
                        let state = *self.node.borrow_and_update();
                        if let Some(load) = state {
                            let _ = self.report(&s, load);
                        }
                    }
                },
                m = s.inbound.message() => match m {
                    Ok(Some(RouterMessage { msg: Some(router_message::Msg::Drained(_)) })) => break true,
                    Ok(Some(RouterMessage { msg: Some(router_message::Msg::Removed(r)) })) => {
                        tracing::info!(router = %self.url, reason = r.reason, "node removed while draining");
                        return End::Stopped;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => {
                        tracing::warn!(router = %self.url, "the router ended the session before the node drained");
                        return End::Stopped;
                    }
                },
            }
        };
        if drained {
            tracing::info!(router = %self.url, "drained");
        } else {
            tracing::warn!(router = %self.url, timeout = ?self.drain_timeout, "not drained within the drain timeout; leaving anyway");
        }
        let _ = s.tx.try_send(message(node_message::Msg::Leave(Leave {
            reason: STOPPING.to_owned(),
        })));
        drop(s.tx);
        let _ = timeout(LEAVE_GRACE, async {
            while let Ok(Some(_)) = s.inbound.message().await {}
        })
        .await;
        tracing::info!(router = %self.url, "left");
        End::Stopped
    }
}
