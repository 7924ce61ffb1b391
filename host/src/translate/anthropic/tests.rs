use serde_json::{json, Value};

use super::super::gemini::{GenerateContentResponse, Part};
use super::super::shared::SKIP_THOUGHT_SIGNATURE;
use super::super::shared::{ClientRequest, TranslateError};
use super::super::sse::SseEvent;
use super::request::{parse_request, parse_request_with_search};
use super::response::{error_body, response_from_gemini, response_with_search};
use super::stream::StreamTranslator;

fn parse(v: Value) -> ClientRequest {
    parse_request(v.to_string().as_bytes()).unwrap()
}

fn parse_err(v: Value) -> String {
    parse_request(v.to_string().as_bytes())
        .unwrap_err()
        .to_string()
}

fn gemini(v: Value) -> GenerateContentResponse {
    serde_json::from_value(v).unwrap()
}

/// Each event as (name, data), checking the name matches the data's type.
fn events(evs: &[SseEvent]) -> Vec<(&'static str, Value)> {
    evs.iter()
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).unwrap();
            let name = e.event.expect("anthropic events are named");
            assert_eq!(data["type"], name, "event name matches type");
            (name, data)
        })
        .collect()
}

fn names(evs: &[SseEvent]) -> Vec<&'static str> {
    evs.iter().map(|e| e.event.unwrap()).collect()
}

#[test]
fn system_multi_turn_and_params() {
    let req = parse(json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "Answer in English."}],
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]},
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}]}
        ],
        "temperature": 0.3,
        "top_p": 0.8,
        "top_k": 40,
        "stop_sequences": ["\n\nHuman:"],
        "metadata": {"user_id": "session-abc"},
        "stream": true
    }));
    assert_eq!(req.model, "claude-sonnet-4-5");
    assert!(req.stream);
    assert_eq!(req.session_hint.as_deref(), Some("session-abc"));
    assert_eq!(
        serde_json::to_value(&req.gemini).unwrap(),
        json!({
            "contents": [
                {"role": "user", "parts": [{"text": "Hi"}]},
                {"role": "model", "parts": [{"text": "Hello."}]},
                {"role": "user", "parts": [{"text": "Weather?"}]}
            ],
            "systemInstruction": {"parts": [{"text": "You are terse."}, {"text": "Answer in English."}]},
            "generationConfig": {"temperature": 0.3, "topP": 0.8, "topK": 40.0,
                                 "maxOutputTokens": 1024, "stopSequences": ["\n\nHuman:"]}
        })
    );
    let plain = parse(
        json!({"model": "m", "system": "Be kind.", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(
        serde_json::to_value(plain.gemini.system_instruction).unwrap(),
        json!({"parts": [{"text": "Be kind."}]})
    );
    assert!(!plain.stream);
    assert_eq!(plain.session_hint, None);
}

#[test]
fn images_and_documents() {
    let req = parse(json!({
        "model": "m",
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}},
            {"type": "text", "text": "Describe."}
        ]}]
    }));
    assert_eq!(
        serde_json::to_value(&req.gemini.contents).unwrap(),
        json!([{"role": "user", "parts": [
            {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
            {"text": "notes"},
            {"text": "Describe."}
        ]}])
    );
}

