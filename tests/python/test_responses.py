"""The OpenAI Responses surface (`/v1/responses`) through the official
`openai` client, whole and streamed, as Codex CLI and the SDK use it:
`store: false`, the whole conversation sent back each time (output items
included), tool round trips."""

from __future__ import annotations

import base64
import json
import re
import uuid

import openai
import pytest

from conftest import PNG_B64

MODEL = "gemini-2.5-flash"
# Gemini 3: the fake refuses a replayed call without a signature it issued
# (or a bypass value), so a round trip here checks the one carried back.
MODEL3 = "gemini-3-pro-preview"
ECHO = re.compile(r"^echo\((user\d@example\.com)\): ")

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {
        "type": "object",
        "properties": {"q": {"type": "string"}},
        "required": ["q"],
        "additionalProperties": False,
    },
    "strict": False,
}


def _events(stream) -> list:
    events = list(stream)
    seqs = [e.sequence_number for e in events]
    assert seqs == list(range(len(events))), seqs
    return events


def test_responses_text(oai, world):
    # A text no account has seen before in this world (the fake reports a
    # cache hit for a prefix the same account saw).
    fresh = uuid.uuid4().hex
    raw = oai.responses.with_raw_response.create(model=MODEL, input=f"hello {fresh}", store=False)
    account = raw.headers.get("x-grantpool-account")
    assert account in world.ids.values()
    r = raw.parse()
    assert r.object == "response"
    assert r.id.startswith("resp_")
    assert r.status == "completed"
    assert r.model == MODEL
    assert r.output_text == f"echo({world.email_of(account)}): hello {fresh}"
    msg = r.output[-1]
    assert msg.type == "message" and msg.role == "assistant" and msg.id.startswith("msg_")
    assert msg.content[0].type == "output_text"
    u = r.usage
    # The fake counts whitespace-separated words.
    assert u.input_tokens == 2
    assert u.output_tokens == 3  # "echo(<email>): hello there"
    assert u.total_tokens == u.input_tokens + u.output_tokens
    assert u.input_tokens_details.cached_tokens == 0
    assert u.output_tokens_details.reasoning_tokens == 0


def test_responses_instructions_and_items(oai):
    r = oai.responses.create(
        model=MODEL,
        instructions="be brief",
        input=[
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
            {"role": "user", "content": "hi"},
        ],
        # Accepted and ignored.
        metadata={"k": "v"},
        include=["reasoning.encrypted_content"],
        truncation="auto",
        parallel_tool_calls=True,
        prompt_cache_key="session-1",
    )
    assert r.output_text.startswith("[sys:be brief] echo("), r.output_text
    assert r.output_text.endswith("): hi")


def test_responses_stream_text(oai, world):
    events = _events(oai.responses.create(model=MODEL, input="stream this please", stream=True))
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) >= 2, "the fake streams a text in three pieces"
    tail = [t for t in types if t != "response.output_text.delta"][4:]
    assert tail[:3] == ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    assert tail[-1] == "response.completed"
    joined = "".join(deltas)
    m = ECHO.match(joined)
    assert m, joined
    assert joined == f"echo({m.group(1)}): stream this please"
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == joined
    final = events[-1].response
    assert final.id == events[0].response.id
    assert final.status == "completed"
    assert final.output_text == joined
    assert final.usage.input_tokens == 3 and final.usage.total_tokens > 3


def test_responses_stream_helper(oai):
    with oai.responses.stream(model=MODEL, input="helper text") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.status == "completed"
    assert final.output_text.endswith("): helper text")


def test_responses_image(oai):
    size = len(base64.b64decode(PNG_B64))
    r = oai.responses.create(
        model=MODEL,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is this?"},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_B64}"},
                ],
            }
        ],
    )
    assert r.output_text.endswith(f"what is this? image(image/png,{size})"), r.output_text


def test_responses_remote_image_refused(oai):
    with pytest.raises(openai.BadRequestError) as e:
        oai.responses.create(
            model=MODEL,
            input=[{"role": "user", "content": [{"type": "input_image", "image_url": "https://example.com/cat.png"}]}],
        )
    assert "input[0].content[0].image_url" in str(e.value)


def _round_trip(oai, model: str, stream: bool):
    tools = [WEATHER_TOOL]
    items: list = [{"role": "user", "content": "please call:get_weather for Paris"}]
    if stream:
        with oai.responses.stream(model=model, input=items, tools=tools) as s:
            events = [e.type for e in s]
            r = s.get_final_response()
        assert "response.function_call_arguments.delta" in events
        assert "response.function_call_arguments.done" in events
    else:
        r = oai.responses.create(model=model, input=items, tools=tools)
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather"
    assert call.call_id and call.id.startswith("fc_")
    assert json.loads(call.arguments) == {"q": "please for Paris"}
    # What Codex and the SDK docs do: send every output item back.
    items += [o.model_dump(exclude_none=True) for o in r.output]
    items.append({"type": "function_call_output", "call_id": call.call_id, "output": json.dumps({"temp_c": 21})})
    r2 = oai.responses.create(model=model, input=items, tools=tools)
    assert r2.status == "completed"
    assert "result(get_weather)" in r2.output_text, r2.output_text
    assert "21" in r2.output_text
    return r


def test_responses_tool_round_trip(oai):
    _round_trip(oai, MODEL, stream=False)


def test_responses_tool_round_trip_stream(oai):
    _round_trip(oai, MODEL, stream=True)


@pytest.mark.parametrize("stream", [False, True])
def test_responses_gemini3_signature_round_trip(oai, stream):
    r = _round_trip(oai, MODEL3, stream=stream)
    # The call's thought signature rides in a reasoning item before it.
    reasoning = [o for o in r.output if o.type == "reasoning"]
    assert reasoning and reasoning[0].encrypted_content.startswith("grantpool:call:")
    assert [o.type for o in r.output] == ["reasoning", "function_call"]


def test_responses_namespaced_and_custom_tools(oai):
    tools = [
        {"type": "namespace", "name": "weather", "description": "Weather tools", "tools": [dict(WEATHER_TOOL, name="get")]},
        {"type": "custom", "name": "apply_patch", "description": "Edit files", "format": {"type": "text"}},
        # Built-in tools Gemini does not have are dropped, not refused.
        {"type": "web_search"},
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
    ]
    r = oai.responses.create(model=MODEL, input="call:weather__get Rome", tools=tools)
    call = next(o for o in r.output if o.type == "function_call")
    assert call.name == "get"
    assert getattr(call, "namespace", None) == "weather"
    r = oai.responses.create(model=MODEL, input="call:apply_patch now", tools=tools)
    custom = next(o for o in r.output if o.type == "custom_tool_call")
    assert custom.name == "apply_patch" and custom.call_id
    items = [{"role": "user", "content": "call:apply_patch now"}, custom.model_dump(exclude_none=True)]
    items.append({"type": "custom_tool_call_output", "call_id": custom.call_id, "output": "patched"})
    r2 = oai.responses.create(model=MODEL, input=items, tools=tools)
    assert "result(apply_patch)" in r2.output_text, r2.output_text


def test_responses_previous_response_id_refused(oai):
    with pytest.raises(openai.BadRequestError) as e:
        oai.responses.create(model=MODEL, input="again", previous_response_id="resp_123")
    assert "previous_response_id" in str(e.value)
    assert "store: false" in str(e.value)
