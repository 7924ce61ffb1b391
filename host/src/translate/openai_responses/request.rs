//! A Responses request → a Gemini request: the entry points, the request's
//! fields and settings (`text.format`, `reasoning`, `tool_choice`).

use serde::Deserialize;
use serde_json::Value;

use super::super::diagnose::{blame, read, Probe};
use super::super::gemini::{GenerationConfig, Part, ThinkingConfig, ToolConfig};
use super::super::openai_settings::{self, effort_budget, tool_mode, OutputFormat};
use super::super::shared::{
    for_each_text, gemini_request, non_empty, required, At, ClientRequest, TextOr, TranslateError,
};
use super::input::{input_item, part_text, Turns};
use super::request_body::{ContentPart, Item, ReasoningIn, ResponsesRequest, TextIn, ToolIn, NO_STATE};
use super::signatures::Signatures;
use super::tools::{translate_tools, ToolMap};

/// Translates a Responses request body into Gemini.
///
/// Errors name the offending field, e.g.
/// ``invalid request: `input[4].call_id` is required``. Namespaced and custom
/// tools need [`parse_request_with_tools`] for their calls to come back as
/// the client declared them.
pub fn parse_request(body: &[u8]) -> Result<ClientRequest, TranslateError> {
    parse_request_with_tools(body).map(|(req, _)| req)
}

/// [`parse_request`], plus what the answer's translation needs to give the
/// model's calls back under the client's names (namespaces, custom tools,
/// names Gemini does not accept) and the built-in tools that were dropped.
pub fn parse_request_with_tools(body: &[u8]) -> Result<(ClientRequest, ToolMap), TranslateError> {
    translate(read::<ResponsesRequest>(body, diagnose)?)
}

/// The built-in tools of a request that this proxy drops (Gemini has no
/// equivalent), for one line of log: `["tool_search", "web_search"]`. Empty
/// when there are none or the body does not parse. Reads only `tools`; after
/// [`parse_request_with_tools`], [`ToolMap::dropped`] says the same.
pub fn dropped_tools(body: &[u8]) -> Vec<String> {
    #[derive(Deserialize)]
    struct OnlyTools<'a> {
        #[serde(borrow)]
        tools: Option<Vec<ToolIn<'a>>>,
    }
    let Ok(OnlyTools { tools: Some(tools) }) = serde_json::from_slice::<OnlyTools>(body) else {
        return Vec::new();
    };
    let mut map = ToolMap::default();
    match translate_tools(tools, &mut map) {
        Ok(_) => map.dropped,
        Err(_) => Vec::new(),
    }
}

/// Slow path, only after typed parsing failed: find the field to blame.
fn diagnose(body: &[u8], err: serde_json::Error) -> TranslateError {
    let part = Probe::leaf(|v| ContentPart::deserialize(v).err());
    let item = Probe { check: |v| Item::deserialize(v).err(), children: &[("content", &part)] };
    let member = Probe::leaf(|v| ToolIn::deserialize(v).err());
    let tool = Probe { check: |v| ToolIn::deserialize(v).err(), children: &[("tools", &member)] };
    let reasoning = Probe::leaf(|v| ReasoningIn::deserialize(v).err());
    let text = Probe::leaf(|v| TextIn::deserialize(v).err());
    let root = Probe {
        check: |v| ResponsesRequest::deserialize(v).err(),
        children: &[
            ("input", &item),
            ("instructions", &item),
            ("tools", &tool),
            ("reasoning", &reasoning),
            ("text", &text),
        ],
    };
    blame(body, err, &root)
}

