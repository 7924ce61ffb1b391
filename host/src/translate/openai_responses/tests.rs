use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use super::super::gemini::{GenerateContentResponse, Part};
use super::super::shared::SKIP_THOUGHT_SIGNATURE;
use super::signatures::unseal;
use super::tools::encode_name;
use super::*;

/// Codex CLI 0.171.0, model gpt-5.5, second request of a shell round
/// trip (captured; long texts cut, 4 of its 10 tools kept).
const CODEX_TURN2: &str = r##"{
 "model":"gpt-5.5",
 "stream":true,
 "input":[
  {"type":"message","id":"msg_0463f048-ccbb-5a98-b057-268b048b2c35","role":"developer","content":[{"type":"input_text","text":"You are Codex, a coding agent based on GPT-5. You and the us…"}]},
  {"type":"message","id":"msg_01a2331d-ab2a-7b03-a0a7-5b8c7158635d","role":"developer","content":[{"type":"input_text","text":"<skills_instructions>\n## Skills\nA skill is a set of local in…"},{"type":"input_text","text":"<permissions instructions>\nFilesystem sandboxing defines whi…"},{"type":"input_text","text":"<tools>\nDeferred tool namespaces:\n- multi_agent_v1: Tools fo…"}]},
  {"type":"message","id":"msg_01a2331d-ab2a-7b03-a0a7-5b97488a78b9","role":"user","content":[{"type":"input_text","text":"<environment_context>\n  <cwd>/work/notes/clis/homes/codex-gp…"}]},
  {"type":"message","id":"msg_01a2331d-ab3a-7763-9593-b146bfc51470","role":"user","content":[{"type":"input_text","text":"TOOLTEST run the echo"}]},
  {"type":"function_call","status":"completed","id":"fc_f2558127a11a4ef3","name":"exec_command","arguments":"{\"cmd\": \"echo MAGIC-4242\"}","call_id":"call_cd762e3c36f34216"},
  {"type":"function_call_output","id":"fco_01a2331d-abe2-7bf0-b09c-7e189a2b114b","call_id":"call_cd762e3c36f34216","output":"Chunk ID: cbd11f\nWall time: 0.0000 seconds\nProcess exited with code 0\nOriginal token count: 3\nOutput:\nMAGIC-4242\n"}
 ],
 "tools":[
  {"type":"function","name":"exec_command","description":"Runs a command in a PTY, returning output or a session ID for ongoing interaction.","strict":false,"parameters":{"type":"object","properties":{"cmd":{"type":"string","description":"Shell command to execute."},"justification":{"type":"string","description":"User-facing approval question for `require_escalated`; omit otherwise."},"login":{"type":"boolean","description":"Request login-shell startup. Omit to inherit."},"max_output_tokens":{"type":"number","description":"Output token budget. Defaults to 10000 tokens; larger requests may be capped by policy."},"prefix_rule":{"type":"array","description":"Reusable approval prefix for `cmd`, only with `sandbox_permissions: \"require_escalated\"`; for example [\"git\", \"pull\"].","items":{"type":"string"}},"sandbox_permissions":{"type":"string","description":"Per-command sandbox override. Defaults to `use_default`; use `require_escalated` for unsandboxed execution.","enum":["use_default","require_escalated"]},"shell":{"type":"string","description":"Shell binary to launch. Defaults to the user's default shell."},"tty":{"type":"boolean","description":"True allocates a PTY for the command; false or omitted uses plain pipes."},"workdir":{"type":"string","description":"Working directory for the command. Defaults to the turn cwd."},"yield_time_ms":{"type":"number","description":"Wait before yielding output. Defaults to 10000 ms; effective range is 250-30000 ms."}},"required":["cmd"],"additionalProperties":false}},
  {"type":"custom","name":"apply_patch","description":"The `apply_patch` tool can be used to edit files. This is a FREEFORM tool, so do not wrap the patch in JSON.","format":{"type":"grammar","syntax":"lark","definition":"start: begin_patch hunk+ end_patch\nbegin_patch: \"*** Begin Patch\" LF\nend_patch: \"*** End Patch\" LF?\n\nhunk: add_hunk | delete_hunk | update_hunk\nadd_hunk: \"*** Add File: \" filename LF add_line+\ndelete_hunk: \"*** Delete File: \" filename LF\nupdate_hunk: \"*** Update File: \" filename LF change_move? change?\n\nfilename: /(.+)/\nadd_line: \"+\" /(.*)/ LF -> line\n\nchange_move: \"*** Move to: \" filename LF\nchange: (change_context | change_line)+ eof_line?\nchange_context: (\"@@\" | \"@@ \" /(.+)/) LF\nchange_line: (\"+\" | \"-\" | \" \") /(.*)/ LF\neof_line: \"*** End of File\" LF\n\n%import common.LF\n"}},
  {"type":"function","name":"view_image","description":"View a local image file from the filesystem when visual inspection is needed. Use this for images already available on disk.","strict":false,"parameters":{"type":"object","properties":{"path":{"type":"string","description":"Local filesystem path to an image file."}},"required":["path"],"additionalProperties":false}},
  {"type":"function","name":"get_goal","description":"Get the current goal for this thread, including status, budgets, token and elapsed-time usage, and remaining token budget.","strict":false,"parameters":{"type":"object","properties":{},"required":[],"additionalProperties":false}},
  {"type":"tool_search","execution":"client","description":"# Tool discovery\n\nSearches over deferred tool metadata with ","parameters":{"type":"object","properties":{"limit":{"type":"number","description":"Maximum number of tools to return. Defaults to 8."},"query":{"type":"string","description":"Search query for deferred tools."}},"required":["query"],"additionalProperties":false}},
  {"type":"web_search","external_web_access":true,"search_content_types":["text","image"]}
 ],
 "tool_choice":"auto",
 "parallel_tool_calls":true,
 "reasoning":{"effort":"medium"},
 "store":false,
 "include":["reasoning.encrypted_content"],
 "prompt_cache_key":"01a2331d-aad0-70b0-ba58-a44efbdab9bf",
 "text":{"verbosity":"low"},
 "client_metadata":{"turn_id":"01a2331d-aaec-76b0-b50f-196dd7db1a62","session_id":"01a2331d-aad0-70b0-ba58-a44efbdab9bf","root_turn_id":"01a2331d-aaec-76b0-b50f-196dd7db1a62","thread_id":"01a2331d-aad0-70b0-ba58-a44efbdab9bf","x-codex-installation-id":"a63a1d5e-c808-44eb-8903-d8267ef8d2a8","x-codex-window-id":"01a2331d-aad0-70b0-ba58-a44efbdab9bf:0","x-codex-turn-metadata":"{\"installation_id\":\"a63a1d5e-c808-44eb-8"}
}"##;