#[test]
fn tool_round_trip() {
    let req = parse(json!({
        "model": "m",
        "max_tokens": 100,
        "tools": [{
            "name": "get_weather",
            "description": "Current weather",
            "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}
        }],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": [
                    {"type": "text", "text": "18C"},
                    {"type": "text", "text": "sunny"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}
                ]},
                {"type": "text", "text": "And tomorrow?"}
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_02", "content": "service down", "is_error": true}
            ]}
        ]
    }));
    let g = serde_json::to_value(&req.gemini).unwrap();
    assert_eq!(
        g["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
            {"role": "model", "parts": [
                {"text": "Let me check."},
                {"thoughtSignature": SKIP_THOUGHT_SIGNATURE,
                 "functionCall": {"id": "toolu_01", "name": "get_weather", "args": {"city": "Paris"}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"id": "toolu_01", "name": "get_weather", "response": {"content": "18C\nsunny"}}},
                {"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
                {"text": "And tomorrow?"}
            ]},
            {"role": "model", "parts": [
                {"thoughtSignature": SKIP_THOUGHT_SIGNATURE,
                 "functionCall": {"id": "toolu_02", "name": "get_weather", "args": {}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"id": "toolu_02", "name": "get_weather",
                                      "response": {"content": "service down", "is_error": true}}}
            ]}
        ])
    );
    // The client's schema goes as it came; the `parameters` form made of
    // it (for the backends that need it) is the cleaned one.
    let raw = &g["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"];
    assert_eq!(g["tools"][0]["functionDeclarations"][0]["name"], "get_weather");
    assert_eq!(g["tools"][0]["functionDeclarations"][0]["description"], "Current weather");
    assert_eq!(raw["additionalProperties"], false);
    assert_eq!(
        crate::translate::schema::to_parameters(raw.clone()).unwrap(),
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    );
    assert_eq!(
        g["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
    );

    let resp = gemini(json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "Checking Oslo."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}
        ]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 10, "totalTokenCount": 60}
    }));
    let out = serde_json::to_value(response_from_gemini(&resp, "claude-x")).unwrap();
    assert_eq!(out["stop_reason"], "tool_use");
    assert_eq!(
        out["content"][0],
        json!({"type": "text", "text": "Checking Oslo."})
    );
    let call = &out["content"][1];
    assert_eq!(call["type"], "tool_use");
    assert!(call["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["input"], json!({"city": "Oslo"}));
}

#[test]
fn thinking_signatures_round_trip() {
    // Gemini puts the signature on the call after its thoughts; it
    // travels in the thinking block and comes back on the call.
    let resp = gemini(json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "The user wants weather.", "thought": true},
            {"text": " Call the tool.", "thought": true},
            {"functionCall": {"id": "fc1", "name": "get_weather", "args": {"city": "Rome"}}, "thoughtSignature": "SIG1"}
        ]}, "finishReason": "STOP"}]
    }));
    let out = serde_json::to_value(response_from_gemini(&resp, "m")).unwrap();
    assert_eq!(
        out["content"],
        json!([
            {"type": "thinking", "thinking": "The user wants weather. Call the tool.", "signature": "grantpool:SIG1"},
            {"type": "tool_use", "id": "fc1", "name": "get_weather", "input": {"city": "Rome"}}
        ])
    );
    let req = parse(json!({
        "model": "m",
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [
            {"role": "user", "content": "Weather in Rome?"},
            {"role": "assistant", "content": out["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "fc1", "content": "20C"}]}
        ]
    }));
    let g = serde_json::to_value(&req.gemini).unwrap();
    assert_eq!(
        g["contents"][1],
        json!({"role": "model", "parts": [
            {"thoughtSignature": "SIG1", "functionCall": {"id": "fc1", "name": "get_weather", "args": {"city": "Rome"}}}
        ]})
    );
    assert_eq!(
        g["generationConfig"],
        json!({"thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}})
    );

    // A signature Anthropic made (the session began on its API) means
    // nothing to Gemini: it is dropped and the call gets the dummy.
    let req = parse(json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "Weather in Rome?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Use the tool.", "signature": "EqQBCkgIARABGAIiQL+anthropic"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Rome"}}
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "20C"}]}
        ]
    }));
    assert_eq!(
        serde_json::to_value(&req.gemini.contents[1]).unwrap(),
        json!({"role": "model", "parts": [
            {"text": "Checking."},
            {"thoughtSignature": SKIP_THOUGHT_SIGNATURE,
             "functionCall": {"id": "toolu_1", "name": "get_weather", "args": {"city": "Rome"}}}
        ]})
    );
}

