//! The Google Code Assist (`v1internal`) client: generate (plain and
//! streaming), project discovery, per-model quota.

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

/// The client of the generate calls: hyper's pooled client over rustls
/// (HTTP/2 when Google offers it). The hot path skips reqwest's per-request
/// URL and option handling; the occasional calls below still use reqwest.
type GenerateClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// The upstream client (one connection pool for every account).
#[derive(Clone)]
pub struct Upstream {
    http: reqwest::Client,
    /// One client (and connection pool) per serving thread, plus one for
    /// calls made off them: a connection's task runs on the runtime that
    /// opened it, so sharing one pool would hand requests across threads.
    generate: Arc<[GenerateClient]>,
    // Built once; a `Uri` clone is a reference count.
    generate_uri: Uri,
    stream_uri: Uri,
    user_agent: HeaderValue,
    /// `Host` of the generate URIs over plain HTTP (HTTP/1 only: set once
    /// here, hyper would format it per call). Over TLS the connection may be
    /// HTTP/2, where hyper sends `:authority` instead, so it is left to hyper.
    host: Option<HeaderValue>,
    timeout: Duration,
    load_url: String,
    models_url: String,
}

/// A failed upstream call that never got an HTTP answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct NetworkError(pub String);

/// An upstream answer to a generate call, body not yet read. Reading it is
/// bounded by the same deadline as the call (`upstream.timeout_secs`).
pub struct UpstreamResponse {
    inner: axum::http::Response<Incoming>,
    deadline: Instant,
}

impl UpstreamResponse {
    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    /// Response headers.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The whole body.
    pub async fn bytes(self) -> Result<Bytes, NetworkError> {
        match tokio::time::timeout_at(self.deadline, self.inner.into_body().collect()).await {
            Ok(Ok(b)) => Ok(b.to_bytes()),
            Ok(Err(e)) => Err(NetworkError(format!("connection dropped while reading the answer: {}", innermost(&e)))),
            Err(_) => Err(NetworkError("timed out reading the answer (upstream.timeout_secs)".into())),
        }
    }

