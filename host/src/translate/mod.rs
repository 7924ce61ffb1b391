//! Pure protocol translation, no sockets: the Gemini types and the
//! `v1internal` envelope ([`gemini`]), tool-schema cleaning ([`schema`]),
//! server-sent events ([`sse`]), and the client protocols translated to and
//! from Gemini: OpenAI chat completions ([`openai_chat`]), the OpenAI
//! Responses API ([`openai_responses`]) and Anthropic messages
//! ([`anthropic`]), with what they share ([`shared`]; and, each in a room of
//! its own, the diagnosis of a refused body ([`diagnose`]), thought
//! signatures ([`signatures`]), how an answer ended ([`outcome`]), the two
//! OpenAI protocols' settings ([`openai_settings`])); OpenAI's Images API
//! to and from Gemini image generation ([`images`]); Google Search
//! grounding shown as the clients' own web search ([`search`]).

pub mod anthropic;
pub(crate) mod diagnose;
pub mod gemini;
pub mod images;
pub mod openai_chat;
pub mod openai_responses;
pub(crate) mod openai_settings;
pub(crate) mod outcome;
pub mod schema;
pub mod search;
pub mod shared;
pub(crate) mod signatures;
pub mod sse;

use crate::plugins::Protocol;

/// The protocol's name, for metrics and logs.
pub fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Gemini => "gemini",
        Protocol::Openai => "openai",
        Protocol::Anthropic => "anthropic",
    }
}

/// An error body in the client protocol's own shape.
pub fn error_body(p: Protocol, status: u16, message: &str) -> serde_json::Value {
    match p {
        Protocol::Gemini => gemini::error_body(status, message),
        Protocol::Openai => openai_chat::error_body(status, message),
        Protocol::Anthropic => anthropic::error_body(status, message),
    }
}