#[test]
fn server_tools_and_choices() {
    let only_search = parse(json!({
        "model": "m",
        "messages": [{"role": "user", "content": "news?"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
    }));
    assert_eq!(
        serde_json::to_value(&only_search.gemini.tools).unwrap(),
        json!([{"googleSearch": {}}])
    );
    let mixed = parse(json!({
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"},
                  {"name": "now", "input_schema": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "any"}
    }));
    assert_eq!(
        serde_json::to_value(&mixed.gemini.tools).unwrap(),
        json!([{"functionDeclarations": [{"name": "now", "parametersJsonSchema": {"type": "object", "properties": {}}}]}])
    );
    assert_eq!(
        serde_json::to_value(mixed.gemini.tool_config).unwrap(),
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
    let g = parse(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"name": "f", "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}}}],
        "tool_choice": {"type": "none"}}),
    );
    assert_eq!(
        g.gemini
            .tool_config
            .unwrap()
            .function_calling_config
            .unwrap()
            .mode
            .as_deref(),
        Some("NONE")
    );
}

#[test]
fn malformed_requests_name_the_field() {
    let user = json!([{"role": "user", "content": "x"}]);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"messages": user}), "`model` is required"),
        (json!({"model": "m"}), "`messages` is required"),
        (json!({"model": "m", "messages": []}), "`messages` must contain"),
        (json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}), "`messages[0].role` is invalid: unknown variant `tool`, expected one of `user`, `assistant`, `system`"),
        // A system message alone is no conversation.
        (json!({"model": "m", "messages": [{"role": "system", "content": "x"}]}), "`messages` must contain at least one message with content"),
        (json!({"model": "m", "messages": [{"role": "user"}]}), "`messages[0].content` is required"),
        (json!({"model": "m", "messages": [{"role": "user", "content": {"text": "x"}}]}), "`messages[0].content` is invalid: invalid type: map, expected a string or an array"),
        (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": ["x"]}]}]}), "`messages[0].content[0].text` is invalid: invalid type: sequence, expected a string"),
        (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]}]}), "`messages[0].content[0].source.type` `url` is not supported"),
        (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "AA=="}}]}]}), "`messages[0].content[0].source.media_type` is required"),
        (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": 1}}]}]}), "`messages[0].content[0].source.type` is invalid"),
        (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "r"}]}]}), "`messages[0].content[0].tool_use_id` `toolu_9` does not match"),
        (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "tool_result", "content": "r"}]}]}), "`messages[0].content[0].tool_use_id` is required"),
        (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": 1}]}]}]}), "`messages[0].content[0].content[0].text` is invalid"),
        (json!({"model": "m", "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": [1]}]}]}), "`messages[0].content[0].input` must be a JSON object"),
        (json!({"model": "m", "messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]}]}), "`messages[0].content[0].id` is required"),
        (json!({"model": "m", "messages": [{"role": "assistant", "content": [{"type": "image", "source": {}}]}]}), "`messages[0].content[0].type` `image` is not supported in an assistant message"),
        (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]}), "`messages[0].content[0].type` `video` is not supported in a user message"),
        (json!({"model": "m", "messages": [{"role": "user", "content": [{"text": "x"}]}]}), "`messages[0].content[0].type` is required"),
        (json!({"model": "m", "messages": user, "system": [{"type": "image"}]}), "`system[0].type` must be \"text\""),
        (json!({"model": "m", "messages": user, "system": 5}), "`system` is invalid"),
        (json!({"model": "m", "messages": user, "max_tokens": -1}), "`max_tokens` is invalid: invalid value: integer `-1`, expected a non-negative integer"),
        (json!({"model": "m", "messages": user, "tools": [{"name": "f"}]}), "`tools[0].input_schema` is required"),
        (json!({"model": "m", "messages": user, "tools": [{"description": "d", "input_schema": {}}]}), "`tools[0].name` is required"),
        (json!({"model": "m", "messages": user, "tools": [{"type": "bash_20250124", "name": "bash"}]}), "`tools[0].type` `bash_20250124` is an Anthropic-defined tool"),
        (json!({"model": "m", "messages": user, "tool_choice": {"type": "tool"}}), "`tool_choice.name` is required"),
        (json!({"model": "m", "messages": user, "tool_choice": {"type": "maybe"}}), "`tool_choice.type` must be"),
        (json!({"model": "m", "messages": user, "tool_choice": "auto"}), "`tool_choice` is invalid: invalid type: string \"auto\", expected an object"),
        (json!({"model": "m", "messages": user, "metadata": {"user_id": 5}}), "`metadata.user_id` is invalid"),
        (json!({"model": "m", "messages": user, "thinking": {"type": "on"}}), "`thinking.type` must be"),
        (json!({"model": "m", "messages": user, "stream": "yes"}), "`stream` is invalid: invalid type: string \"yes\", expected true or false"),
    ];
    for (body, want) in cases {
        let got = parse_err(body.clone());
        assert!(got.contains(want), "body {body}\n got: {got}\nwant: {want}");
    }
    assert!(matches!(
        parse_request(b"not json"),
        Err(TranslateError::InvalidJson(_))
    ));
    assert!(parse_request(b"\"a string\"")
        .unwrap_err()
        .to_string()
        .contains("must be a JSON object"));
}

