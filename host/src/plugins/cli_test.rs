//! `grantpool plugin test`: run one decision of a plugin on a JSON case and
//! print the answer, so an author can try a plugin without a proxy.
//!
//! A selector case:
//! ```json
//! {"config": {"ttl_secs": 60},
//!  "select": {"accounts": [{"id": "a", "email": "a@x.com", "labels": {"tier": "paid"},
//!                           "in_flight": 0, "quota": {"gemini-2.5-pro": 0.4}}],
//!             "request": {"model": "gemini-2.5-pro", "protocol": "openai",
//!                         "session_id": "s1", "tried": [], "unavailable": []},
//!             "repeat": 3}}
//! ```
//! A classifier case:
//! ```json
//! {"classify": {"phase": "token-refresh", "status": 400,
//!               "body": "{\"error\":\"invalid_grant\"}", "headers": {"retry-after": "3"}}}
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{
    ClassifierPlugin, ClassifyOutcome, CooldownScope, EventBatch, EventFeed, Failure, ModelQuota, Phase,
    PluginAccount, PluginEngine, PluginError, PluginSource, PoolEvent, Protocol, SelectOutcome, SelectRequest, SelectorPlugin,
    Verdict,
};
use crate::config::Config;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(default)]
    select: Option<SelectCase>,
    #[serde(default)]
    classify: Option<ClassifyCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectCase {
    accounts: Vec<CaseAccount>,
    request: CaseRequest,
    #[serde(default = "one")]
    repeat: u32,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseAccount {
    id: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    in_flight: u32,
    #[serde(default)]
    last_used_ms: u64,
    #[serde(default)]
    successes: u32,
    #[serde(default)]
    failures: u32,
    /// Model → remaining fraction.
    #[serde(default)]
    quota: BTreeMap<String, f32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseRequest {
    model: String,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default = "one")]
    attempt: u32,
    /// Account ids already tried.
    #[serde(default)]
    tried: Vec<String>,
    /// Account ids unavailable for the model.
    #[serde(default)]
    unavailable: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassifyCase {
    phase: String,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    network_error: bool,
    #[serde(default = "default_account")]
    account_id: String,
    #[serde(default = "default_email")]
    email: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default = "one")]
    attempt: u32,
}

fn default_account() -> String {
    "test-account".into()
}

fn default_email() -> String {
    "test@example.com".into()
}

/// A feed that hands the case's accounts over once.
struct CaseFeed(Vec<PluginAccount>);

impl EventFeed for CaseFeed {
    fn events_since(&self, cursor: Option<u64>) -> EventBatch {
        match cursor {
            Some(c) => EventBatch { events: Vec::new(), seq: c },
            None => {
                let mut events = vec![PoolEvent::Reset];
                events.extend(self.0.iter().cloned().map(PoolEvent::Joined));
                EventBatch { events, seq: 1 }
            }
        }
    }
}

/// The verdict as JSON for people.
pub fn verdict_json(v: &Verdict) -> serde_json::Value {
    use serde_json::json;
    match v {
        Verdict::Disable(r) => json!({"action": "disable", "reason": r}),
        Verdict::ProxyDisable(r) => json!({"action": "proxy_disable", "reason": r}),
        Verdict::Cooldown(c) => json!({
            "action": "cooldown",
            "duration_ms": c.duration_ms,
            "scope": match c.scope { CooldownScope::Account => "account", CooldownScope::Model => "model" },
            "reason": c.reason,
        }),
        Verdict::RetryNextAccount => json!({"action": "retry_next"}),
        Verdict::RetrySameAccount(ms) => json!({"action": "retry_same", "after_ms": ms}),
        Verdict::RefreshAndRetry => json!({"action": "refresh_and_retry"}),
        Verdict::PassToClient => json!({"action": "pass_to_client"}),
    }
}

