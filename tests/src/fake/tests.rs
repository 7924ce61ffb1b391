//! The fake, driven over real HTTP with reqwest.

use std::error::Error as _;
use std::time::{Duration, Instant};

use base64::Engine;
use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::*;

const A: &str = "a@example.com";
const B: &str = "b@example.com";

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn fake_with_accounts() -> FakeGoogle {
    let fake = FakeGoogle::start().await.unwrap();
    fake.add_account(AccountSpec::new(A, "1//rt-a").project_id("proj-a"))
        .await;
    fake.add_account(AccountSpec::new(B, "1//rt-b")).await;
    fake
}

/// A refresh with the Antigravity client (the accounts' default).
async fn refresh(c: &reqwest::Client, fake: &FakeGoogle, rt: &str) -> reqwest::Response {
    refresh_with(
        c,
        fake,
        rt,
        ANTIGRAVITY_CLIENT_ID,
        ANTIGRAVITY_CLIENT_SECRET,
    )
    .await
}

async fn refresh_with(
    c: &reqwest::Client,
    fake: &FakeGoogle,
    rt: &str,
    client_id: &str,
    client_secret: &str,
) -> reqwest::Response {
    c.post(fake.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ])
        .send()
        .await
        .unwrap()
}

async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A fresh access token through `/token`.
async fn access_token(c: &reqwest::Client, fake: &FakeGoogle, rt: &str) -> String {
    let (status, body) = json_of(refresh(c, fake, rt).await).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// The Antigravity envelope (contract) around `request`.
fn envelope(model: &str, project: &str, mut request: Value) -> Value {
    request["sessionId"] = json!("-4242");
    json!({"project": project, "model": model, "userAgent": "antigravity", "requestType": "agent",
           "requestId": "agent-0000-1111", "request": request})
}

/// A one-text request of account A (project `proj-a`).
fn gen_body(text: &str) -> Value {
    gen_body_of("proj-a", text)
}

/// A one-text request of account B (its default project).
fn gen_body_b(text: &str) -> Value {
    gen_body_of("fake-project-b", text)
}

fn gen_body_of(project: &str, text: &str) -> Value {
    envelope(
        "gemini-2.5-pro",
        project,
        json!({"contents": [{"role": "user", "parts": [{"text": text}]}]}),
    )
}

async fn call(
    c: &reqwest::Client,
    fake: &FakeGoogle,
    method: &str,
    at: &str,
    body: &Value,
) -> reqwest::Result<reqwest::Response> {
    c.post(fake.url(&format!("v1internal:{method}")))
        .bearer_auth(at)
        .header("user-agent", ANTIGRAVITY_USER_AGENT)
        .json(body)
        .send()
        .await
}

async fn generate(c: &reqwest::Client, fake: &FakeGoogle, at: &str, body: &Value) -> (u16, Value) {
    json_of(call(c, fake, "generateContent", at, body).await.unwrap()).await
}

fn answer_text(v: &Value) -> &str {
    v["response"]["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap_or("<no text>")
}

/// The `data:` payloads of an SSE body.
fn sse_events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// A 200 SSE answer's events (at least three: the fake streams a text in
/// three pieces).
async fn streamed_events(resp: reqwest::Response) -> Vec<Value> {
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = sse_events(&resp.text().await.unwrap());
    assert!(events.len() >= 3);
    events
}

fn io_kind(e: &reqwest::Error) -> Option<std::io::ErrorKind> {
    let mut src = e.source();
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        src = s.source();
    }
    None
}

const INVALID_GRANT: &str =
    r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#;
const UNAUTHENTICATED: &str = r#"{"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.","status":"UNAUTHENTICATED"}}"#;

#[tokio::test]
async fn refresh_answers_and_counts() {
    let fake = fake_with_accounts().await;
    let c = client();
    let (status, body) = json_of(refresh(&c, &fake, "1//rt-a").await).await;
    assert_eq!(status, 200);
    assert!(body["access_token"]
        .as_str()
        .unwrap()
        .starts_with("ya29.fake-"));
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["scope"].as_str().unwrap().contains("cloud-platform"));
    assert!(body.get("refresh_token").is_none());

    let resp = refresh(&c, &fake, "1//never-issued").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.text().await.unwrap(), INVALID_GRANT);

    fake.set_expires_in(42).await;
    let (_, body) = json_of(refresh(&c, &fake, "1//rt-a").await).await;
    assert_eq!(body["expires_in"], 42);

    let stats = fake.stats().await;
    assert_eq!(stats.token_calls, 3);
    assert_eq!(stats.token_calls_for("1//rt-a"), 2);
    assert_eq!(stats.token_calls_for("1//never-issued"), 1);
    assert_eq!(stats.token_calls_by_email[A], 2);
    fake.reset_stats().await;
    assert_eq!(fake.stats().await, Stats::default());

    // Not a form, not a grant type: 400, no panic.
    let resp = c
        .post(fake.token_url())
        .body("%%%=&&")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = c
        .post(fake.token_url())
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn revoke_gives_invalid_grant_and_kills_access_tokens() {
    let fake = fake_with_accounts().await;
    let c = client();
    let at = access_token(&c, &fake, "1//rt-a").await;
    assert_eq!(generate(&c, &fake, &at, &gen_body("hi")).await.0, 200);

    fake.revoke_refresh_token("1//rt-a").await;
    let resp = refresh(&c, &fake, "1//rt-a").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.text().await.unwrap(), INVALID_GRANT);
    let resp = call(&c, &fake, "generateContent", &at, &gen_body("hi"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.text().await.unwrap(), UNAUTHENTICATED);

    // Custom answer, through the control endpoint.
    let resp = c
        .post(fake.url("/_fake/revoke"))
        .json(
            &json!({"refresh_token": "1//rt-b", "status": 401, "body": {"error": "token_revoked"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = refresh(&c, &fake, "1//rt-b").await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.text().await.unwrap(), r#"{"error":"token_revoked"}"#);

    // Re-adding (same or new token) makes the account work again.
    fake.add_account(AccountSpec::new(A, "1//rt-a2")).await;
    assert_eq!(refresh(&c, &fake, "1//rt-a").await.status(), 400);
    assert_eq!(refresh(&c, &fake, "1//rt-a2").await.status(), 200);
    fake.add_account(AccountSpec::new(B, "1//rt-b")).await;
    assert_eq!(refresh(&c, &fake, "1//rt-b").await.status(), 200);

    assert!(fake
        .revoke(RevokeSpec::new("x").answer(999, ""))
        .await
        .is_err());
}

#[tokio::test]
async fn client_checks() {
    let fake = fake_with_accounts().await;
    let c = client();
    fake.add_client(ClientSpec {
        client_id: "cid".into(),
        client_secret: "cs".into(),
    })
    .await;
    fake.add_account(AccountSpec::new("d@example.com", "1//rt-d").client_id("cid"))
        .await;
    assert_eq!(
        refresh_with(&c, &fake, "1//rt-d", "cid", "cs")
            .await
            .status(),
        200
    );
    // Both built-in clients are known; the accounts' default is Antigravity.
    assert_eq!(refresh(&c, &fake, "1//rt-a").await.status(), 200);

    // Right id, wrong secret (facts §7: google/GTMAppAuth#15).
    let wrong = refresh_with(&c, &fake, "1//rt-d", "cid", "nope").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.text().await.unwrap(),
        r#"{"error":"invalid_client","error_description":"Unauthorized"}"#
    );
    // Unknown id (facts §7: simonrob/email-oauth2-proxy#362).
    let unknown = refresh_with(&c, &fake, "1//rt-a", "nobody", "x").await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(
        unknown.text().await.unwrap(),
        r#"{"error":"invalid_client","error_description":"The OAuth client was not found."}"#
    );
    // A refresh token of another client (facts §7: baptisteArno/typebot.io#580).
    let other = refresh_with(&c, &fake, "1//rt-a", "cid", "cs").await;
    assert_eq!(other.status(), 401);
    assert_eq!(
        other.text().await.unwrap(),
        r#"{"error":"unauthorized_client","error_description":"Unauthorized"}"#
    );
    let other = refresh_with(
        &c,
        &fake,
        "1//rt-a",
        GEMINI_CLI_CLIENT_ID,
        GEMINI_CLI_CLIENT_SECRET,
    )
    .await;
    assert_eq!(other.status(), 401);
    // HTTP Basic client credentials count too.
    let basic = c
        .post(fake.token_url())
        .basic_auth("cid", Some("cs"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "1//rt-d"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 200);
    // No client at all.
    let none = c
        .post(fake.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "1//rt-a"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(none).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // DELETE: any client again, for accounts not bound to one.
    let resp = c.delete(fake.url("/_fake/client")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(fake.settings().accept_any_client);
    let any = c
        .post(fake.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "1//rt-a"),
            ("client_id", "other"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(any.status(), 200);

    // An account bound to a client refuses the others.
    fake.add_account(AccountSpec::new("c@example.com", "1//rt-c").client_id("gemini-cli"))
        .await;
    let (status, body) = json_of(refresh(&c, &fake, "1//rt-c").await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized_client"))
    );
    // Adding a client makes the fake strict again.
    fake.add_client(ClientSpec::new("cid2", "cs2")).await;
    assert!(!fake.settings().accept_any_client);
    assert_eq!(
        refresh_with(&c, &fake, "1//rt-a", "other", "")
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn rotation_replaces_the_refresh_token() {
    let fake = FakeGoogle::start().await.unwrap();
    let c = client();
    let resp = c
        .post(fake.url("/_fake/accounts"))
        .json(&json!({"email": A, "refresh_token": "1//old", "rotate_refresh_token": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, body) = json_of(refresh(&c, &fake, "1//old").await).await;
    assert_eq!(status, 200);
    let new = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new, "1//old");
    assert_eq!(fake.refresh_tokens_of(A).await, vec![new.clone()]);

    let resp = refresh(&c, &fake, "1//old").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.text().await.unwrap(), INVALID_GRANT);
    let (status, body) = json_of(refresh(&c, &fake, &new).await).await;
    assert_eq!(status, 200);
    assert_ne!(body["refresh_token"].as_str().unwrap(), new);
    // The access token of the first refresh still works.
    let at = body["access_token"].as_str().unwrap();
    assert_eq!(
        generate(&c, &fake, at, &gen_body_of("fake-project-a", "x"))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn authorization_code_with_pkce() {
    let fake = FakeGoogle::start().await.unwrap();
    let c = client();
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    let resp = c
        .post(fake.url("/_fake/codes"))
        .json(&json!({"code": "4/code-1", "email": A, "code_challenge": challenge, "redirect_uri": "http://127.0.0.1:9/cb"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let exchange = |verifier: Option<&'static str>, redirect: &'static str| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", "4/code-1"),
            ("redirect_uri", redirect),
            ("client_id", ANTIGRAVITY_CLIENT_ID),
            ("client_secret", ANTIGRAVITY_CLIENT_SECRET),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        let req = c.post(fake.token_url()).form(&form);
        async move { json_of(req.send().await.unwrap()).await }
    };
    let (status, body) = exchange(Some("wrong-verifier"), "http://127.0.0.1:9/cb").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = exchange(None, "http://127.0.0.1:9/cb").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = exchange(Some(verifier), "http://elsewhere/cb").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("redirect_uri_mismatch"))
    );

    let (status, body) = exchange(Some(verifier), "http://127.0.0.1:9/cb").await;
    assert_eq!(status, 200, "{body}");
    let rt = body["refresh_token"].as_str().unwrap().to_owned();
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    let at = body["access_token"].as_str().unwrap();
    let (status, info) = json_of(
        c.get(fake.userinfo_url())
            .bearer_auth(at)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(info["email"], A);
    // The issued refresh token works; the code works only once.
    assert_eq!(refresh(&c, &fake, &rt).await.status(), 200);
    let (status, body) = exchange(Some(verifier), "http://127.0.0.1:9/cb").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // Without PKCE, with a fixed refresh token, for the Gemini CLI client.
    fake.add_code(
        CodeSpec::new("4/plain", B)
            .refresh_token("1//from-code")
            .client_id(GEMINI_CLI_CLIENT_ID),
    )
    .await
    .unwrap();
    let resp = c
        .post(fake.token_url())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "4/plain"),
            ("redirect_uri", "x"),
            ("client_id", GEMINI_CLI_CLIENT_ID),
            ("client_secret", GEMINI_CLI_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(
        (status, body["refresh_token"].as_str()),
        (200, Some("1//from-code"))
    );
    assert!(fake
        .add_code(CodeSpec {
            code_challenge_method: Some("S512".into()),
            ..CodeSpec::new("x", A)
        })
        .await
        .is_err());
}

#[tokio::test]
async fn userinfo_and_access_token_lifetime() {
    let fake = fake_with_accounts().await;
    let c = client();
    let at = access_token(&c, &fake, "1//rt-a").await;
    let (status, info) = json_of(
        c.get(fake.userinfo_url())
            .bearer_auth(&at)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(info["email"], A);
    assert_eq!(info["verified_email"], true);
    assert!(!info["id"].as_str().unwrap().is_empty());
    let resp = c
        .get(fake.userinfo_url())
        .bearer_auth("ya29.nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = c.get(fake.userinfo_url()).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    // Invalidated access tokens: 401 until the next refresh.
    fake.invalidate_access_tokens(Some(A)).await;
    assert_eq!(generate(&c, &fake, &at, &gen_body("x")).await.0, 401);
    let at = access_token(&c, &fake, "1//rt-a").await;
    assert_eq!(generate(&c, &fake, &at, &gen_body("x")).await.0, 200);

    // Expired access tokens: 401.
    fake.set_expires_in(0).await;
    let at = access_token(&c, &fake, "1//rt-a").await;
    let (status, body) = generate(&c, &fake, &at, &gen_body("x")).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn generate_content_is_deterministic() {
    let fake = fake_with_accounts().await;
    let c = client();
    let at = access_token(&c, &fake, "1//rt-a").await;
    let (status, v) = generate(&c, &fake, &at, &gen_body("hello world")).await;
    assert_eq!(status, 200);
    assert_eq!(answer_text(&v), "echo(a@example.com): hello world");
    let r = &v["response"];
    assert_eq!(r["candidates"][0]["finishReason"], "STOP");
    assert_eq!(r["modelVersion"], "gemini-2.5-pro");
    assert_eq!(r["usageMetadata"]["promptTokenCount"], 2);
    assert_eq!(r["usageMetadata"]["totalTokenCount"], 2 + 3);

    // System instruction and an image.
    let body = envelope(
        "gemini-2.5-flash",
        "proj-a",
        json!({
        "systemInstruction": {"parts": [{"text": "be terse"}]},
        "contents": [{"role": "user", "parts": [
            {"text": "what is this"},
            {"inlineData": {"mimeType": "image/png", "data": base64::engine::general_purpose::STANDARD.encode([0u8; 10])}}
        ]}]}),
    );
    let (_, v) = generate(&c, &fake, &at, &body).await;
    assert_eq!(
        answer_text(&v),
        "[sys:be terse] echo(a@example.com): what is this image(image/png,10)"
    );

    // A function call, then its result.
    let tools = json!([{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "object"}}]}]);
    let body = envelope(
        "m",
        "proj-a",
        json!({"tools": tools,
        "contents": [{"role": "user", "parts": [{"text": "call:get_weather Paris"}]}]}),
    );
    let (_, v) = generate(&c, &fake, &at, &body).await;
    assert_eq!(
        v["response"]["candidates"][0]["content"]["parts"][0]["functionCall"],
        json!({"name": "get_weather", "args": {"q": "Paris"}})
    );
    let body = envelope(
        "m",
        "proj-a",
        json!({"tools": tools, "contents": [
            {"role": "user", "parts": [{"text": "call:get_weather Paris"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"q": "Paris"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}]}
        ]}),
    );
    let (_, v) = generate(&c, &fake, &at, &body).await;
    assert_eq!(answer_text(&v), r#"result(get_weather): {"temp":21}"#);

    // Bad requests: 400 in Google's shape, no panic.
    for bad in [
        json!("nope"),
        json!({"request": {}}),
        json!({"model": "m"}),
        json!({"model": 3, "request": []}),
    ] {
        let (status, v) = generate(&c, &fake, &at, &bad).await;
        assert_eq!(
            (status, v["error"]["status"].as_str()),
            (400, Some("INVALID_ARGUMENT")),
            "{bad}"
        );
    }
    let resp = c
        .post(fake.url("v1internal:generateContent"))
        .bearer_auth(&at)
        .body("{{{")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = call(&c, &fake, "generateContent", "ya29.unknown", &gen_body("x"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.text().await.unwrap(), UNAUTHENTICATED);

    let stats = fake.stats().await;
    assert_eq!(stats.generate_calls[A], 9);
    assert_eq!(stats.generate_calls_total, 10);
    assert_eq!(stats.served.len(), 4);
    assert_eq!(
        stats.served[0],
        Served {
            email: A.into(),
            model: "gemini-2.5-pro".into(),
            project: Some("proj-a".into()),
            stream: false
        }
    );
}

#[tokio::test]
async fn stream_sends_chunks_then_finish() {
    let fake = fake_with_accounts().await;
    let c = client();
    let at = access_token(&c, &fake, "1//rt-b").await;
    let resp = c
        .post(fake.url("v1internal:streamGenerateContent?alt=sse"))
        .bearer_auth(&at)
        .header("user-agent", ANTIGRAVITY_USER_AGENT)
        .json(&gen_body_b("stream this please"))
        .send()
        .await
        .unwrap();
    let events = streamed_events(resp).await;
    let text: String = events.iter().map(answer_text).collect();
    assert_eq!(text, "echo(b@example.com): stream this please");
    let last = &events.last().unwrap()["response"];
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 4);
    assert!(events[0]["response"]["candidates"][0]
        .get("finishReason")
        .is_none());
    let stats = fake.stats().await;
    assert_eq!(stats.stream_calls[B], 1);
    assert!(stats.served[0].stream);
}

/// Google's implicit prompt cache: the same account seeing a prefix again
/// reports its tokens as `cachedContentTokenCount`; another account does
/// not; the setting turns it off.
#[tokio::test]
async fn a_prefix_seen_again_on_one_account_is_cached() {
    let fake = fake_with_accounts().await;
    let c = client();
    let (at_a, at_b) = (
        access_token(&c, &fake, "1//rt-a").await,
        access_token(&c, &fake, "1//rt-b").await,
    );
    let turn = |project: &str, contents: &Value| {
        envelope(
            "gemini-2.5-pro",
            project,
            json!({"systemInstruction": {"parts": [{"text": "be brief"}]}, "contents": contents}),
        )
    };
    let usage = |v: &Value| v["response"]["usageMetadata"].clone();
    let mut history = json!([{"role": "user", "parts": [{"text": "one two three"}]}]);
    let (status, v) = generate(&c, &fake, &at_a, &turn("proj-a", &history)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(usage(&v)["promptTokenCount"], 5);
    assert!(usage(&v).get("cachedContentTokenCount").is_none(), "{v}");

    // The next turn resends the history: its first turn (and the system
    // instruction) is cached on A.
    let arr = history.as_array_mut().unwrap();
    arr.push(json!({"role": "model", "parts": [{"text": "four five"}]}));
    arr.push(json!({"role": "user", "parts": [{"text": "six"}]}));
    let (_, v) = generate(&c, &fake, &at_a, &turn("proj-a", &history)).await;
    assert_eq!(usage(&v)["promptTokenCount"], 2 + 3 + 2 + 1);
    assert_eq!(usage(&v)["cachedContentTokenCount"], 2 + 3);

    // B never saw it.
    let (_, v) = generate(&c, &fake, &at_b, &turn("fake-project-b", &history)).await;
    assert!(usage(&v).get("cachedContentTokenCount").is_none(), "{v}");

    // A stream reports it on its last event; the whole request was seen.
    let resp = c
        .post(fake.url("v1internal:streamGenerateContent?alt=sse"))
        .bearer_auth(&at_a)
        .header("user-agent", ANTIGRAVITY_USER_AGENT)
        .json(&turn("proj-a", &history))
        .send()
        .await
        .unwrap();
    let events = sse_events(&resp.text().await.unwrap());
    let last = events.last().unwrap();
    assert_eq!(usage(last)["cachedContentTokenCount"], 8, "{last}");

    // Off: no cached tokens.
    let settings = fake
        .set_settings(SettingsPatch {
            prompt_cache: Some(false),
            ..Default::default()
        })
        .await;
    assert!(!settings.prompt_cache);
    let (_, v) = generate(&c, &fake, &at_a, &turn("proj-a", &history)).await;
    assert!(usage(&v).get("cachedContentTokenCount").is_none(), "{v}");
}

#[tokio::test]
async fn status_and_rate_limit_faults() {
    let fake = fake_with_accounts().await;
    let c = client();
    let at_a = access_token(&c, &fake, "1//rt-a").await;
    let at_b = access_token(&c, &fake, "1//rt-b").await;

    // Through HTTP: a 503 for account b only, twice, with a header.
    let resp = c
        .post(fake.url("/_fake/faults"))
        .json(
            &json!({"endpoint": "generate", "email": B, "kind": "status", "status": 503,
                      "body": "upstream sad", "headers": {"x-fake": "1"}, "times": 2}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(generate(&c, &fake, &at_a, &gen_body("x")).await.0, 200);
    for _ in 0..2 {
        let resp = call(&c, &fake, "generateContent", &at_b, &gen_body_b("x"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["x-fake"], "1");
        assert_eq!(resp.text().await.unwrap(), "upstream sad");
    }
    assert_eq!(generate(&c, &fake, &at_b, &gen_body_b("x")).await.0, 200);

    // Google's 429, with Retry-After.
    fake.push_fault(FaultSpec::rate_limit(Endpoint::Generate, "2.5s").header("retry-after", "3"))
        .await
        .unwrap();
    let resp = call(&c, &fake, "generateContent", &at_a, &gen_body("x"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
    let (_, body) = json_of(resp).await;
    assert_eq!(body, rate_limit_body("2.5s", "RATE_LIMIT_EXCEEDED"));
    assert_eq!(body["error"]["details"][0]["retryDelay"], "2.5s");
    assert_eq!(
        body["error"]["details"][1]["metadata"]["quotaResetDelay"],
        "2.5s"
    );

    // Forever until cleared; `any` covers token too; order is kept.
    fake.push_fault(FaultSpec::status(Endpoint::Any, 500).forever())
        .await
        .unwrap();
    fake.push_fault(FaultSpec::status(Endpoint::Token, 502))
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(refresh(&c, &fake, "1//rt-a").await.status(), 500);
    }
    assert_eq!(fake.pending_faults().await.len(), 2);
    let resp = c.delete(fake.url("/_fake/faults")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(fake.pending_faults().await.is_empty());
    assert_eq!(refresh(&c, &fake, "1//rt-a").await.status(), 200);

    // Token-endpoint faults default to the OAuth shape.
    fake.push_fault(FaultSpec::status(Endpoint::Token, 503).for_email(A))
        .await
        .unwrap();
    assert_eq!(refresh(&c, &fake, "1//rt-b").await.status(), 200);
    let (status, body) = json_of(refresh(&c, &fake, "1//rt-a").await).await;
    assert_eq!(status, 503);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn slow_fault_delays() {
    let fake = fake_with_accounts().await;
    let c = client();
    fake.push_fault(FaultSpec::slow(Endpoint::Token, 300))
        .await
        .unwrap();
    let t = Instant::now();
    assert_eq!(refresh(&c, &fake, "1//rt-a").await.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(refresh(&c, &fake, "1//rt-a").await.status(), 200);
    assert!(t.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn drop_and_network_faults_cut_the_connection() {
    let fake = fake_with_accounts().await;
    let c = client();
    let at = access_token(&c, &fake, "1//rt-a").await;

    fake.push_fault(FaultSpec::network(Endpoint::Generate))
        .await
        .unwrap();
    let err = call(&c, &fake, "generateContent", &at, &gen_body("x"))
        .await
        .unwrap_err();
    assert!(err.status().is_none() && err.is_request(), "{err:?}");
    assert_eq!(
        io_kind(&err),
        Some(std::io::ErrorKind::ConnectionReset),
        "{err:?}"
    );

    fake.push_fault(FaultSpec::drop_connection(Endpoint::Token))
        .await
        .unwrap();
    let err = c
        .post(fake.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "1//rt-a"),
        ])
        .send()
        .await
        .unwrap_err();
    assert!(err.status().is_none() && err.is_request(), "{err:?}");

    // The server is fine afterwards.
    assert_eq!(generate(&c, &fake, &at, &gen_body("x")).await.0, 200);
    let stats = fake.stats().await;
    assert_eq!(stats.generate_calls[A], 2);
    assert_eq!(stats.served.len(), 1);
}

#[tokio::test]
async fn drop_mid_stream_cuts_after_some_events() {
    let fake = fake_with_accounts().await;
    let c = client();
    let at = access_token(&c, &fake, "1//rt-a").await;
    let resp = c
        .post(fake.url("/_fake/faults"))
        .json(&json!({"endpoint": "stream", "kind": "drop_mid_stream", "after_events": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = call(
        &c,
        &fake,
        "streamGenerateContent?alt=sse",
        &at,
        &gen_body("one two three"),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let mut got = Vec::new();
    let mut body = resp.bytes_stream();
    let mut failed = false;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(b) => got.extend_from_slice(&b),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the body must end in an error");
    let events = sse_events(std::str::from_utf8(&got).unwrap());
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .all(|e| e["response"]["candidates"][0].get("finishReason").is_none()));

    // On generate: a truncated JSON body.
    fake.push_fault(FaultSpec::new(Endpoint::Generate, FaultKind::DropMidStream))
        .await
        .unwrap();
    let resp = call(&c, &fake, "generateContent", &at, &gen_body("x"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err());
    assert!(fake.stats().await.served.is_empty());
}

#[tokio::test]
async fn load_code_assist_and_models() {
    let fake = fake_with_accounts().await;
    let c = client();
    let at_a = access_token(&c, &fake, "1//rt-a").await;
    let at_b = access_token(&c, &fake, "1//rt-b").await;
    let (status, v) = json_of(
        call(&c, &fake, "loadCodeAssist", &at_a, &json!({"metadata": {}}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["cloudaicompanionProject"], "proj-a");
    assert_eq!(v["currentTier"]["id"], "free-tier");
    let (_, v) = json_of(
        call(&c, &fake, "loadCodeAssist", &at_b, &json!({}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["cloudaicompanionProject"], "fake-project-b");
    assert_eq!(
        call(&c, &fake, "loadCodeAssist", "bad", &json!({}))
            .await
            .unwrap()
            .status(),
        401
    );
    let stats = fake.stats().await;
    assert_eq!(stats.load_code_assist_calls, 3);
    assert_eq!(stats.load_code_assist_calls_by_email[A], 1);

    let (status, v) = json_of(
        call(&c, &fake, "fetchAvailableModels", &at_a, &json!({}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    for m in DEFAULT_MODELS {
        assert_eq!(v["models"][m]["quotaInfo"]["remainingFraction"], 1.0);
        assert!(v["models"][m]["quotaInfo"]["resetTime"]
            .as_str()
            .unwrap()
            .ends_with('Z'));
    }
    let resp = c
        .post(fake.url("/_fake/quota"))
        .json(&json!({"email": A, "model": "gemini-2.5-pro", "remaining_fraction": 0.0, "reset_time": "2099-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    fake.set_quota(QuotaSpec::new(A, "gemini-3-pro", 0.25))
        .await
        .unwrap();
    let (_, v) = json_of(
        call(&c, &fake, "fetchAvailableModels", &at_a, &json!({}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        v["models"]["gemini-2.5-pro"]["quotaInfo"]["remainingFraction"],
        0.0
    );
    assert_eq!(
        v["models"]["gemini-2.5-pro"]["quotaInfo"]["resetTime"],
        "2099-01-01T00:00:00Z"
    );
    assert_eq!(
        v["models"]["gemini-3-pro"]["quotaInfo"]["remainingFraction"],
        0.25
    );
    let (_, v) = json_of(
        call(&c, &fake, "fetchAvailableModels", &at_b, &json!({}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        v["models"]["gemini-2.5-pro"]["quotaInfo"]["remainingFraction"],
        1.0
    );

    // An exhausted model answers 429 for that account only.
    let (status, v) = generate(&c, &fake, &at_a, &gen_body("x")).await;
    assert_eq!(status, 429);
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(v["error"]["details"][1]["reason"], "QUOTA_EXHAUSTED");
    assert_eq!(generate(&c, &fake, &at_b, &gen_body_b("x")).await.0, 200);
    assert!(fake
        .set_quota(QuotaSpec {
            reset_time: Some("soon".into()),
            ..QuotaSpec::new(A, "m", 1.0)
        })
        .await
        .is_err());
}

#[tokio::test]
async fn fast_mode_answers_anything() {
    let fake = FakeGoogle::start_with(FakeOptions {
        fast: true,
        ..FakeOptions::default()
    })
    .await
    .unwrap();
    let c = client();
    let (status, v) = generate(&c, &fake, "any-token", &json!({"garbage": true})).await;
    assert_eq!((status, answer_text(&v)), (200, "fast"));
    let resp = call(&c, &fake, "streamGenerateContent?alt=sse", "x", &json!({}))
        .await
        .unwrap();
    let events = sse_events(&resp.text().await.unwrap());
    assert_eq!(events.len(), 3);
    assert_eq!(refresh(&c, &fake, "1//whatever").await.status(), 200);
    // Faults still apply in fast mode.
    fake.push_fault(FaultSpec::status(Endpoint::Generate, 429))
        .await
        .unwrap();
    assert_eq!(generate(&c, &fake, "t", &json!({})).await.0, 429);
    assert_eq!(generate(&c, &fake, "t", &json!({})).await.0, 200);
    let stats = fake.stats().await;
    assert_eq!(
        (
            stats.generate_calls_total,
            stats.stream_calls_total,
            stats.token_calls
        ),
        (3, 1, 1)
    );

    let resp = c
        .post(fake.url("/_fake/fast"))
        .json(&json!({"on": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp).await.1, json!({"fast": false}));
    assert!(!fake.is_fast());
    assert_eq!(
        generate(&c, &fake, "any-token", &gen_body("x")).await.0,
        401
    );
}

/// The public Gemini API routes (module `gemini_api`): the `response` of
/// the v1internal answer, with a key in the query or the header; Google's
/// 403 without a key and 400 for an empty one; in fast mode the very bodies
/// of the fast v1internal answers, unwrapped.
#[tokio::test]
async fn gemini_api_routes_answer_the_inner_response() {
    let c = client();
    let url =
        |fake: &FakeGoogle, call: &str| fake.url(&format!("v1beta/models/gemini-2.5-pro:{call}"));
    let request = json!({"contents": [{"role": "user", "parts": [{"text": "hello world"}]}]});

    let fake = fake_with_accounts().await;
    let at = access_token(&c, &fake, "1//rt-a").await;
    let (_, internal) = generate(&c, &fake, &at, &gen_body("hello world")).await;
    let resp = c
        .post(url(&fake, "generateContent?key=k1"))
        .json(&request)
        .send()
        .await
        .unwrap();
    let (status, v) = json_of(resp).await;
    assert_eq!(status, 200, "{v}");
    assert!(v.get("response").is_none(), "{v}");
    let text = |v: &Value| {
        v["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(text(&v).as_deref(), Some("echo(api-key): hello world"));
    for key in ["usageMetadata", "modelVersion"] {
        assert_eq!(v[key], internal["response"][key], "{key}");
    }
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");

    let resp = c
        .post(url(&fake, "streamGenerateContent?alt=sse"))
        .header("x-goog-api-key", "k2")
        .json(&request)
        .send()
        .await
        .unwrap();
    let events = streamed_events(resp).await;
    let streamed: String = events.iter().filter_map(text).collect();
    assert_eq!(streamed, "echo(api-key): hello world");
    assert_eq!(
        events.last().unwrap()["candidates"][0]["finishReason"],
        "STOP"
    );

    // No key: Google's 403; an empty key: its 400 API_KEY_INVALID; both
    // before the body is looked at.
    for (call, status, body) in [
        ("generateContent", 403, super::gemini_api::no_key_body()),
        (
            "streamGenerateContent?alt=sse",
            403,
            super::gemini_api::no_key_body(),
        ),
        (
            "generateContent?key=",
            400,
            super::gemini_api::key_invalid_body(),
        ),
    ] {
        let resp = c.post(url(&fake, call)).body("{{{").send().await.unwrap();
        assert_eq!(json_of(resp).await, (status, body), "{call}");
    }
    let resp = c
        .post(url(&fake, "generateContent?key=k"))
        .body("{{{")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp).await.0, 400);
    let resp = c
        .post(url(&fake, "countTokens?key=k"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(fake.stats().await.generate_calls_total, 3);

    // Fast mode: the same bytes as the v1internal answers' `response`.
    let fast = FakeGoogle::start_with(FakeOptions {
        fast: true,
        ..FakeOptions::default()
    })
    .await
    .unwrap();
    let (_, internal) = generate(&c, &fast, "t", &json!({})).await;
    let resp = c
        .post(url(&fast, "generateContent?key=k"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp).await, (200, internal["response"].clone()));
    let internal = call(&c, &fast, "streamGenerateContent?alt=sse", "t", &json!({}))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resp = c
        .post(url(&fast, "streamGenerateContent?alt=sse"))
        .header("x-goog-api-key", "k")
        .body("{}")
        .send()
        .await
        .unwrap();
    let inner: Vec<Value> = sse_events(&internal)
        .into_iter()
        .map(|e| e["response"].clone())
        .collect();
    assert_eq!(sse_events(&resp.text().await.unwrap()), inner);
    let resp = c
        .post(url(&fast, "generateContent"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp).await, (403, super::gemini_api::no_key_body()));
    let stats = fast.stats().await;
    assert_eq!(
        (stats.generate_calls_total, stats.stream_calls_total),
        (2, 2)
    );
}

#[tokio::test]
async fn control_endpoints_refuse_bad_input() {
    let fake = FakeGoogle::start().await.unwrap();
    let c = client();
    let post = |path: &str, body: &'static str| {
        c.post(fake.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (path, body) in [
        ("/_fake/accounts", "{"),
        ("/_fake/accounts", r#"{"email": "", "refresh_token": "x"}"#),
        ("/_fake/faults", r#"{"kind": "explode"}"#),
        ("/_fake/faults", r#"{"kind": "status", "status": 1000}"#),
        (
            "/_fake/faults",
            r#"{"kind": "status", "headers": {"bad header": "x"}}"#,
        ),
        (
            "/_fake/faults",
            r#"{"endpoint": "nowhere", "kind": "status"}"#,
        ),
        ("/_fake/revoke", r#"{"refresh_token": "x", "status": 42}"#),
        ("/_fake/codes", r#"{"code": "c"}"#),
        (
            "/_fake/quota",
            r#"{"email": "a", "model": "m", "remaining_fraction": "lots"}"#,
        ),
        ("/_fake/expires_in", r#"{"secs": -1}"#),
        ("/_fake/fast", r#"{"on": "maybe"}"#),
    ] {
        let resp = post(path, body).await.unwrap();
        assert_eq!(resp.status(), 400, "{path} {body}");
        let (_, v) = json_of(resp).await;
        assert!(v["error"].is_string(), "{path} {body}");
    }
    // Lists are accepted wherever single objects are.
    let resp = post(
        "/_fake/accounts",
        r#"[{"email": "a@x", "refresh_token": "1//a"}, {"email": "b@x", "refresh_token": "1//b", "project_id": "pb"}]"#,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, accounts) =
        json_of(c.get(fake.url("/_fake/accounts")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(accounts.as_array().unwrap().len(), 2);
    assert_eq!(accounts[1]["project_id"], "pb");
    assert_eq!(accounts[0]["refresh_tokens"], json!(["1//a"]));
    let resp = post(
        "/_fake/faults",
        r#"[{"kind": "slow"}, {"kind": "network", "endpoint": "userinfo"}]"#,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, faults) = json_of(c.get(fake.url("/_fake/faults")).send().await.unwrap()).await;
    assert_eq!(faults[1]["fault"]["kind"], "network");
    assert_eq!(faults[1]["remaining"], 1);
    let (_, stats) = json_of(c.get(fake.url("/_fake/stats")).send().await.unwrap()).await;
    assert_eq!(stats["token_calls"], 0);
    assert_eq!(post("/_fake/reset", "").await.unwrap().status(), 200);
    assert!(fake.accounts().await.is_empty());
    assert!(fake.pending_faults().await.is_empty());
    // Unknown paths are 404s, not crashes.
    assert_eq!(c.get(fake.url("/nope")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn drop_stops_the_server() {
    let fake = FakeGoogle::start().await.unwrap();
    let url = fake.token_url();
    fake.shutdown().await;
    assert!(client().post(url).send().await.is_err());
}

#[test]
fn debug_output_hides_secrets() {
    let spec = AccountSpec::new(A, "1//0gSECRETSECRETSECRET");
    let shown = format!("{spec:?}");
    assert!(!shown.contains("SECRETSECRETSECRET"), "{shown}");
    let shown = format!("{:?}", RevokeSpec::new("1//0gSECRETSECRETSECRET"));
    assert!(!shown.contains("SECRETSECRETSECRET"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_mode_serves_many_concurrent_calls() {
    let fake = FakeGoogle::start_with(FakeOptions {
        fast: true,
        ..FakeOptions::default()
    })
    .await
    .unwrap();
    let c = client();
    let url = fake.url("v1internal:generateContent");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (c, url) = (c.clone(), url.clone());
        tasks.spawn(async move {
            for _ in 0..250 {
                let resp = c
                    .post(&url)
                    .bearer_auth("t")
                    .body("{}")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                resp.bytes().await.unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fast mode: 4000 calls in {secs:.2}s ({:.0}/s)",
        4000.0 / secs
    );
    assert_eq!(fake.stats().await.generate_calls_total, 4000);
}
