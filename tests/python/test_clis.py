"""The coding agents users run, for real, through grantpool: Claude Code,
Codex CLI and Gemini CLI from the npm registry (pinned in
tests/clients/package-lock.json, installed by ./dev test), each in a
sandboxed HOME with telemetry and update checks off and every run bounded
in time, against grantpool in front of the fake Google (which refuses what
Google refuses: schemas, thought signatures, envelopes).

For each CLI: a plain prompt answered, and a shell-tool round trip whose
final answer holds the tool's output (the fake's scripted agent turn:
`RUN: <command>` makes the model call the CLI's shell tool; the next turn
answers `The command printed: <output>`). Every request a CLI sent must be
answered 2xx: nothing refused by grantpool, nothing refused by the fake.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

from conftest import ADMIN_KEY, ROOT, World

BIN = ROOT / "tests" / "clients" / "node_modules" / ".bin"
RUN_TIMEOUT = 150
MAGIC = "MAGIC-4242"
SHELL_PROMPT = f"RUN: echo {MAGIC}"

# Claude Code asks for Anthropic model names; the pool serves Antigravity's.
MODELS = """
[models]
"claude-opus-*" = "claude-opus-4-6-thinking"
"claude-sonnet-*" = "claude-sonnet-4-6"
"claude-haiku-*" = "claude-sonnet-4-6"
"""

pytestmark = pytest.mark.skipif(
    not os.environ.get("CI") and not (BIN / "claude").exists(), reason="the client CLIs are installed by ./dev test (npm ci in tests/clients)"
)


@pytest.fixture(scope="module")
def agents():
    """One world for the agent runs: two accounts of the built-in
    Antigravity client (Claude and Gemini 3 models), strict fake — with the
    fake's content filter off: Google refuses the system prompts of Claude
    Code's print mode and of Codex (tested below with the filter on), and
    these runs are about the protocols."""
    w = World(accounts=2, extra=MODELS)
    w.fake.call("POST", "settings", {"refused_phrases": []})
    yield w
    w.close()


@pytest.fixture(scope="module")
def refusing():
    """Three accounts behind a fake that refuses, as Google does, the
    reported system-prompt phrases with a bare 429 on every account."""
    w = World(accounts=3, extra=MODELS)
    yield w
    w.close()


def sandbox(world: World, name: str) -> tuple[Path, dict]:
    """A fresh HOME (and project folder) for one CLI run, and a base env
    with nothing of the user's: no real keys, no telemetry, no updates."""
    home = world.dir / "homes" / name
    proj = home / "proj"
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    proj.mkdir(parents=True, exist_ok=True)
    env = {
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        "TERM": "dumb",
    }
    return proj, env


