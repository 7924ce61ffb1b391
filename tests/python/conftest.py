"""End-to-end fixtures: the real `grantpool` binary in front of the
`fake-google` binary, both on loopback with free ports, driven by the
official OpenAI, Anthropic and Google GenAI Python clients.

Nothing here builds: the binaries are `target/debug/grantpool` and
`target/debug/fake-google` (`cargo build --workspace --bins`, run once
here when one is missing).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
GRANTPOOL = TARGET / "debug" / "grantpool"
FAKE = TARGET / "debug" / "fake-google"
ADMIN_KEY = "test-admin-key"
PLUGIN_CACHE = ROOT / "target" / "test-plugin-cache"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
START_TIMEOUT = 60.0

_built = False


def ensure_binaries() -> None:
    global _built
    if _built or (GRANTPOOL.is_file() and FAKE.is_file()):
        return
    subprocess.run(["cargo", "build", "--workspace", "--bins"], cwd=ROOT, check=True)
    _built = True


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTPOOL_")}
    env["RUST_LOG"] = "info"
    env["NO_COLOR"] = "1"
    return env


class Fake:
    """A running `fake-google`, scripted over `/_fake/*`."""

    def __init__(self, workdir: Path):
        addr_file = workdir / "fake.addr"
        self.proc = subprocess.Popen(
            [str(FAKE), "--listen", "127.0.0.1:0", "--addr-file", str(addr_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_clean_env(),
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not addr_file.is_file():
            if self.proc.poll() is not None:
                raise RuntimeError(f"fake-google exited with {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("fake-google did not write its address")
            time.sleep(0.02)
        self.url = addr_file.read_text().strip()

    def call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + "/_fake/" + path.lstrip("/"),
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise AssertionError(f"fake {method} {path}: {e.code} {e.read()!r}") from None

    def add_account(self, email: str, refresh_token: str) -> None:
        self.call("POST", "accounts", {"email": email, "refresh_token": refresh_token})

    def fault(self, **spec) -> None:
        self.call("POST", "faults", spec)

    def faults(self) -> list:
        return self.call("GET", "faults")

    def clear_faults(self) -> None:
        self.call("DELETE", "faults")

    def stats(self) -> dict:
        return self.call("GET", "stats")

    def reset_stats(self) -> None:
        self.call("POST", "reset_stats")

    def stop(self) -> None:
        _stop(self.proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# The policy of a world that names none and does not ask for the bundled
# default: requests spread over every account in turn.
SPREAD_POLICY = '[selector]\nplugin = "round-robin"\n\n[[classifier]]\nplugin = "default"\n'


def config_toml(data_dir, fake_url: str, top: str = "", server: str = "", extra: str = "") -> str:
    """grantpool.toml for a proxy in `data_dir` whose Google is the fake at
    `fake_url`: loopback on a free port, ADMIN_KEY, the shared plugin cache;
    `top` goes before the first table, `server` into [server], `extra` last."""
    return f'''data_dir = "{data_dir}"
{top}

[server]
listen = "127.0.0.1:0"
admin_key = "{ADMIN_KEY}"
{server}

[oauth]
token_url = "{fake_url}/token"
userinfo_url = "{fake_url}/userinfo"

[upstream]
base_url = "{fake_url}"
timeout_secs = 30

[plugins]
cache_dir = "{PLUGIN_CACHE}"
{extra}
'''


class World:
    """A fake Google, a data directory with a config pointing at it, some
    accounts, and `grantpool serve` on a free loopback port."""

    def __init__(self, accounts: int = 2, server: str = "", extra: str = "", policy: str | None = None, emails: list[str] | None = None,
                 bundled_policy: bool = False):
        """`policy`: policy.toml's text. Without one the world spreads
        requests over every account in turn (SPREAD_POLICY: most tests are
        about what happens to accounts); `bundled_policy=True` runs the
        bundled default instead (affinity: a conversation stays on one
        account)."""
        ensure_binaries()
        self._tmp = tempfile.TemporaryDirectory(prefix="grantpool-py-")
        self.dir = Path(self._tmp.name)
        self.proc = None
        self.logs: list[str] = []
        self.fake = Fake(self.dir)
        try:
            top = ""
            if policy is None and not bundled_policy:
                policy = SPREAD_POLICY
            if policy is not None:
                (self.dir / "policy.toml").write_text(policy)
                top = 'policy = "policy.toml"'
            self.config = self.dir / "grantpool.toml"
            self.config.write_text(config_toml(self.dir, self.fake.url, top=top, server=server, extra=extra))
            self.emails = emails or [f"user{i}@example.com" for i in range(1, accounts + 1)]
            self.ids: dict[str, str] = {}
            for i, email in enumerate(self.emails, 1):
                rt = f"1//refresh-{i}-{email}"
                self.fake.add_account(email, rt)
                out = subprocess.run(
                    [str(GRANTPOOL), "--config", str(self.config), "accounts", "add", "--refresh-token", rt],
                    capture_output=True,
                    text=True,
                    env=_clean_env(),
                    timeout=60,
                )
                assert out.returncode == 0, f"accounts add failed:\n{out.stdout}\n{out.stderr}"
            for f in (self.dir / "accounts").glob("*.json"):
                v = json.loads(f.read_text())
                self.ids[v["email"]] = f.stem
            assert set(self.ids) == set(self.emails), self.ids
            self.url = self._serve()
        except BaseException:
            self.close()
            raise

    def _serve(self) -> str:
        self.proc = subprocess.Popen(
            [str(GRANTPOOL), "--config", str(self.config), "serve"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=_clean_env(),
        )
        found: dict[str, str] = {}
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                plain = ANSI.sub("", line.rstrip("\n"))
                self.logs.append(plain)
                m = re.search(r"listening on (http://\S+)", plain)
                if m and not ready.is_set():
                    found["url"] = m.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(START_TIMEOUT) or "url" not in found:
            raise RuntimeError("grantpool did not start; log:\n" + "\n".join(self.logs))
        return found["url"]

    def log(self) -> str:
        return "\n".join(self.logs)

    def email_of(self, account_id: str) -> str:
        return {v: k for k, v in self.ids.items()}[account_id]

    def close(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
        self.fake.stop()
        self._tmp.cleanup()


@pytest.fixture(scope="session")
def world():
    """The shared world: two accounts, default settings, auth off."""
    w = World(accounts=2)
    yield w
    w.close()


@pytest.fixture
def make_world():
    """A world of one's own (its config, its faults); closed at teardown."""
    made: list[World] = []

    def make(**kw) -> World:
        w = World(**kw)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


