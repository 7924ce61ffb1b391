use serde_json::{json, Value};

use super::super::gemini::GenerateContentResponse;
use super::super::shared::SKIP_THOUGHT_SIGNATURE;
use super::*;

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

fn data(e: &SseEvent) -> Value {
    assert_eq!(e.event, None);
    serde_json::from_str(&e.data).unwrap()
}

#[test]
fn system_and_multi_turn() {
    let req = parse(json!({
        "model": "gemini-2.5-pro",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}]}
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 100,
        "stop": "END",
        "user": "user-42",
        "stream": true
    }));
    assert_eq!(req.model, "gemini-2.5-pro");
    assert!(req.stream);
    assert_eq!(req.session_hint.as_deref(), Some("user-42"));
    assert_eq!(
        serde_json::to_value(&req.gemini).unwrap(),
        json!({
            "contents": [
                {"role": "user", "parts": [{"text": "Hi"}]},
                {"role": "model", "parts": [{"text": "Hello."}]},
                {"role": "user", "parts": [{"text": "Weather?"}]}
            ],
            "systemInstruction": {"parts": [{"text": "You are terse."}, {"text": "Answer in English."}]},
            "generationConfig": {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 100, "stopSequences": ["END"]}
        })
    );
}

#[test]
fn generation_params() {
    let req = parse(json!({
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 10,
        "max_completion_tokens": 20,
        "stop": ["a", "b"],
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "seed": 7,
        "n": 1,
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "strict": true,
            "schema": {"type": "object", "additionalProperties": false,
                       "properties": {"a": {"type": "string"}}, "required": ["a"]}}},
        "reasoning_effort": "low"
    }));
    assert!(!req.stream);
    assert_eq!(req.session_hint, None);
    assert_eq!(
        serde_json::to_value(req.gemini.generation_config.unwrap()).unwrap(),
        json!({
            "maxOutputTokens": 20,
            "stopSequences": ["a", "b"],
            "presencePenalty": 0.5,
            "frequencyPenalty": 0.25,
            "seed": 7,
            "responseMimeType": "application/json",
            "responseSchema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            "thinkingConfig": {"thinkingBudget": 1024}
        })
    );
    let plain = parse(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
    assert_eq!(plain.gemini.generation_config, None);
    assert_eq!(plain.gemini.system_instruction, None);
}

#[test]
fn images_and_audio() {
    let req = parse(json!({
        "model": "m",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}
        ]}]
    }));
    assert_eq!(
        serde_json::to_value(&req.gemini.contents).unwrap(),
        json!([{"role": "user", "parts": [
            {"text": "What is this?"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}
        ]}])
    );
}

#[test]
fn tool_round_trip() {
    let req = parse(json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "22C"}]},
            {"role": "user", "content": "Thanks"}
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Current weather",
            "parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}
        }}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}}
    }));
    let g = serde_json::to_value(&req.gemini).unwrap();
    assert_eq!(
        g["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
            {"role": "model", "parts": [
                {"thoughtSignature": SKIP_THOUGHT_SIGNATURE,
                 "functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"id": "call_2", "name": "get_weather", "args": {"city": "Rome"}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"id": "call_1", "name": "get_weather", "response": {"content": "18C sunny"}}},
                {"functionResponse": {"id": "call_2", "name": "get_weather", "response": {"content": "22C"}}},
                {"text": "Thanks"}
            ]}
        ])
    );
    // The client's schema goes as it came; the `parameters` form made of
    // it (for the backends that need it) is the cleaned one.
    let decl = &g["tools"][0]["functionDeclarations"][0];
    assert_eq!((decl["name"].as_str(), decl["description"].as_str()), (Some("get_weather"), Some("Current weather")));
    assert_eq!(decl["parametersJsonSchema"]["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(
        crate::translate::schema::to_parameters(decl["parametersJsonSchema"].clone()).unwrap(),
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    );
    assert_eq!(
        g["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
    );

    // The model's answer to that goes back as OpenAI tool calls.
    let resp = gemini(json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "abc"}
        ]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 10, "totalTokenCount": 60}
    }));
    let out = serde_json::to_value(response_from_gemini(&resp, "m")).unwrap();
    let choice = &out["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(
        call["function"],
        json!({"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"})
    );
}

