//! Outbound proxies (`[egress]`): which way each call made for an account
//! leaves, the tunnels through HTTP CONNECT and SOCKS5 proxies for the
//! generate client (opened by [`ProxyUrl`], in `proxy_url.rs`), and each
//! proxy's health.
//!
//! Every call for an account resolves its [`Route`] here ([`Egress::route`]):
//! the account's named proxy, else the pool's default, else direct. Without
//! `[egress]` the `HTTP_PROXY` / `HTTPS_PROXY` / `ALL_PROXY` / `NO_PROXY`
//! variables decide, read once and applied to every client alike (reqwest's
//! own reading of them is turned off, so that the generate client and the
//! others never disagree). A proxy's URL may hold a password: only its name
//! and [`ProxyUrl::redacted`] form are ever shown.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::config::EgressConfig;

pub mod proxy_url;

pub use proxy_url::{ProxyKind, ProxyUrl};

/// Default pause between two health checks of a proxy.
const CHECK_EVERY: Duration = Duration::from_secs(180);
/// Shortest pause before a check that follows a failed tunnel.
const RECHECK_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// One proxy in use: its name, URL and health.
pub struct ProxyEntry {
    /// The name logs and metrics show (`[egress.proxies.NAME]`, `default`,
    /// or the environment variable it came from).
    pub name: Arc<str>,
    /// Where it is.
    pub url: ProxyUrl,
    healthy: AtomicBool,
    /// When it was last checked, Unix seconds (0: not yet).
    checked_at: AtomicI64,
    last_error: parking_lot::Mutex<Option<String>>,
    /// Woken when a tunnel fails, so that it is checked again soon.
    failed: tokio::sync::Notify,
}

impl std::fmt::Debug for ProxyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyEntry").field("name", &self.name).field("url", &self.url).finish()
    }
}

/// What is known of a proxy's health.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProxyHealth {
    /// The proxy's name.
    pub name: String,
    /// `scheme://host:port` (never the credentials).
    pub endpoint: String,
    /// Whether the last check (or tunnel) succeeded; `true` until checked.
    pub healthy: bool,
    /// When it was last checked, Unix seconds (0: not yet).
    pub checked_at: i64,
    /// Why the last check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ProxyEntry {
    fn new(name: &str, url: ProxyUrl) -> Arc<ProxyEntry> {
        Arc::new(ProxyEntry {
            name: name.into(),
            url,
            healthy: AtomicBool::new(true),
            checked_at: AtomicI64::new(0),
            last_error: parking_lot::Mutex::new(None),
            failed: tokio::sync::Notify::new(),
        })
    }

    /// Whether it is believed reachable.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Its health, for the admin API and the CLI.
    pub fn health(&self) -> ProxyHealth {
        ProxyHealth {
            name: self.name.to_string(),
            endpoint: self.url.endpoint(),
            healthy: self.healthy(),
            checked_at: self.checked_at.load(Ordering::Relaxed),
            error: self.last_error.lock().clone(),
        }
    }

    fn record(&self, result: &io::Result<()>) {
        let was = self.healthy.swap(result.is_ok(), Ordering::Relaxed);
        self.checked_at.store(crate::util::now_secs(), Ordering::Relaxed);
        match result {
            Ok(()) => {
                *self.last_error.lock() = None;
                if !was {
                    tracing::info!(proxy = %self.name, "egress proxy reachable again");
                }
            }
            Err(e) => {
                *self.last_error.lock() = Some(e.to_string());
                if was {
                    tracing::warn!(proxy = %self.name, error = %e, "egress proxy unreachable");
                }
            }
        }
    }

    /// A tunnel for a call: a failure marks the proxy unhealthy and asks
    /// for a check soon.
    pub async fn tunnel(&self, host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
        let r = self.url.open(host, port, timeout).await;
        if let Err(e) = &r {
            self.record(&Err(io::Error::new(e.kind(), e.to_string())));
            self.failed.notify_one();
        }
        r.map_err(|e| io::Error::new(e.kind(), format!("egress proxy `{}`: {e}", self.name)))
    }

    /// Asks for a check soon (a call through it could not connect).
    pub fn suspect(&self) {
        self.failed.notify_one();
    }

    /// One check: a tunnel to `target` opened and closed.
    pub async fn check(&self, target: &(String, u16), timeout: Duration) -> bool {
        let r = self.url.open(&target.0, target.1, timeout).await.map(drop);
        self.record(&r);
        r.is_ok()
    }
}

