//! `grantpool keys add | list | revoke | edit`: thin, each prints what
//! happened. The key itself is printed once, by `add`.

use clap::Subcommand;

use super::record::{parse_expiry, KeyChange, KeySpec};
use super::{KeyRing, KeyView};

/// `grantpool keys …`: named client keys (only a hash of a key is kept).
#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Make a key; prints it once.
    Add {
        /// Its name (1–64 of A-Z a-z 0-9 . _ -), e.g. ci-bot.
        name: String,
        /// Models it may use: globs with `*` (space- or comma-separated); default all.
        #[arg(long, num_args = 1.., value_delimiter = ',')]
        models: Vec<String>,
        /// Requests per UTC minute (default: no limit).
        #[arg(long)]
        requests_per_minute: Option<u32>,
        /// Tokens (input, output and thinking) per UTC day (default: no limit).
        #[arg(long)]
        tokens_per_day: Option<u64>,
        /// When it stops working: 30d, 12h, 2027-01-31 (UTC), or an RFC 3339 time.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List the keys, their limits and today's use (never a key).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key for good.
    Revoke {
        /// The key's name.
        name: String,
    },
    /// Change a key's models, limits or expiry.
    Edit {
        /// The key's name.
        name: String,
        /// Models it may use from now on (globs with `*`).
        #[arg(long, num_args = 1.., value_delimiter = ',', conflicts_with = "clear_models")]
        models: Vec<String>,
        /// Let it use every model.
        #[arg(long)]
        clear_models: bool,
        /// Requests per UTC minute; 0 = no limit.
        #[arg(long)]
        requests_per_minute: Option<u32>,
        /// Tokens per UTC day; 0 = no limit.
        #[arg(long)]
        tokens_per_day: Option<u64>,
        /// 30d, 12h, 2027-01-31, an RFC 3339 time, or `never`.
        #[arg(long)]
        expires: Option<String>,
    },
}

/// Runs a `keys` command against the keys `config` names.
pub fn run(config: &crate::config::Config, cmd: KeysCmd) -> anyhow::Result<()> {
    let ring = KeyRing::open(config)?;
    match cmd {
        KeysCmd::Add { name, models, requests_per_minute, tokens_per_day, expires } => {
            let now = crate::util::now_secs().max(0) as u64;
            let expires_at = expires.as_deref().map(|e| parse_expiry(e, now, false)).transpose()?.flatten();
            add(&ring, KeySpec { name, models, requests_per_minute, tokens_per_day, expires_at }, &config.server.listen)
        }
        KeysCmd::List { json } => {
            let mut views = ring.list();
            if !ring.is_cluster() {
                recorded_today(config, &mut views);
            }
            list(&ring, views, json)
        }
        KeysCmd::Revoke { name } => revoke(&ring, &name),
        KeysCmd::Edit { name, models, clear_models, requests_per_minute, tokens_per_day, expires } => {
            let now = crate::util::now_secs().max(0) as u64;
            let change = KeyChange {
                models: if clear_models { Some(Vec::new()) } else { (!models.is_empty()).then_some(models) },
                requests_per_minute: requests_per_minute.map(|n| (n > 0).then_some(n)),
                tokens_per_day: tokens_per_day.map(|n| (n > 0).then_some(n)),
                expires_at: expires.as_deref().map(|e| parse_expiry(e, now, true)).transpose()?,
            };
            edit(&ring, &name, change)
        }
    }
}

/// Adds a key and prints it, once, with how to use it.
pub fn add(ring: &KeyRing, spec: KeySpec, listen: &str) -> anyhow::Result<()> {
    let (record, secret) = ring.add(spec)?;
    println!("added key {:?} to the {}:", record.name, ring.location());
    println!();
    println!("    {secret}");
    println!();
    println!("This is the only time the key is shown (only its hash is kept): store it now.");
    println!("Clients send it as `Authorization: Bearer <key>`, `x-api-key` or `x-goog-api-key`, e.g.");
    println!("    OPENAI_BASE_URL=http://{listen}/v1 OPENAI_API_KEY=<key>");
    println!("    ANTHROPIC_BASE_URL=http://{listen} ANTHROPIC_API_KEY=<key>");
    println!("limits: {}", limits_of(&record.models, record.requests_per_minute, record.tokens_per_day));
    if let Some(t) = record.expires_at {
        println!("expires: {}", super::record::fmt_utc(t));
    }
    Ok(())
}