#[test]
fn tool_choice_modes_and_legacy_functions() {
    let base = |choice: Value| {
        parse(json!({
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "functions": [{"name": "now", "parameters": {"type": "object", "properties": {}}}],
            "tool_choice": choice
        }))
        .gemini
    };
    let g = base(json!("required"));
    assert_eq!(
        serde_json::to_value(&g.tools).unwrap(),
        json!([{"functionDeclarations": [{"name": "now", "parametersJsonSchema": {"type": "object", "properties": {}}}]}])
    );
    assert_eq!(
        g.tool_config
            .unwrap()
            .function_calling_config
            .unwrap()
            .mode
            .as_deref(),
        Some("ANY")
    );
    let g = base(json!("none"));
    assert_eq!(
        g.tool_config
            .unwrap()
            .function_calling_config
            .unwrap()
            .mode
            .as_deref(),
        Some("NONE")
    );
    let g = base(json!("auto"));
    assert_eq!(
        g.tool_config
            .unwrap()
            .function_calling_config
            .unwrap()
            .mode
            .as_deref(),
        Some("AUTO")
    );
    // No tools: tool_choice has nothing to configure.
    let g = parse(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "auto"}),
    );
    assert_eq!(g.gemini.tool_config, None);
    assert!(parse_err(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "functions": [{"name": "f"}], "tool_choice": "sometimes"})
    )
    .contains("`tool_choice`"));
}

#[test]
fn legacy_function_role_and_tool_name_fallback() {
    let req = parse(json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "function_call": {"name": "f", "arguments": ""}},
            {"role": "function", "name": "f", "content": "done"},
            {"role": "tool", "tool_call_id": "unknown", "name": "g", "content": "ok"}
        ]
    }));
    let c = serde_json::to_value(&req.gemini.contents).unwrap();
    assert_eq!(
        c[1]["parts"][0]["functionCall"],
        json!({"name": "f", "args": {}})
    );
    assert_eq!(
        c[2]["parts"][0]["functionResponse"],
        json!({"name": "f", "response": {"content": "done"}})
    );
    assert_eq!(
        c[2]["parts"][1]["functionResponse"],
        json!({"id": "unknown", "name": "g", "response": {"content": "ok"}})
    );
}

#[test]
fn malformed_requests_name_the_field() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"messages": [{"role": "user", "content": "x"}]}), "`model` is required"),
        (json!({"model": "m"}), "`messages` is required"),
        (json!({"model": "m", "messages": []}), "`messages` must contain"),
        (json!({"model": "m", "messages": "hi"}), "`messages` is invalid: invalid type: string \"hi\", expected an array"),
        (json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}), "`messages[0].role` is invalid: unknown variant `robot`"),
        (json!({"model": "m", "messages": [{"content": "x"}]}), "`messages[0].role` is required"),
        (json!({"model": "m", "messages": [{"role": "user", "content": 5}]}), "`messages[0].content` is invalid: invalid type: integer `5`, expected a string or an array"),
        (json!({"model": "m", "messages": [{"role": "user", "content": ["hi"]}]}), "`messages[0].content[0]` must be an object"),
        (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]}), "`messages[0].content[0].text` is invalid: invalid type: integer `3`, expected a string"),
        (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]}]}), "`messages[0].content[0].image_url.url` must be a data: URL"),
        (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "video", "video": {}}]}]}), "`messages[0].content[0].type` `video` is not supported"),
        (json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "r"}]}), "`messages[1].tool_call_id` is required"),
        (json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "call_9", "content": "r"}]}), "`call_9` does not match"),
        (json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}), "`messages[0].tool_calls[0].function.arguments` is not valid JSON"),
        (json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": 1}}]}]}), "`messages[0].tool_calls[0].function.arguments` is invalid"),
        (json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}), "`temperature` is invalid: invalid type: string \"hot\", expected a number"),
        (json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"description": "no name"}}]}), "`tools[0].function.name` is required"),
        (json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": 1}}]}), "`tools[0].function.name` is invalid"),
        (json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search"}]}), "`tools[0].type` `web_search` is not supported"),
        (json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}), "`n` must be 1"),
        (json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}}), "`response_format`"),
        (json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "max"}), "`reasoning_effort` `max` is not one of"),
        (json!({"model": "m", "messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]}), "`messages[0].content[0]` must be a text part here"),
        (json!([1, 2]), "`(body)` must be a JSON object"),
    ];
    for (body, want) in cases {
        let got = parse_err(body.clone());
        assert!(got.contains(want), "body {body}\n got: {got}\nwant: {want}");
    }
    let e = parse_request(b"{\"model\": ").unwrap_err();
    assert!(matches!(e, TranslateError::InvalidJson(_)), "{e}");
    assert!(e.to_string().starts_with("request body is not valid JSON"));
    assert_eq!(e.status(), 400);
}

#[test]
fn response_text_reasoning_and_usage() {
    let resp = gemini(json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "Let me think.", "thought": true},
            {"text": "Hello, "},
            {"text": "world."}
        ]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 4, "thoughtsTokenCount": 6,
                          "cachedContentTokenCount": 2, "totalTokenCount": 22},
        "responseId": "r-1"
    }));
    let out = serde_json::to_value(response_from_gemini(&resp, "gpt-4o")).unwrap();
    assert!(out["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(
        out,
        json!({
            "id": "chatcmpl-r-1",
            "object": "chat.completion",
            "created": out["created"],
            "model": "gpt-4o",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Hello, world.", "reasoning_content": "Let me think."},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 12, "completion_tokens": 10, "total_tokens": 22,
                      "prompt_tokens_details": {"cached_tokens": 2},
                      "completion_tokens_details": {"reasoning_tokens": 6}}
        })
    );
}