/// Which way a call leaves: `None` is direct.
pub type Route = Option<Arc<ProxyEntry>>;

/// A call that may not leave: the account names a proxy that is not
/// configured (it never falls back to direct).
#[derive(Debug, Clone, thiserror::Error)]
#[error("egress proxy `{0}` is not configured in [egress.proxies] (the account's calls never leave directly instead)")]
pub struct UnknownProxy(pub String);

/// The proxies from the environment (used only without `[egress]`).
#[derive(Default)]
struct EnvProxies {
    http: Route,
    https: Route,
    no_proxy: Vec<String>,
    no_proxy_all: bool,
}

impl EnvProxies {
    fn read() -> EnvProxies {
        let var = |names: &[&str]| -> Option<(String, String)> {
            names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()).map(|v| (n.to_string(), v)))
        };
        let entry = |found: Option<(String, String)>| -> Route {
            let (name, url) = found?;
            // A bare `host:port` means an HTTP proxy, as curl reads it.
            let url = if url.contains("://") { url } else { format!("http://{url}") };
            match ProxyUrl::parse(&url) {
                Ok(u) => Some(ProxyEntry::new(&name, u)),
                Err(e) => {
                    tracing::warn!(proxy = %name, "ignoring {name}: {e}");
                    None
                }
            }
        };
        let all = var(&["ALL_PROXY", "all_proxy"]);
        // HTTP_PROXY is not trusted under CGI (httpoxy), as reqwest and curl do.
        let http = if std::env::var_os("REQUEST_METHOD").is_some() { None } else { var(&["HTTP_PROXY", "http_proxy"]) };
        let https = var(&["HTTPS_PROXY", "https_proxy"]);
        let all_entry = entry(all);
        let no = var(&["NO_PROXY", "no_proxy"]).map(|(_, v)| v).unwrap_or_default();
        let no_proxy: Vec<String> = no.split(',').map(|s| s.trim().trim_start_matches('.').to_ascii_lowercase()).filter(|s| !s.is_empty()).collect();
        EnvProxies {
            http: entry(http).or_else(|| all_entry.clone()),
            https: entry(https).or_else(|| all_entry.clone()),
            no_proxy_all: no_proxy.iter().any(|s| s == "*"),
            no_proxy,
        }
    }

    fn for_url(&self, https: bool, host: &str) -> Route {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if self.no_proxy_all || self.no_proxy.iter().any(|n| host == *n || host.ends_with(&format!(".{n}")) || cidr_match(n, &host)) {
            return None;
        }
        if https { self.https.clone() } else { self.http.clone() }
    }
}

/// `NO_PROXY` entries that are an address or `a.b.c.d/len` (IPv4).
fn cidr_match(rule: &str, host: &str) -> bool {
    let Ok(ip) = host.parse::<std::net::Ipv4Addr>() else { return false };
    let (net, len) = rule.split_once('/').map_or((rule, 32), |(n, l)| (n, l.parse().unwrap_or(33)));
    let (Ok(net), true) = (net.parse::<std::net::Ipv4Addr>(), len <= 32) else { return false };
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(net) & mask
}

/// The pool's outbound proxies.
pub struct Egress {
    configured: bool,
    named: BTreeMap<String, Arc<ProxyEntry>>,
    default: Route,
    env: EnvProxies,
    check_every: Duration,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress").field("configured", &self.configured).field("proxies", &self.named.keys().collect::<Vec<_>>()).finish()
    }
}