/// On one machine the proxy's counters are in its memory: today's use is
/// read from the usage log instead (what was recorded today, refusals
/// included). A log that cannot be read leaves the views as they are.
fn recorded_today(config: &crate::config::Config, views: &mut [KeyView]) {
    use crate::usage::{db_path, query_file, By, UsageQuery};
    let now_ms = crate::util::now_ms();
    let q = UsageQuery { by: By::Key, since_ms: now_ms - now_ms % 86_400_000, key: None, account: None, model: None };
    match query_file(&db_path(&config.data_dir), &q, now_ms, config.usage.retention_days) {
        Ok(Some(report)) => {
            for v in views.iter_mut() {
                let g = report.groups.iter().find(|g| g.group == v.name);
                v.today.requests = g.map_or(0, |g| g.requests);
                v.today.tokens = g.map_or(0, |g| g.input_tokens + g.output_tokens + g.thinking_tokens);
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("today's use could not be read from the usage log: {e}"),
    }
}

/// Prints `views` (a table, or JSON).
pub fn list(ring: &KeyRing, views: Vec<KeyView>, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "keys": views }))?);
        return Ok(());
    }
    if views.is_empty() {
        println!("no keys in the {}; add one with `grantpool keys add NAME`", ring.location());
        return Ok(());
    }
    println!("{:<20} {:<8} {:<8} {:<17} {:<17} {:<10} {:>9} {:>12}  LIMITS", "NAME", "HINT", "STATE", "CREATED (UTC)", "EXPIRES (UTC)", "LAST USED", "REQ TODAY", "TOKENS TODAY");
    for v in &views {
        println!("{}", row(v));
    }
    Ok(())
}

fn row(v: &KeyView) -> String {
    let now = crate::util::now_secs();
    let when = |t: Option<u64>, none: &str| t.map_or_else(|| none.to_string(), |t| crate::util::utc_time(t as i64).trim_end_matches(" UTC").to_string());
    let last = v.last_used.map_or_else(|| "never".to_string(), |t| format!("{} ago", crate::util::span(now - t as i64)));
    let state = match v.state {
        "revoked" => "REVOKED",
        "expired" => "EXPIRED",
        s => s,
    };
    format!(
        "{:<20} {:<8} {:<8} {:<17} {:<17} {:<10} {:>9} {:>12}  {}",
        v.name,
        v.hint,
        state,
        when(Some(v.created_at), "-"),
        when(v.expires_at, "never"),
        last,
        v.today.requests,
        v.today.tokens,
        limits_of(&v.models, v.requests_per_minute, v.tokens_per_day)
    )
}

fn limits_of(models: &[String], rpm: Option<u32>, tpd: Option<u64>) -> String {
    let mut parts = Vec::new();
    parts.push(if models.is_empty() { "all models".to_string() } else { format!("models {}", models.join(",")) });
    if let Some(n) = rpm {
        parts.push(format!("{n} req/min"));
    }
    if let Some(n) = tpd {
        parts.push(format!("{n} tokens/day"));
    }
    parts.join("; ")
}

/// Revokes a key and says so.
pub fn revoke(ring: &KeyRing, name: &str) -> anyhow::Result<()> {
    let record = ring.revoke(name)?;
    let at = record.revoked_at.map(super::record::fmt_utc).unwrap_or_default();
    println!("key {:?} ({}…) is revoked since {at}; a running proxy refuses it within a second", record.name, record.hint);
    Ok(())
}

/// Edits a key and prints what it is now.
pub fn edit(ring: &KeyRing, name: &str, change: KeyChange) -> anyhow::Result<()> {
    if change.is_empty() {
        anyhow::bail!("nothing to change: give --models, --clear-models, --requests-per-minute, --tokens-per-day or --expires");
    }
    let r = ring.edit(name, change)?;
    println!("key {:?} now: {}; expires {}", r.name, limits_of(&r.models, r.requests_per_minute, r.tokens_per_day), r.expires_at.map_or_else(|| "never".to_string(), super::record::fmt_utc));
    if r.revoked_at.is_some() {
        println!("(it stays revoked)");
    }
    Ok(())
}
