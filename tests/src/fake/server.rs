//! The listeners (one per host label, sharing one state): one hyper
//! connection task per accepted socket, each with a handle a handler can
//! use to drop its connection for real (FIN or RST); the request log
//! around every call; and the routes.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
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

use super::record::{message_of, Arrival, CallNote};
use super::state::{Listener, Shared};
use super::types::{Endpoint, HostInfo};
use super::{control, fast, gemini_api, oauth, onboarding, quota_summary, updater, v1internal};

/// The host label of the listener a request came on (a request extension).
#[derive(Clone, Debug)]
pub(crate) struct HostLabel(pub(crate) Arc<str>);

impl HostLabel {
    /// The label of an optional extension.
    pub(crate) fn of(ext: &Option<axum::Extension<HostLabel>>) -> Option<&str> {
        ext.as_ref().map(|e| &*e.0 .0)
    }
}

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
            post(onboarding::load_code_assist),
        )
        .route(
            "/v1internal:fetchAvailableModels",
            post(v1internal::fetch_available_models),
        )
        .route("/v1internal:countTokens", post(v1internal::count_tokens))
        .route(
            "/v1internal:retrieveUserQuotaSummary",
            post(quota_summary::retrieve_user_quota_summary),
        )
        .route("/v1internal:onboardUser", post(onboarding::onboard_user))
        .route(
            "/v1internal/operations/{id}",
            get(onboarding::get_operation),
        )
        .route("/manifest/{file}", get(updater::manifest))
        // The public Gemini API (module `gemini_api`).
        .route("/v1beta/models/{call}", post(gemini_api::call))
        .nest("/_fake", control::router())
        .with_state(shared)
}

/// Serves `listener` as `label` until the returned task is aborted (which
/// also ends every open connection).
pub(crate) fn spawn(listener: TcpListener, shared: Arc<Shared>, label: &str) -> JoinHandle<()> {
    let router = router(shared.clone());
    let label = HostLabel(Arc::from(label));
    tokio::spawn(accept_loop(listener, shared, router, label))
}

/// Binds `addr` and serves it as `label`, one more listener of `shared`.
pub(crate) async fn add_listener(
    shared: &Arc<Shared>,
    label: &str,
    addr: SocketAddr,
) -> io::Result<HostInfo> {
    if label.is_empty()
        || !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("host label {label:?}: use letters, digits, '-', '_' or '.'"),
        ));
    }
    if shared.listeners.lock().iter().any(|l| l.label == label) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("host label {label:?} is already listening"),
        ));
    }
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = spawn(listener, shared.clone(), label);
    shared.listeners.lock().push(Listener {
        label: label.to_owned(),
        addr,
        task,
    });
    Ok(HostInfo {
        label: label.to_owned(),
        url: format!("http://{addr}"),
    })
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, router: Router, label: HostLabel) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_conn(stream, shared.clone(), router.clone(), label.clone()));
                }
                // Out of file descriptors and the like: wait and go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve_conn(stream: TcpStream, shared: Arc<Shared>, router: Router, label: HostLabel) {
    // The caller's address: which way a call came (directly, or through
    // which proxy; a proxy's own outgoing address).
    let peer = stream.peer_addr().ok().map(|a| a.ip().to_string());
    let ctl = Arc::new(ConnCtl::default());
    let io = TokioIo::new(KillIo {
        inner: stream,
        ctl: ctl.clone(),
    });
    let handle = ConnHandle(ctl.clone());
    let svc = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |req| {
        handle_request(
            req,
            shared.clone(),
            svc.clone(),
            handle.clone(),
            label.clone(),
            peer.clone(),
        )
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Many streams on one HTTP/2 connection, as a proxy holding thousands
    // of slow streams sends them (hyper's default would queue past 200).
    builder.http2().max_concurrent_streams(100_000);
    let conn = builder.serve_connection(io, service);
    tokio::select! {
        _ = conn => {}
        // Dropping `conn` drops the socket (with the reset, if asked).
        _ = ctl.notify.notified() => {}
    }
}

async fn handle_request(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    svc: TowerToHyperService<Router>,
    conn: ConnHandle,
    label: HostLabel,
    peer: Option<String>,
) -> Result<Response, Infallible> {
    if shared.is_fast() && !shared.has_faults() {
        let fixed = fast::answer(req.method(), req.uri().path(), &shared)
            .or_else(|| gemini_api::fast_path(req.method(), req.uri(), req.headers(), &shared));
        if let Some(resp) = fixed {
            let mut body = req.into_body();
            while let Some(frame) = body.frame().await {
                if frame.is_err() {
                    break;
                }
            }
            return Ok(resp);
        }
    }
    let endpoint = Endpoint::from_path(req.uri().path());
    let record = endpoint.is_some() && !shared.is_fast();
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(conn);
    parts.extensions.insert(label.clone());
    if !record {
        let req = Request::from_parts(parts, body);
        let resp = hyper::service::Service::call(&svc, req).await?;
        return Ok(resp.map(Body::new));
    }
    // Google endpoints: read the body, log the request, answer, log how.
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => bytes::Bytes::new(),
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let seq = shared.with(|inner| {
        if let Some(e) = endpoint {
            let by_host = inner
                .stats
                .calls_by_host
                .entry(label.0.to_string())
                .or_default();
            super::state::bump(by_host, e.name());
        }
        let cap = inner.settings.max_recorded_requests;
        let arrival = Arrival {
            host: &label.0,
            method: parts.method.as_str(),
            version: &format!("{:?}", parts.version),
            path: &path,
            endpoint,
            headers: &parts.headers,
            body: &bytes,
            peer: peer.as_deref(),
        };
        inner.log.arrive(arrival, cap)
    });
    let req = Request::from_parts(parts, Body::from(bytes));
    let resp = hyper::service::Service::call(&svc, req).await?;
    let status = resp.status().as_u16();
    let note = resp.extensions().get::<CallNote>().cloned();
    let (resp, message) = if status >= 400 {
        // Error answers are small, whole bodies: read the message.
        let (rparts, rbody) = resp.into_parts();
        let rbytes = rbody
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let message = message_of(&rbytes);
        (Response::from_parts(rparts, Body::from(rbytes)), message)
    } else {
        (resp.map(Body::new), None)
    };
    shared.with(|inner| inner.log.answer(seq, status, note, message));
    Ok(resp)
}