def run(world: World, name: str, argv: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    """Run one CLI command, stdin closed (they wait for EOF), bounded."""
    before = len(world.logs)
    try:
        out = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{name}: no answer within {RUN_TIMEOUT}s\nstdout: {e.stdout}\nstderr: {e.stderr}\nproxy log:\n" + "\n".join(world.logs[before:])) from None
    log = "\n".join(world.logs[before:])
    detail = f"{name}: rc {out.returncode}\nstdout: {out.stdout[-3000:]}\nstderr: {out.stderr[-3000:]}\nproxy log:\n{log[-6000:]}"
    assert out.returncode == 0, detail
    assert "refused a client request" not in log, "grantpool refused a request the CLI sent\n" + detail
    assert "upstream failure" not in log, "Google (the fake) refused a request grantpool sent\n" + detail
    assert "no account can serve" not in log, detail
    return out


def claude_cmd(world: World, name: str, prompt: str, *extra: str) -> tuple[list[str], dict, Path]:
    """Claude Code's command line, environment and folder for one run."""
    proj, env = sandbox(world, name)
    env.update(
        ANTHROPIC_BASE_URL=world.url,
        ANTHROPIC_API_KEY="sk-test",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_TELEMETRY="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_ERROR_REPORTING="1",
        CLAUDE_CODE_MAX_RETRIES="0",
    )
    return [str(BIN / "claude"), "-p", prompt, "--output-format", "json", *extra], env, proj


def claude(world: World, name: str, prompt: str, *extra: str) -> dict:
    argv, env, proj = claude_cmd(world, name, prompt, *extra)
    out = run(world, name, argv, env, proj)
    result = json.loads(out.stdout)
    assert not result.get("is_error"), result
    return result


def codex_cmd(world: World, name: str, prompt: str, model: str) -> tuple[list[str], dict, Path]:
    """Codex CLI's command line, environment and folder for one run."""
    proj, env = sandbox(world, name)
    codex_home = Path(env["HOME"]) / ".codex"
    codex_home.mkdir(exist_ok=True)
    (codex_home / "config.toml").write_text(
        f'''model = "{model}"
model_provider = "grantpool"
check_for_update_on_startup = false

[model_providers.grantpool]
name = "grantpool"
base_url = "{world.url}/v1"
wire_api = "responses"
env_key = "GRANTPOOL_KEY"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[features]
plugins = false
'''
    )
    env.update(CODEX_HOME=str(codex_home), GRANTPOOL_KEY="sk-test")
    return [str(BIN / "codex"), "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", prompt], env, proj


def codex(world: World, name: str, prompt: str, model: str) -> str:
    argv, env, proj = codex_cmd(world, name, prompt, model)
    return run(world, name, argv, env, proj).stdout


def gemini_cmd(world: World, name: str, prompt: str, model: str, *extra: str) -> tuple[list[str], dict, Path]:
    """Gemini CLI's command line, environment and folder for one run."""
    proj, env = sandbox(world, name)
    settings = Path(env["HOME"]) / ".gemini"
    settings.mkdir(exist_ok=True)
    (settings / "settings.json").write_text(
        json.dumps(
            {
                # 0.61 needs the auth type named for a custom base URL.
                "security": {"auth": {"selectedType": "gemini-api-key"}},
                "privacy": {"usageStatisticsEnabled": False},
                "telemetry": {"enabled": False},
                "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False, "maxAttempts": 1},
            }
        )
    )
    env.update(GEMINI_API_KEY="sk-test", GOOGLE_GEMINI_BASE_URL=world.url, GEMINI_CLI_NO_RELAUNCH="true")
    return [str(BIN / "gemini"), "--skip-trust", "-m", model, *extra, "-p", prompt], env, proj


def gemini(world: World, name: str, prompt: str, model: str, *extra: str) -> str:
    argv, env, proj = gemini_cmd(world, name, prompt, model, *extra)
    return run(world, name, argv, env, proj).stdout


# ---- Claude Code ---------------------------------------------------------------


def test_claude_code_default_model_plain(agents):
    r = claude(agents, "claude-default-plain", "say hi")
    assert "say hi" in r["result"] and "echo(" in r["result"], r


def test_claude_code_default_model_shell_round_trip(agents):
    """Claude Code's default tool set (24 tools, any-value schemas among them)
    and its default model (adaptive thinking, system messages mid-conversation)."""
    r = claude(agents, "claude-default-tool", SHELL_PROMPT, "--allowedTools", "Bash")
    assert f"The command printed: {MAGIC}" in r["result"], r
    assert r["num_turns"] >= 2, r


def test_claude_code_print_mode_refused_for_its_prompt_rests_no_account(refusing):
    """The real Claude Code in print mode sends the Agent SDK identity (and
    its attribution line) that Google refuses with a bare 429 on every
    account. grantpool spends at most two upstream calls on it, tells Claude
    Code why, and rests nobody: the next request of another client is served
    at once."""
    argv, env, proj = claude_cmd(refusing, "claude-refused", "say hi")
    # Claude Code's own retries stay on: `x-should-retry: false` must stop them.
    env.pop("CLAUDE_CODE_MAX_RETRIES")
    refusing.fake.reset_stats()
    before = len(refusing.logs)
    out = subprocess.run(argv, cwd=proj, env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=RUN_TIMEOUT)
    log = "\n".join(refusing.logs[before:])
    detail = f"rc {out.returncode}\nstdout: {out.stdout[-3000:]}\nstderr: {out.stderr[-3000:]}\nproxy log:\n{log[-6000:]}"
    assert "most likely for its content" in out.stdout + out.stderr, "Claude Code shows why\n" + detail
    generates = [r for r in refusing.fake.call("GET", "requests") if r.get("endpoint") in ("generate", "stream")]
    # Claude Code may send small side requests (a title, a topic) whose
    # system prompt differs; the refused ones cost two calls each.
    refused = [r for r in generates if r.get("outcome") == "content_refused"]
    assert refused and len(refused) <= 2 * log.count("most likely for its content"), detail
    assert log.count("most likely for its content") >= 1, detail
    accounts = json.loads(urllib.request.urlopen(urllib.request.Request(refusing.url + "/admin/accounts", headers={"authorization": f"Bearer {ADMIN_KEY}"}), timeout=10).read())["accounts"]
    assert all(a["state"] == "active" for a in accounts), accounts
    # Another client, another prompt: served at once, by any account.
    served = set()
    for i in range(6):
        req = urllib.request.Request(refusing.url + "/v1beta/models/gemini-2.5-pro:generateContent", method="POST",
                                     data=json.dumps({"contents": [{"role": "user", "parts": [{"text": f"hi {i}"}]}]}).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200
            served.add(resp.headers["x-grantpool-account"])
    assert len(served) == 3, served


def test_claude_code_websearch(agents):
    """Claude Code's WebSearch tool: the fake's agent turn calls it
    (`SEARCH: <query>`), Claude Code sends its own request with only the
    `web_search_20250305` server tool, grantpool answers with Anthropic's
    search blocks from the fake's grounding, and Claude Code counts the
    search and hands the sources back to the model."""
    query = "grantpool websearch check"
    name = "claude-websearch"
    r = claude(agents, name, f"SEARCH: {query}", "--allowedTools", "WebSearch")
    # The final turn echoes the tool result (`result(WebSearch): …`), which
    # holds the sources' links.
    assert "result(WebSearch)" in r["result"], r
    assert "vertexaisearch.cloud.google.com/grounding-api-redirect/example-org-" in r["result"], r
    # Claude Code counted the search: its usage, else the tool's own record
    # in the transcript.
    searches = (r.get("usage") or {}).get("server_tool_use", {}).get("web_search_requests", 0)
    if not searches:
        home = agents.dir / "homes" / name / ".claude" / "projects"
        records = [json.loads(line) for f in home.rglob("*.jsonl") for line in f.read_text().splitlines() if line.strip()]
        results = [rec.get("toolUseResult") for rec in records if isinstance(rec.get("toolUseResult"), dict)]
        searches = sum(1 for t in results for item in t.get("results", []) if isinstance(item, dict))
    assert searches >= 1, r


def test_claude_code_gemini3_model(agents):
    r = claude(agents, "claude-gemini3-plain", "say hi", "--model", "gemini-3-pro-preview")
    assert "say hi" in r["result"], r
    r = claude(agents, "claude-gemini3-tool", SHELL_PROMPT, "--model", "gemini-3-pro-preview", "--allowedTools", "Bash")
    assert f"The command printed: {MAGIC}" in r["result"], r


# ---- Codex CLI -----------------------------------------------------------------


@pytest.mark.parametrize("model", ["gemini-3-pro-preview", "claude-sonnet-4-6"])
def test_codex_plain_and_shell_round_trip(agents, model):
    out = codex(agents, f"codex-plain-{model}", "say hi", model)
    assert "say hi" in out, out
    out = codex(agents, f"codex-tool-{model}", SHELL_PROMPT, model)
    # Codex returns the command's output with a header (`Chunk ID …`, `Output:`).
    assert re.search(rf"The command printed: .*{MAGIC}", out, re.S), out


# ---- Gemini CLI ----------------------------------------------------------------


# `gemini-3.8-flash`: the family name Gemini CLI sends; Antigravity lists
# only its tiers (`-high`, `-medium`, `-low`), and grantpool serves a tier.
@pytest.mark.parametrize("model", ["gemini-2.5-pro", "gemini-3-pro-preview", "gemini-3.8-flash"])
def test_gemini_cli_plain_and_shell_round_trip(agents, model):
    out = gemini(agents, f"gemini-plain-{model}", "say hi", model)
    assert "say hi" in out, out
    out = gemini(agents, f"gemini-tool-{model}", SHELL_PROMPT, model, "--yolo")
    # Gemini CLI wraps the output it returns (`<untrusted_context>Output: …`).
    assert re.search(rf"The command printed: .*{MAGIC}", out, re.S), out


# ---- Conversations on the bundled default policy (affinity) ---------------------


@pytest.fixture(scope="module")
def affinity():
    """Three accounts on the bundled default policy: a conversation stays on
    one account. The fake's content filter is off (as for `agents`)."""
    w = World(accounts=3, extra=MODELS, bundled_policy=True)
    w.fake.call("POST", "settings", {"refused_phrases": []})
    yield w
    w.close()


@pytest.mark.parametrize("client", ["claude", "codex", "gemini"])
def test_each_agent_conversation_stays_on_one_account_and_two_at_once_take_two(affinity, client):
    """Two conversations of the real CLI started at the same moment, each an
    agent turn with a shell-tool round trip (several requests): every
    upstream call of one conversation is served by one account, and the two
    conversations by two different accounts."""
    make = {
        "claude": lambda w, name: claude_cmd(w, name, SHELL_PROMPT, "--allowedTools", "Bash"),
        "codex": lambda w, name: codex_cmd(w, name, SHELL_PROMPT, "gemini-3-pro-preview"),
        # Each conversation its own first turn (Gemini CLI sends no id).
        "gemini": lambda w, name: gemini_cmd(w, name, f"{SHELL_PROMPT} # {name}", "gemini-3-pro-preview", "--yolo"),
    }[client]
    affinity.fake.call("POST", "reset_stats")
    runs = [make(affinity, f"{client}-conv-{i}") for i in range(2)]  # (argv, env, cwd)
    procs = [subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for argv, env, cwd in runs]
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        outs.append((p.returncode, out, err))
    detail = "\n".join(f"rc {rc}\nstdout: {o[-2000:]}\nstderr: {e[-2000:]}" for rc, o, e in outs) + "\nproxy log:\n" + affinity.log()[-6000:]
    assert all(rc == 0 for rc, _, _ in outs), detail
    assert all(MAGIC in o for _, o, _ in outs), detail
    calls = [r for r in affinity.fake.call("GET", "requests") if r.get("endpoint") in ("generate", "stream")]
    by_conversation: dict[str, set] = {}
    for r in calls:
        req = r["body"]["request"]
        session = req.get("sessionId") or req.get("session_id")
        by_conversation.setdefault(session, set()).add(r["email"])
    # Requests that carry the shell prompt name the two conversations.
    main = {s for s in by_conversation if any(
        (r["body"]["request"].get("sessionId") or r["body"]["request"].get("session_id")) == s and "RUN: echo" in json.dumps(r["body"]["request"].get("contents", []))
        for r in calls)}
    assert len(main) == 2, (by_conversation, detail)
    for s in main:
        assert len(by_conversation[s]) == 1, f"one conversation, one account: {by_conversation}\n{detail}"
    homes = [next(iter(by_conversation[s])) for s in main]
    assert homes[0] != homes[1], f"two conversations at once, two accounts: {by_conversation}"
    assert sum(1 for r in calls if (r["body"]["request"].get("sessionId") or r["body"]["request"].get("session_id")) in main) >= 4, "each a turn of several requests"