/// Codex CLI 0.171.0 with a model it has no metadata for (what it sends
/// for a Gemini model name): a namespace tool and `reasoning.summary`
/// (captured; long texts cut, 2 of the namespace's 5 tools kept).
const CODEX_FALLBACK_TURN1: &str = r##"{
 "model":"gpt-5.1-codex",
 "stream":true,
 "input":[
  {"type":"message","id":"msg_13bdf2b3-bd80-5cc6-9e69-59f0fe3dfec8","role":"developer","content":[{"type":"input_text","text":"You are a coding agent running in the Codex CLI, a terminal-…"}]},
  {"type":"message","id":"msg_01a2331b-5a47-7802-9eb9-baffaaec6421","role":"developer","content":[{"type":"input_text","text":"<skills_instructions>\n## Skills\nA skill is a set of local in…"},{"type":"input_text","text":"<permissions instructions>\nFilesystem sandboxing defines whi…"}]},
  {"type":"message","id":"msg_01a2331b-5a47-7802-9eb9-bb0e4e062b80","role":"user","content":[{"type":"input_text","text":"<environment_context>\n  <cwd>/work/notes/clis/homes/codex-to…"}]},
  {"type":"message","id":"msg_01a2331b-5a50-78b0-9c5b-6b37c48117e0","role":"user","content":[{"type":"input_text","text":"TOOLTEST run the echo"}]}
 ],
 "tools":[
  {"type":"function","name":"exec_command","description":"Runs a command in a PTY, returning output or a session ID for ongoing interaction.","strict":false,"parameters":{"type":"object","properties":{"cmd":{"type":"string","description":"Shell command to execute."},"justification":{"type":"string","description":"User-facing approval question for `require_escalated`; omit otherwise."},"login":{"type":"boolean","description":"Request login-shell startup. Omit to inherit."},"max_output_tokens":{"type":"number","description":"Output token budget. Defaults to 10000 tokens; larger requests may be capped by policy."},"prefix_rule":{"type":"array","description":"Reusable approval prefix for `cmd`, only with `sandbox_permissions: \"require_escalated\"`; for example [\"git\", \"pull\"].","items":{"type":"string"}},"sandbox_permissions":{"type":"string","description":"Per-command sandbox override. Defaults to `use_default`; use `require_escalated` for unsandboxed execution.","enum":["use_default","require_escalated"]},"shell":{"type":"string","description":"Shell binary to launch. Defaults to the user's default shell."},"tty":{"type":"boolean","description":"True allocates a PTY for the command; false or omitted uses plain pipes."},"workdir":{"type":"string","description":"Working directory for the command. Defaults to the turn cwd."},"yield_time_ms":{"type":"number","description":"Wait before yielding output. Defaults to 10000 ms; effective range is 250-30000 ms."}},"required":["cmd"],"additionalProperties":false}},
  {"type":"function","name":"view_image","description":"View a local image file from the filesystem when visual inspection is needed. Use this for images already available on disk.","strict":false,"parameters":{"type":"object","properties":{"path":{"type":"string","description":"Local filesystem path to an image file."}},"required":["path"],"additionalProperties":false}},
  {"type":"namespace","name":"multi_agent_v1","description":"Tools for spawning and managing sub-agents.","tools":[{"type":"function","name":"close_agent","description":"Close an agent and any open descendants when they are no longer needed, and return the target agent's previous status before shutdown was requested. Completed agents remain open and count toward the concurrency limit until closed. Don't keep agents open for too long if they are not needed anymore.","strict":false,"parameters":{"type":"object","properties":{"target":{"type":"string","description":"Agent id to close (from spawn_agent)."}},"required":["target"],"additionalProperties":false}},{"type":"function","name":"resume_agent","description":"Resume a previously closed agent by id so it can receive send_input and wait_agent calls.","strict":false,"parameters":{"type":"object","properties":{"id":{"type":"string","description":"Agent id to resume."}},"required":["id"],"additionalProperties":false}}]},
  {"type":"function","name":"get_goal","description":"Get the current goal for this thread, including status, budgets, token and elapsed-time usage, and remaining token budget.","strict":false,"parameters":{"type":"object","properties":{},"required":[],"additionalProperties":false}},
  {"type":"web_search","external_web_access":true}
 ],
 "tool_choice":"auto",
 "parallel_tool_calls":true,
 "reasoning":{"summary":"auto"},
 "store":false,
 "include":["reasoning.encrypted_content"],
 "prompt_cache_key":"01a2331b-59e9-7603-a14b-bb4c2d3ba938",
 "client_metadata":{"turn_id":"01a2331b-5a04-7060-8516-c40abd4cf223","root_turn_id":"01a2331b-5a04-7060-8516-c40abd4cf223","x-codex-installation-id":"d8fd3619-066f-4380-95f5-5e08c19fd950","session_id":"01a2331b-59e9-7603-a14b-bb4c2d3ba938","x-codex-turn-metadata":"{\"installation_id\":\"d8fd3619-066f-4380-9","thread_id":"01a2331b-59e9-7603-a14b-bb4c2d3ba938","x-codex-window-id":"01a2331b-59e9-7603-a14b-bb4c2d3ba938:0"}
}"##;

fn parse(v: Value) -> ClientRequest {
    parse_request(v.to_string().as_bytes()).unwrap()
}

fn parse_err(v: Value) -> String {
    parse_request(v.to_string().as_bytes()).unwrap_err().to_string()
}

fn gemini(v: Value) -> GenerateContentResponse {
    serde_json::from_value(v).unwrap()
}

fn contents(req: &ClientRequest) -> Value {
    serde_json::to_value(&req.gemini.contents).unwrap()
}

fn decls(req: &ClientRequest) -> Vec<Value> {
    serde_json::to_value(&req.gemini.tools[0].function_declarations).unwrap().as_array().unwrap().clone()
}

fn mode(req: &ClientRequest) -> Value {
    serde_json::to_value(&req.gemini.tool_config).unwrap()["functionCallingConfig"].clone()
}

/// Every event as (name, data), checking the frame: named, `type` equal
/// to the name, `sequence_number` counting from `first`.
fn events(evs: &[SseEvent], first: u64) -> Vec<(&'static str, Value)> {
    evs.iter()
        .enumerate()
        .map(|(i, e)| {
            let name = e.event.expect("every event is named");
            let data: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(data["type"], name);
            assert_eq!(data["sequence_number"], first + i as u64, "{name}");
            (name, data)
        })
        .collect()
}