#[test]
fn response_text_thinking_usage() {
    let resp = gemini(json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "Pondering.", "thought": true, "thoughtSignature": "S"},
            {"text": "Hello, "},
            {"text": "world."}
        ]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 100, "cachedContentTokenCount": 60,
                          "candidatesTokenCount": 5, "thoughtsTokenCount": 7, "totalTokenCount": 112},
        "responseId": "resp9"
    }));
    assert_eq!(
        serde_json::to_value(response_from_gemini(&resp, "claude-opus-4")).unwrap(),
        json!({
            "id": "msg_resp9",
            "type": "message",
            "role": "assistant",
            "model": "claude-opus-4",
            "content": [
                {"type": "thinking", "thinking": "Pondering.", "signature": "grantpool:S"},
                {"type": "text", "text": "Hello, world."}
            ],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": 40, "output_tokens": 12, "cache_read_input_tokens": 60}
        })
    );
}

#[test]
fn stop_reasons() {
    let stop = |v: Value| response_from_gemini(&gemini(v), "m").stop_reason;
    let cand = |reason: &str| json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]});
    assert_eq!(stop(cand("STOP")), "end_turn");
    assert_eq!(stop(cand("MAX_TOKENS")), "max_tokens");
    assert_eq!(stop(cand("SAFETY")), "refusal");
    assert_eq!(stop(cand("MALFORMED_FUNCTION_CALL")), "end_turn");
    assert_eq!(
        stop(json!({"promptFeedback": {"blockReason": "SAFETY"}})),
        "refusal"
    );
    let empty = serde_json::to_value(response_from_gemini(&gemini(json!({})), "m")).unwrap();
    assert_eq!(empty["content"], json!([]));
    assert_eq!(
        empty["usage"],
        json!({"input_tokens": 0, "output_tokens": 0})
    );
    assert!(empty["id"].as_str().unwrap().starts_with("msg_"));
}

