//! The `/v1/responses` request body as serde reads it: the request, its
//! input items and content parts, its tools and settings.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::super::shared::TextOr;

// Every field is optional for serde so that a type error can be pinned to one
// key (see `diagnose`); required fields are checked while translating. Fields
// this proxy ignores are not declared, so no value of theirs is refused.
#[derive(Deserialize)]
pub(super) struct ResponsesRequest<'a> {
    pub(super) model: Option<String>,
    #[serde(borrow)]
    pub(super) input: Option<TextOr<'a, Item<'a>>>,
    #[serde(borrow)]
    pub(super) instructions: Option<TextOr<'a, Item<'a>>>,
    pub(super) stream: Option<bool>,
    pub(super) user: Option<String>,
    pub(super) prompt_cache_key: Option<String>,
    pub(super) safety_identifier: Option<String>,
    pub(super) temperature: Option<f64>,
    pub(super) top_p: Option<f64>,
    pub(super) max_output_tokens: Option<u32>,
    #[serde(borrow)]
    pub(super) tools: Option<Vec<ToolIn<'a>>>,
    pub(super) tool_choice: Option<Value>,
    #[serde(borrow)]
    pub(super) reasoning: Option<ReasoningIn<'a>>,
    pub(super) text: Option<TextIn>,
    pub(super) previous_response_id: Option<String>,
    pub(super) conversation: Option<Value>,
    pub(super) prompt: Option<Value>,
    pub(super) background: Option<bool>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum Role {
    System,
    Developer,
    User,
    Assistant,
}

/// Any input item; which fields matter depends on `type`.
#[derive(Deserialize)]
pub(super) struct Item<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) kind: Option<Cow<'a, str>>,
    pub(super) role: Option<Role>,
    #[serde(borrow)]
    pub(super) content: Option<TextOr<'a, ContentPart<'a>>>,
    pub(super) id: Option<String>,
    pub(super) call_id: Option<String>,
    pub(super) name: Option<String>,
    pub(super) namespace: Option<String>,
    /// A call's arguments: JSON text (any JSON for the items skipped, e.g.
    /// `tool_search_call`).
    pub(super) arguments: Option<Value>,
    /// A `custom_tool_call`'s free-form input.
    pub(super) input: Option<String>,
    /// A tool result: a string or content parts (any JSON for the items
    /// skipped, e.g. `computer_call_output`).
    pub(super) output: Option<Value>,
    pub(super) encrypted_content: Option<String>,
    /// A `local_shell_call`'s command.
    pub(super) action: Option<Value>,
}

/// A part of a message's (or a tool result's) `content`.
#[derive(Deserialize)]
pub(super) struct ContentPart<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) kind: Option<Cow<'a, str>>,
    pub(super) text: Option<String>,
    pub(super) refusal: Option<String>,
    pub(super) image_url: Option<UrlField>,
    pub(super) file_id: Option<String>,
    pub(super) file_data: Option<String>,
    pub(super) file_url: Option<String>,
    pub(super) filename: Option<String>,
    pub(super) input_audio: Option<InputAudio>,
}

#[derive(Deserialize)]
pub(super) struct InputAudio {
    pub(super) data: Option<String>,
    pub(super) format: Option<String>,
}

/// `image_url`: a string in the Responses API; `{"url": …}` (the chat shape)
/// is accepted too.
pub(super) struct UrlField(pub(super) String);

impl<'de> Deserialize<'de> for UrlField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UrlField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a URL string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UrlField, E> {
                Ok(UrlField(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<UrlField, E> {
                Ok(UrlField(v))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<UrlField, A::Error> {
                let mut url = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "url" {
                        url = Some(map.next_value::<String>()?);
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                    }
                }
                url.map(UrlField).ok_or_else(|| de::Error::missing_field("url"))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
pub(super) struct ToolIn<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) kind: Option<Cow<'a, str>>,
    pub(super) name: Option<String>,
    pub(super) description: Option<String>,
    pub(super) parameters: Option<Value>,
    /// A custom tool's input format (`text`, or a `grammar`).
    pub(super) format: Option<Value>,
    /// A namespace's members.
    #[serde(borrow)]
    pub(super) tools: Option<Vec<ToolIn<'a>>>,
}

#[derive(Deserialize)]
pub(super) struct ReasoningIn<'a> {
    #[serde(borrow)]
    pub(super) effort: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) summary: Option<Cow<'a, str>>,
    /// The older name of `summary`.
    #[serde(borrow)]
    pub(super) generate_summary: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(super) struct TextIn {
    pub(super) format: Option<Value>,
}

pub(super) const NO_STATE: &str =
    "this proxy keeps no responses or conversations: send the whole conversation in `input` (with `store: false`)";