# ---- clients -----------------------------------------------------------------

TIMEOUT = 20.0


def openai_client(url: str, api_key: str = "x", **kw):
    import openai

    kw.setdefault("timeout", TIMEOUT)
    return openai.OpenAI(base_url=url + "/v1", api_key=api_key, max_retries=0, **kw)


def anthropic_client(url: str, api_key: str = "x", **kw):
    import anthropic

    kw.setdefault("timeout", TIMEOUT)
    return anthropic.Anthropic(base_url=url, api_key=api_key, max_retries=0, **kw)


def genai_client(url: str, api_key: str = "x", api_version: str | None = "v1beta"):
    """A google-genai client on grantpool. It speaks `v1beta` (the version
    grantpool serves) unless told otherwise: `api_version=None` keeps the
    SDK's own default (`v1` in current releases)."""
    from google import genai
    from google.genai import types

    opts = {"base_url": url, "timeout": int(TIMEOUT * 1000)}
    if api_version is not None:
        opts["api_version"] = api_version
    return genai.Client(api_key=api_key, http_options=types.HttpOptions(**opts))


@pytest.fixture
def oai(world):
    return openai_client(world.url)


@pytest.fixture
def claude(world):
    return anthropic_client(world.url)


@pytest.fixture
def gem(world):
    return genai_client(world.url)


# A 1x1 PNG.
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