fn names(evs: &[(&'static str, Value)]) -> Vec<&'static str> {
    evs.iter().map(|(n, _)| *n).collect()
}

/// A whole answer's output items, as a client sends them back.
fn output(v: &Value) -> Vec<Value> {
    v["output"].as_array().unwrap().clone()
}

#[test]
fn codex_shell_round_trip_request() {
    let (req, tools) = parse_request_with_tools(CODEX_TURN2.as_bytes()).unwrap();
    assert_eq!(req.model, "gpt-5.5");
    assert!(req.stream);
    assert_eq!(req.session_hint.as_deref(), Some("01a2331d-aad0-70b0-ba58-a44efbdab9bf"));
    // The developer messages (no `instructions`) are the system prompt.
    let system = &req.gemini.system_instruction.as_ref().unwrap().parts;
    assert_eq!(system.len(), 4);
    assert!(system[0].text.as_deref().unwrap().starts_with("You are Codex"));
    let c = contents(&req);
    assert_eq!(c.as_array().unwrap().len(), 3);
    assert_eq!(c[0]["role"], "user");
    assert_eq!(c[0]["parts"].as_array().unwrap().len(), 2);
    assert_eq!(c[0]["parts"][1]["text"], "TOOLTEST run the echo");
    // The call came from OpenAI's API here: no signature of ours to give back.
    assert_eq!(
        c[1],
        json!({"role": "model", "parts": [{"thoughtSignature": SKIP_THOUGHT_SIGNATURE,
            "functionCall": {"id": "call_cd762e3c36f34216", "name": "exec_command", "args": {"cmd": "echo MAGIC-4242"}}}]})
    );
    assert_eq!(c[2]["role"], "user");
    let fr = &c[2]["parts"][0]["functionResponse"];
    assert_eq!((&fr["id"], &fr["name"]), (&json!("call_cd762e3c36f34216"), &json!("exec_command")));
    assert!(fr["response"]["content"].as_str().unwrap().ends_with("Output:\nMAGIC-4242\n"));

    let d = decls(&req);
    let names: Vec<&str> = d.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["exec_command", "apply_patch", "view_image", "get_goal"]);
    // Schemas go as the client wrote them (the upstream profile makes
    // Gemini's `parameters` of them where needed).
    let ours: Value = serde_json::from_str(CODEX_TURN2).unwrap();
    assert_eq!(d[0]["parametersJsonSchema"], ours["tools"][0]["parameters"]);
    // The free-form apply_patch: one string, its grammar in the description.
    assert_eq!(
        d[1]["parametersJsonSchema"],
        json!({"type": "object", "properties": {"input": {"type": "string", "description": "The tool's free-form input."}},
               "required": ["input"]})
    );
    let about = d[1]["description"].as_str().unwrap();
    assert!(about.starts_with("The `apply_patch` tool can be used to edit files."), "{about}");
    assert!(about.contains("lark grammar:\nstart: begin_patch hunk+ end_patch"), "{about}");
    assert_eq!(d[3]["parametersJsonSchema"]["properties"], json!({}), "get_goal takes nothing");
    assert_eq!(tools.dropped(), ["tool_search"]);
    assert!(tools.search_dropped());
    assert_eq!(dropped_tools(CODEX_TURN2.as_bytes()), ["tool_search"]);
    assert_eq!(mode(&req), json!({"mode": "AUTO"}));
    assert_eq!(
        serde_json::to_value(&req.gemini.generation_config).unwrap(),
        json!({"thinkingConfig": {"thinkingBudget": 8192}})
    );
}

#[test]
fn codex_namespaced_tools_round_trip() {
    let (req, tools) = parse_request_with_tools(CODEX_FALLBACK_TURN1.as_bytes()).unwrap();
    let d = decls(&req);
    let names: Vec<&str> = d.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["exec_command", "view_image", "multi_agent_v1__close_agent", "multi_agent_v1__resume_agent", "get_goal"]
    );
    assert!(d[2]["description"]
        .as_str()
        .unwrap()
        .ends_with("(From the `multi_agent_v1` tools: Tools for spawning and managing sub-agents.)"));
    assert!(tools.dropped().is_empty() && tools.search_dropped());
    // `reasoning: {"summary": "auto"}`: thought summaries on.
    assert_eq!(
        serde_json::to_value(&req.gemini.generation_config).unwrap(),
        json!({"thinkingConfig": {"includeThoughts": true}})
    );

    let resp = gemini(json!({"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "multi_agent_v1__close_agent", "args": {"target": "a1"}}, "thoughtSignature": "SIG"}
    ]}, "finishReason": "STOP"}]}));
    let out = response_with_tools(&resp, "gpt-5.1-codex", &tools);
    let call = &out["output"][1];
    assert_eq!(
        (&call["type"], &call["name"], &call["namespace"]),
        (&json!("function_call"), &json!("close_agent"), &json!("multi_agent_v1"))
    );
    // Without the map the name is Gemini's.
    let plain = response_from_gemini(&resp, "m");
    assert_eq!(plain["output"][1]["name"], "multi_agent_v1__close_agent");
    assert!(plain["output"][1].get("namespace").is_none());

    // Codex sends the call back with its namespace.
    let mut body: Value = serde_json::from_str(CODEX_FALLBACK_TURN1).unwrap();
    let input = body["input"].as_array_mut().unwrap();
    input.extend(output(&out));
    input.push(json!({"type": "function_call_output", "call_id": call["call_id"], "output": "closed"}));
    let (req, _) = parse_request_with_tools(body.to_string().as_bytes()).unwrap();
    let c = contents(&req);
    let n = c.as_array().unwrap().len();
    assert_eq!(c[n - 2]["parts"][0]["functionCall"]["name"], "multi_agent_v1__close_agent");
    assert_eq!(c[n - 2]["parts"][0]["thoughtSignature"], "SIG");
    assert_eq!(c[n - 1]["parts"][0]["functionResponse"]["name"], "multi_agent_v1__close_agent");
}

