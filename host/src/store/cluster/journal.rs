//! The local journal: what this node decided while Redis was unreachable
//! (disables, cooldowns, refreshed tokens, projects, quota…), kept in
//! `<data_dir>/cluster/journal.json` (mode 0600, written atomically at each
//! decision) and applied when Redis is back.
//!
//! An entry is the record as the node knew it before (`base`) and after
//! (`new`) its decisions; one entry per account (later decisions fold into
//! it, keeping the first `base`). Applying it ([`merge`]) lays the fields
//! the node changed over the record Redis holds then — and only while that
//! record still has the refresh token the node judged: a disable decided on
//! a grant that was replaced meanwhile never lands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::super::backend::{io_err, StoreError};
use super::super::durable;
use super::super::file::{AccountFile, PersistedCooldown};

/// One account's pending decisions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The account.
    pub id: String,
    /// The record before the first decision.
    pub base: AccountFile,
    /// The record after the last one.
    pub new: AccountFile,
    /// A stamp that changes with each decision folded in.
    pub seq: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct JournalFile {
    entries: Vec<Entry>,
}

/// The journal of one node.
pub(crate) struct Journal {
    path: PathBuf,
    entries: Mutex<(u64, BTreeMap<String, Entry>)>,
}

impl Journal {
    /// The journal at `path`, with what an earlier run left in it.
    pub(crate) fn open(path: &Path) -> Result<Journal, StoreError> {
        let mut entries = BTreeMap::new();
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<JournalFile>(&bytes) {
                Ok(f) => {
                    for e in f.entries {
                        entries.insert(e.id.clone(), e);
                    }
                }
                Err(e) => {
                    // Never lose it silently: set it aside and say so.
                    let aside = path.with_extension("unreadable");
                    let _ = std::fs::rename(path, &aside);
                    tracing::error!(file = %path.display(), "the cluster journal does not parse ({}); moved to {} and started empty", super::super::file::redact_quoted(&e.to_string()), aside.display());
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("read", path)(e)),
        }
        let seq = entries.values().map(|e| e.seq).max().unwrap_or(0);
        Ok(Journal { path: path.to_path_buf(), entries: Mutex::new((seq, entries)) })
    }

    /// Records that `id` went from `base` to `new` here; written to disk
    /// before it returns. Returns the number of entries.
    pub(crate) fn record(&self, id: &str, base: &AccountFile, new: &AccountFile) -> Result<usize, StoreError> {
        let mut guard = self.entries.lock();
        let (seq, entries) = &mut *guard;
        *seq += 1;
        let base = entries.get(id).map(|e| e.base.clone()).unwrap_or_else(|| base.clone());
        entries.insert(id.to_string(), Entry { id: id.to_string(), base, new: new.clone(), seq: *seq });
        self.persist(entries)?;
        Ok(entries.len())
    }

    /// The pending entries, oldest account first.
    pub(crate) fn pending(&self) -> Vec<Entry> {
        let guard = self.entries.lock();
        let mut out: Vec<Entry> = guard.1.values().cloned().collect();
        out.sort_by_key(|e| e.seq);
        out
    }

    /// The pending entry of `id`.
    pub(crate) fn get(&self, id: &str) -> Option<Entry> {
        self.entries.lock().1.get(id).cloned()
    }

    /// `entry` was applied (or dropped): forget it unless a later decision
    /// folded in since. Returns the number of entries left.
    pub(crate) fn done(&self, entry: &Entry) -> usize {
        let mut guard = self.entries.lock();
        let entries = &mut guard.1;
        if entries.get(&entry.id).is_some_and(|e| e.seq == entry.seq) {
            entries.remove(&entry.id);
            if let Err(e) = self.persist(entries) {
                tracing::error!("could not rewrite the cluster journal: {e}");
            }
        }
        entries.len()
    }

    /// Entries pending.
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().1.len()
    }

    fn persist(&self, entries: &BTreeMap<String, Entry>) -> Result<(), StoreError> {
        if entries.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("delete", &self.path)(e)),
                _ => Ok(()),
            };
        }
        let file = JournalFile { entries: entries.values().cloned().collect() };
        let bytes = serde_json::to_vec(&file).expect("journal serialises");
        durable::write_atomic(&self.path, "journal", &bytes)
    }
}

