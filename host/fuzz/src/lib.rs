//! The pure modules of host/src, compiled on their own for fuzzing: the
//! protocol translators, the tool-schema cleaner, the account-file format
//! and the Antigravity-Manager import, the policy file's parser.

#![allow(dead_code)]

/// The translators (`translate/mod.rs`, which names the plugins' protocol
/// enum, is left out).
#[path = "../../src/translate"]
pub mod translate {
    pub mod anthropic;
    pub mod diagnose;
    pub mod gemini;
    pub mod openai_chat;
    pub mod openai_responses;
    pub mod openai_settings;
    pub mod outcome;
    pub mod schema;
    pub mod search;
    pub mod shared;
    pub mod signatures;
    pub mod sse;
}

/// The account records (not the file backend).
#[path = "../../src/store"]
pub mod store {
    pub mod backend;
    pub mod error;
    pub mod file;
    pub mod import;
    pub mod upsert;
    pub use backend::*;
}

#[path = "../../src/profiles.rs"]
pub mod profiles;

/// The policy file's text, read and checked.
#[path = "../../src/policy"]
pub mod policy {
    pub mod spec;
}

/// The seed runner that stands in for libFuzzer in `./dev test`.
#[cfg(all(not(feature = "libfuzzer"), not(test)))]
mod seeds;
