"""The OpenAI surface (`/v1/chat/completions`, `/v1/models`) through the
official `openai` client."""

from __future__ import annotations

import base64
import json
import re

from conftest import PNG_B64

MODEL = "gemini-2.5-flash"
ECHO = re.compile(r"^echo\((user\d@example\.com)\): ")

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"q": {"type": "string"}},
            "required": ["q"],
        },
    },
}


def test_chat_text(oai, world):
    raw = oai.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "hello there"}]
    )
    account = raw.headers.get("x-grantpool-account")
    assert account in world.ids.values()
    r = raw.parse()
    assert r.object == "chat.completion"
    assert r.model == MODEL
    assert len(r.choices) == 1
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == f"echo({world.email_of(account)}): hello there"
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls


def test_chat_usage(oai):
    r = oai.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "one two three"}])
    u = r.usage
    assert u is not None
    # The fake counts whitespace-separated words.
    assert u.prompt_tokens == 3
    assert u.completion_tokens == 4  # "echo(<email>): one two three"
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_chat_stream_text(oai, world):
    stream = oai.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "stream this please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finishes, usage, ids = [], [], None, set()
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        assert chunk.model == MODEL
        ids.add(chunk.id)
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                text.append(c.delta.content)
            if c.finish_reason:
                finishes.append(c.finish_reason)
    joined = "".join(text)
    m = ECHO.match(joined)
    assert m, joined
    assert joined == f"echo({m.group(1)}): stream this please"
    assert len(text) >= 2, "the fake streams a text in three pieces"
    assert finishes == ["stop"]
    assert len(ids) == 1
    assert usage is not None and usage.prompt_tokens == 3 and usage.total_tokens > 3


def test_chat_system_prompt(oai):
    r = oai.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
    )
    content = r.choices[0].message.content
    assert content.startswith("[sys:be brief] echo("), content
    assert content.endswith("): hi")


def test_chat_image(oai):
    size = len(base64.b64decode(PNG_B64))
    r = oai.chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                ],
            }
        ],
    )
    content = r.choices[0].message.content
    assert content.endswith(f"what is this? image(image/png,{size})"), content


def test_tool_call_round_trip(oai):
    messages = [{"role": "user", "content": "please call:get_weather for Paris"}]
    r = oai.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls and len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"q": "please for Paris"}

    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 21})})
    r2 = oai.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    content = r2.choices[0].message.content
    assert r2.choices[0].finish_reason == "stop"
    assert "result(get_weather)" in content, content
    assert "21" in content


def test_tool_call_stream(oai):
    stream = oai.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "call:get_weather Rome"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    calls: dict[int, dict] = {}
    finishes = []
    for chunk in stream:
        for c in chunk.choices:
            for tc in c.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "name": "", "args": ""})
                if tc.id:
                    slot["id"] = tc.id
                if tc.function and tc.function.name:
                    slot["name"] += tc.function.name
                if tc.function and tc.function.arguments:
                    slot["args"] += tc.function.arguments
            if c.finish_reason:
                finishes.append(c.finish_reason)
    assert list(calls) == [0]
    call = calls[0]
    assert call["id"]
    assert call["name"] == "get_weather"
    assert json.loads(call["args"]) == {"q": "Rome"}
    assert finishes == ["tool_calls"]


def test_models_list(oai):
    ids = [m.id for m in oai.models.list()]
    assert "gemini-2.5-pro" in ids
    assert "gemini-2.5-flash" in ids
