//! `grantpool.toml` → a typed [`Config`], read once at start.
//!
//! For every setting the order is: command-line flag, environment variable,
//! config file, default. `serve` with no file runs on the embedded defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::profiles::{Profile, ANTIGRAVITY};

/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8045";

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file is not valid TOML, or has an unknown or mistyped key.
    #[error("config file {path}: {cause}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message, with line and column.
        cause: String,
    },
    /// A value is out of range or inconsistent.
    #[error("config {what}: {cause}")]
    Invalid {
        /// The setting.
        what: String,
        /// What is wrong and how to fix it.
        cause: String,
    },
}

/// Client authentication on the proxy routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// No key needed.
    Off,
    /// A key on every route, `/health` included.
    Strict,
    /// A key on every route but `/health`.
    AllExceptHealth,
    /// `off` when listening on loopback only, else `all_except_health`.
    #[default]
    Auto,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Client authentication.
    pub auth_mode: AuthMode,
    /// Client keys (also `$GRANTPOOL_API_KEY`).
    pub api_keys: Vec<String>,
    /// Key for `/admin/*` and `/metrics` (also `$GRANTPOOL_ADMIN_KEY`).
    pub admin_key: Option<String>,
    /// Extra `Host` names accepted besides loopback ones (DNS-rebinding guard).
    pub allowed_hosts: Vec<String>,
    /// Largest request body accepted, bytes.
    pub max_body_bytes: usize,
    /// Most accounts tried for one request.
    pub max_attempts: u32,
    /// When every account that could serve is only resting (a cooldown,
    /// whole or for the model) and the first is back within this many
    /// seconds, a request waits for it instead of failing; at most this
    /// long in all per request (0: never wait).
    pub max_wait_secs: u64,
    /// Serving threads, each with its own single-threaded runtime
    /// (0 = one per core).
    pub workers: usize,
    /// How long requests in flight (streams too) may run on after SIGTERM
    /// before they are cut off, seconds.
    pub shutdown_grace_secs: u64,
    /// Most client connections open at once (0: what the open-file limit
    /// allows, two descriptors per stream); more are answered 503.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN.into(),
            auth_mode: AuthMode::Auto,
            api_keys: Vec::new(),
            admin_key: None,
            allowed_hosts: Vec::new(),
            max_body_bytes: 32 << 20,
            max_attempts: 4,
            max_wait_secs: 10,
            workers: 0,
            shutdown_grace_secs: 30,
            max_connections: 0,
        }
    }
}

/// One OAuth client in `[oauth.clients.NAME]` (a refresh token refreshes
/// only with the client that issued it). Naming a built-in client
/// (`antigravity`, `gemini-cli`) overrides it; any other name adds one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthClient {
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// Scopes a sign-in with it asks for (default: its profile's).
    pub scopes: Option<Vec<String>>,
    /// The upstream profile of its accounts (default: the built-in client
    /// of that name, else `antigravity`).
    pub profile: Option<String>,
}

/// An OAuth client resolved for one account: which, with what, for which
/// upstream profile.
#[derive(Debug, Clone)]
pub struct ResolvedClient {
    /// Its name (`antigravity`, `gemini-cli`, or a configured one).
    pub name: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// Scopes a sign-in asks for.
    pub scopes: Vec<String>,
    /// The profile its accounts are served with.
    pub profile: &'static Profile,
}

/// Which profile serves an account, from the client that issued its
/// refresh token (or `[upstream] profile` for every account). Built once;
/// asked on every request without allocating.
#[derive(Debug, Clone)]
pub struct ProfileMap {
    forced: Option<&'static Profile>,
    default: &'static Profile,
    by_client: std::collections::HashMap<String, &'static Profile>,
}

impl ProfileMap {
    /// The profile of an account whose `token.oauth_client` is `client`.
    pub fn of(&self, client: Option<&str>) -> &'static Profile {
        if let Some(p) = self.forced {
            return p;
        }
        match client {
            None | Some("") | Some("default") => self.default,
            Some(c) => self.by_client.get(c).copied().unwrap_or(self.default),
        }
    }
}

