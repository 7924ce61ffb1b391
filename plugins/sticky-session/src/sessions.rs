//! Session → account bindings with a TTL and a size bound.
//!
//! Every binding has the same TTL and is refreshed on use, so the least
//! recently used binding is also the one that expires first: one LRU list
//! serves both expiry and eviction, each O(1). Keys are 64-bit hashes of the
//! session ids (a collision only makes two conversations share an account),
//! so memory per binding is a few dozen bytes whatever the id's length.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const NIL: u32 = u32::MAX;

/// The account a session is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The account's slot.
    pub slot: u32,
    /// Hash of the account's id: a slot reused by another account does not
    /// inherit the sessions.
    pub account: u64,
}

#[derive(Debug, Clone)]
struct Node {
    key: u64,
    binding: Binding,
    last_use_ms: u64,
    prev: u32,
    next: u32,
}

/// The keys are already hashes: use them as they are.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Bounded, expiring session bindings.
pub struct Sessions {
    ttl_ms: u64,
    max: usize,
    index: HashMap<u64, u32, BuildHasherDefault<KeyHasher>>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    /// Least recently used.
    head: u32,
    /// Most recently used.
    tail: u32,
    /// Live bindings per account (hash of its id): new conversations go to
    /// the account holding the fewest.
    per_account: HashMap<u64, u32, BuildHasherDefault<KeyHasher>>,
}

impl Sessions {
    /// Bindings that live `ttl_ms` after their last use, at most `max` of them.
    pub fn new(ttl_ms: u64, max: usize) -> Sessions {
        Sessions {
            ttl_ms,
            max: max.max(1),
            index: HashMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            per_account: HashMap::default(),
        }
    }

    /// How many live conversations are bound to the account whose id
    /// hashes to `account`.
    pub fn bound_to(&self, account: u64) -> u32 {
        self.per_account.get(&account).copied().unwrap_or(0)
    }

    fn count(&mut self, account: u64, up: bool) {
        let n = self.per_account.entry(account).or_insert(0);
        if up {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_account.remove(&account);
            }
        }
    }

    #[cfg(test)]
    /// Number of live bindings (expired ones may linger until the next
    /// [`Sessions::expire`]).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Drop the bindings unused for the TTL. O(expired).
    pub fn expire(&mut self, now_ms: u64) {
        while self.head != NIL {
            let node = &self.nodes[self.head as usize];
            if node.last_use_ms.saturating_add(self.ttl_ms) > now_ms {
                break;
            }
            let key = node.key;
            self.remove(key);
        }
    }

    /// The binding of `key`, if live; does not refresh it.
    pub fn get(&self, key: u64, now_ms: u64) -> Option<Binding> {
        let i = *self.index.get(&key)?;
        let node = &self.nodes[i as usize];
        (node.last_use_ms.saturating_add(self.ttl_ms) > now_ms).then_some(node.binding)
    }

    /// Mark `key` used now (its TTL starts over).
    pub fn touch(&mut self, key: u64, now_ms: u64) {
        if let Some(&i) = self.index.get(&key) {
            self.nodes[i as usize].last_use_ms = now_ms;
            self.unlink(i);
            self.push_back(i);
        }
    }

    /// Bind `key` to `binding` as of now, evicting the oldest binding when
    /// full.
    pub fn bind(&mut self, key: u64, binding: Binding, now_ms: u64) {
        if let Some(&i) = self.index.get(&key) {
            let before = self.nodes[i as usize].binding.account;
            self.count(before, false);
            self.count(binding.account, true);
            self.nodes[i as usize].binding = binding;
            self.touch(key, now_ms);
            return;
        }
        if self.index.len() >= self.max && self.head != NIL {
            let oldest = self.nodes[self.head as usize].key;
            self.remove(oldest);
        }
        let node = Node { key, binding, last_use_ms: now_ms, prev: NIL, next: NIL };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.index.insert(key, i);
        self.count(binding.account, true);
        self.push_back(i);
    }

    /// Forget `key`.
    pub fn remove(&mut self, key: u64) {
        if let Some(i) = self.index.remove(&key) {
            let account = self.nodes[i as usize].binding.account;
            self.count(account, false);
            self.unlink(i);
            self.free.push(i);
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let n = &self.nodes[i as usize];
            (n.prev, n.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
        let n = &mut self.nodes[i as usize];
        n.prev = NIL;
        n.next = NIL;
    }

    fn push_back(&mut self, i: u32) {
        let tail = self.tail;
        {
            let n = &mut self.nodes[i as usize];
            n.prev = tail;
            n.next = NIL;
        }
        match tail {
            NIL => self.head = i,
            t => self.nodes[t as usize].next = i,
        }
        self.tail = i;
    }
}

/// A stable 64-bit hash of a string (FNV-1a, then a final mix), the same in
/// every instance so bindings never depend on a random seed.
pub fn hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(slot: u32) -> Binding {
        Binding { slot, account: u64::from(slot) }
    }

    #[test]
    fn bindings_expire_after_the_ttl_from_last_use() {
        let mut s = Sessions::new(1_000, 10);
        s.bind(1, b(5), 0);
        assert_eq!(s.get(1, 999), Some(b(5)));
        s.touch(1, 900);
        assert_eq!(s.get(1, 1_500), Some(b(5)));
        assert_eq!(s.get(1, 1_900), None);
        s.expire(1_900);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn the_oldest_is_evicted_when_full() {
        let mut s = Sessions::new(1_000_000, 3);
        for k in 0..3 {
            s.bind(k, b(k as u32), k);
        }
        s.touch(0, 10); // 1 is now the oldest
        s.bind(3, b(3), 11);
        assert_eq!(s.len(), 3);
        assert_eq!(s.get(1, 12), None);
        assert_eq!(s.get(0, 12), Some(b(0)));
        assert_eq!(s.get(2, 12), Some(b(2)));
        assert_eq!(s.get(3, 12), Some(b(3)));
        // Rebinding an existing key does not evict.
        s.bind(2, b(7), 13);
        assert_eq!(s.len(), 3);
        assert_eq!(s.get(2, 14), Some(b(7)));
    }

    #[test]
    fn many_bindings_stay_bounded_and_consistent() {
        let mut s = Sessions::new(50, 100);
        for t in 0..10_000u64 {
            s.bind(hash(&format!("session-{}", t % 300)), b((t % 7) as u32), t);
            if t % 13 == 0 {
                s.expire(t);
            }
            assert!(s.len() <= 100);
        }
        // Slab reuse keeps the node store near the bound.
        assert!(s.nodes.len() <= 101, "{}", s.nodes.len());
        s.expire(20_000);
        assert_eq!(s.len(), 0);
        assert_eq!(s.head, NIL);
        assert_eq!(s.tail, NIL);
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(hash("abc"), hash("abc"));
        assert_ne!(hash("abc"), hash("abd"));
    }
}
