//! `routerctl watch`: every router's event stream, merged, printed one line per event as it
//! comes (or one JSON object per line), until the routers hang up or the operator does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tonic::Streaming;

use super::client::Routers;
use super::error::{worst, CtlError};
use super::merge::FromRouter;
use super::{print, print_json};
use crate::api::{Event, WatchRequest};

/// `routerctl watch`.
pub async fn watch(routers: &Routers, json: bool) -> Result<(), CtlError> {
    let opened = routers
        .all("watch", |mut c| async move {
            Ok(c.watch(WatchRequest {}).await?.into_inner())
        })
        .await;
    let (tx, mut rx) = mpsc::channel(64);
    let mut open = 0;
    let mut errors = Vec::new();
    for (router, stream) in routers.urls().into_iter().zip(opened) {
        match stream {
            Ok(stream) => {
                open += 1;
                tokio::spawn(forward(router, stream, tx.clone()));
            }
            Err(e) => errors.push(e),
        }
    }
    drop(tx);
    if open == 0 {
        return worst(errors);
    }
    // Routers that could not be watched are named now, not when the others end.
    for e in errors.drain(..) {
        eprintln!("routerctl: {e}");
    }
    let several = routers.list.len() > 1;
    while let Some((router, item)) = rx.recv().await {
        match item {
            Ok(event) if json => print_json(&FromRouter {
                router,
                info: event,
            })?,
            Ok(event) => print(&line(&event, several.then_some(router.as_str())))?,
            Err(e) => {
                open -= 1;
                if open == 0 {
                    return Err(e);
                }
                eprintln!("routerctl: {e}");
            }
        }
    }
    Ok(())
}

/// One event item as the merged stream carries it: the router, and an event or why it ended.
type Item = (String, Result<Event, CtlError>);

/// Passes one router's events on until its stream ends (the end is passed on too) or nobody
/// listens any more.
async fn forward(router: String, mut stream: Streaming<Event>, tx: mpsc::Sender<Item>) {
    loop {
        let item = match stream.message().await {
            Ok(Some(e)) => Ok(e),
            Ok(None) => Err(CtlError::Unreachable {
                router: router.clone(),
                cause: "it closed the event stream (did it stop?)".to_owned(),
            }),
            Err(s) => Err(CtlError::from_status("watch", &router, &s)),
        };
        let end = item.is_err();
        if tx.send((router.clone(), item)).await.is_err() || end {
            return;
        }
    }
}

/// An event for people: time, (router,) kind, pool/node, detail.
pub fn line(e: &Event, router: Option<&str>) -> String {
    let when = match e.time_unix_ms {
        0 => SystemTime::now(),
        ms => UNIX_EPOCH + Duration::from_millis(ms),
    };
    let what = match (e.pool.as_str(), e.node.as_str()) {
        ("", "") => String::new(),
        (pool, "") => pool.to_owned(),
        ("", node) => node.to_owned(),
        (pool, node) => format!("{pool}/{node}"),
    };
    let mut text = format!("{}  ", humantime::format_rfc3339_millis(when));
    if let Some(r) = router {
        text.push_str(r);
        text.push_str("  ");
    }
    text.push_str(&format!("{:<15}  {what}  {}", e.kind, e.detail));
    let mut text = text.trim_end().to_owned();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_one_line() {
        let e = Event {
            time_unix_ms: 1_700_000_000_123,
            kind: "node_draining".into(),
            pool: "default".into(),
            node: "web-1".into(),
            detail: String::new(),
        };
        assert_eq!(
            line(&e, None),
            "2023-11-14T22:13:20.123Z  node_draining    default/web-1\n"
        );
        assert_eq!(
            line(&e, Some("http://a:1")),
            "2023-11-14T22:13:20.123Z  http://a:1  node_draining    default/web-1\n"
        );
    }
}