/// `[oauth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthConfig {
    /// Token endpoint.
    pub token_url: String,
    /// Userinfo endpoint (email of a token).
    pub userinfo_url: String,
    /// Authorization endpoint (for `accounts login`).
    pub auth_url: String,
    /// The client of new logins and of accounts that name none.
    pub client: String,
    /// Overrides the id of that client (also `$GRANTPOOL_OAUTH_CLIENT_ID`).
    pub client_id: String,
    /// Overrides its secret (also `$GRANTPOOL_OAUTH_CLIENT_SECRET`).
    pub client_secret: String,
    /// Refresh this long before expiry.
    pub refresh_skew_secs: u64,
    /// Overrides the scopes of sign-ins with the default client.
    pub scopes: Option<Vec<String>>,
    /// Named clients (built-in ones overridden, others added); an account
    /// names its own in `token.oauth_client`.
    pub clients: BTreeMap<String, OAuthClient>,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            token_url: "https://oauth2.googleapis.com/token".into(),
            userinfo_url: "https://www.googleapis.com/oauth2/v2/userinfo".into(),
            auth_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            client: ANTIGRAVITY.name.into(),
            client_id: String::new(),
            client_secret: String::new(),
            refresh_skew_secs: 300,
            scopes: None,
            clients: BTreeMap::new(),
        }
    }
}

impl OAuthConfig {
    /// The client an account uses: the one it names in `token.oauth_client`,
    /// else `[oauth] client`. Built-in clients by name, overridden by
    /// `[oauth.clients.NAME]`; the default one also by `[oauth] client_id`.
    pub fn client(&self, name: Option<&str>) -> Result<ResolvedClient, String> {
        let name = match name {
            None | Some("") | Some("default") => self.client.as_str(),
            Some(n) => n,
        };
        let builtin = crate::profiles::by_name(name);
        let configured = self.clients.get(name);
        let mut client = match (configured, builtin) {
            (Some(c), b) => {
                let profile = match c.profile.as_deref() {
                    Some(p) => crate::profiles::by_name(p).ok_or_else(|| {
                        format!("[oauth.clients.{name}] profile = {p:?}: expected \"antigravity\" or \"gemini-cli\"")
                    })?,
                    None => b.unwrap_or(&ANTIGRAVITY),
                };
                let pick = |own: &str, fallback: Option<&str>| {
                    if own.is_empty() { fallback.unwrap_or("").to_string() } else { own.to_string() }
                };
                ResolvedClient {
                    name: name.to_string(),
                    client_id: pick(&c.client_id, b.map(|b| b.client_id)),
                    client_secret: pick(&c.client_secret, b.map(|b| b.client_secret)),
                    scopes: c.scopes.clone().unwrap_or_else(|| profile.scopes.iter().map(|s| s.to_string()).collect()),
                    profile,
                }
            }
            (None, Some(b)) => ResolvedClient {
                name: name.to_string(),
                client_id: b.client_id.into(),
                client_secret: b.client_secret.into(),
                scopes: b.scopes.iter().map(|s| s.to_string()).collect(),
                profile: b,
            },
            (None, None) => {
                return Err(format!(
                    "OAuth client `{name}` is not configured: add [oauth.clients.{name}] client_id and client_secret to grantpool.toml (built in: antigravity, gemini-cli)"
                ))
            }
        };
        if name == self.client {
            if !self.client_id.is_empty() {
                client.client_id = self.client_id.clone();
            }
            if !self.client_secret.is_empty() {
                client.client_secret = self.client_secret.clone();
            }
            if let Some(scopes) = &self.scopes {
                client.scopes = scopes.clone();
            }
        }
        Ok(client)
    }
}