    /// At most `max` bytes of the body (error answers: enough to classify
    /// and to show; the rest is dropped with the connection).
    pub async fn bytes_bounded(self, max: usize) -> Bytes {
        let deadline = self.deadline;
        let mut body = self.inner.into_body();
        let mut out = BytesMut::new();
        while out.len() < max {
            match tokio::time::timeout_at(deadline, body.frame()).await {
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
        futures::stream::unfold(Some(self.inner.into_body()), move |body| async move {
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
        })
        .boxed()
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

impl Upstream {
    /// A client for `config`, with connection pools for `lanes` serving
    /// threads (see [`crate::proxy::listener`]).
    pub fn new(config: &UpstreamConfig, lanes: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .user_agent(config.user_agent.clone())
            .pool_max_idle_per_host(16)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
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
                    .build(https.clone())
            })
            .collect();
        let base = config.base_url.trim_end_matches('/');
        let uri = |path: &str| -> anyhow::Result<Uri> {
            format!("{base}{path}").parse::<Uri>().map_err(|e| anyhow::anyhow!("upstream.base_url `{base}` is not a URL: {e}"))
        };
        let generate_uri = uri("/v1internal:generateContent")?;
        let host = (generate_uri.scheme() == Some(&axum::http::uri::Scheme::HTTP))
            .then(|| generate_uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()))
            .flatten();
        Ok(Upstream {
            http,
            generate,
            host,
            generate_uri,
            stream_uri: uri("/v1internal:streamGenerateContent?alt=sse")?,
            user_agent: HeaderValue::from_str(&config.user_agent)
                .map_err(|_| anyhow::anyhow!("upstream.user_agent is not a valid header value"))?,
            timeout: Duration::from_secs(config.timeout_secs),
            load_url: format!("{base}/v1internal:loadCodeAssist"),
            models_url: format!("{base}/v1internal:fetchAvailableModels"),
        })
    }

    /// The serving threads it keeps connection pools for.
    pub fn lanes(&self) -> usize {
        self.generate.len() - 1
    }

    /// Send a generate call. `envelope` is the full `{"model","project",
    /// "request"}` body. Any HTTP answer is `Ok` (the caller reads the status).
    pub async fn generate(&self, token: &str, envelope: Bytes, stream: bool) -> Result<UpstreamResponse, NetworkError> {
        let deadline = Instant::now() + self.timeout;
        let uri = if stream { &self.stream_uri } else { &self.generate_uri };
        let mut bearer = BytesMut::with_capacity(7 + token.len());
        bearer.put_slice(b"Bearer ");
        bearer.put_slice(token.as_bytes());
        let mut auth = HeaderValue::from_maybe_shared(bearer.freeze())
            .map_err(|_| NetworkError("the access token is not a valid header value".into()))?;
        auth.set_sensitive(true);
        let mut req = axum::http::Request::new(Full::new(envelope));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = uri.clone();
        let h = req.headers_mut();
        if let Some(host) = &self.host {
            h.insert(header::HOST, host.clone());
        }
        h.insert(header::AUTHORIZATION, auth);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(header::USER_AGENT, self.user_agent.clone());
        let lanes = self.lanes();
        let client = match crate::proxy::listener::current_lane() {
            Some(l) if lanes > 0 => &self.generate[l % lanes],
            _ => &self.generate[lanes],
        };
        match tokio::time::timeout_at(deadline, client.request(req)).await {
            Ok(Ok(inner)) => Ok(UpstreamResponse { inner, deadline }),
            Ok(Err(e)) => {
                let kind = if e.is_connect() { "could not connect" } else { "request failed" };
                Err(NetworkError(format!("{kind}: {}", innermost(&e))))
            }
            Err(_) => Err(NetworkError("timed out waiting for the answer (upstream.timeout_secs)".into())),
        }
    }

    /// Ask `loadCodeAssist` for the account's project id.
    pub async fn load_code_assist(&self, token: &str) -> Result<Option<String>, UpstreamCallError> {
        let body = serde_json::json!({
            "metadata": {"ideType": "IDE_UNSPECIFIED", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}
        });
        let v = self.json_call(&self.load_url, token, &body).await?;
        let project = match v.get("cloudaicompanionProject") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(o) => o.get("id").and_then(|i| i.as_str()).map(str::to_string),
            None => None,
        };
        Ok(project.filter(|p| !p.is_empty()))
    }

    /// Per-model quota of an account.
    pub async fn fetch_available_models(&self, token: &str, project: Option<&str>) -> Result<Vec<QuotaReport>, UpstreamCallError> {
        let body = match project {
            Some(p) => serde_json::json!({"project": p}),
            None => serde_json::json!({}),
        };
        let v = self.json_call(&self.models_url, token, &body).await?;
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

    async fn json_call(&self, url: &str, token: &str, body: &serde_json::Value) -> Result<serde_json::Value, UpstreamCallError> {
        let resp = self
            .http
            .post(url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| UpstreamCallError::Network(describe_reqwest(&e)))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| UpstreamCallError::Network(describe_reqwest(&e)))?;
        if !(200..300).contains(&status) {
            return Err(UpstreamCallError::Status { status, body: crate::util::truncate_utf8(&text, 4096).to_string() });
        }
        serde_json::from_str(&text).map_err(|e| UpstreamCallError::Status { status, body: format!("answer is not JSON: {e}") })
    }
}

/// The `v1internal` body of a generate call: `{"model", "project",
/// "request"}`, written into one buffer (strings JSON-escaped straight in).
pub fn envelope(model: &str, project: &str, request: &[u8]) -> Bytes {
    use std::io::Write;
    let mut w = BytesMut::with_capacity(request.len() + model.len() + project.len() + 48).writer();
    let _ = w.write_all(b"{\"model\":");
    let _ = serde_json::to_writer(&mut w, model);
    let _ = w.write_all(b",\"project\":");
    let _ = serde_json::to_writer(&mut w, project);
    let _ = w.write_all(b",\"request\":");
    let _ = w.write_all(request);
    let _ = w.write_all(b"}");
    w.into_inner().freeze()
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