#[test]
fn codex_custom_tool_round_trip() {
    let (_, tools) = parse_request_with_tools(CODEX_TURN2.as_bytes()).unwrap();
    let patch = "*** Begin Patch\n*** Add File: hello.txt\n+MAGIC-4242\n*** End Patch\n";
    let resp = gemini(json!({"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "apply_patch", "args": {"input": patch}}}
    ]}, "finishReason": "STOP"}]}));
    let out = response_with_tools(&resp, "gpt-5.5", &tools);
    let item = &out["output"][0];
    assert_eq!(item["type"], "custom_tool_call");
    assert!(item["id"].as_str().unwrap().starts_with("ctc_"));
    assert!(item["call_id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(
        (&item["name"], &item["input"], &item["status"]),
        (&json!("apply_patch"), &json!(patch), &json!("completed"))
    );

    let mut t = StreamTranslator::with_tools("gpt-5.5", tools.clone());
    let mut evs = t.push(&resp);
    evs.extend(t.finish());
    let evs = events(&evs, 0);
    assert_eq!(
        names(&evs)[2..],
        [
            "response.output_item.added",
            "response.custom_tool_call_input.delta",
            "response.custom_tool_call_input.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(evs[3].1["delta"], patch);
    assert_eq!(evs[5].1["item"]["input"], patch);

    // Codex's next request, as captured: the call and its output.
    let mut body: Value = serde_json::from_str(CODEX_TURN2).unwrap();
    let input = body["input"].as_array_mut().unwrap();
    input.truncate(4);
    input.push(json!({"type": "custom_tool_call", "id": "ctc_6fbf29e6893b459c", "status": "completed",
        "call_id": "call_407bfe19db654c73", "name": "apply_patch", "input": patch}));
    input.push(json!({"type": "custom_tool_call_output", "id": "ctco_01a23328-4f56-75d2-855d-edc337fe4cd3",
        "call_id": "call_407bfe19db654c73", "output": "Exit code: 0\nWall time: 0 seconds\nOutput:\nSuccess."}));
    let c = contents(&parse_request(body.to_string().as_bytes()).unwrap());
    assert_eq!(
        c[1]["parts"][0],
        json!({"thoughtSignature": SKIP_THOUGHT_SIGNATURE,
               "functionCall": {"id": "call_407bfe19db654c73", "name": "apply_patch", "args": {"input": patch}}})
    );
    assert_eq!(c[2]["parts"][0]["functionResponse"]["name"], "apply_patch");
}

#[test]
fn foreign_reasoning_items_are_ignored() {
    // As Codex echoes an OpenAI reasoning item (captured shape).
    let req = parse(json!({"model": "m", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "TOOLTEST run the echo"}]},
        {"type": "reasoning", "id": "rs_4a7f683222e0485a", "summary": [{"type": "summary_text", "text": "**Thinking** about it"}],
         "content": null, "encrypted_content": "gAAAAAZZZZZZZZZZ"},
        {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "grantpool:call:!!:S"},
        {"type": "reasoning", "id": "rs_3", "summary": [], "encrypted_content": "grantpool:tool:Y2FsbF8x:S"},
        {"type": "function_call", "status": "completed", "id": "fc_f06c366f66904659", "name": "exec_command",
         "arguments": "{\"cmd\": \"echo MAGIC-4242\"}", "call_id": "call_1"},
        {"type": "function_call_output", "id": "fco_1", "call_id": "call_1", "output": "MAGIC-4242"}
    ]}));
    let c = contents(&req);
    assert_eq!(c.as_array().unwrap().len(), 3);
    assert_eq!(c[1]["parts"].as_array().unwrap().len(), 1, "summaries are not replayed");
    assert_eq!(c[1]["parts"][0]["thoughtSignature"], SKIP_THOUGHT_SIGNATURE);
}

#[test]
fn signatures_come_back_on_their_parts() {
    let resp = gemini(json!({"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Need the weather.", "thought": true},
        {"text": "Rome first.", "thought": true},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}, "thoughtSignature": "SIG1"},
        {"functionCall": {"id": "fc-2", "name": "get_weather", "args": {"city": "Oslo"}}}
    ]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 8, "thoughtsTokenCount": 5, "totalTokenCount": 33}}));
    let out = response_from_gemini(&resp, "m");
    let items = output(&out);
    let kinds: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["reasoning", "function_call", "function_call"]);
    assert_eq!(items[0]["summary"], json!([{"type": "summary_text", "text": "Need the weather.Rome first."}]));
    let call_id = items[1]["call_id"].as_str().unwrap();
    assert_eq!(
        items[0]["encrypted_content"].as_str().unwrap(),
        format!("grantpool:call:{}:SIG1", URL_SAFE_NO_PAD.encode(call_id))
    );
    assert_eq!(items[2]["call_id"], "fc-2");
    assert!(items[2]["id"].as_str().unwrap().starts_with("fc_"));

    // The client sends everything back (reasoning items last, even:
    // the binding names the call), with the results.
    let mut input = vec![json!({"role": "user", "content": "weather?"})];
    input.extend(items[1..].iter().cloned());
    input.push(json!({"type": "function_call_output", "call_id": call_id, "output": "sunny"}));
    input.push(json!({"type": "function_call_output", "call_id": "fc-2", "output": "rain"}));
    input.push(items[0].clone());
    input.push(json!({"role": "user", "content": "thanks"}));
    let c = contents(&parse(json!({"model": "m", "input": input})));
    assert_eq!(c[1]["parts"][0]["thoughtSignature"], "SIG1");
    assert!(c[1]["parts"][1].get("thoughtSignature").is_none());
    assert_eq!(c[2]["parts"][1]["functionResponse"]["name"], "get_weather");

    // A signature on the text: a reasoning item before the message.
    let resp = gemini(json!({"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Sunny in Rome.", "thoughtSignature": "SIG2"}
    ]}, "finishReason": "STOP"}]}));
    let items = output(&response_from_gemini(&resp, "m"));
    assert_eq!(items.len(), 2);
    let msg_id = items[1]["id"].as_str().unwrap();
    assert!(items[0]["encrypted_content"].as_str().unwrap().starts_with("grantpool:msg:"));
    assert_eq!(unseal(items[0]["encrypted_content"].as_str().unwrap()), Some((false, msg_id.to_owned(), "SIG2")));
    let mut input = vec![json!({"role": "user", "content": "weather?"})];
    input.extend(items);
    input.push(json!({"role": "user", "content": "and Oslo?"}));
    let c = contents(&parse(json!({"model": "m", "input": input})));
    assert_eq!(c[1], json!({"role": "model", "parts": [{"text": "Sunny in Rome.", "thoughtSignature": "SIG2"}]}));
}

#[test]
fn requests_translate() {
    let req = parse(json!({
        "model": "gemini-2.5-pro",
        "instructions": "Be terse.",
        "input": [
            {"role": "system", "content": "No emoji."},
            {"role": "user", "content": "Hi"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello.", "annotations": []},
                                                                 {"type": "refusal", "refusal": "Not that."}]},
            {"role": "developer", "content": [{"type": "input_text", "text": "Answer in English."}]},
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}, {"type": "input_text", "text": ""}]}
        ],
        "temperature": 0.3, "top_p": 0.9, "max_output_tokens": 256,
        "user": "u-1", "store": true, "metadata": {"a": "b"}, "include": ["reasoning.encrypted_content"],
        "truncation": "auto", "service_tier": "flex", "parallel_tool_calls": false, "text": {"verbosity": "low"},
        "stream_options": {"include_obfuscation": false}, "top_logprobs": 2, "max_tool_calls": 3
    }));
    assert_eq!(req.model, "gemini-2.5-pro");
    assert!(!req.stream);
    assert_eq!(req.session_hint.as_deref(), Some("u-1"));
    let g = serde_json::to_value(&req.gemini).unwrap();
    assert_eq!(
        g["systemInstruction"],
        json!({"parts": [{"text": "Be terse."}, {"text": "No emoji."}, {"text": "Answer in English."}]})
    );
    assert_eq!(
        g["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello."}, {"text": "Not that."}]},
            {"role": "user", "parts": [{"text": "Weather?"}]}
        ])
    );
    assert_eq!(g["generationConfig"], json!({"temperature": 0.3, "topP": 0.9, "maxOutputTokens": 256}));
    assert!(g.get("tools").is_none() && g.get("toolConfig").is_none());

    let req = parse(json!({"model": "m", "input": "just text", "safety_identifier": "s-9"}));
    assert_eq!(contents(&req), json!([{"role": "user", "parts": [{"text": "just text"}]}]));
    assert_eq!(req.session_hint.as_deref(), Some("s-9"));
}

