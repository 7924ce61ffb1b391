//! The pure modules of host/src, compiled on their own for fuzzing: the
//! protocol translators, the tool-schema cleaner, the account-file format
//! and the Antigravity-Manager import, the upstream envelope.

#![allow(dead_code)]

/// The client protocols (the host's is the WIT enum; the translators only
/// name it in `translate/mod.rs`, which is not included).
pub mod translate {
    #[path = "../../../src/translate/anthropic.rs"]
    pub mod anthropic;
    #[path = "../../../src/translate/gemini.rs"]
    pub mod gemini;
    #[path = "../../../src/translate/openai_chat.rs"]
    pub mod openai_chat;
    #[path = "../../../src/translate/openai_responses.rs"]
    pub mod openai_responses;
    #[path = "../../../src/translate/schema.rs"]
    pub mod schema;
    #[path = "../../../src/translate/shared.rs"]
    pub mod shared;
    #[path = "../../../src/translate/sse.rs"]
    pub mod sse;
}

/// The account records.
pub mod store {
    #[path = "../../../src/store/backend.rs"]
    pub mod backend;
    #[path = "../../../src/store/file.rs"]
    pub mod file;
    #[path = "../../../src/store/import.rs"]
    pub mod import;
    #[path = "../../../src/store/upsert.rs"]
    pub mod upsert;
    pub use backend::*;
}

#[path = "../../src/profiles.rs"]
pub mod profiles;

/// The policy file's text, read and checked.
pub mod policy {
    #[path = "../../../src/policy/spec.rs"]
    pub mod spec;
}