fn translate(req: ResponsesRequest<'_>) -> Result<(ClientRequest, ToolMap), TranslateError> {
    let model = non_empty(req.model, "model")?;
    if req.previous_response_id.as_deref().is_some_and(|id| !id.is_empty()) {
        return Err(TranslateError::field("previous_response_id", format!("is not supported: {NO_STATE}")));
    }
    if req.conversation.is_some() {
        return Err(TranslateError::field("conversation", format!("is not supported: {NO_STATE}")));
    }
    if req.prompt.is_some() {
        return Err(TranslateError::field(
            "prompt",
            "is not supported: stored prompts live on OpenAI's servers; send the text in `instructions` and `input`",
        ));
    }
    if req.background == Some(true) {
        return Err(TranslateError::field(
            "background",
            "is not supported: this proxy answers within the request (stream it, or wait for the whole response)",
        ));
    }
    let input = required(req.input, "input")?;

    // Tools first: replayed calls are named the way their declarations are.
    let mut tool_map = ToolMap::default();
    let tools = translate_tools(req.tools.unwrap_or_default(), &mut tool_map)?;

    let mut system: Vec<Part> = Vec::new();
    match req.instructions {
        Some(TextOr::Text(text)) if !text.is_empty() => system.push(Part::text(text.into_owned())),
        None | Some(TextOr::Text(_)) => {}
        Some(TextOr::Items(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                let path = At::root("instructions").index(i);
                let content = required(item.content, path.key("content"))?;
                for_each_text(content, &path, part_text, |text| system.push(Part::text(text)))?;
            }
        }
    }

    let mut turns = Turns::default();
    match input {
        TextOr::Text(text) => {
            if !text.is_empty() {
                turns.user(Part::text(text.into_owned()));
            }
        }
        TextOr::Items(items) => {
            let signatures = Signatures::collect(&items);
            for (i, item) in items.into_iter().enumerate() {
                input_item(item, &At::root("input").index(i), &signatures, &tool_map, &mut system, &mut turns)?;
            }
        }
    }
    let contents = turns.finish();
    if contents.is_empty() {
        return Err(TranslateError::field("input", "must contain at least one user or assistant item with content"));
    }

    let has_functions = tools.iter().any(|t| t.function_declarations.is_some());
    let tool_config = match (&req.tool_choice, has_functions) {
        (Some(choice), true) => tool_choice(choice, &tool_map)?,
        _ => None,
    };

    let mut config = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        max_output_tokens: req.max_output_tokens,
        ..GenerationConfig::default()
    };
    if let Some(format) = req.text.and_then(|t| t.format) {
        TEXT_FORMAT.apply(format, &mut config)?;
    }
    if let Some(reasoning) = req.reasoning {
        config.thinking_config = thinking_config(reasoning)?;
    }

    let session_hint = openai_settings::session_hint(req.prompt_cache_key, req.user, req.safety_identifier);
    let request = ClientRequest {
        model,
        stream: req.stream.unwrap_or(false),
        session_hint,
        gemini: gemini_request(contents, system, tools, tool_config, config),
    };
    Ok((request, tool_map))
}

fn thinking_config(reasoning: ReasoningIn<'_>) -> Result<Option<ThinkingConfig>, TranslateError> {
    let budget = match reasoning.effort.as_deref() {
        None => None,
        // Responses' level above `high`, which Gemini's budget does not go beyond.
        Some("xhigh") => effort_budget("high"),
        Some(other) => Some(effort_budget(other).ok_or_else(|| {
            TranslateError::field(
                "reasoning.effort",
                format!("`{other}` is not one of none, minimal, low, medium, high, xhigh"),
            )
        })?),
    };
    let summary = reasoning.summary.or(reasoning.generate_summary);
    let include_thoughts = summary.is_some_and(|s| s != "none").then_some(true);
    Ok((budget.is_some() || include_thoughts.is_some()).then(|| ThinkingConfig {
        thinking_budget: budget,
        include_thoughts,
        ..ThinkingConfig::default()
    }))
}

/// `text.format`: its schema sits beside `type` (unlike chat's
/// `response_format`), and a `null` one is missing.
const TEXT_FORMAT: OutputFormat = OutputFormat {
    field: "text.format",
    shapes: r#"must be {"type":"text"}, {"type":"json_object"} or {"type":"json_schema","name":…,"schema":…}"#,
    schema_field: "text.format.schema",
    take_schema: |format| format.get_mut("schema").map(Value::take).filter(|s| !s.is_null()),
};

fn tool_choice(choice: &Value, tools: &ToolMap) -> Result<Option<ToolConfig>, TranslateError> {
    let bad = || {
        TranslateError::field(
            "tool_choice",
            r#"must be "none", "auto", "required", {"type":"function","name":…}, {"type":"custom","name":…} or {"type":"allowed_tools",…}"#,
        )
    };
    let name_of = |v: &Value, custom: bool| {
        v.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).map(|name| {
            let namespace = v.get("namespace").and_then(Value::as_str);
            tools.gemini_name(namespace, name, custom)
        })
    };
    if let Some(mode) = choice.as_str() {
        return tool_mode(mode).map(Some).ok_or_else(bad);
    }
    Ok(match choice.get("type").and_then(Value::as_str) {
        Some(kind @ ("function" | "custom")) => {
            Some(ToolConfig::mode("ANY", Some(name_of(choice, kind == "custom").ok_or_else(bad)?)))
        }
        Some("allowed_tools") => {
            let names: Vec<String> = choice
                .get("tools")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|t| name_of(t, t.get("type").and_then(Value::as_str) == Some("custom")))
                        .collect()
                })
                .unwrap_or_default();
            match choice.get("mode").and_then(Value::as_str) {
                // Gemini restricts the functions only when one must be called.
                Some("required") if !names.is_empty() => {
                    let mut config = ToolConfig::mode("ANY", None);
                    if let Some(calling) = config.function_calling_config.as_mut() {
                        calling.allowed_function_names = Some(names);
                    }
                    Some(config)
                }
                Some("required") => Some(ToolConfig::mode("ANY", None)),
                _ => Some(ToolConfig::mode("AUTO", None)),
            }
        }
        // Forcing a built-in tool: it was dropped, nothing to force.
        Some(_) => None,
        None => return Err(bad()),
    })
}