#[test]
fn images_files_and_tool_results_with_media() {
    let req = parse(json!({"model": "m", "input": [
        {"role": "user", "content": [
            {"type": "input_text", "text": "what is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0K", "detail": "auto"},
            {"type": "input_image", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
            {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"},
            {"type": "input_file", "filename": "b.PDF", "file_data": "JVBERi0y"}
        ]},
        {"type": "function_call", "call_id": "c1", "name": "view_image", "arguments": "{\"path\":\"x.png\"}"},
        {"type": "function_call_output", "call_id": "c1", "output": [
            {"type": "input_text", "text": "the image:"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}
        ]}
    ]}));
    let c = contents(&req);
    assert_eq!(c[0]["parts"][1], json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}}));
    assert_eq!(c[0]["parts"][2], json!({"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}}));
    assert_eq!(c[0]["parts"][3], json!({"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}}));
    assert_eq!(c[0]["parts"][4], json!({"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0y"}}));
    assert_eq!(
        c[2]["parts"],
        json!([
            {"functionResponse": {"id": "c1", "name": "view_image", "response": {"content": "the image:"}}},
            {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}
        ])
    );
}

#[test]
fn generation_settings() {
    let base = |extra: Value| {
        let mut body = json!({"model": "m", "input": "x"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::to_value(parse(body).gemini.generation_config).unwrap()
    };
    assert_eq!(
        base(json!({"text": {"format": {"type": "json_schema", "name": "w", "strict": true,
            "schema": {"type": "object", "properties": {"t": {"type": "number"}}, "required": ["t"], "additionalProperties": false}}}})),
        json!({"responseMimeType": "application/json",
               "responseSchema": {"type": "object", "properties": {"t": {"type": "number"}}, "required": ["t"]}})
    );
    assert_eq!(
        base(json!({"text": {"format": {"type": "json_object"}}})),
        json!({"responseMimeType": "application/json"})
    );
    assert_eq!(base(json!({"text": {"format": {"type": "text"}}})), Value::Null);
    for (effort, budget) in
        [("none", 0), ("minimal", 128), ("low", 1024), ("medium", 8192), ("high", 24576), ("xhigh", 24576)]
    {
        assert_eq!(
            base(json!({"reasoning": {"effort": effort}})),
            json!({"thinkingConfig": {"thinkingBudget": budget}}),
            "{effort}"
        );
    }
    assert_eq!(
        base(json!({"reasoning": {"effort": "high", "summary": "detailed"}})),
        json!({"thinkingConfig": {"thinkingBudget": 24576, "includeThoughts": true}})
    );
    assert_eq!(
        base(json!({"reasoning": {"generate_summary": "concise"}})),
        json!({"thinkingConfig": {"includeThoughts": true}})
    );
    assert_eq!(base(json!({"reasoning": {"effort": null, "summary": null}})), Value::Null);
}

#[test]
fn tool_choices_and_built_in_tools() {
    let tools = json!([
        {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
        {"type": "custom", "name": "run sql", "description": "SQL", "format": {"type": "text"}},
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
        {"type": "web_search_preview"},
        {"type": "code_interpreter", "container": {"type": "auto"}},
        {"type": "image_generation"}, {"type": "local_shell"}, {"type": "computer_use_preview"},
        {"type": "mcp", "server_label": "x"}
    ]);
    let with = |choice: Value| parse(json!({"model": "m", "input": "x", "tools": tools, "tool_choice": choice}));
    assert_eq!(mode(&with(json!("auto"))), json!({"mode": "AUTO"}));
    assert_eq!(mode(&with(json!("none"))), json!({"mode": "NONE"}));
    assert_eq!(mode(&with(json!("required"))), json!({"mode": "ANY"}));
    assert_eq!(
        mode(&with(json!({"type": "function", "name": "get_weather"}))),
        json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]})
    );
    assert_eq!(
        mode(&with(json!({"type": "custom", "name": "run sql"}))),
        json!({"mode": "ANY", "allowedFunctionNames": ["run_sql"]})
    );
    assert_eq!(
        mode(&with(
            json!({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_weather"}]})
        )),
        json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]})
    );
    assert_eq!(mode(&with(json!({"type": "allowed_tools", "mode": "auto", "tools": []}))), json!({"mode": "AUTO"}));
    assert_eq!(with(json!({"type": "file_search"})).gemini.tool_config, None);
    assert!(parse_err(json!({"model": "m", "input": "x", "tools": tools, "tool_choice": "sometimes"}))
        .contains("`tool_choice` must be"));

    let (req, map) =
        parse_request_with_tools(json!({"model": "m", "input": "x", "tools": tools}).to_string().as_bytes())
            .unwrap();
    assert_eq!(req.gemini.tools.len(), 1);
    assert_eq!(decls(&req).len(), 2);
    assert_eq!(
        map.dropped(),
        [
            "file_search",
            "code_interpreter",
            "image_generation",
            "local_shell",
            "computer_use_preview",
            "mcp"
        ]
    );
    assert!(map.search_dropped());
    // The custom tool's name did not fit, so its calls are mapped back.
    let resp = gemini(
        json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "run_sql", "args": {"input": "select 1"}}}]}}]}),
    );
    let out = response_with_tools(&resp, "m", &map);
    assert_eq!(
        (&out["output"][0]["type"], &out["output"][0]["name"]),
        (&json!("custom_tool_call"), &json!("run sql"))
    );

    // Web search alone: Gemini's own.
    let g =
        serde_json::to_value(parse(json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]})).gemini)
            .unwrap();
    assert_eq!(g["tools"], json!([{"googleSearch": {}}]));
    assert!(dropped_tools(json!({"tools": [{"type": "web_search"}]}).to_string().as_bytes()).is_empty());
    assert!(dropped_tools(b"{not json").is_empty());
}

