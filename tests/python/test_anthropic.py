"""The Anthropic surface (`/v1/messages`) through the official `anthropic`
client."""

from __future__ import annotations

import base64
import json
import re

from conftest import PNG_B64

MODEL = "claude-grantpool-test"
ECHO = re.compile(r"^echo\((user\d@example\.com)\): ")

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather of a city",
    "input_schema": {
        "type": "object",
        "properties": {"q": {"type": "string"}},
        "required": ["q"],
    },
}


def text_of(message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


def test_message_text(claude, world):
    raw = claude.messages.with_raw_response.create(
        model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "hello there"}]
    )
    account = raw.headers.get("x-grantpool-account")
    assert account in world.ids.values()
    m = raw.parse()
    assert m.type == "message"
    assert m.role == "assistant"
    assert m.model == MODEL
    assert m.id
    assert [b.type for b in m.content] == ["text"]
    assert m.content[0].text == f"echo({world.email_of(account)}): hello there"
    assert m.stop_reason == "end_turn"


def test_message_usage(claude):
    m = claude.messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "one two three"}]
    )
    assert m.usage.input_tokens == 3
    assert m.usage.output_tokens == 4  # "echo(<email>): one two three"


def test_message_stream(claude):
    deltas = []
    event_types = []
    with claude.messages.stream(
        model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "stream this please"}]
    ) as stream:
        for event in stream:
            event_types.append(event.type)
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                deltas.append(event.delta.text)
        final = stream.get_final_message()
    joined = "".join(deltas)
    assert ECHO.match(joined), joined
    assert joined.endswith("): stream this please")
    assert len(deltas) >= 2, "the fake streams a text in three pieces"
    assert event_types[0] == "message_start"
    assert event_types[-1] == "message_stop"
    assert "content_block_start" in event_types and "content_block_stop" in event_types
    assert "message_delta" in event_types
    assert final.model == MODEL
    assert text_of(final) == joined
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == 3
    assert final.usage.output_tokens > 0


def test_message_stream_text_stream(claude):
    with claude.messages.stream(
        model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "just text"}]
    ) as stream:
        text = "".join(stream.text_stream)
    assert ECHO.match(text) and text.endswith("): just text"), text


def test_system_prompt(claude):
    m = claude.messages.create(
        model=MODEL,
        max_tokens=64,
        system="be brief",
        messages=[{"role": "user", "content": "hi"}],
    )
    assert text_of(m).startswith("[sys:be brief] echo("), text_of(m)
    # The system prompt as a list of text blocks, too.
    m = claude.messages.create(
        model=MODEL,
        max_tokens=64,
        system=[{"type": "text", "text": "be kind"}],
        messages=[{"role": "user", "content": "hi"}],
    )
    assert text_of(m).startswith("[sys:be kind] echo("), text_of(m)


def test_image_block(claude):
    size = len(base64.b64decode(PNG_B64))
    m = claude.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                ],
            }
        ],
    )
    assert text_of(m).endswith(f"what is this? image(image/png,{size})"), text_of(m)


def test_tool_use_round_trip(claude):
    messages = [{"role": "user", "content": "please call:get_weather for Paris"}]
    m = claude.messages.create(model=MODEL, max_tokens=256, messages=messages, tools=[WEATHER_TOOL])
    assert m.stop_reason == "tool_use"
    uses = [b for b in m.content if b.type == "tool_use"]
    assert len(uses) == 1
    use = uses[0]
    assert use.id
    assert use.name == "get_weather"
    assert use.input == {"q": "please for Paris"}

    messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]})
    messages.append(
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": json.dumps({"temp_c": 21})}],
        }
    )
    m2 = claude.messages.create(model=MODEL, max_tokens=256, messages=messages, tools=[WEATHER_TOOL])
    assert m2.stop_reason == "end_turn"
    assert "result(get_weather)" in text_of(m2), text_of(m2)
    assert "21" in text_of(m2)


def test_tool_use_stream(claude):
    with claude.messages.stream(
        model=MODEL,
        max_tokens=256,
        messages=[{"role": "user", "content": "call:get_weather Rome"}],
        tools=[WEATHER_TOOL],
    ) as stream:
        partial = "".join(
            e.delta.partial_json
            for e in stream
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        )
        final = stream.get_final_message()
    assert json.loads(partial) == {"q": "Rome"}
    assert final.stop_reason == "tool_use"
    uses = [b for b in final.content if b.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == "get_weather" and uses[0].input == {"q": "Rome"}
