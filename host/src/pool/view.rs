//! An account as listings show it ([`AccountView`]): its state, the models
//! it may not serve for now, its counters; never a token.

use serde::Serialize;

use crate::store::{ModelFamily, QuotaWindow};

/// How an account stands, for listings and messages.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AccountState {
    /// Serving.
    Active,
    /// Dead until re-added with a new token.
    Disabled {
        /// Why.
        reason: Option<String>,
        /// When, Unix s.
        at: Option<i64>,
    },
    /// Kept from the proxy until enabled.
    ProxyDisabled {
        /// Why.
        reason: Option<String>,
        /// When, Unix s.
        at: Option<i64>,
    },
    /// Cooling down (whole account).
    CoolingDown {
        /// Why.
        reason: String,
        /// Until, Unix ms.
        until_ms: u64,
    },
}

/// One account as listings show it: never a token.
#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    /// Id.
    pub id: String,
    /// Email.
    pub email: String,
    /// State and reason.
    #[serde(flatten)]
    pub state: AccountState,
    /// Model cooldowns in force: model → (until ms, reason).
    pub model_cooldowns: Vec<ModelBlockView>,
    /// Requests in flight.
    pub in_flight: u32,
    /// Successes in this process.
    pub successes: u32,
    /// Failures in this process.
    pub failures: u32,
    /// Last use, Unix s.
    pub last_used: Option<i64>,
    /// Known quota per model.
    pub quota: std::collections::BTreeMap<String, crate::store::ModelQuota>,
    /// Google's 5-hour and weekly windows by bucket id, as last fetched.
    pub quota_windows: std::collections::BTreeMap<String, QuotaWindow>,
    /// Project id, if known.
    pub project_id: Option<String>,
    /// The OAuth client that issued its refresh token (`None`: the default
    /// client).
    pub oauth_client: Option<String>,
    /// Labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The egress proxy it names (`None`: the pool's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress: Option<String>,
}

/// A model that an account may not serve for now.
#[derive(Debug, Clone, Serialize)]
pub struct ModelBlockView {
    /// The model (for an exhausted window, the models it covers:
    /// `gemini*`).
    pub model: String,
    /// Until, Unix ms.
    pub until_ms: u64,
    /// Why (`429 …`, `quota 4% < 10%`, `gemini-weekly window used up`).
    pub reason: String,
    /// The quota window (bucket id) behind it, for an exhausted window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// The models an exhausted window covers.
    #[serde(skip)]
    pub family: Option<ModelFamily>,
}

impl AccountView {
    /// The block that keeps the account off `model` longest at `now`, if any.
    pub fn longest_block(&self, model: &str, now: u64) -> Option<&ModelBlockView> {
        self.model_cooldowns.iter().filter(|b| b.until_ms > now && b.covers(model)).max_by_key(|b| b.until_ms)
    }
}

impl ModelBlockView {
    /// Whether it keeps the account off `model`.
    pub fn covers(&self, model: &str) -> bool {
        match self.family {
            Some(f) => ModelFamily::of_model(model) == Some(f),
            None => self.model == model,
        }
    }
}
