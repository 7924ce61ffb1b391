//! `grantpool usage`: the sums of the usage database as a table or JSON.
//! Reads the file read-only (a running proxy keeps writing), or in cluster
//! mode the cluster's hourly sums in Redis.

use anyhow::{bail, Context};
use clap::Args;

use super::query::{By, UsageGroup, UsageQuery, UsageReport};
use crate::config::Config;

/// `grantpool usage [--by …] [--since 24h] [--json]`.
#[derive(Args, Debug, Clone)]
pub struct UsageArgs {
    /// Group by key, account, model, day or hour.
    #[arg(long, value_enum, default_value = "key")]
    pub by: By,
    /// The period, back from now: `90m`, `24h`, `7d`, `2w`.
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// Only this named key.
    #[arg(long)]
    pub key: Option<String>,
    /// Only this account (id).
    #[arg(long)]
    pub account: Option<String>,
    /// Only this model (the client's or the upstream's name).
    #[arg(long)]
    pub model: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `24h` → ms. Units: s, m, h, d, w.
pub fn parse_span(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().with_context(|| format!("since {text:?}: expected a number and a unit, like 24h or 7d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" | "" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => bail!("since {text:?}: unknown unit {unit:?} (s, m, h, d or w)"),
    };
    Ok(n.saturating_mul(secs).saturating_mul(1000))
}

/// Runs the command.
pub fn run(config: &Config, args: &UsageArgs) -> anyhow::Result<()> {
    let now = crate::util::now_ms();
    let q = UsageQuery { by: args.by, since_ms: now.saturating_sub(parse_span(&args.since)?), key: args.key.clone(), account: args.account.clone(), model: args.model.clone() };
    let report = match &config.cluster.redis_url {
        Some(url) => super::query::query_cluster(url, &config.cluster.key_prefix, &q, now)?,
        None => {
            let path = super::row::db_path(&config.data_dir);
            match super::query::query_file(&path, &q, now, config.usage.retention_days)? {
                Some(r) => r,
                None => {
                    println!("no usage recorded yet in {}", path.display());
                    return Ok(());
                }
            }
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report, &args.since));
    }
    Ok(())
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The report as an aligned table with its period and source.
pub fn table(r: &UsageReport, since: &str) -> String {
    let utc = |ms: u64| crate::util::utc_time((ms / 1000) as i64);
    let by = match r.by {
        By::Key => "key",
        By::Account => "account",
        By::Model => "model",
        By::Day => "day",
        By::Hour => "hour",
    };
    let mut out = format!("Usage by {by}, last {since}: {} → {}\n", utc(r.since_ms), utc(r.until_ms));
    if r.cluster {
        out.push_str(&format!("Source: the cluster's hourly sums in {} (hour granularity)\n", r.source));
    } else {
        out.push_str(&format!("Database: {}\n", r.source));
        if !r.exact_since {
            out.push_str("The first hour counts whole: its per-request rows are past [usage] retention_days\n");
        }
    }
    out.push('\n');
    if r.groups.is_empty() {
        out.push_str("no requests in this period\n");
        return out;
    }
    let header = [by.to_uppercase(), "REQUESTS".into(), "ERRORS".into(), "INPUT".into(), "OUTPUT".into(), "CACHED".into(), "THINKING".into(), "AVG MS".into()];
    let cells = |g: &UsageGroup| -> [String; 8] {
        let name = if g.group.is_empty() { "(none)".to_string() } else { g.group.clone() };
        [
            name,
            thousands(g.requests),
            thousands(g.errors),
            thousands(g.input_tokens),
            thousands(g.output_tokens),
            thousands(g.cached_tokens),
            thousands(g.thinking_tokens),
            thousands(g.avg_latency_ms),
        ]
    };
    let mut rows: Vec<[String; 8]> = vec![header];
    rows.extend(r.groups.iter().map(cells));
    let mut total = cells(&r.total);
    total[0] = "TOTAL".into();
    rows.push(total);
    let mut widths = [0usize; 8];
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let last = rows.len() - 1;
    for (i, row) in rows.iter().enumerate() {
        if i == last {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(rule.join("  ").trim_end());
            out.push('\n');
        }
        let mut line = format!("{:<w$}", row[0], w = widths[0]);
        for (c, w) in row.iter().zip(widths).skip(1) {
            line.push_str(&format!("  {c:>w$}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
