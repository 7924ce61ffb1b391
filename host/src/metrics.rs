//! Prometheus metrics (`GET /metrics`), typed and owned by the app (no
//! global registry).

use std::collections::HashMap;
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::plugins::Protocol;
use crate::translate::protocol_name;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of a client request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// gemini | openai | anthropic.
    pub protocol: &'static str,
    /// Upstream model.
    pub model: String,
    /// HTTP status sent to the client.
    pub status: u16,
}

/// Labels with a model.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    /// Upstream model.
    pub model: String,
}

/// Labels with a status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// Upstream status, or `network`.
    pub status: String,
}

/// Labels of the accounts gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// active | disabled | proxy_disabled | cooling_down.
    pub state: &'static str,
}

/// Labels of a quota window gauge (Google's 5-hour and weekly windows).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WindowLabels {
    /// The account id.
    pub account: String,
    /// Google's bucket id (`gemini-weekly`, `3p-5h`, …).
    pub bucket: String,
    /// `5h`, `weekly`, or Google's word for another window.
    pub window: String,
}

/// Every metric grantpool exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    upstream_ok: Family<ModelLabels, Counter>,
    upstream_errors: Family<StatusLabels, Counter>,
    latency: Histogram,
    retries: Counter,
    refused: Counter,
    waits: Counter,
    waited: Counter<f64, std::sync::atomic::AtomicU64>,
    refresh_failures: Counter,
    accounts: Family<StateLabels, Gauge>,
    quota_window_remaining: Family<WindowLabels, Gauge<f64, AtomicU64>>,
    quota_window_reset: Family<WindowLabels, Gauge>,
    input_tokens: Family<ModelLabels, Counter>,
    cached_tokens: Family<ModelLabels, Counter>,
    /// Handles of the success path, per protocol (indexed by
    /// [`protocol_index`]) and model: a served request costs no label
    /// strings.
    served: [RwLock<HashMap<String, ServedCounters>>; 3],
    /// Client requests answered, and those answered with an error: what the
    /// accounts page samples once a second for its chart (two relaxed
    /// increments, no labels).
    answered: AtomicU64,
    errors: AtomicU64,
}

/// The counters a served request increments.
#[derive(Clone)]
struct ServedCounters {
    /// `requests{protocol, model, status="200"}`.
    request: Counter,
    /// `upstream_success{model}`.
    upstream_ok: Counter,
    /// `input_tokens{model}` and `cached_tokens{model}`.
    tokens: TokenCounters,
}

/// The token counters of one served request's model, handed out by
/// [`Metrics::served`]: counting the answer's usage is two relaxed atomic
/// adds, no label lookup.
#[derive(Clone, Debug, Default)]
pub struct TokenCounters {
    /// `input_tokens{model}`: prompt tokens, cached ones included.
    input: Counter,
    /// `cached_tokens{model}`: the part of them Google read from its cache.
    cached: Counter,
}

impl TokenCounters {
    /// Count one answer's `usageMetadata`: `promptTokenCount` and
    /// `cachedContentTokenCount`.
    pub fn count(&self, prompt: u64, cached: u64) {
        if prompt > 0 {
            self.input.inc_by(prompt);
        }
        if cached > 0 {
            self.cached.inc_by(cached);
        }
    }
}

fn protocol_index(p: Protocol) -> usize {
    match p {
        Protocol::Gemini => 0,
        Protocol::Openai => 1,
        Protocol::Anthropic => 2,
    }
}

