//! Google's implicit prompt cache, as the fake plays it: an account that
//! sees a request whose prefix it has seen before reports that prefix's
//! tokens as `cachedContentTokenCount`. A prefix is the model, the system
//! instruction and the tools, then the first `k` contents (`k` from 0 to
//! all of them); its tokens are the fake's estimate (whitespace-separated
//! words, as for `promptTokenCount`) of the system instruction and those
//! contents. Each account has its own cache: another account never hits
//! it, which is what keeping a conversation on one account buys.
//!
//! Bounded: each account remembers its latest [`PREFIXES_PER_ACCOUNT`]
//! prefixes (the oldest go first), and at most [`ACCOUNTS`] accounts are
//! remembered (all are forgotten when one more comes). `POST /_fake/reset`
//! forgets everything; [`FakeSettings::prompt_cache`](super::FakeSettings::prompt_cache)
//! turns it off.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use serde_json::Value;

use super::gemini::{texts, words};

/// Prefixes remembered per account.
pub(crate) const PREFIXES_PER_ACCOUNT: usize = 4096;
/// Accounts remembered.
pub(crate) const ACCOUNTS: usize = 1024;

/// One account's prefixes: hash → tokens, and their order of arrival.
#[derive(Default)]
struct Seen {
    tokens: HashMap<u64, u64>,
    order: VecDeque<u64>,
}

impl Seen {
    fn remember(&mut self, hash: u64, tokens: u64) {
        if self.tokens.insert(hash, tokens).is_some() {
            return;
        }
        self.order.push_back(hash);
        while self.order.len() > PREFIXES_PER_ACCOUNT {
            if let Some(old) = self.order.pop_front() {
                self.tokens.remove(&old);
            }
        }
    }
}

/// The prompt caches of every account.
#[derive(Default)]
pub(crate) struct PromptCache {
    accounts: HashMap<String, Seen>,
}

/// `obj[camel]`, else `obj[snake]`.
fn field<'a>(obj: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel).or_else(|| obj.get(snake))
}

/// The hash of `prev` extended by `v` (as JSON text: the same value hashes
/// the same).
fn chain(prev: u64, v: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    prev.hash(&mut h);
    v.to_string().hash(&mut h);
    h.finish()
}

impl PromptCache {
    /// The cached tokens of `request` (the Gemini request of a generate or
    /// stream call) for `email` on `model`: those of the longest prefix the
    /// account saw before (0 when none). Every prefix of `request` is
    /// remembered for the next call.
    pub(crate) fn hit(&mut self, email: &str, model: &str, request: &Value) -> u64 {
        let system = field(request, "systemInstruction", "system_instruction");
        let mut hash = {
            let mut h = DefaultHasher::new();
            model.hash(&mut h);
            h.finish()
        };
        hash = chain(hash, system.unwrap_or(&Value::Null));
        hash = chain(hash, request.get("tools").unwrap_or(&Value::Null));
        let mut tokens = system.map_or(0, |s| words(&texts(s).join(" ")));
        let mut prefixes = vec![(hash, tokens)];
        for content in request
            .get("contents")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            hash = chain(hash, content);
            tokens += texts(content).into_iter().map(words).sum::<u64>();
            prefixes.push((hash, tokens));
        }
        if !self.accounts.contains_key(email) && self.accounts.len() >= ACCOUNTS {
            self.accounts.clear();
        }
        let seen = self.accounts.entry(email.to_owned()).or_default();
        let cached = prefixes
            .iter()
            .rev()
            .find_map(|(h, _)| seen.tokens.get(h).copied())
            .unwrap_or(0);
        for (h, t) in prefixes {
            seen.remember(h, t);
        }
        cached
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn turn(history: &mut Vec<Value>, user: &str) -> Value {
        history.push(json!({"role": "user", "parts": [{"text": user}]}));
        json!({"systemInstruction": {"parts": [{"text": "be brief"}]}, "contents": history.clone()})
    }

    fn answer(history: &mut Vec<Value>, text: &str) {
        history.push(json!({"role": "model", "parts": [{"text": text}]}));
    }

    #[test]
    fn the_same_account_hits_the_longest_prefix_seen() {
        let mut cache = PromptCache::default();
        let mut h = Vec::new();
        let r1 = turn(&mut h, "one two three");
        assert_eq!(cache.hit("a@x", "m", &r1), 0);
        answer(&mut h, "four five");
        let r2 = turn(&mut h, "six");
        // The system instruction (2) and the first turn (3).
        assert_eq!(cache.hit("a@x", "m", &r2), 5);
        answer(&mut h, "seven");
        let r3 = turn(&mut h, "eight nine");
        // Everything r2 had: 2 + 3 + 2 + 1.
        assert_eq!(cache.hit("a@x", "m", &r3), 8);
        // The same request again: all of it.
        assert_eq!(cache.hit("a@x", "m", &r3), 8 + 1 + 2);
    }

    #[test]
    fn another_account_or_model_or_system_misses() {
        let mut cache = PromptCache::default();
        let mut h = Vec::new();
        let r1 = turn(&mut h, "one two three");
        cache.hit("a@x", "m", &r1);
        assert_eq!(cache.hit("b@x", "m", &r1), 0);
        assert_eq!(cache.hit("a@x", "other", &r1), 0);
        let mut other = r1.clone();
        other["systemInstruction"]["parts"][0]["text"] = json!("be long");
        assert_eq!(cache.hit("a@x", "m", &other), 0);
        // Tools are part of the prefix too.
        let mut tools = r1.clone();
        tools["tools"] = json!([{"functionDeclarations": [{"name": "f"}]}]);
        assert_eq!(cache.hit("a@x", "m", &tools), 0);
        // A new conversation with the same system instruction: that much.
        let mut h2 = Vec::new();
        assert_eq!(cache.hit("a@x", "m", &turn(&mut h2, "hello")), 2);
    }

    #[test]
    fn memory_is_bounded() {
        let mut cache = PromptCache::default();
        for i in 0..PREFIXES_PER_ACCOUNT + 10 {
            let r = json!({"contents": [{"role": "user", "parts": [{"text": format!("q{i}")}]}]});
            cache.hit("a@x", "m", &r);
        }
        let seen = &cache.accounts["a@x"];
        assert!(seen.tokens.len() <= PREFIXES_PER_ACCOUNT && seen.order.len() == seen.tokens.len());
        // The oldest went, the newest stayed.
        let q = |i: usize| json!({"contents": [{"role": "user", "parts": [{"text": format!("q{i}")}]}]});
        assert_eq!(cache.hit("a@x", "m", &q(PREFIXES_PER_ACCOUNT + 9)), 1);
        assert_eq!(cache.hit("a@x", "m", &q(0)), 0);
        for i in 0..ACCOUNTS + 1 {
            cache.hit(&format!("{i}@x"), "m", &q(0));
        }
        assert!(cache.accounts.len() <= ACCOUNTS);
    }
}