#[test]
fn error_bodies() {
    assert_eq!(
        error_body(401, "bad key"),
        json!({"type": "error", "error": {"type": "authentication_error", "message": "bad key"}})
    );
    let kind = |s| {
        error_body(s, "m")["error"]["type"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(kind(400), "invalid_request_error");
    assert_eq!(kind(403), "permission_error");
    assert_eq!(kind(404), "not_found_error");
    assert_eq!(kind(413), "request_too_large");
    assert_eq!(kind(429), "rate_limit_error");
    assert_eq!(kind(503), "overloaded_error");
    assert_eq!(kind(529), "overloaded_error");
    assert_eq!(kind(500), "api_error");
    assert_eq!(kind(502), "api_error");
}

#[test]
fn stream_text_event_by_event() {
    let mut t = StreamTranslator::new("claude-x");
    let a = t.push(&gemini(json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}],
        "usageMetadata": {"promptTokenCount": 20}
    })));
    let b = t.push(&gemini(
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}]}}]}),
    ));
    let c = t.push(&gemini(json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 2, "totalTokenCount": 22}
    })));
    let end = t.finish();

    let a = events(&a);
    assert_eq!(a.len(), 3);
    assert_eq!(a[0].0, "message_start");
    let msg = &a[0].1["message"];
    assert!(msg["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        msg,
        &json!({"id": msg["id"], "type": "message", "role": "assistant", "model": "claude-x", "content": [],
                "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 20, "output_tokens": 0}})
    );
    assert_eq!(
        a[1].1,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    assert_eq!(
        a[2].1,
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}})
    );
    assert_eq!(
        events(&b),
        vec![(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}})
        )]
    );
    assert!(c.is_empty());
    let end = events(&end);
    assert_eq!(
        end,
        vec![
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0})
            ),
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                                      "usage": {"input_tokens": 20, "output_tokens": 2}})
            ),
            ("message_stop", json!({"type": "message_stop"})),
        ]
    );
    assert!(t.finish().is_empty());
    assert!(t
        .push(&gemini(
            json!({"candidates": [{"content": {"parts": [{"text": "late"}]}}]})
        ))
        .is_empty());
}

#[test]
fn stream_thinking_then_tool_calls() {
    let mut t = StreamTranslator::new("m");
    let a = t.push(&gemini(
        json!({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "Need weather.", "thought": true}
        ]}}]}),
    ));
    let b = t.push(&gemini(
        json!({"candidates": [{"content": {"role": "model", "parts": [
        {"text": "On it."}
    ], }}]}),
    ));
    let c = t.push(&gemini(json!({"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "SIG"},
        {"functionCall": {"id": "fc2", "name": "get_time", "args": {"tz": "CET"}}}
    ]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 9, "thoughtsTokenCount": 4, "totalTokenCount": 43}
    })));
    let end = t.finish();

    assert_eq!(
        names(&a),
        [
            "message_start",
            "content_block_start",
            "content_block_delta"
        ]
    );
    let a = events(&a);
    assert_eq!(
        a[1].1["content_block"],
        json!({"type": "thinking", "thinking": ""})
    );
    assert_eq!(
        a[2].1,
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Need weather."}})
    );

    let b = events(&b);
    assert_eq!(
        b,
        vec![
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0})
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}})
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "On it."}})
            ),
        ]
    );

    let c = events(&c);
    assert_eq!(c.len(), 7);
    assert_eq!(c[0].1, json!({"type": "content_block_stop", "index": 1}));
    assert_eq!(c[1].0, "content_block_start");
    assert_eq!(c[1].1["index"], 2);
    let block = &c[1].1["content_block"];
    assert_eq!(block["type"], "tool_use");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({}));
    assert_eq!(
        c[2].1,
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"city\":\"Paris\"}"}})
    );
    assert_eq!(c[3].1, json!({"type": "content_block_stop", "index": 2}));
    assert_eq!(
        c[4].1,
        json!({"type": "content_block_start", "index": 3,
               "content_block": {"type": "tool_use", "id": "fc2", "name": "get_time", "input": {}}})
    );
    assert_eq!(c[5].1["delta"]["partial_json"], "{\"tz\":\"CET\"}");
    assert_eq!(c[6].1, json!({"type": "content_block_stop", "index": 3}));

    let end = events(&end);
    assert_eq!(names(&t.finish()), Vec::<&str>::new());
    assert_eq!(end.len(), 2, "no open block left to close");
    assert_eq!(end[0].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        end[0].1["usage"],
        json!({"input_tokens": 30, "output_tokens": 13})
    );
    assert_eq!(end[1].0, "message_stop");
}