#[test]
fn names_fit_gemini_and_come_back() {
    let long = "a_very_long_tool_name_that_goes_on_and_on_well_past_the_limit_of_gemini";
    let (req, map) = parse_request_with_tools(
        json!({"model": "m", "input": "x", "tools": [
            {"type": "function", "name": long},
            {"type": "function", "name": "9lives.v2"},
            {"type": "namespace", "name": "mcp__srv__", "tools": [{"type": "function", "name": "read"}]},
            {"type": "function", "name": "mcp__srv____read"}
        ]})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let names: Vec<String> = decls(&req).iter().map(|d| d["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names[0].len(), 64);
    assert!(names[0].starts_with("a_very_long_tool_name"));
    assert_eq!(names[0], encode_name(None, long), "stable across requests");
    assert_ne!(encode_name(None, long), encode_name(None, &format!("{long}2")));
    assert_eq!(names[1], "_9lives_v2");
    assert_eq!(names[2], "mcp__srv____read");
    assert_eq!(names[3], "mcp__srv____read_2", "names are unique");
    for (gemini, ns, name) in [
        (&names[0], None, long),
        (&names[1], None, "9lives.v2"),
        (&names[2], Some("mcp__srv__"), "read"),
        (&names[3], None, "mcp__srv____read"),
    ] {
        let tool = map.client_tool(gemini);
        assert_eq!((tool.namespace, tool.name, tool.custom), (ns, name, false), "{gemini}");
        assert_eq!(&map.gemini_name(ns, name, false), gemini);
    }
    assert_eq!(map.client_tool("other").name, "other");
}

#[test]
fn stateless_features_and_bad_items_are_refused() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}),
         "`previous_response_id` is not supported: this proxy keeps no responses or conversations: send the whole conversation in `input` (with `store: false`)"),
        (json!({"model": "m", "input": "x", "conversation": "conv_1"}), "`conversation` is not supported"),
        (json!({"model": "m", "input": "x", "prompt": {"id": "pmpt_1"}}), "`prompt` is not supported"),
        (json!({"model": "m", "input": "x", "background": true}), "`background` is not supported"),
        (json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
         "`input[0]` is an item_reference (`msg_1`), but this proxy keeps no responses"),
        (json!({"model": "m", "input": [{"type": "hologram"}]}), "`input[0].type` `hologram` is not supported"),
    ];
    for (body, want) in cases {
        let got = parse_err(body.clone());
        assert!(got.contains(want), "body {body}\n got: {got}\nwant: {want}");
    }
    // Empty ids are no id; items of OpenAI's hosted tools are skipped.
    let req = parse(json!({"model": "m", "previous_response_id": "", "input": [
        {"role": "user", "content": "x"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "q"}},
        {"type": "tool_search_call", "call_id": "s1", "execution": "client", "arguments": {"query": "q"}},
        {"type": "computer_call_output", "call_id": "cc1", "output": {"type": "computer_screenshot", "image_url": "data:,"}}
    ]}));
    assert_eq!(contents(&req).as_array().unwrap().len(), 1);
}

#[test]
fn malformed_requests_name_the_field() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"input": "x"}), "`model` is required"),
        (json!({"model": "m"}), "`input` is required"),
        (json!({"model": "m", "input": ""}), "`input` must contain at least one"),
        (
            json!({"model": "m", "input": [{"role": "system", "content": "only rules"}]}),
            "`input` must contain at least one",
        ),
        (
            json!({"model": "m", "input": 5}),
            "`input` is invalid: invalid type: integer `5`, expected a string or an array",
        ),
        (
            json!({"model": "m", "input": [{"role": "robot", "content": "x"}]}),
            "`input[0].role` is invalid: unknown variant `robot`",
        ),
        (json!({"model": "m", "input": [{"content": "x"}]}), "`input[0].type` is required"),
        (json!({"model": "m", "input": [{"type": "message", "content": "x"}]}), "`input[0].role` is required"),
        (json!({"model": "m", "input": [{"role": "user"}]}), "`input[0].content` is required"),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": 3}]}]}),
            "`input[0].content[0].text` is invalid: invalid type: integer `3`, expected a string",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://x/cat.png"}]}]}),
            "`input[0].content[0].image_url` must be a data: URL (this proxy does not fetch remote URLs)",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]}),
            "`input[0].content[0].file_id` is not supported",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x/a.pdf"}]}]}),
            "`input[0].content[0].file_url` is not supported",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_video"}]}]}),
            "`input[0].content[0].type` `input_video` is not supported",
        ),
        (
            json!({"model": "m", "input": [{"role": "developer", "content": [{"type": "input_image", "image_url": "data:image/png;base64,AA=="}]}]}),
            "`input[0].content[0]` must be a text part here",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}),
            "`input[0].call_id` is required",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "arguments": "{}"}]}),
            "`input[0].name` is required",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{oops"}]}),
            "`input[0].arguments` is not valid JSON",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"}]}),
            "`input[0].arguments` must be a JSON object encoded as a string",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": "x"}, {"type": "function_call_output", "call_id": "call_9", "output": "r"}]}),
            "`input[1].call_id` `call_9` does not match the call_id of any earlier call",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {"a": 1}}]}),
            "`input[0].arguments` must be a JSON object encoded as a string",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f"},
                                        {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text", "text": 1}]}]}),
            "`input[1].output[0]` is invalid: invalid type: integer `1`, expected a string",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f"},
                                        {"type": "function_call_output", "call_id": "c", "output": {"x": 1}}]}),
            "`input[1].output` must be a string or an array of content parts",
        ),
        (
            json!({"model": "m", "input": "x", "temperature": "hot"}),
            "`temperature` is invalid: invalid type: string \"hot\", expected a number",
        ),
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "function", "description": "no name"}]}),
            "`tools[0].name` is required",
        ),
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": 1}]}]}),
            "`tools[0].tools[0].name` is invalid",
        ),
        (
            json!({"model": "m", "input": "x", "reasoning": {"effort": "max"}}),
            "`reasoning.effort` `max` is not one of",
        ),
        (json!({"model": "m", "input": "x", "reasoning": {"effort": 3}}), "`reasoning.effort` is invalid"),
        (json!({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}), "`text.format` must be"),
        (
            json!({"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}}),
            "`text.format.schema` is required",
        ),
        (json!({"model": "m", "input": "x", "instructions": 7}), "`instructions` is invalid"),
        (json!([1, 2]), "`(body)` must be a JSON object"),
    ];
    for (body, want) in cases {
        let got = parse_err(body.clone());
        assert!(got.contains(want), "body {body}\n got: {got}\nwant: {want}");
    }
    let e = parse_request(b"{\"model\": ").unwrap_err();
    assert!(matches!(e, TranslateError::InvalidJson(_)), "{e}");
    assert_eq!(e.status(), 400);
}

