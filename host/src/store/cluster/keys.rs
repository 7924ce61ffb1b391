//! The names of everything the cluster keeps in Redis, all under one
//! prefix (`[cluster] key_prefix`) so several pools can share a server.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:acct:<id>` | string | the account record: the account file's JSON, byte for byte |
//! | `P:email:<email, lower case>` | string | the id of the account with that email (upsert by email) |
//! | `P:ids` | set | every account id (a full load reads these records) |
//! | `P:rev` | counter | the revision of the last change; every change message carries its own |
//! | `P:changes` | pub/sub channel | every change, as it is made (see `message.rs`) |
//! | `P:lease:<name>` | string, PX | a lease (`refresh:<id>`: the one node refreshing that token) |
//! | `P:note:<name>` | string, PX | a short-lived note (`refresh-failed:<id>`: why the lease holder's refresh failed) |
//! | `P:guard` | sorted set, PX | the storm guard's window: account → when it was disabled |
//! | `P:sess:<hash>` | string, PX | the account a conversation is bound to |

/// Key names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// Names under `prefix`.
    pub(crate) fn new(prefix: &str) -> Keys {
        Keys { prefix: prefix.to_string() }
    }

    /// The prefix.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The record of account `id`.
    pub(crate) fn account(&self, id: &str) -> String {
        format!("{}{id}", self.account_prefix())
    }

    /// What every record key starts with.
    pub(crate) fn account_prefix(&self) -> String {
        format!("{}:acct:", self.prefix)
    }

    /// The email index entry of `email_key` (an email trimmed and lower-cased).
    pub(crate) fn email(&self, email_key: &str) -> String {
        format!("{}:email:{email_key}", self.prefix)
    }

    /// The set of account ids.
    pub(crate) fn ids(&self) -> String {
        format!("{}:ids", self.prefix)
    }

    /// The revision counter.
    pub(crate) fn rev(&self) -> String {
        format!("{}:rev", self.prefix)
    }

    /// The change channel.
    pub(crate) fn channel(&self) -> String {
        format!("{}:changes", self.prefix)
    }

    /// Lease `name`.
    pub(crate) fn lease(&self, name: &str) -> String {
        format!("{}:lease:{name}", self.prefix)
    }

    /// Note `name`.
    pub(crate) fn note(&self, name: &str) -> String {
        format!("{}:note:{name}", self.prefix)
    }

    /// The storm guard's window.
    pub(crate) fn guard(&self) -> String {
        format!("{}:guard", self.prefix)
    }

    /// The binding of the session whose key is `hash`.
    pub(crate) fn session(&self, hash: &str) -> String {
        format!("{}{hash}", self.session_prefix())
    }

    /// What every session key starts with.
    pub(crate) fn session_prefix(&self) -> String {
        format!("{}:sess:", self.prefix)
    }
}