impl Egress {
    /// The proxies of `config` (validated at load), or the environment's
    /// when it configures none.
    pub fn new(config: &EgressConfig) -> Result<Arc<Egress>, String> {
        let mut named = BTreeMap::new();
        for (name, p) in &config.proxies {
            let url = ProxyUrl::parse(&p.url).map_err(|e| format!("egress.proxies.{name}.url: {e}"))?;
            named.insert(name.clone(), ProxyEntry::new(name, url));
        }
        let default = match &config.default {
            None => None,
            Some(d) if d.contains("://") => Some(ProxyEntry::new("default", ProxyUrl::parse(d).map_err(|e| format!("egress.default: {e}"))?)),
            Some(name) => Some(named.get(name).cloned().ok_or_else(|| format!("egress.default: {}", UnknownProxy(name.clone())))?),
        };
        let configured = config.is_configured();
        Ok(Arc::new(Egress {
            configured,
            named,
            default,
            env: if configured { EnvProxies::default() } else { EnvProxies::read() },
            check_every: if config.check_secs == 0 { CHECK_EVERY } else { Duration::from_secs(config.check_secs) },
        }))
    }

    /// No proxies and no proxy variables: every call leaves directly.
    pub fn direct() -> Arc<Egress> {
        Arc::new(Egress { configured: false, named: BTreeMap::new(), default: None, env: EnvProxies::default(), check_every: CHECK_EVERY })
    }

    /// Whether `[egress]` configures proxies (else the environment decides).
    pub fn configured(&self) -> bool {
        self.configured
    }

    /// The way a call for an account with `egress` (its record's field)
    /// leaves to `url`'s scheme and host.
    pub fn route(&self, egress: Option<&str>, https: bool, host: &str) -> Result<Route, UnknownProxy> {
        match egress {
            Some(name) => self.named.get(name).cloned().map(Some).ok_or_else(|| UnknownProxy(name.to_string())),
            None if self.configured => Ok(self.default.clone()),
            None => Ok(self.env.for_url(https, host)),
        }
    }

    /// [`Self::route`] for a URL.
    pub fn route_url(&self, egress: Option<&str>, url: &str) -> Result<Route, UnknownProxy> {
        let (https, host) = match reqwest::Url::parse(url) {
            Ok(u) => (u.scheme() == "https", u.host_str().unwrap_or("").to_string()),
            Err(_) => (true, String::new()),
        };
        self.route(egress, https, &host)
    }

    /// The names an account may pick (`[egress.proxies]`), sorted.
    pub fn names(&self) -> Vec<String> {
        self.named.keys().cloned().collect()
    }

    /// Refuses a name an account may not pick; the error lists the ones it may.
    pub fn check_name(&self, name: &str) -> Result<(), String> {
        if self.named.contains_key(name) {
            return Ok(());
        }
        let names = if self.named.is_empty() { "none configured in [egress.proxies]".to_string() } else { self.names().join(", ") };
        Err(format!("unknown egress proxy `{name}`: the configured ones are {names}"))
    }

    /// The named proxies' health, for the accounts page's choice (never
    /// their credentials).
    pub fn named_health(&self) -> Vec<ProxyHealth> {
        self.named.values().map(|e| e.health()).collect()
    }

    /// The pool's default proxy, if `[egress] default` sets one.
    pub fn default_health(&self) -> Option<ProxyHealth> {
        self.default.as_ref().map(|e| e.health())
    }

    /// Every proxy in use (named, default, environment), each once.
    pub fn entries(&self) -> Vec<Arc<ProxyEntry>> {
        let mut out: Vec<Arc<ProxyEntry>> = Vec::new();
        let all = self.named.values().cloned().chain(self.default.clone()).chain(self.env.http.clone()).chain(self.env.https.clone());
        for e in all {
            if !out.iter().any(|o| Arc::ptr_eq(o, &e)) {
                out.push(e);
            }
        }
        out
    }

    /// The proxy an account's calls go through, by its record's field, for
    /// display (`None`: direct or the environment decides per host).
    pub fn of_account(&self, egress: Option<&str>) -> Option<ProxyHealth> {
        match egress {
            Some(name) => Some(self.named.get(name).map(|e| e.health()).unwrap_or_else(|| ProxyHealth {
                name: name.to_string(),
                endpoint: String::new(),
                healthy: false,
                checked_at: 0,
                error: Some(UnknownProxy(name.to_string()).to_string()),
            })),
            None => self.default.as_ref().map(|e| e.health()),
        }
    }