#[test]
fn finish_reasons() {
    let finish = |v: Value| {
        let out = serde_json::to_value(response_from_gemini(&gemini(v), "m")).unwrap();
        out["choices"][0]["finish_reason"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let cand = |reason: &str| json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]});
    assert_eq!(finish(cand("STOP")), "stop");
    assert_eq!(finish(cand("MAX_TOKENS")), "length");
    assert_eq!(finish(cand("SAFETY")), "content_filter");
    assert_eq!(finish(cand("RECITATION")), "content_filter");
    assert_eq!(finish(cand("OTHER")), "stop");
    assert_eq!(
        finish(json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})),
        "content_filter"
    );
    let empty = serde_json::to_value(response_from_gemini(&gemini(json!({})), "m")).unwrap();
    assert_eq!(empty["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        empty["usage"],
        json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    );
}

#[test]
fn error_bodies() {
    assert_eq!(
        error_body(401, "bad key"),
        json!({"error": {"message": "bad key", "type": "authentication_error", "param": null, "code": "invalid_api_key"}})
    );
    assert_eq!(
        error_body(429, "slow down")["error"]["type"],
        "rate_limit_error"
    );
    assert_eq!(
        error_body(503, "no account")["error"]["code"],
        "service_unavailable"
    );
    assert_eq!(
        error_body(400, "x")["error"]["type"],
        "invalid_request_error"
    );
    assert_eq!(error_body(500, "x")["error"]["type"], "server_error");
}

#[test]
fn stream_text() {
    let mut t = StreamTranslator::new("gpt-4o");
    let a = t.push(&gemini(json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "hmm", "thought": true}, {"text": "Hel"}]}}],
        "usageMetadata": {"promptTokenCount": 5}
    })));
    let b = t.push(&gemini(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}, {"text": "!"}]}}]})));
    let empty = t.push(&gemini(
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}}]}),
    ));
    let c = t.push(&gemini(json!({
        "candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "MAX_TOKENS"}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8}
    })));
    let end = t.finish();
    assert!(empty.is_empty() && c.is_empty());
    assert_eq!((a.len(), b.len(), end.len()), (1, 1, 2));

    let first = data(&a[0]);
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["model"], "gpt-4o");
    assert!(first["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(
        first["choices"],
        json!([{"index": 0, "delta": {"role": "assistant", "content": "Hel", "reasoning_content": "hmm"},
                "logprobs": null, "finish_reason": null}])
    );
    assert!(first.get("usage").is_none());
    let second = data(&b[0]);
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["choices"][0]["delta"], json!({"content": "lo!"}));
    let last = data(&end[0]);
    assert_eq!(last["choices"][0]["delta"], json!({}));
    assert_eq!(last["choices"][0]["finish_reason"], "length");
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8})
    );
    assert_eq!(end[1], SseEvent::data("[DONE]".into()));
    assert_eq!(&end[1].to_bytes()[..], b"data: [DONE]\n\n");
    assert!(t.finish().is_empty());
    assert!(t
        .push(&gemini(
            json!({"candidates": [{"content": {"parts": [{"text": "late"}]}}]})
        ))
        .is_empty());
}

