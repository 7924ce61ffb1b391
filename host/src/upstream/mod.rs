//! The Google Code Assist (`v1internal`) client: generate (plain and
//! streaming) with each profile's hosts tried in order, project discovery
//! and onboarding ([`onboarding`]), per-model quota and the model
//! [`catalogue`], token counting. The envelope and the per-model changes
//! are pure and live in [`envelope`].

pub mod catalogue;
pub mod envelope;
pub mod onboarding;
pub mod version;
pub mod quota_windows;
pub mod signatures;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tokio::time::Instant;

use crate::config::UpstreamConfig;
use crate::oauth::describe_reqwest;
use crate::profiles::{Profile, ALL};
use catalogue::{Catalogue, Listing};

/// Largest error body kept from a host that is skipped for the next one.
const SKIPPED_BODY_MAX: usize = 64 << 10;

/// The client of the generate calls: hyper's pooled client over rustls
/// (HTTP/2 when Google offers it). The hot path skips reqwest's per-request
/// URL and option handling; the occasional calls below still use reqwest.
type GenerateClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// The generate client of one egress proxy (the same, over its tunnels).
type ProxiedClient = hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<crate::egress::TunnelConnector>, Full<Bytes>>;

/// One `v1internal` host, its URIs built once (a `Uri` clone is a
/// reference count).
struct Host {
    base: String,
    generate_uri: Uri,
    stream_uri: Uri,
    /// `Host` of the URIs over plain HTTP (HTTP/1 only: set once here,
    /// hyper would format it per call). Over TLS the connection may be
    /// HTTP/2, where hyper sends `:authority` instead, so it is left to hyper.
    host_header: Option<HeaderValue>,
    /// Whether the host is spoken to over TLS, and its name (to pick an
    /// egress route).
    https: bool,
    hostname: String,
    /// The environment's proxy for it (no `[egress]`): found once here.
    env_route: crate::egress::Route,
}

/// A profile's hosts and User-Agent.
struct Route {
    profile: &'static Profile,
    hosts: Vec<Host>,
    /// The User-Agent, its version filled in (a newer one may come from the
    /// updater's manifest: [`version`]).
    ua: parking_lot::RwLock<RouteUa>,
    /// The template before the version is filled in.
    raw_template: String,
    /// The version follows the updater's manifest (Antigravity, no
    /// `antigravity_version` set, a template that names `{version}`).
    follows_manifest: bool,
}

/// A User-Agent ready to send.
struct RouteUa {
    /// The User-Agent when it does not name the model; else built per call.
    fixed: Option<HeaderValue>,
    template: String,
}

impl RouteUa {
    fn new(raw: &str, version: &str) -> anyhow::Result<RouteUa> {
        let template = raw.replace("{version}", version);
        let fixed = (!template.contains("{model}"))
            .then(|| HeaderValue::from_str(&template))
            .transpose()
            .map_err(|_| anyhow::anyhow!("upstream.user_agent is not a valid header value"))?;
        Ok(RouteUa { fixed, template })
    }
}

/// The upstream client (one connection pool for every account).
#[derive(Clone)]
pub struct Upstream {
    /// The auxiliary calls' clients, one per way out ([`crate::egress`]).
    http: Arc<crate::egress::Clients<reqwest::Client>>,
    /// The outbound proxies.
    pub egress: Arc<crate::egress::Egress>,
    /// Generate clients per egress proxy (per lane, as `generate`).
    proxied: Arc<crate::egress::Clients<Box<[ProxiedClient]>>>,
    /// One client (and connection pool) per serving thread, plus one for
    /// calls made off them: a connection's task runs on the runtime that
    /// opened it, so sharing one pool would hand requests across threads.
    generate: Arc<[GenerateClient]>,
    routes: Arc<[Route]>,
    timeout: Duration,
    onboard_timeout: Duration,
    onboard_poll: Duration,
    /// Which accounts may move on to a profile's later hosts.
    fallback_hosts: crate::config::FallbackHosts,
    /// The Antigravity version the User-Agent reports now ([`version`]).
    reported_version: Arc<parking_lot::RwLock<String>>,
    /// The models Google serves each profile.
    pub catalogue: Arc<Catalogue>,
}

