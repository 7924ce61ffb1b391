//! The listener: one hyper connection task per accepted socket, each with a
//! handle a handler can use to drop its connection for real (FIN or RST),
//! and the routes.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

use super::state::Shared;
use super::{control, fast, oauth, v1internal};

/// How a fault ends a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum KillMode {
    /// Close the socket (the peer reads EOF).
    Close = 1,
    /// Reset the socket (`SO_LINGER` 0: the peer reads ECONNRESET).
    Reset = 2,
}

/// Per-connection control shared by the connection task and its handlers.
#[derive(Default)]
struct ConnCtl {
    notify: Notify,
    mode: AtomicU8,
}

/// Lets a handler end the connection its request came on (a request
/// extension).
#[derive(Clone)]
pub(crate) struct ConnHandle(Arc<ConnCtl>);

impl ConnHandle {
    /// Ends the connection without an answer; never returns (the handler's
    /// future is dropped with the connection).
    pub(crate) async fn kill<T>(&self, mode: KillMode) -> T {
        self.0.mode.store(mode as u8, Ordering::Release);
        self.0.notify.notify_one();
        std::future::pending().await
    }
}

/// The socket, which resets instead of closing when so told.
struct KillIo {
    inner: TcpStream,
    ctl: Arc<ConnCtl>,
}

impl Drop for KillIo {
    fn drop(&mut self) {
        if self.ctl.mode.load(Ordering::Acquire) == KillMode::Reset as u8 {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for KillIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Every route of the fake.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/token", post(oauth::token))
        .route("/userinfo", get(oauth::userinfo))
        .route("/oauth2/v2/userinfo", get(oauth::userinfo))
        .route("/v1internal:generateContent", post(v1internal::generate))
        .route(
            "/v1internal:streamGenerateContent",
            post(v1internal::stream),
        )
        .route(
            "/v1internal:loadCodeAssist",
            post(v1internal::load_code_assist),
        )
        .route(
            "/v1internal:fetchAvailableModels",
            post(v1internal::fetch_available_models),
        )
        .nest("/_fake", control::router())
        .with_state(shared)
}

/// Serves `listener` until the returned task is aborted (which also ends
/// every open connection).
pub(crate) fn spawn(listener: TcpListener, shared: Arc<Shared>) -> JoinHandle<()> {
    let router = router(shared.clone());
    tokio::spawn(accept_loop(listener, shared, router))
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, router: Router) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_conn(stream, shared.clone(), router.clone()));
                }
                // Out of file descriptors and the like: wait and go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve_conn(stream: TcpStream, shared: Arc<Shared>, router: Router) {
    let ctl = Arc::new(ConnCtl::default());
    let io = TokioIo::new(KillIo {
        inner: stream,
        ctl: ctl.clone(),
    });
    let handle = ConnHandle(ctl.clone());
    let svc = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |req| {
        handle_request(req, shared.clone(), svc.clone(), handle.clone())
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(io, service);
    tokio::select! {
        _ = conn => {}
        // Dropping `conn` drops the socket (with the reset, if asked).
        _ = ctl.notify.notified() => {}
    }
}

async fn handle_request(
    mut req: Request<Incoming>,
    shared: Arc<Shared>,
    svc: TowerToHyperService<Router>,
    conn: ConnHandle,
) -> Result<Response, Infallible> {
    if shared.is_fast() && !shared.has_faults() {
        if let Some(resp) = fast::answer(req.method(), req.uri().path(), &shared) {
            let mut body = req.into_body();
            while let Some(frame) = body.frame().await {
                if frame.is_err() {
                    break;
                }
            }
            return Ok(resp);
        }
    }
    req.extensions_mut().insert(conn);
    let resp = hyper::service::Service::call(&svc, req).await?;
    Ok(resp.map(Body::new))
}