#[test]
fn stream_tool_calls() {
    let mut t = StreamTranslator::new("m");
    let a = t.push(&gemini(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Checking."}]}}]})));
    let b = t.push(&gemini(json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "s"},
            {"functionCall": {"id": "fc-7", "name": "get_time", "args": {}}}
        ]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 7, "totalTokenCount": 16}
    })));
    let end = t.finish();
    assert_eq!(
        data(&a[0])["choices"][0]["delta"],
        json!({"role": "assistant", "content": "Checking."})
    );
    let calls = &data(&b[0])["choices"][0]["delta"]["tool_calls"];
    assert!(data(&b[0])["choices"][0]["delta"].get("role").is_none());
    assert_eq!(calls[0]["index"], 0);
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(
        calls[0]["function"],
        json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    assert_eq!(
        calls[1],
        json!({"index": 1, "id": "fc-7", "type": "function",
                                "function": {"name": "get_time", "arguments": "{}"}})
    );
    assert_eq!(data(&end[0])["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(data(&end[0])["usage"]["total_tokens"], 16);
}

#[test]
fn drawn_images_are_markdown_data_urls() {
    let g = gemini(json!({"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Here. "}, {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklG"}}]}, "finishReason": "STOP"}]}));
    let whole = response_from_gemini(&g, "gemini-3.1-flash-image");
    assert_eq!(whole.choices[0].message.content.as_deref(), Some("Here. ![image](data:image/png;base64,iVBOR)"));
    let mut t = StreamTranslator::new("m");
    let e = t.push(&g);
    assert_eq!(data(&e[0])["choices"][0]["delta"]["content"], "Here. ![image](data:image/png;base64,iVBOR)");
}

#[test]
fn stream_error_mid_stream() {
    let mut t = StreamTranslator::new("m");
    let a = t.push(&gemini(
        json!({"candidates": [{"content": {"parts": [{"text": "partial"}]}}]}),
    ));
    assert_eq!(a.len(), 1);
    let err = t.error("upstream connection reset");
    assert_eq!(err.len(), 2);
    assert_eq!(
        data(&err[0]),
        json!({"error": {"message": "upstream connection reset", "type": "upstream_error"}})
    );
    assert_eq!(err[1].data, "[DONE]");
    assert!(t.finish().is_empty(), "no second [DONE]");
    assert!(t.error("again").is_empty());
}

#[test]
fn stream_empty_upstream_still_closes() {
    let mut t = StreamTranslator::new("m");
    let end = t.finish();
    assert_eq!(end.len(), 2);
    let last = data(&end[0]);
    assert_eq!(last["choices"][0]["delta"], json!({"role": "assistant"}));
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    let mut t = StreamTranslator::new("m");
    assert!(!t.saw_finish());
    t.push(&gemini(
        json!({"promptFeedback": {"blockReason": "SAFETY"}}),
    ));
    assert!(t.saw_finish());
    assert_eq!(
        data(&t.finish()[0])["choices"][0]["finish_reason"],
        "content_filter"
    );
}

#[test]
fn conversation_ids_in_the_body() {
    let hint = |extra: Value| {
        let mut v = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        parse(v).session_hint
    };
    assert_eq!(hint(json!({"safety_identifier": "s-1"})).as_deref(), Some("s-1"));
    assert_eq!(hint(json!({"user": "u-1", "safety_identifier": "s-1"})).as_deref(), Some("u-1"));
    assert_eq!(hint(json!({"user": "u-1", "prompt_cache_key": "k-1"})).as_deref(), Some("k-1"));
    assert_eq!(hint(json!({"user": "", "safety_identifier": "s-2"})).as_deref(), Some("s-2"));
    assert_eq!(hint(json!({})), None);
}