/// A failed upstream call that never got an HTTP answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct NetworkError(pub String);

/// The body of an upstream answer: still on the wire, or already read (an
/// error answer read to decide whether to try the next host).
enum Body {
    Wire(Incoming),
    Read(Bytes),
    /// The first bytes already read (to see that a stream has an event),
    /// then the rest still on the wire.
    Peeked(Bytes, Incoming),
}

/// An upstream answer to a generate call, body not yet read. Reading it is
/// bounded by the same deadline as the call (`upstream.timeout_secs`).
pub struct UpstreamResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
    deadline: Instant,
}

impl UpstreamResponse {
    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The whole body.
    pub async fn bytes(self) -> Result<Bytes, NetworkError> {
        let (head, body) = match self.body {
            Body::Read(b) => return Ok(b),
            Body::Wire(b) => (Bytes::new(), b),
            Body::Peeked(h, b) => (h, b),
        };
        match tokio::time::timeout_at(self.deadline, body.collect()).await {
            Ok(Ok(b)) if head.is_empty() => Ok(b.to_bytes()),
            Ok(Ok(b)) => {
                let mut all = BytesMut::from(&head[..]);
                all.put(b.to_bytes());
                Ok(all.freeze())
            }
            Ok(Err(e)) => Err(NetworkError(format!("connection dropped while reading the answer: {}", innermost(&e)))),
            Err(_) => Err(NetworkError("timed out reading the answer (upstream.timeout_secs)".into())),
        }
    }

    /// At most `max` bytes of the body (error answers: enough to classify
    /// and to show; the rest is dropped with the connection).
    pub async fn bytes_bounded(self, max: usize) -> Bytes {
        let (mut out, mut body) = match self.body {
            Body::Read(b) => return b.slice(..b.len().min(max)),
            Body::Wire(b) => (BytesMut::new(), b),
            Body::Peeked(h, b) => (BytesMut::from(&h[..h.len().min(max)]), b),
        };
        while out.len() < max {
            match tokio::time::timeout_at(self.deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Some(chunk) = frame.data_ref() {
                        out.put_slice(&chunk[..chunk.len().min(max - out.len())]);
                    }
                }
                _ => break,
            }
        }
        out.freeze()
    }

    /// The body as a stream of chunks, each awaited within the deadline.
    pub fn into_stream(self) -> futures::stream::BoxStream<'static, Result<Bytes, NetworkError>> {
        use futures::StreamExt;
        let deadline = self.deadline;
        let (head, body) = match self.body {
            Body::Read(b) => return futures::stream::once(async move { Ok(b) }).boxed(),
            Body::Wire(b) => (None, b),
            Body::Peeked(h, b) => (Some(h), b),
        };
        let head = futures::stream::iter(head.map(Ok));
        let rest = futures::stream::unfold(Some(body), move |body| async move {
            let mut body = body?;
            loop {
                return match tokio::time::timeout_at(deadline, body.frame()).await {
                    Ok(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) => Some((Ok(data), Some(body))),
                        Err(_) => continue, // trailers
                    },
                    Ok(Some(Err(e))) => Some((Err(NetworkError(format!("connection dropped: {}", innermost(&e)))), None)),
                    Ok(None) => None,
                    Err(_) => Some((Err(NetworkError("timed out (upstream.timeout_secs)".into())), None)),
                };
            }
        });
        head.chain(rest).boxed()
    }

    /// A 200 checked against what `v1internal` promises: a JSON body, or
    /// for a stream an SSE answer with at least one event. Anything else
    /// (the prod host's plain-text `This version of Antigravity is no
    /// longer supported…` — CLIProxyAPI #4144 —, an HTML page, a stream
    /// that ends without an event) becomes a 502 whose body says what came:
    /// an upstream failure, tried on the next host or account.
    async fn checked(self, stream: bool, host: &str) -> UpstreamResponse {
        let content_type = self.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let expected = if stream { "text/event-stream" } else { "json" };
        // A type that names neither is looked at, not trusted.
        let declared_other = !content_type.is_empty() && !content_type.contains(expected) && !content_type.contains("json");
        if !stream && !declared_other {
            return self;
        }
        let (status, headers, deadline) = (self.status, self.headers.clone(), self.deadline);
        let mut body = match self.body {
            Body::Wire(b) => b,
            other => return UpstreamResponse { status, headers, body: other, deadline },
        };
        let mut head = BytesMut::new();
        if !declared_other {
            // A stream: wait for its first event before the client is answered.
            loop {
                match tokio::time::timeout_at(deadline, body.frame()).await {
                    Ok(Some(Ok(frame))) => {
                        if let Some(chunk) = frame.data_ref() {
                            head.put_slice(chunk);
                        }
                        if memchr::memmem::find(&head, b"data:").is_some() || head.len() > SKIPPED_BODY_MAX {
                            return UpstreamResponse { status, headers, body: Body::Peeked(head.freeze(), body), deadline };
                        }
                    }
                    // Cut or timed out before an event: the stream's own
                    // error path (the caller sees it while reading).
                    Ok(Some(Err(_))) | Err(_) => return UpstreamResponse { status, headers, body: Body::Peeked(head.freeze(), body), deadline },
                    Ok(None) => break,
                }
            }
        } else {
            let rest = UpstreamResponse { status, headers: HeaderMap::new(), body: Body::Wire(body), deadline };
            head.put(rest.bytes_bounded(4096).await);
        }
        let text = String::from_utf8_lossy(&head);
        let what = if text.trim().is_empty() {
            if stream { "a stream that ended without an event".to_string() } else { "an empty body".to_string() }
        } else {
            format!("`{}` ({})", crate::util::truncate_utf8(text.trim(), 300), if content_type.is_empty() { "no content type" } else { &content_type })
        };
        let message = format!("Google ({host}) answered 200 with {what}, not the JSON{} v1internal promises", if stream { " event stream" } else { "" });
        tracing::warn!(host, "{message}");
        let body = serde_json::json!({"error": {"code": 502, "message": message, "status": "UNAVAILABLE"}});
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        UpstreamResponse { status: StatusCode::BAD_GATEWAY, headers, body: Body::Read(Bytes::from(body.to_string())), deadline }
    }
}

