"""Client keys (strict mode), the DNS-rebinding Host guard, the body limit,
and the `[models]` mapping, through the official clients."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import anthropic
import openai
import pytest
from google.genai import errors as genai_errors

from conftest import World, anthropic_client, genai_client, openai_client

KEY = "sk-test"


@pytest.fixture(scope="module")
def strict():
    w = World(accounts=1, server=f'auth_mode = "strict"\napi_keys = ["{KEY}"]\nmax_body_bytes = 65536')
    yield w
    w.close()


def raw_request(url: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """One request on a socket of our own (the Host header as given)."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, dict(resp.getheaders()), data
    finally:
        conn.close()


def test_openai_wrong_key(strict):
    with pytest.raises(openai.AuthenticationError) as exc:
        openai_client(strict.url, api_key="sk-wrong").chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}]
        )
    assert exc.value.status_code == 401
    body = exc.value.body
    assert body["type"] == "authentication_error" and "API key" in body["message"], body


def test_openai_right_key_bearer(strict):
    r = openai_client(strict.url, api_key=KEY).chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}]
    )
    assert r.choices[0].message.content == "echo(user1@example.com): hi"


def test_anthropic_wrong_key(strict):
    with pytest.raises(anthropic.AuthenticationError) as exc:
        anthropic_client(strict.url, api_key="sk-wrong").messages.create(
            model="claude-x", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert exc.value.status_code == 401
    body = exc.value.body
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error", body


def test_anthropic_right_key_x_api_key(strict):
    # The anthropic client sends its key as `x-api-key`.
    m = anthropic_client(strict.url, api_key=KEY).messages.create(
        model="claude-x", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    assert m.content[0].text == "echo(user1@example.com): hi"


def test_gemini_wrong_key(strict):
    client = genai_client(strict.url, api_key="wrong")
    with pytest.raises(genai_errors.ClientError) as exc:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert exc.value.code == 401
    assert exc.value.status == "UNAUTHENTICATED"


def test_gemini_right_key_x_goog_api_key(strict):
    # google-genai sends its key as `x-goog-api-key`.
    client = genai_client(strict.url, api_key=KEY)
    r = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert r.text == "echo(user1@example.com): hi"


@pytest.mark.parametrize("header", ["authorization", "x-api-key", "x-goog-api-key"])
def test_each_key_header_on_each_protocol(strict, header):
    value = f"Bearer {KEY}" if header == "authorization" else KEY
    host = urlsplit(strict.url).netloc
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}).encode()
    for path in ("/v1/chat/completions", "/v1/messages"):
        status, _, data = raw_request(
            strict.url, "POST", path, body, {"host": host, "content-type": "application/json", header: value}
        )
        assert status == 200, (path, data)
    status, _, data = raw_request(strict.url, "GET", "/v1/models", None, {"host": host, header: value})
    assert status == 200, data


def test_health_needs_a_key_in_strict_mode(strict):
    host = urlsplit(strict.url).netloc
    status, _, _ = raw_request(strict.url, "GET", "/health", None, {"host": host})
    assert status == 401
    status, _, data = raw_request(strict.url, "GET", "/health", None, {"host": host, "x-api-key": KEY})
    assert status == 200 and json.loads(data)["status"] == "ok"


def test_foreign_host_is_refused(world):
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, _, data = raw_request(
        world.url, "POST", "/v1/chat/completions", body, {"host": "evil.example", "content-type": "application/json"}
    )
    assert status == 403, data
    assert "evil.example" in json.loads(data)["error"]["message"]
    # The same request with a loopback Host goes through.
    status, _, _ = raw_request(
        world.url,
        "POST",
        "/v1/chat/completions",
        body,
        {"host": urlsplit(world.url).netloc, "content-type": "application/json"},
    )
    assert status == 200
    for host in ("evil.example:80", "localhost.evil.example"):
        status, _, _ = raw_request(world.url, "GET", "/v1/models", None, {"host": host})
        assert status == 403, host


def test_foreign_host_is_refused_through_a_client(world):
    client = openai_client(world.url, default_headers={"Host": "evil.example"})
    with pytest.raises(openai.PermissionDeniedError) as exc:
        client.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}])
    assert exc.value.status_code == 403


def test_body_over_the_limit(strict):
    big = "x" * 100_000  # max_body_bytes = 65536
    with pytest.raises(openai.APIStatusError) as exc:
        openai_client(strict.url, api_key=KEY).chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": big}]
        )
    assert exc.value.status_code == 413
    assert exc.value.body["type"] == "invalid_request_error", exc.value.body
    with pytest.raises(anthropic.APIStatusError) as exc:
        anthropic_client(strict.url, api_key=KEY).messages.create(
            model="claude-x", max_tokens=16, messages=[{"role": "user", "content": big}]
        )
    assert exc.value.status_code == 413
    client = genai_client(strict.url, api_key=KEY)
    with pytest.raises(genai_errors.ClientError) as exc:
        client.models.generate_content(model="gemini-2.5-flash", contents=big)
    assert exc.value.code == 413
    # Just under the limit is fine.
    r = openai_client(strict.url, api_key=KEY).chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "y" * 60_000}]
    )
    assert r.choices[0].message.content.endswith("y" * 100)


def test_body_over_the_limit_in_each_protocols_shape(strict):
    big = "x" * 100_000
    with pytest.raises(anthropic.APIStatusError) as exc:
        anthropic_client(strict.url, api_key=KEY).messages.create(
            model="claude-x", max_tokens=16, messages=[{"role": "user", "content": big}]
        )
    assert exc.value.body.get("type") == "error", exc.value.body
    client = genai_client(strict.url, api_key=KEY)
    with pytest.raises(genai_errors.ClientError) as exc:
        client.models.generate_content(model="gemini-2.5-flash", contents=big)
    assert exc.value.status == "INVALID_ARGUMENT", exc.value.details


# ---- [models] mapping ----------------------------------------------------------------


@pytest.fixture(scope="module")
def mapped():
    w = World(accounts=1, extra='[models]\n"gpt-4o" = "gemini-2.5-pro"\n"claude-*" = "gemini-2.5-flash"\n')
    yield w
    w.close()


def test_openai_model_mapping(mapped):
    mapped.fake.reset_stats()
    client = openai_client(mapped.url)
    r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert r.model == "gpt-4o"
    chunks = list(
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    assert {c.model for c in chunks} == {"gpt-4o"}
    served = mapped.fake.stats()["served"]
    assert [(s["model"], s["stream"]) for s in served] == [("gemini-2.5-pro", False), ("gemini-2.5-pro", True)]
    # An unmapped name goes upstream as it is.
    client.chat.completions.create(model="gemini-2.5-flash-lite", messages=[{"role": "user", "content": "hi"}])
    assert mapped.fake.stats()["served"][-1]["model"] == "gemini-2.5-flash-lite"
    # Mapped names are listed.
    assert "gpt-4o" in [m.id for m in client.models.list()]


def test_anthropic_model_mapping(mapped):
    mapped.fake.reset_stats()
    client = anthropic_client(mapped.url)
    m = client.messages.create(model="claude-opus-9", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert m.model == "claude-opus-9"
    with client.messages.stream(
        model="claude-haiku-9", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.model == "claude-haiku-9"
    served = mapped.fake.stats()["served"]
    assert [(s["model"], s["stream"]) for s in served] == [("gemini-2.5-flash", False), ("gemini-2.5-flash", True)]