/// `[upstream]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `auto` (each account's profile follows its OAuth client),
    /// `antigravity` or `gemini-cli` (every account).
    pub profile: String,
    /// One base URL for every profile (tests, a private gateway); also
    /// `$GRANTPOOL_UPSTREAM_URL`.
    pub base_url: Option<String>,
    /// Base URLs tried in order, for every profile (default: each
    /// profile's own hosts).
    pub base_urls: Vec<String>,
    /// Longest a whole upstream answer may take.
    pub timeout_secs: u64,
    /// Longest a connection may take to open.
    pub connect_timeout_secs: u64,
    /// `User-Agent` for every profile (default: each profile's own).
    pub user_agent: Option<String>,
    /// The Antigravity version the Antigravity User-Agent reports (default:
    /// the profile's own; Google serves Gemini 3.8 only to 2.11 or later).
    pub antigravity_version: Option<String>,
    /// The Antigravity updater's manifest (electron-builder YAML with a
    /// `version:` line), read at start and every `version_check_secs` to
    /// keep the reported version current; unset (default): the built-in
    /// version. A manifest that cannot be read keeps the version in use.
    pub version_manifest_url: Option<String>,
    /// How often the manifest is read again (default 3 hours).
    pub version_check_secs: u64,
    /// Which accounts may move on to a profile's later hosts (prod) after a
    /// failure of the first (daily): `enterprise` (default: `gcpManaged`
    /// accounts; a consumer account stays on the daily host, where Google
    /// serves it), `all`, or `none`.
    pub fallback_hosts: FallbackHosts,
    /// The tier a model family named without one resolves to
    /// (`gemini-3.8-flash` → `gemini-3.8-flash-high`): `high` (Google's
    /// default agent model), `medium` or `low`.
    pub default_tier: String,
    /// Models listed by `/v1beta/models` and `/v1/models` until Google's
    /// list is known (`fetchAvailableModels`), and next to it.
    pub models: Vec<String>,
    /// How long onboarding (`onboardUser`) may take before the request moves on.
    pub onboard_timeout_secs: u64,
    /// Pause between two polls of an onboarding operation, milliseconds.
    pub onboard_poll_ms: u64,
    /// Speak HTTP/2 to a plain-`http://` upstream without asking first
    /// (h2c prior knowledge): a local gateway or the benchmarks' fake that
    /// serves h2 as Google does. `https://` hosts (Google's) choose HTTP/2
    /// by ALPN whatever this says; then each serving thread keeps one
    /// multiplexed connection instead of one connection per stream.
    pub http2_prior_knowledge: bool,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            profile: "auto".into(),
            base_url: None,
            base_urls: Vec::new(),
            timeout_secs: 600,
            connect_timeout_secs: 10,
            user_agent: None,
            antigravity_version: None,
            version_manifest_url: None,
            version_check_secs: 3 * 3600,
            fallback_hosts: FallbackHosts::Enterprise,
            default_tier: "high".into(),
            models: vec![
                "gemini-2.5-pro".into(),
                "gemini-2.5-flash".into(),
                "gemini-2.5-flash-lite".into(),
                "gemini-3-pro-preview".into(),
            ],
            onboard_timeout_secs: 60,
            onboard_poll_ms: 2000,
            http2_prior_knowledge: false,
        }
    }
}

impl UpstreamConfig {
    /// The hosts of `profile`, in the order they are tried.
    pub fn base_urls_of(&self, profile: &Profile) -> Vec<String> {
        if let Some(url) = &self.base_url {
            return vec![url.trim_end_matches('/').to_string()];
        }
        if !self.base_urls.is_empty() {
            return self.base_urls.iter().map(|u| u.trim_end_matches('/').to_string()).collect();
        }
        profile.base_urls.iter().map(|u| u.to_string()).collect()
    }

    /// The profile forced on every account (`None`: each follows its client).
    pub fn forced_profile(&self) -> Option<&'static Profile> {
        crate::profiles::by_name(&self.profile)
    }
}

/// Which accounts may use a profile's later hosts (`[upstream] fallback_hosts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FallbackHosts {
    /// Enterprise (`gcpManaged`) accounts only; consumer accounts, and
    /// accounts whose tier is not known yet, stay on the first host.
    Enterprise,
    /// Every account (grantpool before 2026; Google refuses consumer
    /// accounts on prod).
    All,
    /// No account: the first host only.
    None,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Level filter (`RUST_LOG` syntax), unless `RUST_LOG` is set.
    pub level: String,
    /// Daily log files kept.
    pub keep_files: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into(), keep_files: 7 }
    }
}