/// Most models remembered per protocol (model names come from clients; the
/// families still count every model, only without the shortcut).
const SERVED_CACHE_CAP: usize = 256;

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The registry, for parts that own their metrics (named keys, the
    /// usage log) to register them before the set is shared.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// A fresh set.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("grantpool");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Client requests by protocol, model and status", requests.clone());
        let upstream_ok = Family::<ModelLabels, Counter>::default();
        registry.register("upstream_success", "Successful upstream calls by model", upstream_ok.clone());
        let upstream_errors = Family::<StatusLabels, Counter>::default();
        registry.register("upstream_errors", "Failed upstream calls by status", upstream_errors.clone());
        let latency = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register("upstream_latency_seconds", "Time to the upstream's response headers", latency.clone());
        let retries = Counter::default();
        registry.register("retries", "Requests moved to another account", retries.clone());
        let refused = Counter::default();
        registry.register("refused_requests", "Requests Google refused on two accounts for their content (nobody rested)", refused.clone());
        let waits = Counter::default();
        registry.register("waits", "Times a request waited for a resting account to be back", waits.clone());
        let waited = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register("waited_seconds", "Time requests waited for resting accounts", waited.clone());
        let refresh_failures = Counter::default();
        registry.register("token_refresh_failures", "Failed access token refreshes", refresh_failures.clone());
        let accounts = Family::<StateLabels, Gauge>::default();
        registry.register("accounts", "Accounts by state", accounts.clone());
        let quota_window_remaining = Family::<WindowLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "quota_window_remaining",
            "Remaining share (0..1) of Google's 5-hour and weekly quota windows, by account and bucket, as last fetched",
            quota_window_remaining.clone(),
        );
        let quota_window_reset = Family::<WindowLabels, Gauge>::default();
        registry.register(
            "quota_window_reset_timestamp_seconds",
            "When each quota window resets, Unix seconds",
            quota_window_reset.clone(),
        );
        let input_tokens = Family::<ModelLabels, Counter>::default();
        registry.register(
            "input_tokens",
            "Prompt tokens of served answers by model, cached ones included (Google's usageMetadata.promptTokenCount)",
            input_tokens.clone(),
        );
        let cached_tokens = Family::<ModelLabels, Counter>::default();
        registry.register(
            "cached_tokens",
            "Prompt tokens of served answers Google read from its cache, by model (usageMetadata.cachedContentTokenCount)",
            cached_tokens.clone(),
        );
        Metrics {
            registry,
            requests,
            upstream_ok,
            upstream_errors,
            latency,
            retries,
            refused,
            waits,
            waited,
            refresh_failures,
            accounts,
            quota_window_remaining,
            quota_window_reset,
            input_tokens,
            cached_tokens,
            served: Default::default(),
            answered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// A client request answered with `status`.
    pub fn request(&self, protocol: &'static str, model: &str, status: u16) {
        self.answered.fetch_add(1, Ordering::Relaxed);
        if status >= 400 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.requests
            .get_or_create(&RequestLabels { protocol, model: model.to_string(), status })
            .inc();
    }

    /// A request served: the upstream answered 2xx and the client gets 200.
    /// Answers the model's token counters, for the answer's usage.
    pub fn served(&self, protocol: Protocol, model: &str) -> TokenCounters {
        self.answered.fetch_add(1, Ordering::Relaxed);
        let cache = &self.served[protocol_index(protocol)];
        if let Some(c) = cache.read().get(model) {
            c.request.inc();
            c.upstream_ok.inc();
            return c.tokens.clone();
        }
        let labels = ModelLabels { model: model.to_string() };
        let c = ServedCounters {
            request: self
                .requests
                .get_or_create(&RequestLabels { protocol: protocol_name(protocol), model: model.to_string(), status: 200 })
                .clone(),
            upstream_ok: self.upstream_ok.get_or_create(&labels).clone(),
            tokens: TokenCounters {
                input: self.input_tokens.get_or_create(&labels).clone(),
                cached: self.cached_tokens.get_or_create(&labels).clone(),
            },
        };
        c.request.inc();
        c.upstream_ok.inc();
        let tokens = c.tokens.clone();
        let mut map = cache.write();
        if map.len() < SERVED_CACHE_CAP {
            map.insert(model.to_string(), c);
        }
        tokens
    }

    pub(crate) fn upstream_error(&self, status: Option<u16>) {
        let status = status.map(|s| s.to_string()).unwrap_or_else(|| "network".into());
        self.upstream_errors.get_or_create(&StatusLabels { status }).inc();
    }

    pub(crate) fn upstream_latency(&self, d: Duration) {
        self.latency.observe(d.as_secs_f64());
    }

    pub(crate) fn retry(&self) {
        self.retries.inc();
    }

    pub(crate) fn refused_request(&self) {
        self.refused.inc();
    }

    pub(crate) fn waited(&self, d: std::time::Duration) {
        self.waits.inc();
        self.waited.inc_by(d.as_secs_f64());
    }

    pub(crate) fn refresh_failed(&self) {
        self.refresh_failures.inc();
    }

    /// Client requests answered so far, and how many of them with an error.
    pub fn totals(&self) -> (u64, u64) {
        (self.answered.load(Ordering::Relaxed), self.errors.load(Ordering::Relaxed))
    }

    /// Set the accounts-by-state gauges.
    pub fn set_accounts(&self, active: i64, disabled: i64, proxy_disabled: i64, cooling: i64) {
        for (state, n) in [
            ("active", active),
            ("disabled", disabled),
            ("proxy_disabled", proxy_disabled),
            ("cooling_down", cooling),
        ] {
            self.accounts.get_or_create(&StateLabels { state }).set(n);
        }
    }

    /// Set the quota window gauges to what the accounts last reported:
    /// (account id, bucket id, window). Series of accounts or buckets no
    /// longer known go.
    pub fn set_quota_windows<'a>(&self, windows: impl IntoIterator<Item = (&'a str, &'a str, &'a crate::store::QuotaWindow)>) {
        self.quota_window_remaining.clear();
        self.quota_window_reset.clear();
        for (account, bucket, w) in windows {
            let labels = WindowLabels { account: account.to_string(), bucket: bucket.to_string(), window: w.window.clone() };
            let left = if w.is_exhausted() { Some(0.0) } else { w.remaining_fraction };
            if let Some(f) = left {
                self.quota_window_remaining.get_or_create(&labels).set(f);
            }
            if let Some(t) = w.reset_at {
                self.quota_window_reset.get_or_create(&labels).set(t);
            }
        }
    }

    /// Prometheus text, with `extra` (already formatted lines) appended.
    pub fn render(&self, extra: &str) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry);
        out.push_str(extra);
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;
    use crate::plugins::Protocol;

    #[test]
    fn served_requests_count_through_the_cache() {
        let m = Metrics::new();
        for _ in 0..3 {
            m.served(Protocol::Gemini, "gemini-2.5-pro");
        }
        m.served(Protocol::Openai, "gemini-2.5-pro");
        m.request("gemini", "gemini-2.5-pro", 429);
        let text = m.render("");
        let line = |needle: &str| text.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle} in\n{text}")).to_string();
        assert!(line(r#"protocol="gemini",model="gemini-2.5-pro",status="200""#).ends_with(" 3"), "{text}");
        assert!(line(r#"protocol="openai",model="gemini-2.5-pro",status="200""#).ends_with(" 1"), "{text}");
        assert!(line(r#"protocol="gemini",model="gemini-2.5-pro",status="429""#).ends_with(" 1"), "{text}");
        assert!(line(r#"grantpool_upstream_success_total{model="gemini-2.5-pro"}"#).ends_with(" 4"), "{text}");
        // No series for protocols that served nothing.
        assert!(!text.contains(r#"protocol="anthropic""#), "{text}");
    }

    #[test]
    fn tokens_count_through_the_served_handles() {
        let m = Metrics::new();
        m.served(Protocol::Gemini, "gemini-2.5-pro").count(100, 0);
        // The cached handle of another protocol feeds the same series.
        m.served(Protocol::Anthropic, "gemini-2.5-pro").count(120, 90);
        m.served(Protocol::Anthropic, "gemini-2.5-pro").count(0, 0);
        m.served(Protocol::Openai, "claude-sonnet-4-5").count(7, 3);
        let text = m.render("");
        let line = |needle: &str| text.lines().find(|l| l.starts_with(needle)).unwrap_or_else(|| panic!("{needle} in\n{text}")).to_string();
        assert_eq!(line(r#"grantpool_input_tokens_total{model="gemini-2.5-pro"}"#).rsplit(' ').next(), Some("220"));
        assert_eq!(line(r#"grantpool_cached_tokens_total{model="gemini-2.5-pro"}"#).rsplit(' ').next(), Some("90"));
        assert_eq!(line(r#"grantpool_input_tokens_total{model="claude-sonnet-4-5"}"#).rsplit(' ').next(), Some("7"));
        assert_eq!(line(r#"grantpool_cached_tokens_total{model="claude-sonnet-4-5"}"#).rsplit(' ').next(), Some("3"));
    }
}