/// The deepest cause of an error (hyper's outer messages say little).
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    crate::util::error_chain(e).last().map(ToString::to_string).unwrap_or_default()
}

/// One model's quota, as `fetchAvailableModels` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaReport {
    /// Model name.
    pub model: String,
    /// Remaining fraction, 0..1.
    pub remaining_fraction: f64,
    /// Reset time, Unix s.
    pub reset_at: Option<i64>,
}

/// Whether an answer sends the call on to the profile's next host: a 5xx,
/// or (where the profile says so) a 429 whose reason is `RATE_LIMIT_EXCEEDED`
/// (a per-host limit; `QUOTA_EXHAUSTED` is the account's everywhere).
fn next_host_for(profile: &Profile, status: u16, body: Option<&[u8]>) -> bool {
    (500..600).contains(&status)
        || (status == 429 && profile.next_host_on_rate_limit && body.is_some_and(|b| memchr::memmem::find(b, b"RATE_LIMIT_EXCEEDED").is_some()))
}

impl Upstream {
    /// A client for `config`, with connection pools for `lanes` serving
    /// threads (see [`crate::proxy::listener`]).
    pub fn new(config: &UpstreamConfig, lanes: usize) -> anyhow::Result<Self> {
        Self::with_egress(config, lanes, crate::egress::Egress::direct())
    }