/// `[plugins]`: limits of the plugin runtime.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Longest one plugin call may run, ms.
    pub call_timeout_ms: u64,
    /// Largest plugin memory, MiB.
    pub memory_limit_mib: usize,
    /// Where compiled plugins are cached (default `<data_dir>/cache/plugins`).
    pub cache_dir: Option<PathBuf>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig { call_timeout_ms: 100, memory_limit_mib: 64, cache_dir: None }
    }
}

/// `[usage]`: the usage database (`<data_dir>/usage.db`, SQLite) and how
/// its rows are written (off the request path, in batches).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageConfig {
    /// Record usage at all (`false`: no database, no per-key token limits).
    pub enabled: bool,
    /// Days raw rows (one per request) are kept.
    pub retention_days: u32,
    /// Days hourly aggregates are kept (longer than the raw rows).
    pub aggregate_days: u32,
    /// The batch window: rows waiting are written at least this often, ms.
    /// A crash loses at most the rows of one window.
    pub batch_ms: u64,
    /// Rows that may wait for the writer; beyond it rows are dropped and
    /// counted (`grantpool_usage_rows_dropped_total`), never blocking a request.
    pub queue_rows: usize,
}

impl Default for UsageConfig {
    fn default() -> Self {
        UsageConfig { enabled: true, retention_days: 30, aggregate_days: 400, batch_ms: 500, queue_rows: 65_536 }
    }
}

/// `[cluster]`: several grantpool instances serve one pool through Redis.
/// Without `redis_url` nothing changes: the account files are the store.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS); also
    /// `$GRANTPOOL_REDIS_URL`. May hold a password: never logged whole.
    pub redis_url: Option<String>,
    /// Prefix of every key and channel, so several pools can share a server.
    pub key_prefix: String,
    /// How long a conversation stays bound to its account across nodes, s.
    pub session_ttl_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig { redis_url: None, key_prefix: "grantpool".into(), session_ttl_secs: 3600 }
    }
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("key_prefix", &self.key_prefix)
            .field("session_ttl_secs", &self.session_ttl_secs)
            .finish()
    }
}

pub use crate::util::redact_url;

/// A parse error's text with the password of every quoted URL in it
/// replaced (the error quotes the offending line: an `[egress]` URL's
/// password must not reach the terminal or a log).
fn redact_urls_in(text: &str) -> String {
    text.split('"').map(|part| if part.contains("://") { redact_url(part) } else { part.to_string() }).collect::<Vec<_>>().join("\"")
}

/// The file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    policy: Option<PathBuf>,
    server: ServerConfig,
    oauth: OAuthConfig,
    upstream: UpstreamConfig,
    log: LogConfig,
    plugins: PluginsConfig,
    cluster: ClusterConfig,
    egress: EgressConfig,
    usage: UsageConfig,
    /// Client model name → upstream model; `*` wildcards allowed.
    models: BTreeMap<String, String>,
}

/// `[egress]`: outbound proxies for the calls made for accounts. Absent:
/// every call follows `HTTP_PROXY` / `HTTPS_PROXY` / `ALL_PROXY` /
/// `NO_PROXY` alike (or none of them). `Debug` never shows a password.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// The proxy of accounts that name none: a URL (`socks5h://…`,
    /// `http://user:pass@host:port`) or the name of one of `proxies`.
    pub default: Option<String>,
    /// Named proxies an account may pick (`egress = "NAME"`).
    pub proxies: BTreeMap<String, EgressProxy>,
    /// Seconds between two health checks of each proxy (0: the default, 180).
    pub check_secs: u64,
}

/// One named proxy, `[egress.proxies.NAME]`.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressProxy {
    /// `http://[user:pass@]host:port`, `https://…` (CONNECT), `socks5://…`
    /// (local DNS) or `socks5h://…` (the proxy resolves names).
    pub url: String,
}

impl std::fmt::Debug for EgressProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressProxy").field("url", &redact_url(&self.url)).finish()
    }
}

