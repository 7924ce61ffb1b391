//! Serving threads: one acceptor deals connections round-robin to N
//! serving threads (one per core by default), each running its own
//! single-threaded tokio runtime with its own upstream connections. A
//! request then stays on one thread from the client's socket to the
//! upstream and back: no work stealing and no cross-thread wake-up per
//! request, which on two cores is most of what a multi-threaded runtime
//! costs a proxy (figures in BENCHMARKS.md).
//!
//! Background work (token refresher, file and policy watchers, quota
//! polls) stays on the main runtime.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::front::Front;

/// How long in-flight requests may take to end after a shutdown signal.
/// Descriptors kept free beside the connections (log files, the store,
/// plugin files, the odd new upstream connection).
const FD_RESERVE: u64 = 128;

/// Period of each serving thread's standing timer (see `lane_loop`); far
/// shorter than any upstream timeout.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// The number of serving threads for `configured` (0 = one per core).
pub fn lanes(configured: usize) -> usize {
    if configured > 0 {
        configured
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// How the listener runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Serving threads.
    pub lanes: usize,
    /// How long requests in flight may run on after shutdown begins.
    pub grace: Duration,
    /// Most client connections open at once; more are answered 503.
    pub max_connections: usize,
}

/// Raises the soft open-file limit to the hard one (a stream holds two
/// descriptors: the client's and the upstream's) and returns it.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur as u64
}

/// The connections the open-file limit `fds` leaves room for.
pub fn connections_for(fds: u64) -> usize {
    (fds.saturating_sub(FD_RESERVE) / 2).max(16) as usize
}

/// Open client connections, shared by the serving threads.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// A client connection counted in [`OPEN`] while it lives.
struct Counted;

impl Drop for Counted {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Answers a connection over the limit with a 503 in the shape of its
/// route, then closes it (it never reaches the router, so streams in
/// flight keep their descriptors).
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = [0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut head)).await.ok().and_then(Result::ok).unwrap_or(0);
    let line = String::from_utf8_lossy(&head[..n]);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let protocol = super::auth::protocol_of(path);
    let body = crate::translate::error_body(protocol, 503, "the proxy is at its connection limit (server.max_connections / the open-file limit): retry shortly").to_string();
    let resp = format!("HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Serve `front` on `listener` until `shutdown` resolves, then let
/// in-flight requests finish (up to the grace period).
pub async fn serve(listener: TcpListener, front: Front, options: ServeOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let lanes = options.lanes.max(1);
    let grace = options.grace;
    let max_connections = options.max_connections;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut queues = Vec::with_capacity(lanes);
    let mut threads = Vec::with_capacity(lanes);
    for lane in 0..lanes {
        let (tx, rx) = mpsc::unbounded_channel::<std::net::TcpStream>();
        let front = front.clone();
        let stop = stop_rx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("grantpool-serve-{lane}"))
            .spawn(move || {
                super::lane::enter(lane);
                match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt.block_on(lane_loop(rx, front, stop, grace)),
                    Err(e) => tracing::error!("serving thread {lane} cannot start its runtime: {e}"),
                }
            })
            .context("cannot start a serving thread")?;
        queues.push(tx);
        threads.push(thread);
    }

    tokio::pin!(shutdown);
    let mut next = 0usize;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if OPEN.fetch_add(1, Ordering::Relaxed) >= max_connections {
                        OPEN.fetch_sub(1, Ordering::Relaxed);
                        tracing::warn!(limit = max_connections, "connection limit reached: new connections get 503 until streams end");
                        tokio::spawn(refuse(stream));
                        continue;
                    }
                    // Hand the socket over: it leaves this runtime's reactor
                    // and joins the serving thread's.
                    match stream.into_std() {
                        Ok(std) => {
                            let _ = queues[next % lanes].send(std);
                            next = next.wrapping_add(1);
                        }
                        Err(e) => {
                            OPEN.fetch_sub(1, Ordering::Relaxed);
                            tracing::debug!("dropped an accepted connection: {e}");
                        }
                    }
                }
                // Out of file descriptors and the like: wait, don't spin.
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    drop(queues);
    let _ = stop_tx.send(true);
    tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await
    .context("joining the serving threads")?;
    Ok(())
}

async fn lane_loop(mut queue: mpsc::UnboundedReceiver<std::net::TcpStream>, front: Front, mut stop: watch::Receiver<bool>, grace: Duration) {
    let graceful = GracefulShutdown::new();
    let builder = ConnBuilder::new(TokioExecutor::new());
    // A standing timer keeps the runtime's next wake-up earlier than any
    // request's deadline. Without one, arming a request's upstream timeout
    // on an idle thread must wake the driver (an eventfd write and one more
    // epoll round per request, measured with strace at concurrency 1).
    let heartbeat = tokio::spawn(async {
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tick.tick().await;
        }
    });
    loop {
        tokio::select! {
            next = queue.recv() => {
                let Some(std) = next else { break };
                let counted = Counted;
                let stream = match tokio::net::TcpStream::from_std(std) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!("dropped an accepted connection: {e}");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), front.clone()).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _counted = counted;
                    if let Err(e) = conn.await {
                        tracing::trace!("connection ended: {e}");
                    }
                });
            }
            _ = stop.changed() => break,
        }
    }
    heartbeat.abort();
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still running {}s after shutdown were cut off (server.shutdown_grace_secs)", grace.as_secs());
    }
}