#[test]
fn stream_signature_goes_to_open_thinking_block() {
    let mut t = StreamTranslator::new("m");
    t.push(&gemini(
        json!({"candidates": [{"content": {"parts": [{"text": "hmm", "thought": true}]}}]}),
    ));
    let b = events(
        &t.push(&gemini(json!({"candidates": [{"content": {"parts": [
            {"functionCall": {"id": "c1", "name": "f", "args": {}}, "thoughtSignature": "SIG"}
        ]}}]}))),
    );
    assert_eq!(
        b[0].1,
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "grantpool:SIG"}})
    );
    assert_eq!(b[1].1, json!({"type": "content_block_stop", "index": 0}));
    assert_eq!(b[2].1["content_block"]["type"], "tool_use");
    assert_eq!(b[2].1["index"], 1);
    // A signature on a thought part itself is sent right away, once.
    let mut t = StreamTranslator::new("m");
    let a = events(
        &t.push(&gemini(json!({"candidates": [{"content": {"parts": [
            {"text": "x", "thought": true, "thoughtSignature": "S0"},
            {"text": "answer", "thoughtSignature": "S1"}
        ]}}]}))),
    );
    let sigs: Vec<_> = a
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "signature_delta")
        .collect();
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].1["delta"]["signature"], "grantpool:S0");
    // Thoughts after a signed block go to a new thinking block.
    let mut t = StreamTranslator::new("m");
    let a = events(
        &t.push(&gemini(json!({"candidates": [{"content": {"parts": [
            {"text": "one", "thought": true, "thoughtSignature": "S0"},
            {"text": "two", "thought": true}
        ]}}]}))),
    );
    let kinds: Vec<_> = a
        .iter()
        .map(|(n, d)| format!("{n}:{}", d["index"]))
        .collect();
    assert_eq!(
        kinds,
        [
            "message_start:null",
            "content_block_start:0",
            "content_block_delta:0",
            "content_block_delta:0",
            "content_block_stop:0",
            "content_block_start:1",
            "content_block_delta:1"
        ]
    );
}

#[test]
fn stream_error_mid_stream() {
    let mut t = StreamTranslator::new("m");
    let a = t.push(&gemini(
        json!({"candidates": [{"content": {"parts": [{"text": "partial"}]}}]}),
    ));
    assert_eq!(
        names(&a),
        [
            "message_start",
            "content_block_start",
            "content_block_delta"
        ]
    );
    let err = t.error("upstream connection reset");
    assert_eq!(
        events(&err),
        vec![(
            "error",
            json!({"type": "error", "error": {"type": "api_error", "message": "upstream connection reset"}})
        )]
    );
    assert_eq!(
        &err[0].to_bytes()[..],
        b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"upstream connection reset\"}}\n\n"
    );
    assert!(t.finish().is_empty());
    assert!(t.error("again").is_empty());
}

#[test]
fn stream_empty_upstream_still_closes() {
    let mut t = StreamTranslator::new("m");
    assert_eq!(
        names(&t.finish()),
        ["message_start", "message_delta", "message_stop"]
    );
    let mut t = StreamTranslator::new("m");
    assert!(!t.saw_finish());
    let a = t.push(&gemini(json!({"candidates": [{"content": {"parts": [{"text": "cut"}]}, "finishReason": "MAX_TOKENS"}]})));
    assert!(t.saw_finish());
    assert_eq!(a.len(), 3);
    let end = events(&t.finish());
    assert_eq!(end[0].0, "content_block_stop");
    assert_eq!(end[1].1["delta"]["stop_reason"], "max_tokens");
}