impl std::fmt::Debug for EgressConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressConfig")
            .field("default", &self.default.as_deref().map(redact_url))
            .field("proxies", &self.proxies)
            .field("check_secs", &self.check_secs)
            .finish()
    }
}

impl EgressConfig {
    /// Whether any proxy is configured (else the environment decides).
    pub fn is_configured(&self) -> bool {
        self.default.is_some() || !self.proxies.is_empty()
    }

    /// The configured names, for messages (`none` when there are none).
    pub fn names(&self) -> String {
        if self.proxies.is_empty() {
            "none configured in [egress.proxies]".into()
        } else {
            self.proxies.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
        }
    }

    /// Refuses a name an account may not use (not in `[egress.proxies]`).
    pub fn check_name(&self, name: &str) -> Result<(), String> {
        if self.proxies.contains_key(name) {
            Ok(())
        } else {
            Err(format!("unknown egress proxy `{name}`: the configured ones are {}", self.names()))
        }
    }

    /// Each URL parsed, each name usable; errors name the key, never a password.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for (name, p) in &self.proxies {
            if name.is_empty() || name.eq_ignore_ascii_case("none") || name.eq_ignore_ascii_case("default") || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigError::Invalid { what: format!("egress.proxies.{name}"), cause: "a proxy name is a word without spaces, not `none` or `default`".into() });
            }
            crate::egress::proxy_url::ProxyUrl::parse(&p.url).map_err(|cause| ConfigError::Invalid { what: format!("egress.proxies.{name}.url"), cause })?;
        }
        if let Some(d) = &self.default {
            if d.contains("://") {
                crate::egress::proxy_url::ProxyUrl::parse(d).map_err(|cause| ConfigError::Invalid { what: "egress.default".into(), cause })?;
            } else {
                self.check_name(d).map_err(|cause| ConfigError::Invalid { what: "egress.default".into(), cause })?;
            }
        }
        Ok(())
    }
}

