"""Retries and failures as each client sees them: a 429 on one account is
hidden by another account, a stream cut mid-answer ends in the protocol's
own error (not a hang), and a 400 comes back once, in the client's error
shape, without a tour of the pool."""

from __future__ import annotations

import anthropic
import openai
import pytest
from google.genai import errors as genai_errors

from conftest import anthropic_client, genai_client, openai_client

STREAM_TIMEOUT = 15.0


def test_rate_limited_account_is_skipped(make_world):
    w = make_world(accounts=2)
    first, other = w.emails
    w.fake.fault(endpoint="generate", kind="rate_limit", email=first, retry_delay="2s")
    client = openai_client(w.url)
    # Round robin: within two requests one lands on `first` and meets the 429.
    hit = None
    for i in range(3):
        # (A new conversation each time, so no session stickiness applies.)
        raw = client.chat.completions.with_raw_response.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": f"retry me {i}"}]
        )
        assert raw.status_code == 200
        if not w.fake.faults():
            hit = (i, raw)
            break
    assert hit is not None, "the fault on the first account was never met"
    i, raw = hit
    assert raw.headers["x-grantpool-account"] == w.ids[other]
    r = raw.parse()
    assert r.choices[0].message.content == f"echo({other}): retry me {i}"
    stats = w.fake.stats()
    assert stats["generate_calls"].get(first, 0) == 1  # the 429, and nothing more
    assert stats["served"][-1]["email"] == other


def test_rate_limited_account_is_skipped_anthropic(make_world):
    w = make_world(accounts=2)
    first, other = w.emails
    w.fake.fault(endpoint="stream", kind="rate_limit", email=first, retry_delay="2s")
    client = anthropic_client(w.url)
    for i in range(3):
        with client.messages.stream(
            model="claude-x", max_tokens=64, messages=[{"role": "user", "content": f"retry me {i}"}]
        ) as stream:
            final = stream.get_final_message()
            account = stream.response.headers["x-grantpool-account"]
        if not w.fake.faults():
            break
    else:
        pytest.fail("the fault on the first account was never met")
    assert account == w.ids[other]
    assert final.content[0].text == f"echo({other}): retry me {i}"
    assert final.stop_reason == "end_turn"


def test_no_account_is_a_503_in_each_shape(make_world):
    w = make_world(accounts=0)
    with pytest.raises(openai.InternalServerError) as exc:
        openai_client(w.url).chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}]
        )
    assert exc.value.status_code == 503
    assert exc.value.body["type"] == "server_error", exc.value.body
    assert "no accounts" in exc.value.body["message"]
    with pytest.raises(anthropic.InternalServerError) as exc:
        anthropic_client(w.url).messages.create(
            model="claude-x", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert exc.value.status_code == 503
    assert exc.value.body["type"] == "error", exc.value.body
    assert "no accounts" in exc.value.body["error"]["message"]
    client = genai_client(w.url)
    with pytest.raises(genai_errors.ServerError) as exc:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert exc.value.code == 503 and exc.value.status == "UNAVAILABLE"


def _cut_stream(w):
    # Every stream is cut after its first event (of three).
    w.fake.fault(endpoint="stream", kind="drop_mid_stream", after_events=1, times=0)


def test_openai_stream_cut_mid_answer(make_world):
    w = make_world(accounts=1)
    _cut_stream(w)
    client = openai_client(w.url, timeout=STREAM_TIMEOUT)
    got = []
    with pytest.raises(openai.APIError) as exc:
        for chunk in client.chat.completions.create(
            model="gemini-2.5-flash",
            messages=[{"role": "user", "content": "a longer answer that will be cut"}],
            stream=True,
        ):
            got.extend(c.delta.content or "" for c in chunk.choices)
    assert not isinstance(exc.value, openai.APITimeoutError), "the stream hung"
    assert "".join(got).startswith("echo("), "the first piece arrived before the cut"
    assert "upstream" in str(exc.value.message)


def test_anthropic_stream_cut_mid_answer(make_world):
    w = make_world(accounts=1)
    _cut_stream(w)
    client = anthropic_client(w.url, timeout=STREAM_TIMEOUT)
    types_seen = []
    with pytest.raises(anthropic.APIError) as exc:
        with client.messages.stream(
            model="claude-x",
            max_tokens=64,
            messages=[{"role": "user", "content": "a longer answer that will be cut"}],
        ) as stream:
            for event in stream:
                types_seen.append(event.type)
            stream.get_final_message()
    assert not isinstance(exc.value, anthropic.APITimeoutError), "the stream hung"
    assert isinstance(exc.value, anthropic.APIStatusError), exc.value
    assert types_seen[0] == "message_start"
    assert "message_stop" not in types_seen
    body = exc.value.body
    assert isinstance(body, dict) and body.get("type") == "error", body
    assert body["error"]["type"] == "api_error"


def test_gemini_stream_cut_mid_answer(make_world):
    w = make_world(accounts=1)
    _cut_stream(w)
    client = genai_client(w.url)
    got = []
    with pytest.raises(genai_errors.APIError):
        for chunk in client.models.generate_content_stream(
            model="gemini-2.5-flash", contents="a longer answer that will be cut"
        ):
            got.append(chunk.text or "")
    assert "".join(got).startswith("echo(")


@pytest.fixture
def bad_request_world(make_world):
    w = make_world(accounts=3)
    for endpoint in ("generate", "stream"):
        w.fake.fault(endpoint=endpoint, kind="status", status=400, times=0)
    return w


def _one_call(w, endpoint="generate"):
    stats = w.fake.stats()
    total = stats[f"{endpoint}_calls_total"]
    assert total == 1, f"{total} upstream {endpoint} calls for one request (pool rotation on a 400?)"
    assert sum(stats["generate_calls"].values()) + sum(stats["stream_calls"].values()) == 1


def test_upstream_400_openai(bad_request_world):
    w = bad_request_world
    with pytest.raises(openai.BadRequestError) as exc:
        openai_client(w.url).chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "bad"}]
        )
    e = exc.value
    assert e.status_code == 400
    assert isinstance(e.body, dict) and "Fake fault: HTTP 400" in e.body["message"], e.body
    assert e.body["type"] == "invalid_request_error"
    assert e.response.headers["x-grantpool-account"] in w.ids.values()
    _one_call(w)


def test_upstream_400_openai_stream(bad_request_world):
    w = bad_request_world
    with pytest.raises(openai.BadRequestError):
        for _ in openai_client(w.url).chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "bad"}], stream=True
        ):
            pass
    _one_call(w, "stream")


def test_upstream_400_anthropic(bad_request_world):
    w = bad_request_world
    with pytest.raises(anthropic.BadRequestError) as exc:
        anthropic_client(w.url).messages.create(
            model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "bad"}]
        )
    e = exc.value
    assert e.status_code == 400
    assert e.body["type"] == "error"
    assert e.body["error"]["type"] == "invalid_request_error"
    assert "Fake fault: HTTP 400" in e.body["error"]["message"]
    _one_call(w)


def test_upstream_400_gemini(bad_request_world):
    w = bad_request_world
    client = genai_client(w.url)  # (a Client closes its connections when collected)
    with pytest.raises(genai_errors.ClientError) as exc:
        client.models.generate_content(model="gemini-2.5-flash", contents="bad")
    e = exc.value
    assert e.code == 400
    assert e.status == "INVALID_ARGUMENT"
    assert "Fake fault: HTTP 400" in e.message
    _one_call(w)