#[test]
fn the_conversation_of_claude_codes_user_id() {
    let hint = |user_id: Value| {
        parse(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "metadata": {"user_id": user_id}})).session_hint
    };
    // Claude Code 2.1.x: a JSON string; only its session is kept.
    let json_form = r#"{"device_id":"170ceb","account_uuid":"acc-1","session_id":"b36d550a-2a63-4960-adb2-4dfde5704da1"}"#;
    assert_eq!(hint(json!(json_form)).as_deref(), Some("b36d550a-2a63-4960-adb2-4dfde5704da1"));
    // Older Claude Code: `user_<hash>_account_<uuid>_session_<uuid>`.
    let old_form = "user_9f2c_account_0d5e8c1a-1111-4000-8000-000000000001_session_7e1d2c3b-0000-4000-8000-00000000000a";
    assert_eq!(hint(json!(old_form)).as_deref(), Some("7e1d2c3b-0000-4000-8000-00000000000a"));
    assert_eq!(hint(json!("user_9f2c_account__session_s-2")).as_deref(), Some("s-2"));
    // Any other user id is the client's own, kept whole.
    assert_eq!(hint(json!("tenant-7")).as_deref(), Some("tenant-7"));
    assert_eq!(hint(json!(r#"{"device_id":"d"}"#)).as_deref(), Some(r#"{"device_id":"d"}"#));
    assert_eq!(hint(json!("")), None);
}

/// A grounded Gemini answer as Google sends it (the text in two
/// pieces for the stream; the metadata with the last).
fn grounded_chunks() -> Vec<GenerateContentResponse> {
    vec![
        gemini(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Bern is the capital. "}]}}]})),
        gemini(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "It has 140k people."}]},
            "finishReason": "STOP",
            "groundingMetadata": {
                "webSearchQueries": ["capital of switzerland", "bern population"],
                "searchEntryPoint": {"renderedContent": "<div></div>"},
                "groundingChunks": [
                    {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AAA", "title": "example.org"}},
                    {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/BBB", "title": "docs.example.org"}}
                ],
                "groundingSupports": [
                    {"segment": {"endIndex": 20, "text": "Bern is the capital."}, "groundingChunkIndices": [0]},
                    {"segment": {"startIndex": 21, "endIndex": 40, "text": "It has 140k people."}, "groundingChunkIndices": [1, 0]}
                ]
            }}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 9}})),
    ]
}