#[test]
fn whole_response() {
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
    let out = response_from_gemini(&resp, "gpt-5.5");
    assert_eq!(out["id"], "resp_r-1");
    assert_eq!(
        (&out["object"], &out["status"], &out["model"]),
        (&json!("response"), &json!("completed"), &json!("gpt-5.5"))
    );
    assert!(out["created_at"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!((&out["error"], &out["incomplete_details"]), (&Value::Null, &Value::Null));
    assert_eq!((&out["tools"], &out["parallel_tool_calls"]), (&json!([]), &json!(true)));
    let items = output(&out);
    assert_eq!(items[0]["type"], "reasoning");
    assert!(items[0]["id"].as_str().unwrap().starts_with("rs_"));
    assert!(items[0].get("encrypted_content").is_none());
    assert_eq!(items[0]["summary"], json!([{"type": "summary_text", "text": "Let me think."}]));
    assert!(items[1]["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        items[1],
        json!({"id": items[1]["id"], "type": "message", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": "Hello, world.", "annotations": [], "logprobs": []}]})
    );
    assert_eq!(
        out["usage"],
        json!({"input_tokens": 12, "input_tokens_details": {"cached_tokens": 2}, "output_tokens": 10,
               "output_tokens_details": {"reasoning_tokens": 6}, "total_tokens": 22})
    );

    let empty = response_from_gemini(&gemini(json!({})), "m");
    assert!(empty["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!((&empty["output"], &empty["status"]), (&json!([]), &json!("completed")));
    assert_eq!(empty["usage"]["total_tokens"], 0);
    let cut = response_from_gemini(
        &gemini(json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "MAX_TOKENS"}]})),
        "m",
    );
    assert_eq!(
        (&cut["status"], &cut["incomplete_details"]),
        (&json!("incomplete"), &json!({"reason": "max_output_tokens"}))
    );
    let blocked = response_from_gemini(&gemini(json!({"promptFeedback": {"blockReason": "SAFETY"}})), "m");
    assert_eq!(blocked["incomplete_details"], json!({"reason": "content_filter"}));
}

#[test]
fn error_bodies() {
    assert_eq!(
        error_body(400, "bad"),
        json!({"error": {"message": "bad", "type": "invalid_request_error", "param": null, "code": "invalid_request"}})
    );
    assert_eq!(error_body(429, "slow")["error"]["type"], "rate_limit_error");
    assert_eq!(error_body(503, "none")["error"]["code"], "service_unavailable");
}

#[test]
fn stream_text_event_by_event() {
    let mut t = StreamTranslator::new("gpt-5.5");
    let a = t.push(&gemini(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}],
                                  "usageMetadata": {"promptTokenCount": 5}})));
    let b = t.push(&gemini(
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}, {"text": "!"}]}}]}),
    ));
    // Gemini 3 ends a text answer with a bare signature.
    let c = t.push(&gemini(json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "", "thoughtSignature": "SIG"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "cachedContentTokenCount": 1, "totalTokenCount": 8}
    })));
    assert!(t.saw_finish());
    let end = t.finish();
    assert!(c.is_empty());
    let all: Vec<SseEvent> = [a, b, c, end].concat();
    let evs = events(&all, 0);
    assert_eq!(
        names(&evs),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let created = &evs[0].1["response"];
    assert!(created["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(
        (&created["status"], &created["output"], &created["usage"]),
        (&json!("in_progress"), &json!([]), &Value::Null)
    );
    assert_eq!(evs[2].1["item"]["status"], "in_progress");
    let msg_id = evs[2].1["item"]["id"].as_str().unwrap();
    assert_eq!(
        evs[4].1,
        json!({"type": "response.output_text.delta", "sequence_number": 4, "item_id": msg_id, "output_index": 0,
               "content_index": 0, "delta": "Hel", "logprobs": []})
    );
    assert_eq!(evs[5].1["delta"], "lo");
    assert_eq!(evs[7].1["text"], "Hello!");
    assert_eq!(evs[9].1["item"]["content"][0]["text"], "Hello!");
    // The signature after the text it came on.
    assert_eq!(evs[11].1["output_index"], 1);
    assert_eq!(
        unseal(evs[11].1["item"]["encrypted_content"].as_str().unwrap()),
        Some((false, msg_id.to_owned(), "SIG"))
    );
    let done = &evs[12].1["response"];
    assert_eq!(done["id"], created["id"]);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"].as_array().unwrap().len(), 2);
    assert_eq!(done["output"][0], evs[9].1["item"]);
    assert_eq!(
        done["usage"],
        json!({"input_tokens": 5, "input_tokens_details": {"cached_tokens": 1}, "output_tokens": 3,
               "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 8})
    );
    assert_eq!(&all[0].to_bytes()[..22], b"event: response.create");
    assert!(t.finish().is_empty());
    assert!(t.push(&gemini(json!({"candidates": [{"content": {"parts": [{"text": "late"}]}}]}))).is_empty());
}

#[test]
fn stream_thoughts_then_calls() {
    let mut t = StreamTranslator::new("m");
    let a = t.push(&gemini(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Need weather.", "thought": true}]}}]})));
    let b = t.push(&gemini(json!({"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "SIG"},
        {"functionCall": {"id": "fc-7", "name": "get_time", "args": {}}}
    ]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 9, "thoughtsTokenCount": 4, "totalTokenCount": 43}})));
    let end = t.finish();
    let all: Vec<SseEvent> = [a, b, end].concat();
    let evs = events(&all, 0);
    assert_eq!(
        names(&evs),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(evs[2].1["item"], json!({"id": evs[2].1["item"]["id"], "type": "reasoning", "summary": []}));
    assert_eq!((&evs[4].1["summary_index"], &evs[4].1["delta"]), (&json!(0), &json!("Need weather.")));
    let reasoning = &evs[7].1["item"];
    assert_eq!(reasoning["summary"], json!([{"type": "summary_text", "text": "Need weather."}]));
    let call = &evs[11].1["item"];
    assert_eq!(
        unseal(reasoning["encrypted_content"].as_str().unwrap()),
        Some((true, call["call_id"].as_str().unwrap().to_owned(), "SIG"))
    );
    let added = &evs[8].1["item"];
    assert_eq!(
        (&added["status"], &added["arguments"], &added["name"]),
        (&json!("in_progress"), &json!(""), &json!("get_weather"))
    );
    assert_eq!(added["call_id"], call["call_id"]);
    assert_eq!(evs[9].1["delta"], "{\"city\":\"Paris\"}");
    assert_eq!(
        evs[10].1,
        json!({"type": "response.function_call_arguments.done", "sequence_number": 10, "item_id": call["id"],
               "output_index": 1, "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    assert_eq!(
        *call,
        json!({"id": call["id"], "type": "function_call", "status": "completed", "arguments": "{\"city\":\"Paris\"}",
               "call_id": call["call_id"], "name": "get_weather"})
    );
    assert_eq!(evs[15].1["item"]["call_id"], "fc-7");
    assert_eq!(evs[15].1["output_index"], 2);
    let done = &evs[16].1["response"];
    assert_eq!(done["output"].as_array().unwrap().len(), 3);
    assert_eq!(done["usage"]["output_tokens"], 13);
    assert_eq!(done["usage"]["output_tokens_details"]["reasoning_tokens"], 4);
}

#[test]
fn stream_and_whole_answers_replay_alike() {
    // A text with its signature on the first part, then a call: the
    // stream names each signature's item, as the whole answer does.
    let parts = json!([
        {"text": "Checking ", "thoughtSignature": "S1"}, {"text": "now."},
        {"functionCall": {"id": "c1", "name": "f", "args": {}}, "thoughtSignature": "S2"}
    ]);
    let resp =
        gemini(json!({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}]}));
    let whole = output(&response_from_gemini(&resp, "m"));
    let mut t = StreamTranslator::new("m");
    t.push(&resp);
    let evs = t.finish();
    let completed: Value = serde_json::from_str(&evs.last().unwrap().data).unwrap();
    let streamed = output(&completed["response"]);
    for items in [whole, streamed] {
        let kinds: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["reasoning", "message", "reasoning", "function_call"]);
        let mut input = vec![json!({"role": "user", "content": "go"})];
        input.extend(items);
        input.push(json!({"type": "function_call_output", "call_id": "c1", "output": "ok"}));
        let c = contents(&parse(json!({"model": "m", "input": input})));
        assert_eq!(
            c[1]["parts"],
            json!([{"text": "Checking now.", "thoughtSignature": "S1"},
                   {"thoughtSignature": "S2", "functionCall": {"id": "c1", "name": "f", "args": {}}}])
        );
    }
}

#[test]
fn stream_incomplete_and_failed() {
    let mut t = StreamTranslator::new("m");
    t.push(&gemini(
        json!({"candidates": [{"content": {"parts": [{"text": "long"}]}, "finishReason": "MAX_TOKENS"}]}),
    ));
    let end = t.finish();
    let last = serde_json::from_str::<Value>(&end.last().unwrap().data).unwrap();
    assert_eq!(end.last().unwrap().event, Some("response.incomplete"));
    assert_eq!(last["response"]["incomplete_details"], json!({"reason": "max_output_tokens"}));
    assert_eq!(last["response"]["output"][0]["content"][0]["text"], "long");

    let mut t = StreamTranslator::new("m");
    let a = t.push(&gemini(json!({"candidates": [{"content": {"parts": [{"text": "partial"}]}}]})));
    assert_eq!(a.len(), 5);
    assert!(!t.saw_finish());
    let err = t.error("upstream connection reset");
    let evs = events(&err, 5);
    assert_eq!(names(&evs), ["error", "response.failed"]);
    assert_eq!(
        evs[0].1,
        json!({"type": "error", "sequence_number": 5, "code": "server_error", "message": "upstream connection reset", "param": null})
    );
    let failed = &evs[1].1["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"], json!({"code": "server_error", "message": "upstream connection reset"}));
    assert!(t.finish().is_empty());
    assert!(t.error("again").is_empty());

    let mut t = StreamTranslator::new("m");
    let evs = t.error_with_code("context_length_exceeded", "too long");
    let evs = events(&evs, 0);
    assert_eq!(names(&evs), ["response.created", "response.in_progress", "error", "response.failed"]);
    assert_eq!(evs[3].1["response"]["error"]["code"], "context_length_exceeded");
}

#[test]
fn stream_empty_or_blocked_still_closes() {
    let mut t = StreamTranslator::new("m");
    let evs = events(&t.finish(), 0);
    assert_eq!(names(&evs), ["response.created", "response.in_progress", "response.completed"]);
    assert_eq!(evs[2].1["response"]["output"], json!([]));
    assert_eq!(evs[2].1["response"]["usage"]["total_tokens"], 0);

    let mut t = StreamTranslator::new("m");
    t.push(&gemini(json!({"promptFeedback": {"blockReason": "SAFETY"}})));
    assert!(t.saw_finish());
    let end = t.finish();
    assert_eq!(end.last().unwrap().event, Some("response.incomplete"));
    assert!(end.last().unwrap().data.contains("\"content_filter\""));
}

#[test]
fn conversation_ids_in_the_body() {
    let hint = |extra: Value| {
        let mut v = json!({"model": "m", "input": "x"});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        parse(v).session_hint
    };
    // Codex's `prompt_cache_key` (its thread id) first, then OpenAI's user ids.
    assert_eq!(hint(json!({"prompt_cache_key": "k-1", "user": "u-1", "safety_identifier": "s-1"})).as_deref(), Some("k-1"));
    assert_eq!(hint(json!({"user": "u-1", "safety_identifier": "s-1"})).as_deref(), Some("u-1"));
    assert_eq!(hint(json!({"prompt_cache_key": "", "safety_identifier": "s-1"})).as_deref(), Some("s-1"));
    assert_eq!(hint(json!({})), None);
}

/// A grounded answer in two chunks, the metadata on the last.
fn grounded_chunks() -> Vec<GenerateContentResponse> {
    vec![
        gemini(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Zürich is big. "}]}}]})),
        gemini(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Bern is the capital."}]},
            "finishReason": "STOP",
            "groundingMetadata": {
                "webSearchQueries": ["swiss capital"],
                "groundingChunks": [
                    {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/A", "title": "example.org"}},
                    {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/B", "title": "docs.example.org"}}
                ],
                "groundingSupports": [
                    {"segment": {"endIndex": 15, "text": "Zürich is big."}, "groundingChunkIndices": [0]},
                    {"segment": {"startIndex": 16, "endIndex": 36, "text": "Bern is the capital."}, "groundingChunkIndices": [1]}
                ]}}]}))
    ]
}

#[test]
fn web_search_calls_and_url_citations() {
    let body = |tools: Value| json!({"model": "m", "input": "capital?", "tools": tools}).to_string();
    let (req, map) = parse_request_with_tools(body(json!([{"type": "web_search_preview"}])).as_bytes()).unwrap();
    assert!(super::super::search::uses_google_search(&req.gemini) && !map.search_dropped());

    let mut whole = grounded_chunks().pop().unwrap();
    whole.candidates[0].content.as_mut().unwrap().parts.insert(0, Part::text("Zürich is big. "));
    let items = output(&response_with_tools(&whole, "m", &map));
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["type"], "web_search_call");
    assert_eq!(items[0]["status"], "completed");
    assert_eq!(items[0]["action"], json!({"type": "search", "query": "swiss capital"}));
    assert!(items[0]["id"].as_str().unwrap().starts_with("ws_"));
    assert_eq!(items[1]["type"], "message");
    let part = &items[1]["content"][0];
    assert_eq!(part["text"], "Zürich is big. Bern is the capital.");
    // Character offsets (the ü is two bytes, one character).
    assert_eq!(
        part["annotations"],
        json!([
            {"type": "url_citation", "start_index": 0, "end_index": 14,
             "url": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/A", "title": "example.org"},
            {"type": "url_citation", "start_index": 15, "end_index": 35,
             "url": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/B", "title": "docs.example.org"}
        ])
    );
    // Without the web_search tool the grounding is not shown.
    let plain = output(&response_from_gemini(&whole, "m"));
    assert_eq!((plain.len(), &plain[0]["content"][0]["annotations"]), (1, &json!([])));

    // Streamed: the same items, in order.
    let mut t = StreamTranslator::with_tools("m", map);
    let mut evs = Vec::new();
    for c in grounded_chunks() {
        evs.extend(t.push(&c));
    }
    evs.extend(t.finish());
    let evs = events(&evs, 0);
    assert_eq!(
        names(&evs),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.web_search_call.in_progress",
            "response.web_search_call.searching",
            "response.web_search_call.completed",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.annotation.added",
            "response.output_text.annotation.added",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(evs[2].1["item"]["type"], "web_search_call");
    assert_eq!(evs[6].1["item"]["action"]["query"], "swiss capital");
    assert_eq!((evs[7].1["output_index"].as_u64(), evs[11].1["output_index"].as_u64()), (Some(1), Some(1)));
    assert_eq!(evs[12].1["annotation_index"], 1);
    assert_eq!(evs[12].1["annotation"]["title"], "docs.example.org");
    let done = output(&evs[16].1["response"]);
    assert_eq!(done[0]["type"], "web_search_call");
    assert_eq!(done[1]["content"][0]["annotations"].as_array().unwrap().len(), 2);
}