/// Run the case in `input` through `plugin` (a `.wasm` path or a bundled
/// name) and print the answer as JSON.
pub fn run(config: &Config, plugin: &str, input: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(input).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", input.display()))?;
    let case: Case = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not a test case: {e}", input.display()))?;
    let engine = PluginEngine::for_config(config)?;
    let source = PluginSource::parse(plugin, &std::env::current_dir()?);
    let plugin_config = match &case.config {
        Some(v) => serde_json::to_string(v)?,
        None => "{}".into(),
    };
    match (case.select, case.classify) {
        (Some(sel), None) => {
            let plugin = SelectorPlugin::load(&engine, &source, &plugin_config).map_err(explain)?;
            let accounts: Vec<PluginAccount> = sel
                .accounts
                .iter()
                .enumerate()
                .map(|(i, a)| PluginAccount {
                    slot: i as u32,
                    id: a.id.clone(),
                    email: a.email.clone().unwrap_or_else(|| format!("{}@example.com", a.id)),
                    labels: a.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    in_flight: a.in_flight,
                    last_used_ms: a.last_used_ms,
                    successes: a.successes,
                    failures: a.failures,
                    quota: a.quota.iter().map(|(m, f)| ModelQuota { model: m.clone(), remaining_fraction: *f, reset_at_ms: 0 }).collect(),
                })
                .collect();
            let slot_of = |id: &String| -> anyhow::Result<u32> {
                accounts.iter().find(|a| &a.id == id).map(|a| a.slot).ok_or_else(|| anyhow::anyhow!("request names unknown account `{id}`"))
            };
            let protocol = match sel.request.protocol.as_deref().unwrap_or("openai") {
                "gemini" => Protocol::Gemini,
                "openai" => Protocol::Openai,
                "anthropic" => Protocol::Anthropic,
                other => anyhow::bail!("unknown protocol `{other}` (gemini, openai, anthropic)"),
            };
            let req = SelectRequest {
                model: sel.request.model.clone(),
                protocol,
                session_id: sel.request.session_id.clone(),
                attempt: sel.request.attempt,
                tried: sel.request.tried.iter().map(slot_of).collect::<anyhow::Result<_>>()?,
                unavailable: sel.request.unavailable.iter().map(slot_of).collect::<anyhow::Result<_>>()?,
            };
            let feed = CaseFeed(accounts.clone());
            let is_candidate = |s: u32| (s as usize) < accounts.len() && !req.tried.contains(&s) && !req.unavailable.contains(&s);
            let mut picks = Vec::new();
            for _ in 0..sel.repeat.max(1) {
                let answer = match plugin.select(&feed, &req, is_candidate) {
                    SelectOutcome::Picked(s) => serde_json::json!({"picked": accounts[s as usize].id}),
                    SelectOutcome::NoneFits => serde_json::json!({"picked": null}),
                    SelectOutcome::Failed(cause) => serde_json::json!({"failed": cause, "host_would": "fall back to the least recently used account"}),
                };
                picks.push(answer);
            }
            let out = if picks.len() == 1 { picks.remove(0) } else { serde_json::json!({"picks": picks}) };
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        (None, Some(c)) => {
            let plugin = ClassifierPlugin::load(&engine, &source, &plugin_config).map_err(explain)?;
            let phase = match c.phase.as_str() {
                "token-refresh" | "token_refresh" => Phase::TokenRefresh,
                "upstream" => Phase::Upstream,
                other => anyhow::bail!("unknown phase `{other}` (token-refresh, upstream)"),
            };
            let failure = Failure {
                phase,
                status: c.status,
                body: c.body,
                headers: c.headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect(),
                network_error: c.network_error,
                account_id: c.account_id,
                email: c.email,
                model: c.model,
                attempt: c.attempt,
            };
            let out = match plugin.classify(&failure) {
                ClassifyOutcome::Verdict(v) => serde_json::json!({"verdict": verdict_json(&v)}),
                ClassifyOutcome::Abstain => serde_json::json!({"verdict": null, "note": "no answer: the next classifier in the chain decides"}),
                ClassifyOutcome::Failed(cause) => serde_json::json!({"failed": cause, "host_would": "treat it as no answer (never a disable)"}),
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        _ => anyhow::bail!("{}: give exactly one of \"select\" or \"classify\"", input.display()),
    }
}

fn explain(e: PluginError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}