/// `current` (what Redis holds now) with the fields that went from `base`
/// to `new` on this node laid over it; `None` when `current` no longer has
/// the refresh token `base` had (the account was re-added meanwhile: what
/// was decided about the old grant does not apply to the new one).
/// Top-level fields and the fields of `token` merge one by one; cooldowns
/// merge by scope (the later end wins, ended ones are dropped).
pub(crate) fn merge(current: &AccountFile, base: &AccountFile, new: &AccountFile, now_ms: i64) -> Option<AccountFile> {
    if current.token.refresh_token != base.token.refresh_token {
        return None;
    }
    let (b, n, mut c) = (to_map(base), to_map(new), to_map(current));
    let keys: Vec<String> = b.keys().chain(n.keys()).cloned().collect();
    // A verdict another node already wrote stands as it is (its time and reason).
    let keep_disabled = current.disabled && new.disabled;
    let keep_proxy = current.proxy_disabled && new.proxy_disabled;
    for k in keys {
        if b.get(&k) == n.get(&k) || k == "cooldowns" {
            continue;
        }
        if (keep_disabled && k.starts_with("disabled")) || (keep_proxy && k.starts_with("proxy_disabled")) {
            continue;
        }
        if k == "token" {
            let (bt, nt) = (sub(&b, "token"), sub(&n, "token"));
            let mut ct = sub(&c, "token");
            let tkeys: Vec<String> = bt.keys().chain(nt.keys()).cloned().collect();
            for tk in tkeys {
                if bt.get(&tk) != nt.get(&tk) {
                    set(&mut ct, &tk, nt.get(&tk));
                }
            }
            c.insert("token".into(), Value::Object(ct));
        } else {
            set(&mut c, &k, n.get(&k));
        }
    }
    let mut merged: AccountFile = serde_json::from_value(Value::Object(c)).ok()?;
    merged.id = current.id.clone();
    merged.cooldowns = merge_cooldowns(&current.cooldowns, &base.cooldowns, &new.cooldowns, now_ms);
    Some(merged)
}

fn merge_cooldowns(current: &[PersistedCooldown], base: &[PersistedCooldown], new: &[PersistedCooldown], now_ms: i64) -> Vec<PersistedCooldown> {
    let mut out: Vec<PersistedCooldown> = current.iter().filter(|c| c.until_ms > now_ms).cloned().collect();
    for c in new.iter().filter(|c| c.until_ms > now_ms && !base.contains(c)) {
        match out.iter_mut().find(|o| o.scope == c.scope) {
            Some(o) if o.until_ms >= c.until_ms => {}
            Some(o) => *o = c.clone(),
            None => out.push(c.clone()),
        }
    }
    out
}

fn to_map(a: &AccountFile) -> serde_json::Map<String, Value> {
    match serde_json::to_value(a) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

fn sub(m: &serde_json::Map<String, Value>, key: &str) -> serde_json::Map<String, Value> {
    m.get(key).and_then(Value::as_object).cloned().unwrap_or_default()
}

fn set(m: &mut serde_json::Map<String, Value>, key: &str, value: Option<&Value>) {
    match value {
        Some(v) => {
            m.insert(key.to_string(), v.clone());
        }
        None => {
            m.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TokenData;

    fn account(rt: &str) -> AccountFile {
        AccountFile::new("a1", "a@example.com", TokenData::new("at-0", rt, 100), 1)
    }

    #[test]
    fn a_disable_lands_on_the_current_record_when_the_grant_is_the_same() {
        let base = account("rt-1");
        let mut new = base.clone();
        new.disable("invalid_grant: revoked", 50);
        // Meanwhile another node refreshed the access token and set a label.
        let mut current = base.clone();
        current.token.access_token = "at-other".into();
        current.labels.insert("tier".into(), "paid".into());
        let merged = merge(&current, &base, &new, 0).unwrap();
        assert!(merged.disabled);
        assert_eq!(merged.disabled_reason.as_deref(), Some("invalid_grant: revoked"));
        assert_eq!(merged.token.access_token, "at-other", "not touched here: the other node's stays");
        assert_eq!(merged.labels["tier"], "paid");
    }

    #[test]
    fn nothing_lands_on_a_re_added_account() {
        let base = account("rt-1");
        let mut new = base.clone();
        new.disable("invalid_grant", 50);
        let current = account("rt-2");
        assert!(merge(&current, &base, &new, 0).is_none());
    }

    #[test]
    fn refreshed_tokens_and_cooldowns_merge_field_by_field() {
        let base = account("rt-1");
        let mut new = base.clone();
        new.token.access_token = "at-new".into();
        new.token.expiry_timestamp = 999;
        new.cooldowns.push(PersistedCooldown { scope: "gemini-2.5-pro".into(), until_ms: 5_000, reason: "429".into() });
        let mut current = base.clone();
        current.cooldowns.push(PersistedCooldown { scope: "account".into(), until_ms: 6_000, reason: "other node".into() });
        current.cooldowns.push(PersistedCooldown { scope: "old".into(), until_ms: 10, reason: "ended".into() });
        let merged = merge(&current, &base, &new, 1_000).unwrap();
        assert_eq!((merged.token.access_token.as_str(), merged.token.expiry_timestamp), ("at-new", 999));
        let scopes: Vec<&str> = merged.cooldowns.iter().map(|c| c.scope.as_str()).collect();
        assert_eq!(scopes, ["account", "gemini-2.5-pro"]);
    }

    #[test]
    fn decisions_fold_into_one_entry_that_keeps_the_first_base() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.json");
        let j = Journal::open(&path).unwrap();
        let base = account("rt-1");
        let mut one = base.clone();
        one.token.access_token = "at-1".into();
        let mut two = one.clone();
        two.disable("invalid_grant", 5);
        assert_eq!(j.record("a1", &base, &one).unwrap(), 1);
        assert_eq!(j.record("a1", &one, &two).unwrap(), 1);
        let reopened = Journal::open(&path).unwrap();
        let e = reopened.get("a1").unwrap();
        assert_eq!(e.base, base);
        assert_eq!(e.new, two);
        assert_eq!(reopened.done(&e), 0);
        assert!(!path.exists(), "an empty journal leaves no file");
    }
}
