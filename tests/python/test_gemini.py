"""The Gemini surface (`/v1beta/models/...`) through the official
`google-genai` client."""

from __future__ import annotations

import base64
import re

import pytest

from google.genai import types

from conftest import PNG_B64, genai_client

MODEL = "gemini-2.5-flash"
ECHO = re.compile(r"^echo\((user\d@example\.com)\): ")


def test_generate_content(gem, world):
    r = gem.models.generate_content(model=MODEL, contents="hello there")
    m = ECHO.match(r.text)
    assert m and m.group(1) in world.emails, r.text
    assert r.text.endswith("): hello there")
    cand = r.candidates[0]
    assert cand.finish_reason == types.FinishReason.STOP
    assert cand.content.role == "model"
    u = r.usage_metadata
    assert u.prompt_token_count == 2
    assert u.candidates_token_count == 3
    assert u.total_token_count == 5


def test_generate_content_stream(gem):
    chunks = list(gem.models.generate_content_stream(model=MODEL, contents="stream this please"))
    assert len(chunks) >= 2, "the fake streams a text in three pieces"
    text = "".join(c.text or "" for c in chunks)
    assert ECHO.match(text) and text.endswith("): stream this please"), text
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.prompt_token_count == 3


def test_system_instruction(gem):
    r = gem.models.generate_content(
        model=MODEL,
        contents="hi",
        config=types.GenerateContentConfig(system_instruction="be brief"),
    )
    assert r.text.startswith("[sys:be brief] echo("), r.text
    assert r.text.endswith("): hi")


def test_inline_image(gem):
    data = base64.b64decode(PNG_B64)
    r = gem.models.generate_content(
        model=MODEL,
        contents=["what is this?", types.Part.from_bytes(data=data, mime_type="image/png")],
    )
    assert r.text.endswith(f"what is this? image(image/png,{len(data)})"), r.text


def test_function_calling(gem):
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="get_weather",
                description="Weather of a city",
                parameters=types.Schema(
                    type=types.Type.OBJECT,
                    properties={"q": types.Schema(type=types.Type.STRING)},
                    required=["q"],
                ),
            )
        ]
    )
    config = types.GenerateContentConfig(
        tools=[tool],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    user = types.Content(role="user", parts=[types.Part.from_text(text="please call:get_weather for Paris")])
    r = gem.models.generate_content(model=MODEL, contents=[user], config=config)
    calls = r.function_calls
    assert calls and len(calls) == 1
    assert calls[0].name == "get_weather"
    assert calls[0].args == {"q": "please for Paris"}

    r2 = gem.models.generate_content(
        model=MODEL,
        contents=[
            user,
            r.candidates[0].content,
            types.Content(
                role="user",
                parts=[types.Part.from_function_response(name="get_weather", response={"temp_c": 21})],
            ),
        ],
        config=config,
    )
    assert r2.text.startswith("result(get_weather): "), r2.text
    assert "21" in r2.text


def test_function_call_stream(gem):
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="get_weather")])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    chunks = list(gem.models.generate_content_stream(model=MODEL, contents="call:get_weather Rome", config=config))
    calls = [fc for c in chunks for fc in (c.function_calls or [])]
    assert len(calls) == 1
    assert calls[0].name == "get_weather" and calls[0].args == {"q": "Rome"}


def test_models_list(gem):
    names = [m.name for m in gem.models.list()]
    assert "models/gemini-2.5-pro" in names
    assert "models/gemini-2.5-flash" in names


# ---- the SDK's default API version ---------------------------------------------
# Current google-genai releases default to API version `v1` (not `v1beta`), so
# docs/clients.md's `http_options={"base_url": URL}` client calls
# `/v1/models...`.


def test_models_list_default_api_version(world):
    client = genai_client(world.url, api_version=None)
    names = [m.name for m in client.models.list()]
    assert "models/gemini-2.5-pro" in names


def test_generate_default_api_version(world):
    client = genai_client(world.url, api_version=None)
    r = client.models.generate_content(model=MODEL, contents="hello v1")
    assert r.text.endswith("): hello v1")
    text = "".join(c.text or "" for c in client.models.generate_content_stream(model=MODEL, contents="hello v1"))
    assert text.endswith("): hello v1")
