"""The current client surface through the official SDKs: token counting on
both routes, the model lists in each shape, the root probe, and what
today's Anthropic clients send (system messages inside `messages`,
adaptive thinking with an effort, context management, cache control,
beta headers, tool results with errors and images)."""

from __future__ import annotations

import json
import urllib.request

from conftest import PNG_B64, anthropic_client

MODEL = "claude-sonnet-4-6"


def test_anthropic_count_tokens(claude):
    n = claude.messages.count_tokens(
        model=MODEL, system="be brief", messages=[{"role": "user", "content": "one two three four"}]
    )
    # The fake counts words over every text: the system's two and the user's four.
    assert n.input_tokens == 6


def test_gemini_count_tokens(gem):
    r = gem.models.count_tokens(model="gemini-2.5-pro", contents="alpha beta gamma")
    assert r.total_tokens == 3


def test_model_lists_in_each_shape(claude, oai, gem, world):
    anthropic_ids = [m.id for m in claude.models.list().data]
    openai_ids = [m.id for m in oai.models.list().data]
    gemini_names = [m.name for m in gem.models.list()]
    # Google's own list for the pool's accounts: Claude and Gemini models.
    for ids in (anthropic_ids, openai_ids):
        assert "claude-sonnet-4-6" in ids and "gemini-2.5-pro" in ids, ids
    assert "models/gemini-2.5-pro" in gemini_names, gemini_names
    # The Anthropic shape is chosen by the anthropic-version header.
    req = urllib.request.Request(world.url + "/v1/models", headers={"anthropic-version": "2023-06-01"})
    body = json.loads(urllib.request.urlopen(req, timeout=10).read())
    assert body["data"][0]["type"] == "model" and "has_more" in body, body


def test_root_answers_head_and_get(world):
    for method in ("HEAD", "GET"):
        req = urllib.request.Request(world.url + "/", method=method)
        assert urllib.request.urlopen(req, timeout=10).status == 200


def test_claude_code_shaped_request(world):
    """What Claude Code's default model sends: a system message after the
    user's, adaptive thinking with output_config.effort, context management,
    cache_control on blocks, metadata.user_id as a JSON string, betas."""
    client = anthropic_client(
        world.url,
        default_headers={"anthropic-beta": "claude-code-20250219,context-management-2025-06-27,mid-conversation-system-2026-04-07,effort-2025-11-24"},
    )
    m = client.messages.create(
        model=MODEL,
        max_tokens=64000,
        system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "say hi", "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "Available agent types: none."},
        ],
        metadata={"user_id": json.dumps({"device_id": "d", "session_id": "s"})},
        extra_body={
            "thinking": {"type": "adaptive"},
            "output_config": {"effort": "high"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        },
    )
    text = "".join(b.text for b in m.content if b.type == "text")
    # Both system texts reached the model's system instruction.
    assert "[sys:You are terse. Available agent types: none.]" in text or "[sys:You are terse.\nAvailable agent types: none.]" in text, text
    assert "say hi" in text, text
    # Claude through Antigravity thinks first (signed), then answers.
    assert m.content[0].type == "thinking" and m.content[0].signature, m.content


def test_tool_result_with_error_and_image(claude):
    tool = {"name": "shot", "description": "screenshot", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}
    first = claude.messages.create(
        model=MODEL, max_tokens=256, tools=[tool], messages=[{"role": "user", "content": "call:shot please"}]
    )
    use = next(b for b in first.content if b.type == "tool_use")
    second = claude.messages.create(
        model=MODEL,
        max_tokens=256,
        tools=[tool],
        messages=[
            {"role": "user", "content": "call:shot please"},
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": use.id,
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "camera offline"},
                            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                        ],
                    }
                ],
            },
        ],
    )
    text = "".join(b.text for b in second.content if b.type == "text")
    assert "result(shot)" in text and "camera offline" in text and "is_error" in text, text