#[test]
fn web_search_only_answers_with_search_blocks() {
    let (req, dropped) = parse_request_with_search(
        json!({"model": "m", "messages": [{"role": "user", "content": "Perform a web search for the query: capital"}],
               "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 8}]})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert!(!dropped);
    assert!(super::super::search::uses_google_search(&req.gemini));
    let (_, dropped) = parse_request_with_search(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
               "tools": [{"type": "web_search_20250305", "name": "web_search"},
                         {"name": "now", "input_schema": {"type": "object"}}]})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert!(dropped, "the search tool is left out next to functions, and said so");

    // Whole: the stream's two chunks as one answer.
    let mut whole = grounded_chunks().pop().unwrap();
    whole.candidates[0].content.as_mut().unwrap().parts.insert(0, Part::text("Bern is the capital. "));
    let out = serde_json::to_value(response_with_search(&whole, "claude-x", true)).unwrap();
    let c = out["content"].as_array().unwrap();
    assert_eq!(c[0]["type"], "server_tool_use");
    let id = c[0]["id"].as_str().unwrap();
    assert!(id.starts_with("srvtoolu_"));
    assert_eq!((&c[0]["name"], &c[0]["input"]), (&json!("web_search"), &json!({"query": "capital of switzerland"})));
    assert_eq!(c[1]["type"], "web_search_tool_result");
    assert_eq!(c[1]["tool_use_id"], id);
    let results = c[1]["content"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["type"], "web_search_result");
    assert_eq!(results[0]["url"], "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AAA");
    assert_eq!(results[1]["title"], "docs.example.org");
    assert!(results[0]["encrypted_content"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(results[0]["page_age"], Value::Null);
    // The text cut at the cited spans.
    let texts: Vec<&str> = c[2..].iter().map(|b| b["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["Bern is the capital.", " ", "It has 140k people."]);
    assert_eq!(c[2]["citations"][0]["type"], "web_search_result_location");
    assert_eq!(c[2]["citations"][0]["title"], "example.org");
    assert_eq!(c[2]["citations"][0]["cited_text"], "Bern is the capital.");
    assert!(c[3].get("citations").is_none());
    assert_eq!(c[4]["citations"].as_array().unwrap().len(), 2);
    assert_eq!(out["usage"]["server_tool_use"], json!({"web_search_requests": 2}));
    assert_eq!(out["stop_reason"], "end_turn");

    // Without the search flag, or without grounding: plain text as before.
    let plain = serde_json::to_value(response_from_gemini(&whole, "m")).unwrap();
    assert_eq!(plain["content"].as_array().unwrap().len(), 1);
    assert!(plain["usage"].get("server_tool_use").is_none());
    let ungrounded = gemini(json!({"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]}));
    let out = serde_json::to_value(response_with_search(&ungrounded, "m", true)).unwrap();
    assert_eq!(out["content"], json!([{"type": "text", "text": "hi"}]));
}

#[test]
fn web_search_stream_event_order() {
    let mut t = StreamTranslator::with_search("claude-x", true);
    let mut evs = Vec::new();
    let chunks = grounded_chunks();
    let first = t.push(&chunks[0]);
    assert_eq!(names(&first), ["message_start"], "the text waits for the sources");
    evs.extend(first);
    evs.extend(t.push(&chunks[1]));
    evs.extend(t.finish());
    let evs = events(&evs);
    let shape: Vec<String> = evs
        .iter()
        .map(|(name, d)| {
            let kind = d["content_block"]["type"].as_str().or(d["delta"]["type"].as_str()).unwrap_or("");
            format!("{name}:{kind}")
        })
        .collect();
    assert_eq!(
        shape,
        [
            "message_start:",
            "content_block_start:server_tool_use",
            "content_block_delta:input_json_delta",
            "content_block_stop:",
            "content_block_start:web_search_tool_result",
            "content_block_stop:",
            "content_block_start:text",
            // The text held back goes in one delta.
            "content_block_delta:text_delta",
            "content_block_delta:citations_delta",
            "content_block_delta:citations_delta",
            "content_block_delta:citations_delta",
            "content_block_stop:",
            "message_delta:",
            "message_stop:",
        ]
    );
    let id = evs[1].1["content_block"]["id"].as_str().unwrap();
    assert!(id.starts_with("srvtoolu_"));
    assert_eq!(evs[1].1["content_block"]["input"], json!({}));
    let input: Value = serde_json::from_str(evs[2].1["delta"]["partial_json"].as_str().unwrap()).unwrap();
    assert_eq!(input, json!({"query": "capital of switzerland"}));
    assert_eq!(evs[4].1["content_block"]["tool_use_id"], id);
    assert_eq!(evs[4].1["content_block"]["content"][0]["title"], "example.org");
    assert_eq!((evs[4].1["index"].as_u64(), evs[6].1["index"].as_u64()), (Some(1), Some(2)));
    assert_eq!(evs[7].1["delta"]["text"], "Bern is the capital. It has 140k people.");
    let citation = &evs[8].1["delta"]["citation"];
    assert_eq!(citation["type"], "web_search_result_location");
    assert_eq!(citation["cited_text"], "Bern is the capital.");
    assert_eq!(evs[12].1["usage"]["server_tool_use"], json!({"web_search_requests": 2}));

    // A grounded stream without sources still ends with its text.
    let mut t = StreamTranslator::with_search("m", true);
    let mut evs = t.push(&gemini(json!({"candidates": [{"content": {"parts": [{"text": "no search"}]}, "finishReason": "STOP"}]})));
    evs.extend(t.finish());
    assert_eq!(
        names(&evs),
        ["message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    );
}
