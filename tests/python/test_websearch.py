"""Web search a client can see: a request whose only tool is the web search
tool runs with Gemini's `googleSearch`, and the fake's grounded answer
(`groundingMetadata`: queries, sources on example.org, supports) comes back
in the client's own shape — Anthropic's `server_tool_use` /
`web_search_tool_result` blocks with citations, the Responses API's
`web_search_call` items with `url_citation` annotations — through the
official SDKs, whole and streamed."""

from __future__ import annotations

REDIRECT = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/"
CLAUDE_MODEL = "claude-grantpool-test"
GEMINI_MODEL = "gemini-2.5-flash"
SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}


def source_url(query: str, n: int) -> str:
    """The fake's link to its `n`th source for `query` (FNV-1a of the query)."""
    h = 0x811C9DC5
    for b in query.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return f"{REDIRECT}example-org-{h:08x}-{n}"


def check_anthropic(content, usage, query: str) -> None:
    kinds = [b.type for b in content]
    assert kinds[:2] == ["server_tool_use", "web_search_tool_result"], kinds
    use, result = content[0], content[1]
    assert use.id.startswith("srvtoolu_") and use.name == "web_search"
    assert use.input == {"query": query}
    assert result.tool_use_id == use.id
    assert [(r.type, r.url, r.title) for r in result.content] == [
        ("web_search_result", source_url(query, 1), "example.org"),
        ("web_search_result", source_url(query, 2), "docs.example.org"),
    ]
    assert all(r.encrypted_content for r in result.content)
    texts = [b for b in content[2:] if b.type == "text"]
    assert "".join(b.text for b in texts).startswith(f"{query}: the first source is example.org.")
    cited = [c for b in texts for c in (b.citations or [])]
    assert cited and cited[0].type == "web_search_result_location"
    assert cited[0].url == source_url(query, 1) and cited[0].cited_text.startswith(query)
    assert usage.server_tool_use.web_search_requests == 1


def test_anthropic_web_search_whole(claude):
    query = "who maintains grantpool"
    m = claude.messages.create(model=CLAUDE_MODEL, max_tokens=256, tools=[SEARCH_TOOL],
                               messages=[{"role": "user", "content": query}])
    check_anthropic(m.content, m.usage, query)
    assert m.stop_reason == "end_turn"


def test_anthropic_web_search_stream(claude):
    query = "grantpool release notes"
    with claude.messages.stream(model=CLAUDE_MODEL, max_tokens=256, tools=[SEARCH_TOOL],
                                messages=[{"role": "user", "content": query}]) as stream:
        events = list(stream)
        final = stream.get_final_message()
    starts = [e.content_block.type for e in events if e.type == "content_block_start"]
    assert starts == ["server_tool_use", "web_search_tool_result", "text"], starts
    assert any(e.type == "citation" for e in events), [e.type for e in events]
    check_anthropic(final.content, final.usage, query)


def test_anthropic_search_with_functions_keeps_functions(claude, world):
    """Gemini cannot mix googleSearch and functions: the functions stay,
    and the log says why the search went."""
    tools = [SEARCH_TOOL, {"name": "get_weather", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]
    m = claude.messages.create(model=CLAUDE_MODEL, max_tokens=256, tools=tools,
                               messages=[{"role": "user", "content": "call:get_weather Rome"}])
    assert [b.type for b in m.content] == ["tool_use"], m.content
    assert "web search is left out" in world.log() or "web search tool left out" in world.log()


def test_responses_web_search(oai):
    query = "what is grantpool"
    r = oai.responses.create(model=GEMINI_MODEL, input=query, tools=[{"type": "web_search"}])
    assert [o.type for o in r.output] == ["web_search_call", "message"], r.output
    call = r.output[0]
    assert call.status == "completed" and call.action.type == "search" and call.action.query == query
    part = r.output[1].content[0]
    assert part.text.startswith(f"{query}: the first source is example.org.")
    notes = part.annotations
    assert notes and all(a.type == "url_citation" for a in notes)
    assert notes[0].url == source_url(query, 1) and notes[0].title == "example.org"
    assert part.text[notes[0].start_index:notes[0].end_index] == f"{query}: the first source is example.org."
    assert {a.url for a in notes} == {source_url(query, 1), source_url(query, 2)}


def test_responses_web_search_stream(oai):
    query = "grantpool web search stream"
    with oai.responses.stream(model=GEMINI_MODEL, input=query, tools=[{"type": "web_search_preview"}]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds.index("response.web_search_call.completed") < kinds.index("response.output_text.delta"), kinds
    assert "response.output_text.annotation.added" in kinds
    assert [o.type for o in final.output] == ["web_search_call", "message"]
    assert final.output[0].action.query == query
    assert any(a.url == source_url(query, 1) for a in final.output[1].content[0].annotations)