    /// [`Self::new`], every call for an account leaving by its egress route.
    pub fn with_egress(config: &UpstreamConfig, lanes: usize, egress: Arc<crate::egress::Egress>) -> anyhow::Result<Self> {
        let http = crate::egress::Clients::build(&egress, |route| -> anyhow::Result<reqwest::Client> {
            Ok(crate::egress::reqwest_builder(route)?
                .timeout(Duration::from_secs(config.timeout_secs))
                .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
                .pool_max_idle_per_host(if route.is_some() { 0 } else { 16 })
                .tcp_nodelay(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()?)
        })?;
        let proxied = crate::egress::Clients::build(&egress, |route| -> anyhow::Result<Box<[ProxiedClient]>> {
            let Some(proxy) = route else { return Ok(Box::new([])) };
            let tunnel = crate::egress::TunnelConnector::new(proxy.clone(), Duration::from_secs(config.connect_timeout_secs));
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_webpki_roots()
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(tunnel);
            Ok((0..=lanes)
                .map(|_| {
                    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                        .pool_max_idle_per_host(64)
                        .pool_idle_timeout(Duration::from_secs(90))
                        .http2_only(config.http2_prior_knowledge)
                        .build(https.clone())
                })
                .collect())
        })?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(config.connect_timeout_secs)));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(connector);
        let generate = (0..=lanes)
            .map(|_| {
                hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(256)
                    .pool_idle_timeout(Duration::from_secs(90))
                    .http2_only(config.http2_prior_knowledge)
                    .build(https.clone())
            })
            .collect();
        let mut routes = Vec::new();
        for profile in ALL {
            let mut hosts = Vec::new();
            for base in config.base_urls_of(profile) {
                let uri = |path: &str| -> anyhow::Result<Uri> {
                    format!("{base}{path}").parse::<Uri>().map_err(|e| anyhow::anyhow!("upstream base URL `{base}` is not a URL: {e}"))
                };
                let generate_uri = uri("/v1internal:generateContent")?;
                let host_header = (generate_uri.scheme() == Some(&axum::http::uri::Scheme::HTTP))
                    .then(|| generate_uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()))
                    .flatten();
                let https = generate_uri.scheme() == Some(&axum::http::uri::Scheme::HTTPS);
                let hostname = generate_uri.host().unwrap_or("").to_string();
                let env_route = if egress.configured() { None } else { egress.route(None, https, &hostname).unwrap_or(None) };
                hosts.push(Host { stream_uri: uri("/v1internal:streamGenerateContent?alt=sse")?, generate_uri, host_header, base, https, hostname, env_route });
            }
            // The version in one place: the profile's, or the configured one.
            let version = match (profile.name, &config.antigravity_version) {
                ("antigravity", Some(v)) => v.as_str(),
                _ => profile.version,
            };
            let raw_template = config.user_agent.clone().unwrap_or_else(|| profile.user_agent.to_string());
            let ua = parking_lot::RwLock::new(RouteUa::new(&raw_template, version)?);
            let follows_manifest = profile.name == "antigravity" && config.antigravity_version.is_none() && raw_template.contains("{version}");
            routes.push(Route { profile, hosts, ua, raw_template, follows_manifest });
        }
        Ok(Upstream {
            http: Arc::new(http),
            egress,
            proxied: Arc::new(proxied),
            generate,
            routes: routes.into(),
            timeout: Duration::from_secs(config.timeout_secs),
            onboard_timeout: Duration::from_secs(config.onboard_timeout_secs),
            onboard_poll: Duration::from_millis(config.onboard_poll_ms),
            fallback_hosts: config.fallback_hosts,
            reported_version: Arc::new(parking_lot::RwLock::new(
                config.antigravity_version.clone().unwrap_or_else(|| crate::profiles::ANTIGRAVITY.version.to_string()),
            )),
            catalogue: Arc::new(Catalogue::with_default_tier(&config.default_tier)),
        })
    }

    /// The serving threads it keeps connection pools for.
    pub fn lanes(&self) -> usize {
        self.generate.len() - 1
    }

    /// Whether an account may move on to `profile`'s later hosts after a
    /// failure of the first. `gcp_managed` is what `loadCodeAssist` said of
    /// it (`None`: not known yet, kept on the first host like a consumer
    /// account, where Google serves every account).
    pub fn all_hosts_for(&self, profile: &Profile, gcp_managed: Option<bool>) -> bool {
        use crate::config::FallbackHosts;
        match self.fallback_hosts {
            FallbackHosts::All => true,
            FallbackHosts::None => false,
            FallbackHosts::Enterprise => !profile.consumer_first_host_only || gcp_managed == Some(true),
        }
    }

    /// Whether `profile` has more than one host (so an account's tier
    /// decides where it may go).
    pub fn has_fallback_hosts(&self, profile: &Profile) -> bool {
        self.route(profile).hosts.len() > 1 && profile.consumer_first_host_only && self.fallback_hosts == crate::config::FallbackHosts::Enterprise
    }

    fn route(&self, profile: &Profile) -> &Route {
        self.routes.iter().find(|r| std::ptr::eq(r.profile, profile)).unwrap_or(&self.routes[0])
    }

    fn user_agent(route: &Route, model: &str) -> HeaderValue {
        let ua = route.ua.read();
        match &ua.fixed {
            Some(v) => v.clone(),
            None => HeaderValue::from_str(&ua.template.replace("{model}", model)).unwrap_or_else(|_| HeaderValue::from_static("grantpool")),
        }
    }

    /// Send a generate call for an account of `profile`: its hosts in
    /// order (only the first unless `all_hosts`: see [`Self::all_hosts_for`]),
    /// the next one after a connection failure, a 5xx or (Antigravity)
    /// a 429 `RATE_LIMIT_EXCEEDED`. `envelope` is the whole body
    /// ([`envelope::build`]). Any HTTP answer of the last host tried is `Ok`
    /// (the caller reads the status); a 200 that is not what `v1internal`
    /// promises (not JSON, or a stream without an event) is turned into a
    /// 502 here, so it is never a success for the client. `egress` is the
    /// account's proxy name (its record's field): the call leaves through
    /// it and nowhere else ([`crate::egress::Egress::route`]). `lane` is
    /// the caller's serving thread (its own connection pool; `None` off
    /// the serving threads: a shared one).
    #[allow(clippy::too_many_arguments)]
    pub async fn generate(
        &self,
        profile: &Profile,
        model: &str,
        token: &str,
        envelope: Bytes,
        stream: bool,
        all_hosts: bool,
        egress: Option<&str>,
        lane: Option<usize>,
    ) -> Result<UpstreamResponse, NetworkError> {
        let deadline = Instant::now() + self.timeout;
        let route = self.route(profile);
        let mut bearer = BytesMut::with_capacity(7 + token.len());
        bearer.put_slice(b"Bearer ");
        bearer.put_slice(token.as_bytes());
        let mut auth = HeaderValue::from_maybe_shared(bearer.freeze())
            .map_err(|_| NetworkError("the access token is not a valid header value".into()))?;
        auth.set_sensitive(true);
        let user_agent = Self::user_agent(route, model);
        let lanes = self.lanes();
        let lane = match lane {
            Some(l) if lanes > 0 => l % lanes,
            _ => lanes,
        };
        let client = &self.generate[lane];
        let mut last = Err(NetworkError("no upstream host configured".into()));
        let hosts = if all_hosts { &route.hosts[..] } else { &route.hosts[..route.hosts.len().min(1)] };
        for (i, host) in hosts.iter().enumerate() {
            let more = i + 1 < hosts.len();
            let mut req = axum::http::Request::new(Full::new(envelope.clone()));
            *req.method_mut() = Method::POST;
            *req.uri_mut() = if stream { host.stream_uri.clone() } else { host.generate_uri.clone() };
            let h = req.headers_mut();
            if let Some(hh) = &host.host_header {
                h.insert(header::HOST, hh.clone());
            }
            h.insert(header::AUTHORIZATION, auth.clone());
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            h.insert(header::USER_AGENT, user_agent.clone());
            // Direct unless the account (or the environment) names a proxy:
            // then through it only, never directly instead.
            let way = match egress {
                None if !self.egress.configured() => host.env_route.clone(),
                _ => self.egress.route(egress, host.https, &host.hostname).map_err(|e| NetworkError(e.to_string()))?,
            };
            let sent = match &way {
                None => client.request(req),
                Some(p) => match self.proxied.get(&way).and_then(|c| c.get(lane)) {
                    Some(c) => c.request(req),
                    None => return Err(NetworkError(format!("egress proxy `{}` has no client", p.name))),
                },
            };
            let answer = match tokio::time::timeout_at(deadline, sent).await {
                Ok(Ok(inner)) => inner,
                Ok(Err(e)) => {
                    let kind = if e.is_connect() { "could not connect" } else { "request failed" };
                    if let Some(p) = &way {
                        tracing::warn!(proxy = %p.name, host = %host.base, error = %innermost(&e), "upstream call through egress proxy failed");
                    }
                    // An earlier host's 5xx says more than this one's silence.
                    if last.is_err() {
                        last = Err(NetworkError(format!("{kind} to {}: {}", host.base, innermost(&e))));
                    }
                    if more {
                        tracing::debug!(host = %host.base, "upstream host unreachable, trying the next one");
                    }
                    continue;
                }
                Err(_) => return Err(NetworkError("timed out waiting for the answer (upstream.timeout_secs)".into())),
            };
            let (parts, body) = answer.into_parts();
            let status = parts.status.as_u16();
            let mut resp = UpstreamResponse { status: parts.status, headers: parts.headers, body: Body::Wire(body), deadline };
            if resp.status.is_success() {
                resp = resp.checked(stream, &host.base).await;
                if more && !resp.status.is_success() {
                    last = Ok(resp);
                    continue;
                }
            }
            if more && status == 429 && route.profile.next_host_on_rate_limit {
                // Read it to see which 429 it is (an error body is small).
                let read = resp.bytes_bounded_keep(SKIPPED_BODY_MAX).await;
                if next_host_for(route.profile, status, Some(&read)) {
                    tracing::debug!(host = %host.base, "upstream host rate-limited (RATE_LIMIT_EXCEEDED), trying the next one");
                    continue;
                }
                return Ok(read.into_response(resp));
            }
            if more && next_host_for(route.profile, status, None) {
                tracing::debug!(host = %host.base, status, "upstream host answered {status}, trying the next one");
                last = Ok(resp);
                continue;
            }
            return Ok(resp);
        }
        last
    }

    /// A JSON call to a `v1internal` method of `profile`'s hosts (the next
    /// host on a connection failure or a 5xx).
    async fn json_call(&self, profile: &Profile, method: &str, token: &str, body: &serde_json::Value, egress: Option<&str>) -> Result<serde_json::Value, UpstreamCallError> {
        self.json_request(profile, reqwest::Method::POST, &format!("/v1internal:{method}"), token, Some(body), egress).await
    }

    async fn json_request(
        &self,
        profile: &Profile,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
        egress: Option<&str>,
    ) -> Result<serde_json::Value, UpstreamCallError> {
        let route = self.route(profile);
        let mut last = UpstreamCallError::Network("no upstream host configured".into());
        for (i, host) in route.hosts.iter().enumerate() {
            let more = i + 1 < route.hosts.len();
            let way = self.egress.route(egress, host.https, &host.hostname).map_err(|e| UpstreamCallError::Network(e.to_string()))?;
            let Some(http) = self.http.get(&way) else {
                return Err(UpstreamCallError::Network(format!("egress proxy `{}` has no client", way.as_ref().map_or("", |p| &p.name))));
            };
            let mut req = http.request(method.clone(), format!("{}{path}", host.base)).bearer_auth(token).header(header::USER_AGENT, Self::user_agent(route, ""));
            if let Some(body) = body {
                req = req.json(body);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = UpstreamCallError::Network(match &way {
                        Some(p) => {
                            if e.is_connect() {
                                p.suspect();
                            }
                            format!("through egress proxy `{}`: {}", p.name, describe_reqwest(&e))
                        }
                        None => describe_reqwest(&e),
                    });
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let text = resp.text().await.map_err(|e| UpstreamCallError::Network(describe_reqwest(&e)))?;
            if !(200..300).contains(&status) {
                last = UpstreamCallError::Status { status, body: crate::util::truncate_utf8(&text, 4096).to_string() };
                if more && next_host_for(route.profile, status, Some(text.as_bytes())) {
                    continue;
                }
                return Err(last);
            }
            return serde_json::from_str(&text).map_err(|e| UpstreamCallError::Status { status, body: format!("answer is not JSON: {e}") });
        }
        Err(last)
    }

    /// Per-model quota of an account, and the models Google lists for its
    /// profile (kept in the [`catalogue`]).
    pub async fn fetch_available_models(&self, profile: &'static Profile, token: &str, project: Option<&str>, egress: Option<&str>) -> Result<Vec<QuotaReport>, UpstreamCallError> {
        let body = match project {
            Some(p) => serde_json::json!({"project": p}),
            None => serde_json::json!({}),
        };
        let v = self.json_call(profile, "fetchAvailableModels", token, &body, egress).await?;
        self.catalogue.update(profile.name, Listing::parse(&v));
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct QuotaInfo {
            remaining_fraction: Option<f64>,
            reset_time: Option<String>,
        }
        let mut out = Vec::new();
        if let Some(models) = v.get("models").and_then(|m| m.as_object()) {
            for (name, m) in models {
                let Some(q) = m.get("quotaInfo") else { continue };
                let Ok(q) = serde_json::from_value::<QuotaInfo>(q.clone()) else { continue };
                out.push(QuotaReport {
                    model: name.clone(),
                    remaining_fraction: q.remaining_fraction.unwrap_or(0.0).clamp(0.0, 1.0),
                    reset_at: q.reset_time.as_deref().and_then(parse_rfc3339),
                });
            }
        }
        Ok(out)
    }

    /// `countTokens` for a Gemini request (`{"contents", "systemInstruction", "tools"}`).
    pub async fn count_tokens(&self, profile: &Profile, token: &str, model: &str, request: &serde_json::Value, egress: Option<&str>) -> Result<u64, UpstreamCallError> {
        let mut inner = serde_json::Map::new();
        inner.insert("model".into(), format!("models/{model}").into());
        if let Some(obj) = request.as_object() {
            for key in ["contents", "systemInstruction", "tools", "generationConfig"] {
                if let Some(v) = obj.get(key) {
                    inner.insert(key.into(), v.clone());
                }
            }
        }
        let v = self.json_call(profile, "countTokens", token, &serde_json::json!({ "request": inner }), egress).await?;
        v.get("totalTokens")
            .and_then(|t| t.as_u64().or_else(|| t.as_str()?.parse().ok()))
            .ok_or_else(|| UpstreamCallError::Status { status: 200, body: "countTokens answered without totalTokens".into() })
    }
}

