//! systemd's service notifications (`Type=notify`): `READY=1` once every listener is bound and
//! the config applied, `RELOADING=1` ... `READY=1` around a reload, `STOPPING=1` when shutdown
//! begins, and `WATCHDOG=1` pings when the unit sets `WatchdogSec`. Without `NOTIFY_SOCKET`
//! (not started by systemd) each is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "cannot notify systemd (NOTIFY_SOCKET)");
    }
}

/// The service is up.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// A reload begins (end it with [`ready`]).
pub fn reloading() {
    send(&[NotifyState::Reloading]);
}

/// Shutdown begins.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Pings systemd's watchdog at half its interval until `stop`, if the unit has `WatchdogSec`.
pub fn spawn_watchdog(stop: CancellationToken) {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let every = Duration::from_micros(usec) / 2;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => send(&[NotifyState::Watchdog]),
                () = stop.cancelled() => return,
            }
        }
    });
}