    /// Checks every proxy now and then (a tunnel to `target` opened and
    /// closed), and soon after a tunnel of a call failed. Runs forever.
    pub async fn run_checks(self: Arc<Self>, target: (String, u16), timeout: Duration) {
        let mut tasks = Vec::new();
        for entry in self.entries() {
            let (target, every) = (target.clone(), self.check_every);
            tasks.push(tokio::spawn(async move {
                loop {
                    entry.check(&target, timeout).await;
                    let wait = if entry.healthy() { every } else { every.min(Duration::from_secs(30)) };
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = entry.failed.notified() => tokio::time::sleep(RECHECK_AFTER_FAILURE).await,
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// One client per way out: direct, and one per proxy in use.
pub struct Clients<C> {
    direct: C,
    proxied: Vec<(Arc<ProxyEntry>, C)>,
}

impl<C> Clients<C> {
    /// `make(None)` for direct calls, `make(Some(proxy))` for each proxy.
    pub fn build<E>(egress: &Egress, mut make: impl FnMut(Option<&Arc<ProxyEntry>>) -> Result<C, E>) -> Result<Clients<C>, E> {
        let direct = make(None)?;
        let mut proxied = Vec::new();
        for e in egress.entries() {
            let c = make(Some(&e))?;
            proxied.push((e, c));
        }
        Ok(Clients { direct, proxied })
    }

    /// The client of `route` (a handful of proxies: a scan). `None` for a
    /// proxy it was not built with: never a reason to leave directly.
    pub fn get(&self, route: &Route) -> Option<&C> {
        match route {
            None => Some(&self.direct),
            Some(p) => self.proxied.iter().find(|(e, _)| Arc::ptr_eq(e, p)).map(|(_, c)| c),
        }
    }
}

/// A reqwest builder that follows `route` only: the environment's proxy
/// variables are applied by [`Egress::route`], never by reqwest itself.
/// Through a proxy no idle connection is kept: a proxy may close it
/// unannounced (tinyproxy does), and a POST on a dead pooled connection is
/// not retried. These calls (refresh, userinfo, project, quota) are rare.
pub fn reqwest_builder(route: Option<&Arc<ProxyEntry>>) -> reqwest::Result<reqwest::ClientBuilder> {
    let b = reqwest::Client::builder().no_proxy();
    Ok(match route {
        Some(p) => b.proxy(p.url.reqwest_proxy()?).pool_max_idle_per_host(0),
        None => b,
    })
}

/// A hyper connector that opens every connection through one proxy (the
/// generate client of that proxy; hyper-rustls wraps it for https).
#[derive(Clone)]
pub struct TunnelConnector {
    proxy: Arc<ProxyEntry>,
    timeout: Duration,
}

impl TunnelConnector {
    /// Tunnels through `proxy`, each handshake within `timeout`.
    pub fn new(proxy: Arc<ProxyEntry>, timeout: Duration) -> TunnelConnector {
        TunnelConnector { proxy, timeout }
    }
}

impl tower_service::Service<Uri> for TunnelConnector {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<TcpStream>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let (proxy, timeout) = (self.proxy.clone(), self.timeout);
        Box::pin(async move {
            let host = dst.host().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host in the URI"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
            let port = dst.port_u16().unwrap_or(if dst.scheme_str() == Some("http") { 80 } else { 443 });
            proxy.tunnel(&host, port, timeout).await.map(TokioIo::new)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn parses_and_hides_the_password() {
        let u = ProxyUrl::parse("http://al%40ice:s3cret@10.0.0.2:3128").unwrap();
        assert_eq!(u.kind, ProxyKind::Http);
        assert_eq!((u.host.as_str(), u.port), ("10.0.0.2", 3128));
        assert_eq!(u.auth, Some(("al@ice".into(), "s3cret".into())));
        assert!(!format!("{u:?}").contains("s3cret"));
        assert!(!u.redacted().contains("s3cret"));
        let s = ProxyUrl::parse("socks5h://127.0.0.1").unwrap();
        assert_eq!((s.kind, s.port), (ProxyKind::Socks5h, 1080));
        let e = ProxyUrl::parse("ftp://u:s3cret@h:1").unwrap_err();
        assert!(e.contains("unsupported scheme") && !e.contains("s3cret"), "{e}");
        assert!(ProxyUrl::parse("https://u:s3cret@h:1").unwrap_err().contains("http://"));
    }

    #[test]
    fn config_errors_name_the_key_not_the_password() {
        let mut c = EgressConfig::default();
        c.proxies.insert("office".into(), crate::config::EgressProxy { url: "ftp://alice:s3cret@10.0.0.2:21".into() });
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("egress.proxies.office.url") && !e.contains("s3cret"), "{e}");
        let mut c = EgressConfig { default: Some("home".into()), ..Default::default() };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("egress.default") && e.contains("home"), "{e}");
        c.proxies.insert("home".into(), crate::config::EgressProxy { url: "socks5h://u:s3cret@127.0.0.1:1080".into() });
        c.validate().unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
        let eg = Egress::new(&c).unwrap();
        assert_eq!(eg.route(None, true, "x").unwrap().unwrap().name.as_ref(), "home");
        assert!(eg.route(Some("gone"), true, "x").is_err(), "an unknown name never leaves directly");
        // What the admin API and the page may pick: the names, with their health, never the password.
        c.proxies.insert("office".into(), crate::config::EgressProxy { url: "http://10.0.0.2:3128".into() });
        let eg = Egress::new(&c).unwrap();
        assert!(eg.check_name("office").is_ok());
        let e = eg.check_name("gone").unwrap_err();
        assert!(e.contains("`gone`") && e.contains("home, office"), "{e}");
        assert_eq!(eg.named_health().iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["home", "office"]);
        assert_eq!(eg.default_health().unwrap().name, "home");
        assert!(!serde_json::to_string(&eg.named_health()).unwrap().contains("s3cret"));
    }

    /// `socks5h`: the name goes to the proxy (ATYP 3), never resolved here;
    /// the user and password are offered.
    #[tokio::test]
    async fn socks5h_sends_the_name_to_the_proxy() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut greeting = [0u8; 4];
            s.read_exact(&mut greeting).await.unwrap();
            assert_eq!(greeting, [5, 2, 0, 2]);
            s.write_all(&[5, 2]).await.unwrap();
            let mut auth = [0u8; 2 + 1 + 1 + 2];
            s.read_exact(&mut auth).await.unwrap();
            assert_eq!(&auth, &[1, 1, b'u', 2, b'p', b'w']);
            s.write_all(&[1, 0]).await.unwrap();
            let mut head = [0u8; 5];
            s.read_exact(&mut head).await.unwrap();
            assert_eq!(&head[..4], &[5, 1, 0, 3], "a domain name");
            let mut name = vec![0u8; head[4] as usize + 2];
            s.read_exact(&mut name).await.unwrap();
            s.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await.unwrap();
            (String::from_utf8_lossy(&name[..name.len() - 2]).into_owned(), u16::from_be_bytes([name[name.len() - 2], name[name.len() - 1]]))
        });
        let url = ProxyUrl::parse(&format!("socks5h://u:pw@127.0.0.1:{port}")).unwrap();
        url.open("cloudcode-pa.example.invalid", 443, Duration::from_secs(5)).await.unwrap();
        assert_eq!(server.await.unwrap(), ("cloudcode-pa.example.invalid".to_string(), 443));
    }

    #[test]
    fn a_bad_egress_line_in_the_file_keeps_its_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("grantpool.toml");
        std::fs::write(&file, "[egress]\ndefault = [\"http://alice:s3cret@10.0.0.2:3128\"]\n").unwrap();
        let over = crate::config::Overrides { config: Some(file), ..Default::default() };
        let e = crate::config::Config::load(&over).unwrap_err().to_string();
        assert!(e.contains("default") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn no_proxy_rules() {
        let env = EnvProxies {
            https: Some(ProxyEntry::new("HTTPS_PROXY", ProxyUrl::parse("http://p:1").unwrap())),
            http: None,
            no_proxy: vec!["localhost".into(), "example.com".into(), "10.0.0.0/8".into()],
            no_proxy_all: false,
        };
        assert!(env.for_url(true, "cloudcode-pa.googleapis.com").is_some());
        assert!(env.for_url(true, "api.example.com").is_none());
        assert!(env.for_url(true, "10.1.2.3").is_none());
        assert!(env.for_url(false, "google.com").is_none());
    }
}
