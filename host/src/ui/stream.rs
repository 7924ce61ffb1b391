//! `GET /ui/api/stream`: the page's live updates, as server-sent events.
//!
//! | event | data |
//! |---|---|
//! | `snapshot` | `{"now_ms", "accounts": [row…]}`: first, and again after falling behind |
//! | `account` | a row: the account's state, reason, cooldowns, quota or labels changed |
//! | `removed` | `{"id"}`: the account left the pool |
//! | `note` | `{"id", "event": {"at_ms", "kind", "text", "source"?, "detail"?}}`: a line of its history |
//! | `activity` | once a second: `{"t", "requests", "errors", "policy", "accounts": {id: [requests, failures, last_used_ms]}}` |
//! | `signed_out` | `{}`: the session ended; the stream closes |
//!
//! Rows are read from the pool when it says an account changed (changes
//! within 50 ms are sent once), so nothing is computed for the page on the
//! request path, and a row never holds a token. Streams end when the proxy
//! shuts down.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Extension;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::rows;
use super::session::Session;
use super::state::Ui;
use crate::pool::PoolNews;

/// Changes to one account within this long are sent as one row.
const COALESCE: Duration = Duration::from_millis(50);

type Tx = mpsc::Sender<Result<Event, Infallible>>;

async fn send(tx: &Tx, name: &str, data: String) -> bool {
    tx.send(Ok(Event::default().event(name).data(data))).await.is_ok()
}

fn snapshot(ui: &Ui) -> String {
    serde_json::json!({"now_ms": crate::util::now_ms(), "accounts": rows::rows(ui)}).to_string()
}

/// The event stream of a signed-in page.
pub async fn stream(State(ui): State<Arc<Ui>>, Extension(session): Extension<Session>) -> impl IntoResponse {
    let (tx, rx) = mpsc::channel(64);
    // Listen before the snapshot is read: nothing falls between the two.
    let mut news = ui.proxy.dispatcher.pool.subscribe();
    let mut ticks = ui.activity.subscribe();
    let mut closing = ui.closing();
    tokio::spawn(async move {
        ui.served.fresh(&ui.proxy).await;
        if !send(&tx, "snapshot", snapshot(&ui)).await {
            return;
        }
        let mut dirty = BTreeSet::new();
        let mut flush_at: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = tx.closed() => break,
                _ = closing.changed() => break,
                n = news.recv() => match n {
                    Ok(PoolNews::Changed(id)) => {
                        dirty.insert(id);
                        flush_at.get_or_insert_with(|| tokio::time::Instant::now() + COALESCE);
                    }
                    Ok(PoolNews::Removed(id)) => {
                        dirty.remove(&id);
                        if !send(&tx, "removed", serde_json::json!({"id": id}).to_string()).await {
                            break;
                        }
                    }
                    Ok(PoolNews::Event { id, event }) => {
                        if !send(&tx, "note", serde_json::json!({"id": id, "event": event}).to_string()).await {
                            break;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        dirty.clear();
                        flush_at = None;
                        if !send(&tx, "snapshot", snapshot(&ui)).await {
                            break;
                        }
                    }
                    Err(RecvError::Closed) => break,
                },
                t = ticks.recv() => match t {
                    Ok(tick) => {
                        if !ui.sessions.alive(&session.key) {
                            let _ = send(&tx, "signed_out", "{}".into()).await;
                            break;
                        }
                        if !send(&tx, "activity", tick.to_string()).await {
                            break;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                },
                _ = tokio::time::sleep_until(flush_at.unwrap_or_else(tokio::time::Instant::now)), if flush_at.is_some() => {
                    flush_at = None;
                    for id in std::mem::take(&mut dirty) {
                        let ok = match rows::row(&ui, &id) {
                            Some(row) => send(&tx, "account", serde_json::to_string(&row).unwrap_or_default()).await,
                            None => send(&tx, "removed", serde_json::json!({"id": id}).to_string()).await,
                        };
                        if !ok {
                            return;
                        }
                    }
                }
            }
        }
    });
    Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