/// The settings in force.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where accounts, logs and caches live.
    pub data_dir: PathBuf,
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
    /// The policy file (`None`: the bundled default policy).
    pub policy: Option<PathBuf>,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[oauth]`.
    pub oauth: OAuthConfig,
    /// `[upstream]`.
    pub upstream: UpstreamConfig,
    /// `[log]`.
    pub log: LogConfig,
    /// `[plugins]`.
    pub plugins: PluginsConfig,
    /// `[cluster]`.
    pub cluster: ClusterConfig,
    /// `[egress]`.
    pub egress: EgressConfig,
    /// `[usage]`.
    pub usage: UsageConfig,
    /// `[models]`: client model name → upstream model.
    pub models: BTreeMap<String, String>,
}

/// What the command line says (flags win over everything).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    /// Resolve flags, environment, file and defaults.
    pub fn load(over: &Overrides) -> Result<Config, ConfigError> {
        let flag_or_env_dir = over
            .data_dir
            .clone()
            .or_else(|| env("GRANTPOOL_DATA_DIR").map(PathBuf::from))
            .map(|p| crate::util::expand_home(&p));
        let default_dir = crate::util::expand_home(Path::new("~/.grantpool"));

        let config_file = match over.config.clone().or_else(|| env("GRANTPOOL_CONFIG").map(PathBuf::from)) {
            Some(p) => Some(crate::util::expand_home(&p)),
            None => {
                let candidate = flag_or_env_dir.clone().unwrap_or_else(|| default_dir.clone()).join("grantpool.toml");
                candidate.is_file().then_some(candidate)
            }
        };

        let file = match &config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|cause| ConfigError::Read { path: path.clone(), cause })?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| ConfigError::Parse { path: path.clone(), cause: redact_urls_in(e.to_string().trim()) })?
            }
            None => FileConfig::default(),
        };
        let base = config_file
            .as_ref()
            .and_then(|p| p.parent())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let relative = |p: &Path| {
            let p = crate::util::expand_home(p);
            if p.is_absolute() { p } else { base.join(p) }
        };

        let data_dir = flag_or_env_dir
            .or_else(|| file.data_dir.as_deref().map(relative))
            .unwrap_or(default_dir);
        let policy = file.policy.as_deref().map(relative);

        let mut server = file.server;
        if let Some(listen) = &over.listen {
            server.listen = listen.clone();
        } else if let Some(listen) = env("GRANTPOOL_LISTEN") {
            server.listen = listen;
        }
        if let Some(key) = env("GRANTPOOL_API_KEY") {
            server.api_keys = key.split(',').map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect();
        }
        if let Some(key) = env("GRANTPOOL_ADMIN_KEY") {
            server.admin_key = Some(key);
        }
        let mut oauth = file.oauth;
        if let Some(id) = env("GRANTPOOL_OAUTH_CLIENT_ID") {
            oauth.client_id = id;
        }
        if let Some(secret) = env("GRANTPOOL_OAUTH_CLIENT_SECRET") {
            oauth.client_secret = secret;
        }
        if let Some(url) = env("GRANTPOOL_OAUTH_TOKEN_URL") {
            oauth.token_url = url;
        }
        if let Some(url) = env("GRANTPOOL_OAUTH_USERINFO_URL") {
            oauth.userinfo_url = url;
        }
        let mut upstream = file.upstream;
        if let Some(url) = env("GRANTPOOL_UPSTREAM_URL") {
            upstream.base_url = Some(url);
        }

        let mut cluster = file.cluster;
        if let Some(url) = env("GRANTPOOL_REDIS_URL") {
            cluster.redis_url = Some(url);
        }
        cluster.redis_url = cluster.redis_url.filter(|u| !u.trim().is_empty());

        let mut plugins = file.plugins;
        plugins.cache_dir = plugins.cache_dir.as_deref().map(relative);
        let config = Config {
            data_dir,
            config_file,
            policy,
            server,
            oauth,
            upstream,
            log: file.log,
            plugins,
            cluster,
            egress: file.egress,
            usage: file.usage,
            models: file.models,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.egress.validate()?;
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Invalid {
                what: "server.listen".into(),
                cause: format!("`{}` is not an address like 127.0.0.1:8045", self.server.listen),
            });
        }
        if self.upstream.profile != "auto" && self.upstream.forced_profile().is_none() {
            return Err(ConfigError::Invalid {
                what: "upstream.profile".into(),
                cause: format!("`{}`: expected \"auto\", \"antigravity\" or \"gemini-cli\"", self.upstream.profile),
            });
        }
        if let Err(cause) = self.oauth.client(None) {
            return Err(ConfigError::Invalid { what: "oauth.client".into(), cause });
        }
        if !crate::profiles::ANTIGRAVITY.tiers.contains(&self.upstream.default_tier.as_str()) {
            return Err(ConfigError::Invalid {
                what: "upstream.default_tier".into(),
                cause: format!("`{}`: expected one of {}", self.upstream.default_tier, crate::profiles::ANTIGRAVITY.tiers.join(", ")),
            });
        }
        if let Some(v) = &self.upstream.antigravity_version {
            if v.is_empty() || !v.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
                return Err(ConfigError::Invalid {
                    what: "upstream.antigravity_version".into(),
                    cause: format!("`{v}` is not a version like 2.13.0"),
                });
            }
        }
        if let Some(url) = &self.cluster.redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("redis+unix://") || url.starts_with("unix://")) {
                return Err(ConfigError::Invalid {
                    what: "cluster.redis_url".into(),
                    cause: format!("`{}` is not a Redis URL: expected redis://host:port[/db] (rediss:// for TLS)", redact_url(url)),
                });
            }
            let p = &self.cluster.key_prefix;
            if p.is_empty() || p.chars().any(|c| c.is_whitespace() || c.is_control() || c == '*' || c == '?' || c == '[') {
                return Err(ConfigError::Invalid {
                    what: "cluster.key_prefix".into(),
                    cause: format!("{p:?}: use a non-empty name without spaces or glob characters (e.g. \"grantpool\")"),
                });
            }
            if self.cluster.session_ttl_secs == 0 {
                return Err(ConfigError::Invalid { what: "cluster.session_ttl_secs".into(), cause: "must be at least 1".into() });
            }
        }
        if self.server.max_attempts == 0 {
            return Err(ConfigError::Invalid { what: "server.max_attempts".into(), cause: "must be at least 1".into() });
        }
        if matches!(self.server.auth_mode, AuthMode::Strict | AuthMode::AllExceptHealth) && self.server.api_keys.is_empty() {
            return Err(ConfigError::Invalid {
                what: "server.auth_mode".into(),
                cause: "requires at least one key in server.api_keys (or $GRANTPOOL_API_KEY)".into(),
            });
        }
        if self.server.auth_mode == AuthMode::Auto && !self.listens_on_loopback() && self.server.api_keys.is_empty() {
            return Err(ConfigError::Invalid {
                what: "server.listen".into(),
                cause: format!(
                    "{} is reachable from other machines, so clients need a key: set server.api_keys (or $GRANTPOOL_API_KEY), or auth_mode = \"off\" to run open on purpose",
                    self.server.listen
                ),
            });
        }
        Ok(())
    }

    /// The profile of each OAuth client (see [`ProfileMap`]).
    pub fn profile_map(&self) -> ProfileMap {
        let names = crate::profiles::ALL.iter().map(|p| p.name.to_string()).chain(self.oauth.clients.keys().cloned());
        let by_client = names.filter_map(|n| Some((n.clone(), self.oauth.client(Some(&n)).ok()?.profile))).collect();
        let default = self.oauth.client(None).map(|c| c.profile).unwrap_or(&ANTIGRAVITY);
        ProfileMap { forced: self.upstream.forced_profile(), default, by_client }
    }

    /// Where compiled plugins are cached.
    pub fn plugin_cache_dir(&self) -> PathBuf {
        self.plugins.cache_dir.clone().unwrap_or_else(|| self.data_dir.join("cache").join("plugins"))
    }

    /// Where daily log files go.
    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }

    /// The upstream model for a client's model name: an exact entry of
    /// `[models]`, else the first matching wildcard, else the name itself.
    pub fn map_model<'a>(&'a self, client_model: &'a str) -> &'a str {
        if let Some(m) = self.models.get(client_model) {
            return m;
        }
        self.models
            .iter()
            .find(|(pattern, _)| pattern.contains('*') && wildcard_match(pattern, client_model))
            .map(|(_, m)| m.as_str())
            .unwrap_or(client_model)
    }

    /// The listen address is loopback only.
    pub fn listens_on_loopback(&self) -> bool {
        self.server.listen.parse::<std::net::SocketAddr>().map(|a| a.ip().is_loopback()).unwrap_or(false)
    }
}

/// `*` matches any run of characters.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("claude-*", "claude-3-opus"));
        assert!(wildcard_match("*-mini", "gpt-4o-mini"));
        assert!(wildcard_match("gpt-*-mini", "gpt-4o-mini"));
        assert!(!wildcard_match("gpt-*-mini", "gpt-4o"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("a*a", "a"));
    }

    #[test]
    fn file_values_and_flag_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("grantpool.toml");
        std::fs::write(
            &file,
            "data_dir = \"data\"\npolicy = \"p.toml\"\n[server]\nlisten = \"127.0.0.1:9000\"\n[models]\n\"claude-*\" = \"gemini-2.5-pro\"\n",
        )
        .unwrap();
        let c = Config::load(&Overrides { config: Some(file.clone()), ..Default::default() }).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9000");
        assert_eq!(c.data_dir, dir.path().join("data"));
        assert_eq!(c.policy, Some(dir.path().join("p.toml")));
        assert_eq!(c.map_model("claude-sonnet-4"), "gemini-2.5-pro");
        assert_eq!(c.map_model("gemini-2.5-flash"), "gemini-2.5-flash");
        let c = Config::load(&Overrides { config: Some(file), listen: Some("127.0.0.1:9001".into()), ..Default::default() }).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9001");
    }

    #[test]
    fn unknown_key_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("grantpool.toml");
        std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:9000\"\nlistne = 3\n").unwrap();
        let err = Config::load(&Overrides { config: Some(file), ..Default::default() }).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("listne"), "{err}");
    }
}