/// An error answer read while deciding whether to try the next host.
struct ReadBody(Bytes);

impl std::ops::Deref for ReadBody {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl ReadBody {
    fn into_response(self, mut resp: UpstreamResponse) -> UpstreamResponse {
        resp.body = Body::Read(self.0);
        resp
    }
}

impl UpstreamResponse {
    /// Reads at most `max` bytes, keeping the status and headers.
    async fn bytes_bounded_keep(&mut self, max: usize) -> ReadBody {
        let body = std::mem::replace(&mut self.body, Body::Read(Bytes::new()));
        let tmp = UpstreamResponse { status: self.status, headers: HeaderMap::new(), body, deadline: self.deadline };
        ReadBody(tmp.bytes_bounded(max).await)
    }
}

/// A failed auxiliary call (project discovery, quota).
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamCallError {
    /// No HTTP answer.
    #[error("network error: {0}")]
    Network(String),
    /// An error status.
    #[error("HTTP {status}: {body}")]
    Status {
        /// Status.
        status: u16,
        /// Body.
        body: String,
    },
}

/// Parse an RFC 3339 UTC timestamp (`2026-11-24T12:00:00Z`, optional
/// fraction and offset) into Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once(['T', 't', ' '])?;
    let mut d = date.split('-');
    let (y, mo, da): (i64, i64, i64) = (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    let (clock, offset_secs) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let mut p = off[1..].split(':');
        let oh: i64 = p.next()?.parse().ok()?;
        let om: i64 = p.next().unwrap_or("0").parse().ok()?;
        (c, sign * (oh * 3600 + om * 60))
    } else {
        (time, 0)
    };
    let mut t = clock.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let mi: i64 = t.next()?.parse().ok()?;
    let sec: f64 = t.next().unwrap_or("0").parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + sec as i64 - offset_secs)
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20.5+01:00"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
