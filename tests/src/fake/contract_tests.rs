//! The contract (Google's refusals, literal bodies), over real HTTP.

use serde_json::{json, Value};

use super::*;

const A: &str = "a@example.com";
const G: &str = "g@example.com";
const UA: &str = ANTIGRAVITY_USER_AGENT;
const CLI_UA: &str = "GeminiCLI/0.56.0/gemini-2.5-pro (linux; x64; terminal)";

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A fake with A (Antigravity client, project `proj-a`) and G (Gemini CLI
/// client, project `proj-g`).
async fn fake() -> FakeGoogle {
    let fake = FakeGoogle::start().await.unwrap();
    fake.add_account(AccountSpec::new(A, "1//rt-a").project_id("proj-a"))
        .await;
    fake.add_account(
        AccountSpec::new(G, "1//rt-g")
            .project_id("proj-g")
            .gemini_cli(),
    )
    .await;
    fake
}

async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The Antigravity envelope around `request`.
fn ag(model: &str, project: &str, mut request: Value) -> Value {
    request["sessionId"] = json!("-1234567");
    json!({"project": project, "model": model, "userAgent": "antigravity", "requestType": "agent",
           "requestId": "agent-6f1d", "request": request})
}

/// The Gemini CLI envelope around `request`.
fn cli(model: &str, project: &str, mut request: Value) -> Value {
    request["session_id"] = json!("5b7c");
    json!({"model": model, "project": project, "user_prompt_id": "5b7c########1", "request": request})
}

fn user(text: &str) -> Value {
    json!({"role": "user", "parts": [{"text": text}]})
}

fn text_request(text: &str) -> Value {
    json!({"contents": [user(text)]})
}

async fn post(
    fake: &FakeGoogle,
    method: &str,
    at: &str,
    ua: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let mut req = client()
        .post(fake.url(&format!("v1internal:{method}")))
        .bearer_auth(at)
        .json(body);
    if let Some(ua) = ua {
        req = req.header("user-agent", ua);
    }
    json_of(req.send().await.unwrap()).await
}

async fn generate(fake: &FakeGoogle, at: &str, ua: Option<&str>, body: &Value) -> (u16, Value) {
    post(fake, "generateContent", at, ua, body).await
}

fn parts(v: &Value) -> &Vec<Value> {
    v["response"]["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap()
}

fn message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or("<no message>")
}

/// Asserts a 400 INVALID_ARGUMENT whose message is `msg`.
#[track_caller]
fn assert_invalid(got: &(u16, Value), msg: &str) {
    assert_eq!(got.0, 400, "{}", got.1);
    assert_eq!(got.1["error"]["status"], "INVALID_ARGUMENT", "{}", got.1);
    assert_eq!(message(&got.1), msg);
}

// ---- hosts ---------------------------------------------------------------

#[tokio::test]
async fn hosts_share_state_and_are_recorded_and_targeted() {
    let fake = FakeGoogle::start_with_hosts(&["daily", "prod"])
        .await
        .unwrap();
    // Enterprise: prod serves it (a consumer account gets a bare 429 there).
    fake.add_account(
        AccountSpec::new(A, "1//rt-a")
            .project_id("proj-a")
            .enterprise(true),
    )
    .await;
    let daily = fake.base_url_of("daily").unwrap();
    let prod = fake.base_url_of("prod").unwrap();
    assert_eq!(fake.base_url(), daily);
    assert_ne!(daily, prod);
    assert!(fake.base_url_of("sandbox").is_none());
    let at = fake.access_token_for(A).await;
    let c = client();
    let call = |base: String| {
        let c = c.clone();
        let at = at.clone();
        async move {
            json_of(
                c.post(format!("{base}/v1internal:generateContent"))
                    .bearer_auth(at)
                    .header("user-agent", UA)
                    .json(&ag("gemini-2.5-pro", "proj-a", text_request("hi")))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    // A fault for daily only: prod still serves.
    fake.push_fault(
        FaultSpec::rate_limit_exceeded(Endpoint::Generate, "479.417207ms").on_host("daily"),
    )
    .await
    .unwrap();
    let (s, b) = call(daily.clone()).await;
    assert_eq!(s, 429);
    assert_eq!(b["error"]["details"][0]["reason"], "RATE_LIMIT_EXCEEDED");
    assert_eq!(
        b["error"]["details"][0]["metadata"]["model"],
        "gemini-2.5-pro"
    );
    assert_eq!(call(prod.clone()).await.0, 200);
    assert_eq!(call(daily.clone()).await.0, 200);
    let stats = fake.stats().await;
    assert_eq!(stats.calls_on_for("daily", Endpoint::Generate), 2);
    assert_eq!(stats.calls_on("prod"), 1);
    assert_eq!(stats.served_hosts(), vec!["prod", "daily"]);
    let hosts: Vec<_> = stats
        .requests
        .iter()
        .map(|r| (r.host.as_str(), r.outcome))
        .collect();
    assert_eq!(
        hosts,
        vec![
            ("daily", Outcome::Fault),
            ("prod", Outcome::Served),
            ("daily", Outcome::Served)
        ]
    );
    assert_eq!(stats.requests[1].user_agent.as_deref(), Some(UA));
    assert_eq!(stats.requests[1].body["requestType"], "agent");
    assert_eq!(stats.requests[1].email.as_deref(), Some(A));
    assert!(stats.requests[0]
        .message
        .as_deref()
        .unwrap()
        .starts_with("You have exhausted your capacity"));

    // One more host through the control API; the control API answers on any host.
    let (s, info) = json_of(
        c.post(format!("{prod}/_fake/hosts"))
            .json(&json!({"label": "sandbox"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["label"], "sandbox");
    assert_eq!(fake.base_url_of("sandbox").as_deref(), info["url"].as_str());
    assert_eq!(call(info["url"].as_str().unwrap().to_owned()).await.0, 200);
    let (_, hosts) = json_of(c.get(format!("{daily}/_fake/hosts")).send().await.unwrap()).await;
    assert_eq!(
        hosts
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["label"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["daily", "prod", "sandbox"]
    );
    let (s, _) = json_of(
        c.post(format!("{prod}/_fake/hosts"))
            .json(&json!({"label": "prod"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400, "a label listens once");
    assert!(fake.add_host("bad label").await.is_err());
    // Requests filtered by host over HTTP.
    let (_, list) = json_of(
        c.get(format!(
            "{prod}/_fake/requests?host=sandbox&endpoint=generate"
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, list) = json_of(
        c.get(format!("{prod}/_fake/requests?last=2"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    // Shutting down stops every listener.
    fake.shutdown().await;
    assert!(c.get(format!("{prod}/_fake/stats")).send().await.is_err());
    assert!(c.get(format!("{daily}/_fake/stats")).send().await.is_err());
}

#[tokio::test]
async fn request_log_is_bounded_and_reset() {
    let fake = fake().await;
    let c = client();
    let (s, v) = json_of(
        c.post(fake.url("/_fake/settings"))
            .json(&json!({"max_recorded_requests": 2}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, v["max_recorded_requests"].as_u64()), (200, Some(2)));
    assert_eq!(v["strict_envelope"], true);
    let at = fake.access_token_for(A).await;
    for _ in 0..3 {
        generate(
            &fake,
            &at,
            Some(UA),
            &ag("gemini-2.5-pro", "proj-a", text_request("x")),
        )
        .await;
    }
    let list = fake.requests().await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[1].seq, 3);
    assert!(
        !list[0].headers["authorization"].contains(&at[12..]),
        "access tokens are redacted"
    );
    let (s, _) = json_of(
        c.post(fake.url("/_fake/settings"))
            .json(&json!({"nope": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    fake.reset_stats().await;
    assert!(fake.requests().await.is_empty());
    assert_eq!(fake.stats().await, Stats::default());
    // `reset` keeps the settings.
    fake.reset().await;
    assert_eq!(fake.settings().max_recorded_requests, 2);
}

// ---- OAuth ---------------------------------------------------------------

#[tokio::test]
async fn tokens_remember_their_client() {
    let fake = fake().await;
    let c = client();
    let refresh = |rt: &'static str, id: &'static str, secret: &'static str| {
        let req = c.post(fake.token_url()).form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", id),
            ("client_secret", secret),
        ]);
        async move { json_of(req.send().await.unwrap()).await }
    };
    let (s, b) = refresh("1//rt-g", GEMINI_CLI_CLIENT_ID, GEMINI_CLI_CLIENT_SECRET).await;
    assert_eq!(s, 200, "{b}");
    let at_g = b["access_token"].as_str().unwrap().to_owned();
    let (s, b) = refresh("1//rt-g", ANTIGRAVITY_CLIENT_ID, ANTIGRAVITY_CLIENT_SECRET).await;
    assert_eq!(
        (s, b),
        (
            401,
            json!({"error": "unauthorized_client", "error_description": "Unauthorized"})
        )
    );
    // The Gemini CLI token may not use Claude, even with an Antigravity UA.
    let (s, b) = generate(
        &fake,
        &at_g,
        Some(UA),
        &ag("claude-sonnet-4-6", "proj-g", text_request("x")),
    )
    .await;
    assert_eq!(
        s, 400,
        "strict: the Gemini CLI profile's User-Agent first: {b}"
    );
    fake.set_strict_envelope(false).await;
    let (s, b) = generate(
        &fake,
        &at_g,
        Some(UA),
        &ag("claude-sonnet-4-6", "proj-g", text_request("x")),
    )
    .await;
    assert_eq!((s, b.to_string()), (404, r#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND"}}"#.to_owned()));
    // Revoked: invalid_grant, literal.
    fake.revoke_refresh_token("1//rt-a").await;
    let resp = c
        .post(fake.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "1//rt-a"),
            ("client_id", ANTIGRAVITY_CLIENT_ID),
            ("client_secret", ANTIGRAVITY_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#
    );
    // A code belongs to its client; its refresh token to the exchanging client.
    fake.add_code(
        CodeSpec::new("4/g", G)
            .client_id(GEMINI_CLI_CLIENT_ID)
            .refresh_token("1//from-g"),
    )
    .await
    .unwrap();
    let exchange = |id: &'static str, secret: &'static str| {
        let req = c.post(fake.token_url()).form(&[
            ("grant_type", "authorization_code"),
            ("code", "4/g"),
            ("redirect_uri", "x"),
            ("client_id", id),
            ("client_secret", secret),
        ]);
        async move { json_of(req.send().await.unwrap()).await }
    };
    assert_eq!(
        exchange(ANTIGRAVITY_CLIENT_ID, ANTIGRAVITY_CLIENT_SECRET)
            .await
            .1["error"],
        "unauthorized_client"
    );
    assert_eq!(
        exchange(GEMINI_CLI_CLIENT_ID, GEMINI_CLI_CLIENT_SECRET)
            .await
            .0,
        200
    );
    assert_eq!(
        refresh(
            "1//from-g",
            ANTIGRAVITY_CLIENT_ID,
            ANTIGRAVITY_CLIENT_SECRET
        )
        .await
        .0,
        401
    );
    assert_eq!(
        refresh("1//from-g", GEMINI_CLI_CLIENT_ID, GEMINI_CLI_CLIENT_SECRET)
            .await
            .0,
        200
    );
    // Reused code.
    assert_eq!(
        exchange(GEMINI_CLI_CLIENT_ID, GEMINI_CLI_CLIENT_SECRET)
            .await
            .1,
        json!({"error": "invalid_grant", "error_description": "Bad Request"})
    );
}

// ---- envelopes -----------------------------------------------------------

#[tokio::test]
async fn envelopes_per_profile() {
    let fake = fake().await;
    let at = fake.access_token_for(A).await;
    let at_g = fake.access_token_for(G).await;
    // The envelope the proxy sends today (no userAgent / requestType / …).
    let plain =
        json!({"model": "gemini-2.5-pro", "project": "proj-a", "request": text_request("hi")});
    assert_invalid(
        &generate(&fake, &at, Some(UA), &plain).await,
        "Invalid envelope: userAgent must be \"antigravity\", got nothing.",
    );
    assert_invalid(
        &generate(&fake, &at, None, &ag("gemini-2.5-pro", "proj-a", text_request("hi"))).await,
        "Invalid envelope: the User-Agent header must be antigravity/<version> <os>/<arch> for the Antigravity client, got \"\".",
    );
    let mut b = ag("gemini-2.5-pro", "proj-a", text_request("hi"));
    b["requestId"] = json!("req-1");
    assert_invalid(
        &generate(&fake, &at, Some(UA), &b).await,
        "Invalid envelope: requestId must start with \"agent-\", got \"req-1\".",
    );
    b["requestId"] = json!("agent-1");
    b["requestType"] = json!("chat");
    assert_invalid(
        &generate(&fake, &at, Some(UA), &b).await,
        "Invalid envelope: requestType must be \"agent\", got \"chat\".",
    );
    b["requestType"] = json!("agent");
    b["request"].as_object_mut().unwrap().remove("sessionId");
    assert_invalid(
        &generate(&fake, &at, Some(UA), &b).await,
        "Invalid envelope: request.sessionId must be a non-empty string, got nothing.",
    );
    assert_eq!(
        generate(
            &fake,
            &at,
            Some(UA),
            &ag("gemini-2.5-pro", "proj-a", text_request("hi"))
        )
        .await
        .0,
        200
    );
    // Gemini CLI.
    assert_eq!(
        generate(
            &fake,
            &at_g,
            Some(CLI_UA),
            &cli("gemini-2.5-pro", "proj-g", text_request("hi"))
        )
        .await
        .0,
        200
    );
    let mut b = cli("gemini-2.5-pro", "proj-g", text_request("hi"));
    b.as_object_mut().unwrap().remove("user_prompt_id");
    assert_invalid(
        &generate(&fake, &at_g, Some(CLI_UA), &b).await,
        "Invalid envelope: user_prompt_id must be a non-empty string, got nothing.",
    );
    let (s, b) = generate(
        &fake,
        &at_g,
        Some(UA),
        &cli("gemini-2.5-pro", "proj-g", text_request("hi")),
    )
    .await;
    assert_eq!(s, 400);
    assert!(message(&b).starts_with("Invalid envelope: the User-Agent header must be GeminiCLI/"));
    // Strictness off: the plain envelope passes (the other checks stay).
    fake.set_strict_envelope(false).await;
    assert_eq!(generate(&fake, &at, None, &plain).await.0, 200);
    let (s, _) = json_of(
        client()
            .post(fake.url("/_fake/settings"))
            .json(&json!({"strict_envelope": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(generate(&fake, &at, None, &plain).await.0, 400);
}

#[tokio::test]
async fn unknown_fields_and_projects() {
    let fake = fake().await;
    let at = fake.access_token_for(A).await;
    fake.set_strict_envelope(false).await;
    let mut b = ag("gemini-2.5-pro", "proj-a", text_request("hi"));
    b["metadata"] = json!({});
    let (s, v) = generate(&fake, &at, Some(UA), &b).await;
    assert_eq!(
        (s, v),
        (
            400,
            json!({"error": {"code": 400,
            "message": "Invalid JSON payload received. Unknown name \"metadata\": Cannot find field.",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                         "fieldViolations": [{"description": "Invalid JSON payload received. Unknown name \"metadata\": Cannot find field."}]}]}})
        )
    );
    let mut b = ag("gemini-2.5-pro", "proj-a", text_request("hi"));
    b["request"]["contents"][0]["parts"][0]["cache_control"] = json!({"type": "ephemeral"});
    b["request"]["generationConfig"] = json!({"maxOutputTokens": 100, "thinking": {}});
    let (s, v) = generate(&fake, &at, Some(UA), &b).await;
    assert_eq!(s, 400);
    assert_eq!(
        message(&v),
        "Invalid JSON payload received. Unknown name \"cache_control\" at 'request.contents[0].parts[0]': Cannot find field.\nInvalid JSON payload received. Unknown name \"thinking\" at 'request.generation_config': Cannot find field."
    );
    assert_eq!(
        v["error"]["details"][0]["fieldViolations"][1]["field"],
        "request.generation_config"
    );
    // Every top-level field Google accepts, snake and camel.
    let mut b = cli("gemini-2.5-pro", "proj-a", text_request("hi"));
    b["userAgent"] = json!("antigravity");
    b["requestType"] = json!("agent");
    b["requestId"] = json!("agent-1");
    b["enabled_credit_types"] = json!(["GOOGLE_ONE_AI"]);
    b["request"]["safetySettings"] =
        json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"}]);
    b["request"]["labels"] = json!({"a": "b"});
    b["request"]["cachedContent"] = json!("c");
    assert_eq!(generate(&fake, &at, Some(UA), &b).await.0, 200);
    // Project: missing, then another account's.
    let mut b = ag("gemini-2.5-pro", "proj-a", text_request("hi"));
    b.as_object_mut().unwrap().remove("project");
    let (s, v) = generate(&fake, &at, Some(UA), &b).await;
    assert_eq!((s, v.to_string()), (400, r#"{"error":{"code":400,"message":"Invalid project resource name projects/","status":"INVALID_ARGUMENT"}}"#.to_owned()));
    let (s, v) = generate(
        &fake,
        &at,
        Some(UA),
        &ag("gemini-2.5-pro", "proj-g", text_request("hi")),
    )
    .await;
    assert_eq!((s, v.to_string()), (403, r#"{"error":{"code":403,"message":"Permission denied on resource project proj-g.","status":"PERMISSION_DENIED"}}"#.to_owned()));
    // Not JSON / not an object.
    let resp = client()
        .post(fake.url("v1internal:generateContent"))
        .bearer_auth(&at)
        .body("{{")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let (s, v) = generate(&fake, &at, Some(UA), &json!([1])).await;
    assert_eq!(
        (s, message(&v)),
        (
            400,
            "Invalid JSON payload received. Unknown name \"\": Root element must be a message."
        )
    );
    let (s, v) = generate(&fake, "ya29.nope", Some(UA), &json!({})).await;
    assert_eq!((s, v), (401, errors::unauthenticated_body()));
}

#[tokio::test]
async fn model_access_needs_the_antigravity_client_and_a_recent_user_agent() {
    let fake = fake().await;
    let at = fake.access_token_for(A).await;
    let body = ag("claude-sonnet-4-6", "proj-a", text_request("hi"));
    assert_eq!(generate(&fake, &at, Some(UA), &body).await.0, 200);
    assert_eq!(
        generate(&fake, &at, Some("antigravity/hub/2.9.0 linux/amd64"), &body)
            .await
            .0,
        200
    );
    // agy's own 1.x numbering is recent enough (a product line of its own).
    assert_eq!(
        generate(
            &fake,
            &at,
            Some("antigravity/cli/1.0.9 (aidev_client; os_type=windows; arch=amd64)"),
            &body
        )
        .await
        .0,
        200
    );
    for old in [
        "antigravity/hub/2.8.3 darwin/arm64",
        "antigravity/1.21.9 darwin/arm64",
    ] {
        let (s, v) = generate(&fake, &at, Some(old), &body).await;
        assert_eq!((s, v), (404, errors::not_found_body()), "{old}");
    }
    // Other Antigravity-only ids too; plain Gemini for anyone.
    assert_eq!(
        generate(
            &fake,
            &at,
            Some("antigravity/hub/2.1.0 darwin/arm64"),
            &ag("gemini-pro-agent", "proj-a", text_request("hi"))
        )
        .await
        .0,
        404
    );
    assert_eq!(
        generate(
            &fake,
            &at,
            Some("antigravity/hub/2.1.0 darwin/arm64"),
            &ag("gemini-2.5-pro", "proj-a", text_request("hi"))
        )
        .await
        .0,
        200
    );
    // A custom client's token: not the Antigravity client.
    fake.add_client(ClientSpec::new("test-client", "test-secret"))
        .await;
    let at_t = fake.access_token_for_client(A, "test-client").await;
    assert_eq!(generate(&fake, &at_t, Some(UA), &body).await.0, 404);
    assert_eq!(
        generate(
            &fake,
            &at_t,
            Some(UA),
            &ag("gemini-2.5-pro", "proj-a", text_request("hi"))
        )
        .await
        .0,
        200
    );
    // countTokens applies the same gate.
    let count =
        json!({"request": {"model": "models/claude-sonnet-4-6", "contents": [user("a b")]}});
    assert_eq!(
        post(&fake, "countTokens", &at, Some(UA), &count).await.0,
        200
    );
    assert_eq!(
        post(
            &fake,
            "countTokens",
            &at,
            Some("antigravity/1.0.0 x/y"),
            &count
        )
        .await
        .0,
        404
    );
}

// ---- tool schemas ---------------------------------------------------------

fn with_tools(model: &str, decls: Value) -> Value {
    let mut r = text_request("hi");
    r["tools"] = json!([{"functionDeclarations": decls}]);
    if model.starts_with("claude") {
        r["toolConfig"] = json!({"functionCallingConfig": {"mode": "VALIDATED"}});
    }
    ag(model, "proj-a", r)
}

#[tokio::test]
async fn tool_schema_rules() {
    let fake = fake().await;
    let at = fake.access_token_for(A).await;
    let gen = |decls: Value| {
        let fake = &fake;
        let at = at.clone();
        async move { generate(fake, &at, Some(UA), &with_tools("gemini-2.5-pro", decls)).await }
    };
    let ok = json!({"name": "f", "description": "d", "parameters": {"type": "object",
        "properties": {"a": {"type": "string", "enum": ["x"]}, "b": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
        "required": ["a"], "propertyOrdering": ["a", "b"]}});
    assert_eq!(gen(json!([ok])).await.0, 200);
    // Unknown keys, with the map-entry index path.
    let (s, v) = gen(
        json!([ok, ok, ok, {"name": "g", "parameters": {"type": "object", "properties": {
        "a": {"type": "string"}, "b": {"type": "string"},
        "c": {"type": "object", "patternProperties": {"^x": {"type": "string"}}}}}}]),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(message(&v), "Invalid JSON payload received. Unknown name \"patternProperties\" at 'request.tools[0].function_declarations[3].parameters.properties[2].value': Cannot find field.");
    assert_eq!(
        v["error"]["details"][0]["fieldViolations"][0]["field"],
        "request.tools[0].function_declarations[3].parameters.properties[2].value"
    );
    let (_, v) = gen(json!([{"name": "g", "parameters": {"type": "object", "additionalProperties": false, "$schema": "x"}}])).await;
    assert_eq!(message(&v), "Invalid JSON payload received. Unknown name \"additionalProperties\" at 'request.tools[0].function_declarations[0].parameters': Cannot find field.\nInvalid JSON payload received. Unknown name \"$schema\" at 'request.tools[0].function_declarations[0].parameters': Cannot find field.");
    // `type` not a Type name.
    let (s, v) = gen(json!([{"name": "g", "parameters": {"type": "object", "properties": {"a": {"type": ["string", "null"]}}}}])).await;
    assert_eq!((s, message(&v)), (400, "Invalid value at 'request.tools[0].function_declarations[0].parameters.properties[0].value.type' (type.googleapis.com/google.cloud.aiplatform.master.Type), [\"string\",\"null\"]"));
    // Semantic rules, one `* …\n` line each, all in one message.
    let (s, v) = gen(
        json!([{"name": "g", "parameters": {"type": "object", "properties": {
        "command": {"description": "no type"},
        "opts": {"type": "object", "properties": {}},
        "n": {"type": "integer", "enum": ["1"]}}, "required": ["command", "nope"]}}]),
    )
    .await;
    assert_invalid(&(s, v), concat!(
        "* GenerateContentRequest.tools[0].function_declarations[0].parameters.required[1]: property is not defined\n",
        "* GenerateContentRequest.tools[0].function_declarations[0].parameters.properties[command].type: must be specified when not using one_of, any_of or all_of fields\n",
        "* GenerateContentRequest.tools[0].function_declarations[0].parameters.properties[opts].properties: should be non-empty for OBJECT type\n",
        "* GenerateContentRequest.tools[0].function_declarations[0].parameters.properties[n].enum: only allowed for STRING type\n",
    ));
    // parametersJsonSchema: any JSON Schema for Gemini; exclusive with parameters.
    let js = json!({"name": "j", "parametersJsonSchema": {"type": "object", "properties": {"x": {"type": ["string", "null"]}}, "additionalProperties": false}});
    assert_eq!(gen(json!([js])).await.0, 200);
    let both = json!({"name": "j", "parameters": {"type": "object"}, "parametersJsonSchema": {"type": "object"}});
    assert_invalid(&gen(json!([ok, both])).await, "* GenerateContentRequest.tools[0].function_declarations[1]: parameters and parameters_json_schema are mutually exclusive\n");
    // … and an unknown field for Claude.
    let (s, v) = generate(
        &fake,
        &at,
        Some(UA),
        &with_tools("claude-sonnet-4-6", json!([js])),
    )
    .await;
    assert_eq!((s, message(&v)), (400, "Invalid JSON payload received. Unknown name \"parametersJsonSchema\" at 'request.tools[0].function_declarations[0]': Cannot find field."));
    // Schema checks hold with strictness off.
    fake.set_strict_envelope(false).await;
    assert_eq!(
        gen(json!([{"name": "g", "parameters": {"type": "object", "properties": {"a": {}}}}]))
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn claude_generation_limits() {
    let fake = fake().await;
    let at = fake.access_token_for(A).await;
    let mut b = with_tools(
        "claude-sonnet-4-6",
        json!([{"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}]),
    );
    b["request"].as_object_mut().unwrap().remove("toolConfig");
    assert_invalid(&generate(&fake, &at, Some(UA), &b).await,
        "Invalid envelope: request.toolConfig.functionCallingConfig.mode must be \"VALIDATED\" for claude-sonnet-4-6 with tools, got nothing.");
    let mut r = text_request("hi");
    r["generationConfig"] = json!({"maxOutputTokens": 100000});
    let (s, v) = generate(&fake, &at, Some(UA), &ag("claude-sonnet-4-6", "proj-a", r)).await;
    assert_eq!(s, 400);
    assert_eq!(
        message(&v),
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-6"}}"#
    );
    let mut r = text_request("hi");
    r["generationConfig"] =
        json!({"maxOutputTokens": 2048, "thinkingConfig": {"thinkingBudget": 4096}});
    let (_, v) = generate(&fake, &at, Some(UA), &ag("claude-sonnet-4-6", "proj-a", r)).await;
    assert!(
        message(&v).contains("`max_tokens` must be greater than `thinking.budget_tokens`"),
        "{v}"
    );
}

// ---- thought signatures ---------------------------------------------------

#[tokio::test]
async fn gemini3_signatures() {
    let fake = fake().await;
    let at = fake.access_token_for(A).await;
    let m = "gemini-3-pro-preview";
    let tools = json!([{"functionDeclarations": [{"name": "list_files", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]}]);
    let (s, v) = generate(
        &fake,
        &at,
        Some(UA),
        &ag(
            m,
            "proj-a",
            json!({"tools": tools, "contents": [user("call:list_files here")]}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let part = parts(&v)[0].clone();
    assert_eq!(part["functionCall"]["name"], "list_files");
    let sig = part["thoughtSignature"].as_str().unwrap().to_owned();
    let replay = |sig: Option<&str>| {
        let mut call = json!({"functionCall": {"name": "list_files", "args": {"q": "here"}}});
        if let Some(s) = sig {
            call["thoughtSignature"] = json!(s);
        }
        ag(
            m,
            "proj-a",
            json!({"tools": tools, "contents": [
            user("call:list_files here"),
            {"role": "model", "parts": [call]},
            {"role": "user", "parts": [{"functionResponse": {"name": "list_files", "response": {"files": []}}}]}]}),
        )
    };
    let (s, v) = generate(&fake, &at, Some(UA), &replay(Some(&sig))).await;
    assert_eq!(
        (s, parts(&v)[0]["text"].as_str()),
        (200, Some(r#"result(list_files): {"files":[]}"#))
    );
    assert_invalid(&generate(&fake, &at, Some(UA), &replay(None)).await,
        "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:list_files` , position 2. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.");
    assert_invalid(
        &generate(&fake, &at, Some(UA), &replay(Some("bm90LWlzc3VlZA=="))).await,
        "Corrupted thought signature.",
    );
    for bypass in [
        "skip_thought_signature_validator",
        "context_engineering_is_the_way_to_go",
    ] {
        assert_eq!(
            generate(&fake, &at, Some(UA), &replay(Some(bypass)))
                .await
                .0,
            200
        );
    }
    // Gemini 2.5 does not check; strictness off does not turn it off.
    let mut b = replay(None);
    b["model"] = json!("gemini-2.5-pro");
    assert_eq!(generate(&fake, &at, Some(UA), &b).await.0, 200);
    fake.set_strict_envelope(false).await;
    assert_eq!(generate(&fake, &at, Some(UA), &replay(None)).await.0, 400);
}

#[tokio::test]
async fn claude_thinking_and_tool_ids() {
    let fake = fake().await;
    let at = fake.access_token_for(A).await;
    let m = "claude-opus-4-6-thinking";
    let tools = json!([{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]}]);
    let req = |contents: Value| {
        ag(
            m,
            "proj-a",
            json!({"tools": tools, "toolConfig": {"functionCallingConfig": {"mode": "VALIDATED"}},
            "generationConfig": {"maxOutputTokens": 8192, "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}},
            "contents": contents}),
        )
    };
    let (s, v) = generate(
        &fake,
        &at,
        Some(UA),
        &req(json!([user("call:get_weather Paris")])),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let ps = parts(&v).clone();
    assert_eq!(ps[0]["thought"], true);
    let thought_sig = ps[0]["thoughtSignature"].as_str().unwrap().to_owned();
    let id = ps[1]["functionCall"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("toolu_"), "{id}");
    assert!(
        v["response"]["usageMetadata"]["thoughtsTokenCount"]
            .as_u64()
            .unwrap()
            > 0
    );
    let history = |sig: &str, result_id: &str| {
        json!([
        user("call:get_weather Paris"),
        {"role": "model", "parts": [{"thought": true, "text": "Thinking it over.", "thoughtSignature": sig}, ps[1].clone()]},
        {"role": "user", "parts": [{"functionResponse": {"id": result_id, "name": "get_weather", "response": {"t": 21}}}]}])
    };
    let (s, v) = generate(&fake, &at, Some(UA), &req(history(&thought_sig, &id))).await;
    assert_eq!(
        (s, parts(&v)[1]["text"].as_str()),
        (200, Some(r#"result(get_weather): {"t":21}"#)),
        "{v}"
    );
    let (s, v) = generate(
        &fake,
        &at,
        Some(UA),
        &req(history("skip_thought_signature_validator", &id)),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        message(&v),
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages.1.content.0: Invalid `signature` in `thinking` block"}}"#
    );
    let (_, v) = generate(
        &fake,
        &at,
        Some(UA),
        &req(history(&thought_sig, "toolu_bogus")),
    )
    .await;
    assert_eq!(
        message(&v),
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_bogus. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."}}"#
    );
    // Streaming: the thought part comes alone, first.
    let resp = client()
        .post(fake.url("v1internal:streamGenerateContent?alt=sse"))
        .bearer_auth(&at)
        .header("user-agent", UA)
        .json(&req(json!([user("hello")])))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(
        events[0]["response"]["candidates"][0]["content"]["parts"][0]["thought"],
        true
    );
    let answer: String = events[1..]
        .iter()
        .map(|e| {
            e["response"]["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(answer, "echo(a@example.com): hello");
}

// ---- scripted agent turn --------------------------------------------------

#[tokio::test]
async fn scripted_agent_turn() {
    let fake = fake().await;
    let at = fake.access_token_for(A).await;
    let bash = json!([{"functionDeclarations": [
        {"name": "Read", "description": "Reads a file", "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}},
        {"name": "Bash", "description": "Executes a bash command", "parameters": {"type": "object",
            "properties": {"command": {"type": "string"}, "description": {"type": "string"}}, "required": ["command", "description"]}}]}]);
    let sys = json!({"parts": [{"text": "You are a CLI."}]});
    let first = ag(
        "gemini-2.5-pro",
        "proj-a",
        json!({"tools": bash, "systemInstruction": sys,
        "contents": [user("Please RUN: echo MAGIC-4242\nthen tell me")]}),
    );
    let (s, v) = generate(&fake, &at, Some(UA), &first).await;
    assert_eq!(s, 200, "{v}");
    let call = parts(&v)[0]["functionCall"].clone();
    assert_eq!(call["name"], "Bash");
    assert_eq!(
        call["args"],
        json!({"command": "echo MAGIC-4242", "description": "run it"})
    );
    let id = call["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("call_"), "{id}");
    let second = ag(
        "gemini-2.5-pro",
        "proj-a",
        json!({"tools": bash, "systemInstruction": sys, "contents": [
        user("Please RUN: echo MAGIC-4242\nthen tell me"),
        {"role": "model", "parts": [{"functionCall": call}]},
        {"role": "user", "parts": [{"functionResponse": {"id": id, "name": "Bash", "response": {"output": "MAGIC-4242\n"}}}]}]}),
    );
    let (s, v) = generate(&fake, &at, Some(UA), &second).await;
    assert_eq!(
        (s, parts(&v)[0]["text"].as_str()),
        (200, Some("The command printed: MAGIC-4242"))
    );
    // Claude ids are toolu_<n>; Codex's array-command shell.
    let shell = json!([{"functionDeclarations": [{"name": "shell", "parameters": {"type": "object",
        "properties": {"command": {"type": "array", "items": {"type": "string"}}}}}]}]);
    let (s, v) = generate(&fake, &at, Some(UA), &ag("claude-sonnet-4-6", "proj-a", json!({"tools": shell,
        "toolConfig": {"functionCallingConfig": {"mode": "VALIDATED"}}, "contents": [user("RUN: ls /")]}))).await;
    assert_eq!(s, 200, "{v}");
    let call = parts(&v)[0]["functionCall"].clone();
    assert_eq!(call["args"], json!({"command": ["bash", "-lc", "ls /"]}));
    assert!(call["id"].as_str().unwrap().starts_with("toolu_"));
    // Without an id (matched by the shell tool's name), `content` text.
    let third = ag(
        "claude-sonnet-4-6",
        "proj-a",
        json!({"tools": shell,
        "toolConfig": {"functionCallingConfig": {"mode": "VALIDATED"}}, "contents": [
        user("RUN: ls /"),
        {"role": "model", "parts": [{"functionCall": call.clone()}]},
        {"role": "user", "parts": [{"functionResponse": {"id": call["id"], "name": "shell", "response": {"content": [{"type": "text", "text": "bin etc"}]}}}]}]}),
    );
    let (_, v) = generate(&fake, &at, Some(UA), &third).await;
    assert_eq!(parts(&v)[0]["text"], "The command printed: bin etc");
    // The Gemini CLI's tool on gemini-3 (signature on the call), streamed.
    let run = json!([{"functionDeclarations": [{"name": "run_shell_command",
        "parametersJsonSchema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}]}]);
    let resp = client()
        .post(fake.url("v1internal:streamGenerateContent?alt=sse"))
        .bearer_auth(&at)
        .header("user-agent", UA)
        .json(&ag(
            "gemini-3-flash",
            "proj-a",
            json!({"tools": run, "contents": [user("RUN: echo hi")]}),
        ))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    let ev: Value = serde_json::from_str(
        text.split("\n\n")
            .next()
            .unwrap()
            .strip_prefix("data: ")
            .unwrap(),
    )
    .unwrap();
    let part = &ev["response"]["candidates"][0]["content"]["parts"][0];
    assert_eq!(part["functionCall"]["args"], json!({"command": "echo hi"}));
    assert!(part["thoughtSignature"].is_string());
    // No shell tool: the plain echo.
    let (_, v) = generate(
        &fake,
        &at,
        Some(UA),
        &ag("gemini-2.5-pro", "proj-a", text_request("RUN: ls")),
    )
    .await;
    assert_eq!(parts(&v)[0]["text"], "echo(a@example.com): RUN: ls");
}

// ---- countTokens, onboarding, models ----------------------------------------

#[tokio::test]
async fn count_tokens() {
    let fake = fake().await;
    let at = fake.access_token_for(A).await;
    let body = json!({"request": {"model": "models/gemini-2.5-pro", "contents": [user("one two three"), user("four")],
        "systemInstruction": {"parts": [{"text": "be brief"}]}, "tools": []}});
    let (s, v) = post(&fake, "countTokens", &at, Some(UA), &body).await;
    assert_eq!((s, v), (200, json!({"totalTokens": 6})));
    assert_eq!(
        post(&fake, "countTokens", &at, Some(UA), &json!({}))
            .await
            .0,
        400
    );
    assert_eq!(
        post(&fake, "countTokens", "bad", Some(UA), &body).await.0,
        401
    );
    let stats = fake.stats().await;
    assert_eq!(stats.count_tokens_calls, 3);
    assert_eq!(
        stats
            .last_request(Endpoint::CountTokens)
            .unwrap()
            .model
            .as_deref(),
        Some("gemini-2.5-pro")
    );
}

#[tokio::test]
async fn onboarding_over_http() {
    let fake = fake().await;
    let c = client();
    let (s, _) = json_of(c.post(fake.url("/_fake/accounts"))
        .json(&json!({"email": "n@example.com", "refresh_token": "1//rt-n", "onboarded": false, "onboard_polls": 2, "project_id": "proj-n"}))
        .send().await.unwrap()).await;
    assert_eq!(s, 200);
    let at = fake.access_token_for("n@example.com").await;
    let (_, v) = post(
        &fake,
        "loadCodeAssist",
        &at,
        Some(UA),
        &json!({"metadata": {"ideType": "ANTIGRAVITY"}}),
    )
    .await;
    assert!(
        v.get("currentTier").is_none() && v.get("cloudaicompanionProject").is_none(),
        "{v}"
    );
    assert_eq!(
        v["allowedTiers"][0],
        json!({"id": "free-tier", "name": "Gemini Code Assist for individuals",
        "description": "Gemini Code Assist for individuals, at no cost.", "userDefinedCloudaicompanionProject": false, "isDefault": true})
    );
    // No project yet: every project is refused.
    assert_eq!(
        generate(
            &fake,
            &at,
            Some(UA),
            &ag("gemini-2.5-pro", "proj-n", text_request("x"))
        )
        .await
        .0,
        403
    );
    let (s, v) = post(
        &fake,
        "onboardUser",
        &at,
        Some(UA),
        &json!({"tierId": "free-tier", "cloudaicompanionProject": "proj-n", "metadata": {}}),
    )
    .await;
    assert_eq!((s, message(&v)), (400, "Precondition Failed"));
    assert_eq!(v["error"]["status"], "FAILED_PRECONDITION");
    let (s, op) = post(
        &fake,
        "onboardUser",
        &at,
        Some(UA),
        &json!({"tierId": "free-tier", "metadata": {}}),
    )
    .await;
    assert_eq!((s, &op["done"]), (200, &json!(false)));
    let name = op["name"].as_str().unwrap().to_owned();
    let poll = || {
        c.get(fake.url(&format!("v1internal/{name}")))
            .bearer_auth(&at)
            .send()
    };
    let (s, v) = json_of(poll().await.unwrap()).await;
    assert_eq!((s, &v["done"]), (200, &json!(false)));
    // The second poll (a re-POST) is done.
    let (_, v) = post(
        &fake,
        "onboardUser",
        &at,
        Some(UA),
        &json!({"tier_id": "free-tier"}),
    )
    .await;
    assert_eq!(
        v,
        json!({"name": name, "done": true, "response": {
        "@type": "type.googleapis.com/google.internal.cloud.code.v1internal.OnboardUserResponse",
        "cloudaicompanionProject": {"id": "proj-n", "name": "proj-n"}}})
    );
    let (_, v) = json_of(poll().await.unwrap()).await;
    assert_eq!(v["done"], true);
    let (_, v) = post(&fake, "loadCodeAssist", &at, Some(UA), &json!({})).await;
    assert_eq!(
        (
            v["currentTier"]["id"].as_str(),
            v["cloudaicompanionProject"].as_str()
        ),
        (Some("free-tier"), Some("proj-n"))
    );
    assert_eq!(
        generate(
            &fake,
            &at,
            Some(UA),
            &ag("gemini-2.5-pro", "proj-n", text_request("x"))
        )
        .await
        .0,
        200
    );
    // Unknown operation; another account's operation.
    let (s, _) = json_of(
        c.get(fake.url("v1internal/operations/nope"))
            .bearer_auth(&at)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 404);
    let at_a = fake.access_token_for(A).await;
    let (s, _) = json_of(
        c.get(fake.url(&format!("v1internal/{name}")))
            .bearer_auth(&at_a)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 404);
    // Ineligible, as a reason-code string.
    let (s, _) = json_of(c.post(fake.url("/_fake/accounts"))
        .json(&json!({"email": "i@example.com", "refresh_token": "1//rt-i", "ineligible": "INELIGIBLE_ACCOUNT"}))
        .send().await.unwrap()).await;
    assert_eq!(s, 200);
    let at_i = fake.access_token_for("i@example.com").await;
    let (_, v) = post(&fake, "loadCodeAssist", &at_i, Some(UA), &json!({})).await;
    assert_eq!(v["ineligibleTiers"][0]["reasonCode"], "INELIGIBLE_ACCOUNT");
    assert!(v.get("currentTier").is_none());
    let (s, v) = post(
        &fake,
        "onboardUser",
        &at_i,
        Some(UA),
        &json!({"tierId": "free-tier"}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["status"].as_str()),
        (400, Some("FAILED_PRECONDITION"))
    );
    assert_eq!(
        message(&v),
        "Your current account is not eligible for Gemini Code Assist for individuals."
    );
    let accounts = fake.accounts().await;
    let setup: Vec<_> = accounts
        .iter()
        .map(|a| (a.email.as_str(), a.setup.as_str()))
        .collect();
    assert!(
        setup.contains(&("i@example.com", "ineligible"))
            && setup.contains(&("n@example.com", "onboarded")),
        "{setup:?}"
    );
    let stats = fake.stats().await;
    assert_eq!((stats.onboard_user_calls, stats.operation_calls), (4, 4));
}

#[tokio::test]
async fn models_per_client() {
    let fake = fake().await;
    let at = fake.access_token_for(A).await;
    let at_g = fake.access_token_for(G).await;
    let (s, v) = post(
        &fake,
        "fetchAvailableModels",
        &at,
        Some(UA),
        &json!({"project": "proj-a"}),
    )
    .await;
    assert_eq!(s, 200);
    let c = &v["models"]["claude-sonnet-4-6"];
    assert_eq!(
        (
            c["displayName"].as_str(),
            c["maxOutputTokens"].as_u64(),
            c["supportsThinking"].as_bool()
        ),
        (Some("Claude Sonnet 4.6"), Some(64000), Some(true))
    );
    assert!(c["maxTokens"].as_u64().unwrap() > 0);
    assert_eq!(c["quotaInfo"]["remainingFraction"], 1.0);
    for m in [
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-3-pro-preview",
        "gemini-3-flash",
        "claude-opus-4-6-thinking",
    ] {
        assert!(v["models"][m]["quotaInfo"]["resetTime"].is_string(), "{m}");
    }
    assert_eq!(
        v["deprecatedModelIds"],
        json!({"claude-sonnet-4-5": {"newModelId": "claude-sonnet-4-6"}})
    );
    let (_, v) = post(
        &fake,
        "fetchAvailableModels",
        &at_g,
        Some(CLI_UA),
        &json!({}),
    )
    .await;
    assert!(v["models"].get("claude-sonnet-4-6").is_none());
    assert_eq!(v["models"]["gemini-3-flash"]["maxOutputTokens"], 65536);
    assert_eq!(v["deprecatedModelIds"], json!({}));
    let (s, v) = post(
        &fake,
        "fetchAvailableModels",
        &at,
        Some(UA),
        &json!({"project": "proj-g"}),
    )
    .await;
    assert_eq!(
        (s, message(&v)),
        (403, "Permission denied on resource project proj-g.")
    );
}

// ---- faults ---------------------------------------------------------------

#[tokio::test]
async fn google_error_faults() {
    let fake = fake().await;
    let at = fake.access_token_for(A).await;
    let body = ag("claude-sonnet-4-6", "proj-a", text_request("x"));
    let c = client();
    let push = |spec: Value| {
        let req = c.post(fake.url("/_fake/faults")).json(&spec);
        async move { assert_eq!(req.send().await.unwrap().status(), 200) }
    };
    push(json!({"endpoint": "generate", "kind": "quota_exhausted", "retry_delay": "33740.9s"}))
        .await;
    let (s, v) = generate(&fake, &at, Some(UA), &body).await;
    assert_eq!(s, 429);
    assert_eq!(v["error"]["details"][0]["reason"], "QUOTA_EXHAUSTED");
    assert_eq!(
        v["error"]["details"][0]["metadata"]["model"],
        "claude-sonnet-4-6"
    );
    assert_eq!(
        v["error"]["details"][0]["metadata"]["quotaResetDelay"],
        "33740.9s"
    );
    assert_eq!(v["error"]["details"][1]["retryDelay"], "33740.9s");
    // 166 hours, in the Go form; only for one model.
    fake.push_fault(
        FaultSpec::quota_exhausted(
            Endpoint::Any,
            go_duration(std::time::Duration::from_secs(166 * 3600)),
        )
        .for_model("claude-sonnet-4-6"),
    )
    .await
    .unwrap();
    assert_eq!(
        generate(
            &fake,
            &at,
            Some(UA),
            &ag("gemini-2.5-pro", "proj-a", text_request("x"))
        )
        .await
        .0,
        200
    );
    let (_, v) = generate(&fake, &at, Some(UA), &body).await;
    assert_eq!(
        v["error"]["details"][0]["metadata"]["quotaResetDelay"],
        "166h0m0s"
    );
    assert_eq!(v["error"]["details"][1]["retryDelay"], "597600s");
    assert_eq!(
        message(&v),
        "You have exhausted your capacity on this model. Your quota will reset after 166h0m0s."
    );
    push(json!({"endpoint": "stream", "kind": "model_capacity_exhausted"})).await;
    let (s, v) = post(&fake, "streamGenerateContent?alt=sse", &at, Some(UA), &body).await;
    assert_eq!(
        (s, v),
        (
            503,
            errors::model_capacity_exhausted_body(503, "claude-sonnet-4-6")
        )
    );
    push(json!({"kind": "validation_required", "validation_url": "https://accounts.google.com/v?x=1"})).await;
    let (s, v) = post(&fake, "loadCodeAssist", &at, Some(UA), &json!({})).await;
    assert_eq!(
        (s, v),
        (
            403,
            errors::validation_required_body("https://accounts.google.com/v?x=1")
        )
    );
    push(json!({"endpoint": "generate", "kind": "service_disabled"})).await;
    let (s, v) = generate(&fake, &at, Some(UA), &body).await;
    assert_eq!((s, v), (403, errors::service_disabled_body("proj-a")));
    push(json!({"endpoint": "fetchAvailableModels", "kind": "unauthenticated"})).await;
    let (s, v) = post(&fake, "fetchAvailableModels", &at, Some(UA), &json!({})).await;
    assert_eq!((s, v), (401, errors::unauthenticated_body()));
    push(json!({"endpoint": "generate", "kind": "rate_limit_exceeded", "model": "claude-sonnet-4-6", "retry_delay": "479.417207ms"})).await;
    let (_, v) = generate(&fake, &at, Some(UA), &body).await;
    assert_eq!(v["error"]["details"][1]["retryDelay"], "0.479417207s");
    let (s, _) = json_of(
        c.post(fake.url("/_fake/faults"))
            .json(&json!({"kind": "quota_exhausted", "retry_delay": "soon"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    assert!(fake.pending_faults().await.is_empty());
    let faults: Vec<_> = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r.outcome == Outcome::Fault)
        .map(|r| r.status.unwrap())
        .collect();
    assert_eq!(faults, vec![429, 429, 503, 403, 403, 401, 429]);
}

// ---- Google in 2026 (GOOGLE-2026.md) ----------------------------------------

const BARE_429: &str = r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#;

/// `POST <base>/v1internal:<method>`: status and body text.
async fn post_text(base: &str, method: &str, at: &str, ua: &str, body: &Value) -> (u16, String) {
    let resp = client()
        .post(format!("{base}/v1internal:{method}"))
        .bearer_auth(at)
        .header("user-agent", ua)
        .json(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn with_system(text: &str) -> Value {
    json!({"systemInstruction": {"role": "user", "parts": [{"text": "Be brief."}, {"text": text}]},
           "contents": [user("hi")]})
}

#[tokio::test]
async fn consumer_and_enterprise_accounts_and_the_prod_host() {
    assert_eq!(bare_429_body(), BARE_429);
    assert_eq!(errors::BARE_429_BODY, BARE_429);
    const E: &str = "e@example.com";
    let fake = FakeGoogle::start_with_hosts(&["daily", "prod"])
        .await
        .unwrap();
    fake.add_account(AccountSpec::new(A, "1//rt-a").project_id("proj-a"))
        .await;
    // Enterprise through the control API.
    let resp = client()
        .post(fake.url("/_fake/accounts"))
        .json(&json!({"email": E, "refresh_token": "1//rt-e", "project_id": "proj-e", "enterprise": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    fake.add_account(
        AccountSpec::new(G, "1//rt-g")
            .project_id("proj-g")
            .gemini_cli(),
    )
    .await;
    let accounts = fake.accounts().await;
    assert_eq!(
        accounts
            .iter()
            .map(|a| (a.email.as_str(), a.enterprise))
            .collect::<Vec<_>>(),
        [(A, false), (E, true), (G, false)]
    );
    let daily = fake.base_url_of("daily").unwrap();
    let prod = fake.base_url_of("prod").unwrap();
    let (at_a, at_e, at_g) = (
        fake.access_token_for(A).await,
        fake.access_token_for(E).await,
        fake.access_token_for(G).await,
    );

    // loadCodeAssist: the tier and gcpManaged (on any host).
    let (s, v) = post_text(&prod, "loadCodeAssist", &at_a, UA, &json!({})).await;
    let v: Value = serde_json::from_str(&v).unwrap();
    assert_eq!(s, 200);
    assert_eq!(v["currentTier"]["id"], "free-tier");
    assert_eq!(
        v["currentTier"]["name"],
        "Gemini Code Assist for individuals"
    );
    assert_eq!(v["gcpManaged"], false);
    assert_eq!(v["cloudaicompanionProject"], "proj-a");
    let (_, v) = post_text(&daily, "loadCodeAssist", &at_e, UA, &json!({})).await;
    let v: Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["currentTier"]["id"], "standard-tier");
    assert_eq!(v["gcpManaged"], true);
    assert_eq!(v["cloudaicompanionProject"], "proj-e");

    // A consumer account on prod: the bare 429, for generate, stream and models.
    let body_a = ag("gemini-2.5-pro", "proj-a", text_request("hi"));
    for method in ["generateContent", "streamGenerateContent?alt=sse"] {
        assert_eq!(
            post_text(&prod, method, &at_a, UA, &body_a).await,
            (429, BARE_429.to_owned()),
            "{method}"
        );
        assert_eq!(post_text(&daily, method, &at_a, UA, &body_a).await.0, 200);
    }
    assert_eq!(
        post_text(&prod, "fetchAvailableModels", &at_a, UA, &json!({})).await,
        (429, BARE_429.to_owned())
    );
    assert_eq!(
        post_text(&daily, "fetchAvailableModels", &at_a, UA, &json!({}))
            .await
            .0,
        200
    );
    // Enterprise on prod: served, but no Gemini 3.8 there.
    let body_e = |model| ag(model, "proj-e", text_request("hi"));
    assert_eq!(
        post_text(
            &prod,
            "generateContent",
            &at_e,
            UA,
            &body_e("gemini-2.5-pro")
        )
        .await
        .0,
        200
    );
    let (s, t) = post_text(
        &prod,
        "generateContent",
        &at_e,
        UA,
        &body_e("gemini-3.8-flash-high"),
    )
    .await;
    assert_eq!((s, t), (404, errors::not_found_body().to_string()));
    assert_eq!(
        post_text(
            &daily,
            "streamGenerateContent?alt=sse",
            &at_e,
            UA,
            &body_e("gemini-3.8-flash-high")
        )
        .await
        .0,
        200
    );
    let (_, t) = post_text(&prod, "fetchAvailableModels", &at_e, UA, &json!({})).await;
    let v: Value = serde_json::from_str(&t).unwrap();
    assert!(v["models"].get("gemini-3.8-flash-high").is_none(), "{t}");
    assert!(v["models"].get("gemini-3.7-flash-high").is_some(), "{t}");
    let (_, t) = post_text(&daily, "fetchAvailableModels", &at_e, UA, &json!({})).await;
    let v: Value = serde_json::from_str(&t).unwrap();
    assert!(v["models"].get("gemini-3.8-flash-high").is_some(), "{t}");
    // Gemini CLI's own host is prod: its tokens are served there.
    assert_eq!(
        post_text(
            &prod,
            "generateContent",
            &at_g,
            CLI_UA,
            &cli("gemini-2.5-pro", "proj-g", text_request("hi"))
        )
        .await
        .0,
        200
    );
    let stats = fake.stats().await;
    let prod_generates: Vec<_> = stats
        .requests
        .iter()
        .filter(|r| r.host == "prod" && r.endpoint == Some(Endpoint::Generate))
        .map(|r| (r.status, r.outcome, r.message.as_deref()))
        .collect();
    assert_eq!(
        prod_generates[0],
        (
            Some(429),
            Outcome::Refused,
            Some("Resource has been exhausted (e.g. check quota).")
        )
    );

    // A fake with one host stands for whichever host: never this 429.
    let one = FakeGoogle::start().await.unwrap();
    one.add_account(AccountSpec::new(A, "1//rt-a").project_id("proj-a"))
        .await;
    let at = one.access_token_for(A).await;
    assert_eq!(
        post_text(one.base_url(), "generateContent", &at, UA, &body_a)
            .await
            .0,
        200
    );
    assert_eq!(
        post_text(
            one.base_url(),
            "generateContent",
            &at,
            UA,
            &ag("gemini-3.8-flash-low", "proj-a", text_request("hi"))
        )
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn refused_system_instructions_answer_the_bare_429_first() {
    let fake = fake().await;
    assert_eq!(
        fake.settings().refused_phrases,
        [
            "You are Hermes Agent, an intelligent AI assistant created by Nous Research.",
            "You are Codex, an agent based on GPT-5.",
            "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
            "x-anthropic-billing-header:",
            "<system-conventions>",
        ]
    );
    let at = fake.access_token_for(A).await;
    let at_g = fake.access_token_for(G).await;
    // Before scripted faults and quota.
    fake.push_fault(FaultSpec::status(Endpoint::Any, 503).forever())
        .await
        .unwrap();
    fake.set_quota(QuotaSpec::new(A, "gemini-2.5-pro", 0.0))
        .await
        .unwrap();
    for phrase in DEFAULT_REFUSED_PHRASES {
        let text = format!("{phrase} cc_version=2.1.274; cc_entrypoint=cli;");
        let body = ag("gemini-2.5-pro", "proj-a", with_system(&text));
        for method in ["generateContent", "streamGenerateContent?alt=sse"] {
            assert_eq!(
                post_text(fake.base_url(), method, &at, UA, &body).await,
                (429, BARE_429.to_owned()),
                "{phrase} {method}"
            );
        }
    }
    // Any account and client; snake_case too.
    let body = cli(
        "gemini-2.5-pro",
        "proj-g",
        json!({"system_instruction": {"parts": [{"text": "<system-conventions>x</system-conventions>"}]},
               "contents": [user("hi")]}),
    );
    assert_eq!(
        post_text(fake.base_url(), "generateContent", &at_g, CLI_UA, &body).await,
        (429, BARE_429.to_owned())
    );
    let refused = fake
        .requests()
        .await
        .iter()
        .filter(|r| r.outcome == Outcome::ContentRefused)
        .count();
    assert_eq!(refused, 11);
    assert_eq!(
        fake.pending_faults().await.len(),
        1,
        "the fault was not used"
    );
    fake.clear_faults().await;
    // One zero-width character after the first rune flips it (CPA `cloak_obfuscate.go`).
    let body = ag(
        "gemini-2.5-flash",
        "proj-a",
        with_system("Y\u{200b}ou are Codex, an agent based on GPT-5."),
    );
    assert_eq!(
        post_text(fake.base_url(), "generateContent", &at, UA, &body)
            .await
            .0,
        200
    );
    // The list is a setting (over HTTP too); `[]` turns it off.
    let resp = client()
        .post(fake.url("/_fake/settings"))
        .json(&json!({"refused_phrases": ["Forbidden words"]}))
        .send()
        .await
        .unwrap();
    let (s, v) = json_of(resp).await;
    assert_eq!(
        (s, &v["refused_phrases"]),
        (200, &json!(["Forbidden words"]))
    );
    let codex = ag(
        "gemini-2.5-flash",
        "proj-a",
        with_system("You are Codex, an agent based on GPT-5."),
    );
    assert_eq!(
        post_text(fake.base_url(), "generateContent", &at, UA, &codex)
            .await
            .0,
        200
    );
    let body = ag("gemini-2.5-flash", "proj-a", with_system("Forbidden words"));
    assert_eq!(
        post_text(fake.base_url(), "generateContent", &at, UA, &body)
            .await
            .0,
        429
    );
    fake.set_settings(SettingsPatch {
        refused_phrases: Some(Vec::new()),
        ..SettingsPatch::default()
    })
    .await;
    assert_eq!(
        post_text(fake.base_url(), "generateContent", &at, UA, &body)
            .await
            .0,
        200
    );
    // An invalid token is still a 401.
    fake.set_settings(SettingsPatch {
        refused_phrases: Some(vec!["Forbidden words".into()]),
        ..SettingsPatch::default()
    })
    .await;
    assert_eq!(
        post_text(fake.base_url(), "generateContent", "bad", UA, &body)
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn gemini_38_needs_antigravity_2_11_and_family_names_are_not_models() {
    assert_eq!(UA, "antigravity/hub/2.13.0 darwin/arm64");
    let fake = fake().await;
    let at = fake.access_token_for(A).await;
    let m38 = ag("gemini-3.8-flash-medium", "proj-a", text_request("hi"));
    for ua in [
        UA,
        "antigravity/hub/2.11.0 (os_type=darwin; arch=arm64; aidev_client; cl=963137146; auth_method=oauth)",
        "antigravity/cli/1.1.23 (aidev_client; os_type=linux; arch=amd64; cl=974125021; auth_method=consumer)",
    ] {
        assert_eq!(generate(&fake, &at, Some(ua), &m38).await.0, 200, "{ua}");
    }
    for ua in [
        "antigravity/hub/2.10.3 darwin/arm64",
        "antigravity/hub/2.1.1 darwin/arm64",
    ] {
        assert_eq!(
            generate(&fake, &at, Some(ua), &m38).await,
            (404, errors::not_found_body()),
            "{ua}"
        );
    }
    // 2.9.x still serves the other models.
    assert_eq!(
        generate(
            &fake,
            &at,
            Some("antigravity/hub/2.9.1 darwin/arm64"),
            &ag("gemini-3.7-flash-high", "proj-a", text_request("hi"))
        )
        .await
        .0,
        200
    );
    for bare in ["gemini-3.8-flash", "gemini-3.7-flash"] {
        let (s, v) = generate(
            &fake,
            &at,
            Some(UA),
            &ag(bare, "proj-a", text_request("hi")),
        )
        .await;
        assert_eq!((s, v), (404, errors::not_found_body()), "{bare}");
    }
}

#[tokio::test]
async fn the_2026_models_are_listed() {
    let fake = fake().await;
    let at = fake.access_token_for(A).await;
    let at_g = fake.access_token_for(G).await;
    let (s, v) = post(&fake, "fetchAvailableModels", &at, Some(UA), &json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(v["defaultAgentModelId"], "gemini-3.7-flash-high");
    for m in [
        "gemini-3.8-flash-high",
        "gemini-3.8-flash-medium",
        "gemini-3.8-flash-low",
        "gemini-3.7-flash-high",
        "gemini-3.7-flash-medium",
        "gemini-3.7-flash-low",
        "gemini-3.1-flash-lite",
        "gemini-2.5-pro",
        "claude-sonnet-4-6",
    ] {
        let q = &v["models"][m]["quotaInfo"];
        assert_eq!(q["remainingFraction"], 1.0, "{m}");
        assert!(q["resetTime"].as_str().unwrap().ends_with('Z'), "{m}");
    }
    assert!(v["models"].get("gemini-3.8-flash").is_none());
    let (_, v) = post(
        &fake,
        "fetchAvailableModels",
        &at_g,
        Some(CLI_UA),
        &json!({}),
    )
    .await;
    assert!(v["models"].get("gemini-3.8-flash-high").is_none());
    assert!(v.get("defaultAgentModelId").is_none());
}

#[tokio::test]
async fn the_2026_faults() {
    let fake = fake().await;
    let at = fake.access_token_for(A).await;
    let body = ag("gemini-2.5-pro", "proj-a", text_request("x"));
    let base = fake.base_url().to_owned();
    fake.push_fault(FaultSpec::tos_violation(Endpoint::Generate))
        .await
        .unwrap();
    assert_eq!(
        post_text(&base, "generateContent", &at, UA, &body).await,
        (403, r#"{"error":{"code":403,"message":"This service has been disabled in this account for violation of Terms of Service. Please submit an appeal to continue using this product.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"TOS_VIOLATION","domain":"cloudcode-pa.googleapis.com","metadata":{"uiMessage":"true","appeal_url_link_text":"Submit Appeal","appeal_url":"https://forms.gle/hGzM9MEUv2azZsrb9"}}]}}"#.to_owned())
    );
    fake.push_fault(FaultSpec::license_required(Endpoint::Generate))
        .await
        .unwrap();
    let (s, v) = generate(&fake, &at, Some(UA), &body).await;
    assert_eq!((s, &v), (403, &errors::license_required_body()));
    assert_eq!(v["error"]["status"], "PERMISSION_DENIED");
    assert!(message(&v).starts_with(
        "You do not have a valid license of this product. Please contact your administrator"
    ));
    assert!(message(&v).ends_with("(#3501)"));
    let info = &v["error"]["details"][0];
    assert_eq!(
        (&info["reason"], &info["domain"], &info["metadata"]),
        (
            &json!("SUBSCRIPTION_REQUIRED"),
            &json!("cloudaicompanion.googleapis.com"),
            &json!({"error_number": "1001", "uiMessage": "true"})
        )
    );
    fake.push_fault(FaultSpec::unsupported_version(Endpoint::Generate))
        .await
        .unwrap();
    let resp = client()
        .post(fake.url("v1internal:generateContent"))
        .bearer_auth(&at)
        .header("user-agent", UA)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(
        resp.text().await.unwrap(),
        "This version of Antigravity is no longer supported. Please upgrade to receive the latest features."
    );
    fake.push_fault(FaultSpec::empty_stream()).await.unwrap();
    let resp = client()
        .post(fake.url("v1internal:streamGenerateContent?alt=sse"))
        .bearer_auth(&at)
        .header("user-agent", UA)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.text().await.unwrap(), "");
    fake.push_fault(FaultSpec::bare_429(Endpoint::Generate))
        .await
        .unwrap();
    assert_eq!(
        post_text(&base, "generateContent", &at, UA, &body).await,
        (429, BARE_429.to_owned())
    );
    fake.push_fault(FaultSpec::weekly_quota(Endpoint::Generate, 391_709))
        .await
        .unwrap();
    let (s, v) = generate(&fake, &at, Some(UA), &body).await;
    assert_eq!(s, 429);
    assert_eq!(
        message(&v),
        "Individual quota reached. Contact your administrator to enable overages. Resets in 108h48m29s."
    );
    assert_eq!(
        v["error"]["details"][0]["metadata"]["model"],
        "gemini-2.5-pro"
    );
    // The same over the control API, by kind name.
    for (kind, status) in [
        (
            json!({"endpoint": "generate", "kind": "tos_violation"}),
            403,
        ),
        (
            json!({"endpoint": "generate", "kind": "license_required"}),
            403,
        ),
        (
            json!({"endpoint": "generate", "kind": "unsupported_version"}),
            200,
        ),
        (json!({"endpoint": "stream", "kind": "empty_stream"}), 200),
        (json!({"endpoint": "generate", "kind": "bare_429"}), 429),
        (
            json!({"endpoint": "generate", "kind": "weekly_quota", "reset_secs": 3600}),
            429,
        ),
    ] {
        let resp = client()
            .post(fake.url("/_fake/faults"))
            .json(&kind)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{kind}");
        let method = if kind["endpoint"] == "stream" {
            "streamGenerateContent?alt=sse"
        } else {
            "generateContent"
        };
        let (s, t) = post_text(&base, method, &at, UA, &body).await;
        assert_eq!(s, status, "{kind}: {t}");
        if kind["kind"] == "weekly_quota" {
            assert!(t.contains("Resets in 1h0m0s."), "{t}");
        }
    }
    let faults = fake
        .requests()
        .await
        .iter()
        .filter(|r| r.outcome == Outcome::Fault)
        .count();
    assert_eq!(faults, 12);
}

#[tokio::test]
async fn unsupported_client_accounts_and_the_retired_gemini_cli_client() {
    const U: &str = "u@example.com";
    let fake = fake().await;
    fake.add_account(AccountSpec::new(U, "1//rt-u").ineligible("UNSUPPORTED_CLIENT"))
        .await;
    let at_u = fake.access_token_for(U).await;
    let (s, v) = post(&fake, "loadCodeAssist", &at_u, Some(UA), &json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(
        v["ineligibleTiers"],
        json!([{"reasonCode": "UNSUPPORTED_CLIENT",
                "reasonMessage": "This client is no longer supported for Gemini Code Assist for individuals. To continue using Gemini, please migrate to the Antigravity suite of products: https://antigravity.google",
                "tierId": "free-tier", "tierName": "Gemini Code Assist for individuals"}])
    );
    assert!(
        v.get("currentTier").is_none() && v.get("allowedTiers").is_none(),
        "{v}"
    );
    let (s, v) = generate(
        &fake,
        &at_u,
        Some(UA),
        &ag("gemini-2.5-pro", "fake-project-u", text_request("hi")),
    )
    .await;
    assert_eq!(
        (s, &v["error"]["status"]),
        (403, &json!("PERMISSION_DENIED"))
    );
    assert_eq!(message(&v), errors::UNSUPPORTED_CLIENT_MESSAGE);
    let (s, v) = post(
        &fake,
        "onboardUser",
        &at_u,
        Some(UA),
        &json!({"tierId": "free-tier"}),
    )
    .await;
    assert_eq!((s, message(&v)), (400, errors::UNSUPPORTED_CLIENT_MESSAGE));

    // Retiring the Gemini CLI client: G (and only G) becomes UNSUPPORTED_CLIENT.
    let at_g = fake.access_token_for(G).await;
    let at_a = fake.access_token_for(A).await;
    let g_body = cli("gemini-2.5-pro", "proj-g", text_request("hi"));
    assert_eq!(generate(&fake, &at_g, Some(CLI_UA), &g_body).await.0, 200);
    let resp = client()
        .post(fake.url("/_fake/settings"))
        .json(&json!({"retire_gemini_cli_client": true}))
        .send()
        .await
        .unwrap();
    let (s, v) = json_of(resp).await;
    assert_eq!((s, &v["retire_gemini_cli_client"]), (200, &json!(true)));
    let (_, v) = post(&fake, "loadCodeAssist", &at_g, Some(CLI_UA), &json!({})).await;
    assert_eq!(v["ineligibleTiers"][0]["reasonCode"], "UNSUPPORTED_CLIENT");
    assert!(v.get("currentTier").is_none());
    let (s, v) = generate(&fake, &at_g, Some(CLI_UA), &g_body).await;
    assert_eq!((s, message(&v)), (403, errors::UNSUPPORTED_CLIENT_MESSAGE));
    let (_, v) = post(&fake, "loadCodeAssist", &at_a, Some(UA), &json!({})).await;
    assert_eq!(v["currentTier"]["id"], "free-tier");
    assert_eq!(
        generate(
            &fake,
            &at_a,
            Some(UA),
            &ag("gemini-2.5-pro", "proj-a", text_request("hi"))
        )
        .await
        .0,
        200
    );
    fake.set_settings(SettingsPatch {
        retire_gemini_cli_client: Some(false),
        ..SettingsPatch::default()
    })
    .await;
    assert_eq!(generate(&fake, &at_g, Some(CLI_UA), &g_body).await.0, 200);
}
