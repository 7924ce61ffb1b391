"""The documentation's own examples, run: README.md and docs/*.md.

What is checked:

- every `grantpool …` line of a shell code block parses against the real
  CLI (`--help` appended: clap still refuses an unknown subcommand, flag or
  value), and the ones that are safe to run are run for real, in document
  order, against a data directory of their own whose Google is the fake
  one (exit code 0);
- every `curl` line aimed at the proxy (`http://127.0.0.1:8045`) runs
  against a running proxy that requires a client key (the URL and the keys
  rewritten to the fixture's) and must answer 2xx;
- every `./dev COMMAND` is a command of the `dev` script;
- every TOML and JSON block parses; a `policy.toml` block passes
  `grantpool policy check`; a `grantpool.toml` block is accepted by the
  real config reader (unknown keys are refused there);
- every relative link and image (README.md, CONTRIBUTING.md, docs/*.md)
  points to a file in the repository, and a `#fragment` to a heading of
  that page; every docs page is linked from README.md, starts with a link
  back to it, and every image in docs/ is shown somewhere;
- README.md stays under 10,000 bytes.

What is not run for real (it still goes through the parse check), and why,
is SKIPPED_FOR_REAL below; the few blocks left out are SKIPPED_BLOCKS.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ADMIN_KEY, GRANTPOOL, ROOT, SPREAD_POLICY, World, _clean_env, config_toml, ensure_binaries

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]  # whose examples are run
LINKED = [README, ROOT / "CONTRIBUTING.md", *DOCS]  # whose links are checked
README_LIMIT = 10_000
PROXY = "http://127.0.0.1:8045"
API_KEY = "sk-docs-test"

# `grantpool` commands that are only parsed, never run, with the reason.
# A command is matched by its leading words (after placeholders are filled).
SKIPPED_FOR_REAL = {
    ("serve",): "a long-running server (the fixtures start their own)",
    ("accounts", "login"): "opens a browser and waits for a Google sign-in",
    ("accounts", "import", "agy"): "reads this machine's keyring or agy's own token file",
    ("plugin", "build"): "runs cargo, or installs componentize-py from PyPI: minutes",
    ("plugin", "test"): "needs the .wasm of a `plugin build` first",
}
# ... and one more: `accounts add` with `--egress NAME` (Google's check of
# the token goes through that outbound proxy, which the test does not run).
EGRESS_ADD = "its calls go through an outbound proxy the test does not run"

# Code blocks not checked at all: (page, text in the block) → why.
SKIPPED_BLOCKS = {
    ("writing-plugins.md", "/home/me/revoked/build/revoked.wasm"): "names the .wasm a plugin build makes on the reader's machine",
    ("cluster.md", "redis_url"): "needs a Redis server",
}

# Gemini CLI's public OAuth client (host/src/profiles.rs), for the fake.
GEMINI_CLI_CLIENT_ID = "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"

POLICY_TABLES = {"selector", "classifier", "guard", "quota_protection"}
CONFIG_TABLES = {"server", "oauth", "upstream", "log", "plugins", "cluster", "egress", "usage", "models"}


# ---- reading the pages -------------------------------------------------------


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


FENCE = re.compile(r"^(\s*)```\s*([\w+-]*)\s*$")


def blocks(page: Path) -> list[Block]:
    out, cur, lang, start = [], None, "", 0
    for i, line in enumerate(page.read_text().splitlines(), 1):
        m = FENCE.match(line)
        if m and cur is None:
            cur, lang, start = [], m.group(2).lower(), i
        elif line.strip() == "```" and cur is not None:
            out.append(Block(page, start, lang, "\n".join(cur)))
            cur = None
        elif cur is not None:
            cur.append(line)
    assert cur is None, f"{page}: a code block is not closed"
    return out


def skipped(block: Block) -> bool:
    return any(block.page.name == p and s in block.text for (p, s) in SKIPPED_BLOCKS)


def all_blocks() -> list[Block]:
    return [b for p in PAGES for b in blocks(p) if not skipped(b)]


def shell_lines(block: Block) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments dropped."""
    out, acc = [], ""
    for raw in block.text.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            acc += line[:-1] + " "
            continue
        acc += line
        cmd = acc.strip()
        acc = ""
        if cmd and not cmd.startswith("#"):
            out.append(cmd)
    return out


def commands(prefix: str) -> list[tuple[Block, str]]:
    return [
        (b, c)
        for b in all_blocks()
        if b.lang in ("sh", "bash", "shell", "console")
        for c in shell_lines(b)
        if c == prefix or c.startswith(prefix + " ")
    ]


def words(cmd: str) -> list[str]:
    """shell words, the trailing comment dropped; `[--flag value]` (an
    optional part) taken as given."""
    cmd = re.sub(r"\[(--[^\]]+)\]", r"\1", cmd)
    return shlex.split(cmd, comments=True)


# ---- grantpool commands ------------------------------------------------------


class CliWorld:
    """A data directory and config whose Google is a running fake, with
    accounts alice, bob and carol, two outbound proxies named as the docs
    name them (never reached), and a working directory for the commands."""

    def __init__(self):
        extra = (
            "\n[egress.proxies.office]\nurl = \"http://127.0.0.1:9\"\n"
            "[egress.proxies.tunnel]\nurl = \"socks5h://127.0.0.1:9\"\n"
        )
        self.world = World(emails=["alice@example.com", "bob@example.com", "carol@example.com"], extra=extra)
        self.world.proc.terminate()  # the CLI works on the files; no proxy beside it
        self.world.proc.wait(timeout=10)
        # The token `accounts add --refresh-token 1//0g…` stands for, one
        # per OAuth client (a refresh token refreshes only with its own).
        self.world.fake.add_account("new@example.com", "1//docs-new")
        self.world.fake.call("POST", "accounts", {"email": "new-gcli@example.com", "refresh_token": "1//docs-new-gcli",
                                                  "client_id": GEMINI_CLI_CLIENT_ID})
        self.cwd = self.world.dir / "cwd"
        self.cwd.mkdir()
        (self.cwd / "policy.toml").write_text(SPREAD_POLICY)
        self.home = self.world.dir / "home"
        self.home.mkdir()
        self.import_dir = self.world.dir / "to-import"
        shutil.copytree(self.world.dir / "accounts", self.import_dir)

    def some_account(self) -> str:
        """An account that exists now (not alice, whom the docs name)."""
        emails = sorted(json.loads(f.read_text())["email"] for f in (self.world.dir / "accounts").glob("*.json"))
        others = [e for e in emails if e != "alice@example.com"]
        assert others, emails
        return others[0]

    def fill(self, argv: list[str]) -> list[str]:
        """The docs' placeholders, made real."""
        out = []
        for w in argv:
            if w in ("ID", "ID_OR_EMAIL"):
                w = self.some_account()
            elif w.startswith("1//0g"):
                w = "1//docs-new-gcli" if "gemini-cli" in argv else "1//docs-new"
            elif w in ("~/.antigravity_tools", "~/.grantpool/accounts"):
                w = str(self.import_dir)
            out.append(w)
        return out

    def run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        env = _clean_env()
        env["HOME"] = str(self.home)
        return subprocess.run(
            [str(GRANTPOOL), "--config", str(self.world.config), *args],
            cwd=self.cwd, env=env, capture_output=True, text=True, timeout=timeout,
        )

    def close(self):
        self.world.close()


@pytest.fixture(scope="module")
def cli():
    ensure_binaries()
    w = CliWorld()
    yield w
    w.close()


def skip_reason(args: list[str]) -> str | None:
    for prefix, why in SKIPPED_FOR_REAL.items():
        if tuple(args[: len(prefix)]) == prefix:
            return why
    if args[:2] == ["accounts", "add"] and "--egress" in args:
        return EGRESS_ADD
    return None


def test_grantpool_commands_parse_and_run(cli):
    found = commands("grantpool")
    assert len(found) >= 20, f"only {len(found)} grantpool commands found in the docs"
    ran, parsed_only, failures = 0, [], []
    for block, cmd in found:
        args = cli.fill(words(cmd)[1:])
        # The parse check: clap validates everything before `--help`.
        p = cli.run([*args, "--help"], timeout=30)
        if p.returncode != 0:
            failures.append(f"{block.where}: `{cmd}` does not parse:\n{p.stderr.strip()}")
            continue
        why = skip_reason(args)
        if why:
            parsed_only.append(f"{' '.join(args[:3])}: {why}")
            continue
        p = cli.run(args)
        ran += 1
        if p.returncode != 0:
            failures.append(f"{block.where}: `{cmd}` (run as {args}) exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    assert not failures, "\n\n".join(failures)
    assert ran >= 15, f"only {ran} commands ran for real; parsed only: {parsed_only}"
    # The skips stay few: a new kind of skipped command must be named above.
    assert len(parsed_only) <= 12, parsed_only


def test_plugin_project_it_makes_is_what_the_docs_use(cli):
    """`plugin new` (run above) writes the files the next commands name."""
    project = cli.cwd / "revoked"
    if not project.exists():
        pytest.skip("no `plugin new revoked` in the docs")
    for f in ["src/app.py", "case.json", "policy-snippet.toml"]:
        assert (project / f).is_file(), f


# ---- curl ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy():
    w = World(accounts=2, server=f'api_keys = ["{API_KEY}"]')
    yield w
    w.close()


def test_curl_examples_answer_2xx(proxy):
    assert shutil.which("curl"), "curl is needed to run the docs' curl examples"
    found = [(b, c) for b, c in commands("curl") if PROXY in c]
    assert found, "no curl example aimed at the proxy"
    env = _clean_env()
    env["GRANTPOOL_API_KEY"] = API_KEY
    env["GRANTPOOL_ADMIN_KEY"] = ADMIN_KEY
    failures = []
    for block, cmd in found:
        line = cmd.replace(PROXY, proxy.url)
        line += " -sS --max-time 30 -o /dev/stderr -w '%{http_code}'"
        p = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True, timeout=60)
        status = p.stdout.strip()
        if p.returncode != 0 or not status.startswith("2"):
            failures.append(f"{block.where}: `{cmd}` answered {status or 'nothing'} (exit {p.returncode}):\n{p.stderr[:2000]}")
    assert not failures, "\n\n".join(failures)


def test_curl_without_the_key_is_refused(proxy):
    """The check above is real: the proxy it runs against wants a key."""
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", proxy.url + "/v1/models"],
                       capture_output=True, text=True, timeout=30)
    assert p.stdout.strip() == "401", p.stdout


# ---- ./dev ----------------------------------------------------------------------


def test_dev_commands_exist():
    script = (ROOT / "dev").read_text()
    known = set(re.findall(r"^  ([a-z-]+)\)$", script, re.M))
    found = commands("./dev")
    assert found
    bad = [f"{b.where}: {c}" for b, c in found if words(c)[1] not in known]
    assert not bad, f"not a ./dev command ({sorted(known)}): {bad}"


# ---- TOML and JSON blocks -------------------------------------------------------


def toml_blocks() -> list[tuple[Block, dict]]:
    out = []
    for b in all_blocks():
        if b.lang == "toml":
            try:
                out.append((b, tomllib.loads(b.text)))
            except tomllib.TOMLDecodeError as e:
                pytest.fail(f"{b.where}: the TOML does not parse: {e}")
    return out


def test_json_blocks_parse():
    for b in all_blocks():
        if b.lang == "json":
            try:
                json.loads(b.text)
            except json.JSONDecodeError as e:
                pytest.fail(f"{b.where}: the JSON does not parse: {e}")


def test_policy_blocks_pass_policy_check(tmp_path):
    ensure_binaries()
    checked = 0
    for b, doc in toml_blocks():
        if not doc or not set(doc) <= POLICY_TABLES:
            continue
        f = tmp_path / f"policy-{checked}.toml"
        f.write_text(b.text)
        p = subprocess.run([str(GRANTPOOL), "--data-dir", str(tmp_path / "data"), "policy", "check", str(f)],
                           capture_output=True, text=True, env=_clean_env(), timeout=120)
        assert p.returncode == 0, f"{b.where}: grantpool policy check refused it:\n{p.stdout}\n{p.stderr}"
        checked += 1
    assert checked >= 3, f"only {checked} policy blocks found"


def test_config_blocks_are_accepted(tmp_path):
    """A grantpool.toml block, added to a working config, is read without a
    complaint (the config refuses unknown keys and bad proxy URLs)."""
    ensure_binaries()
    checked = 0
    for b, doc in toml_blocks():
        if not doc or not set(doc) <= CONFIG_TABLES or not all(isinstance(v, dict) for v in doc.values()):
            continue
        data = tmp_path / f"data-{checked}"
        data.mkdir()
        cfg = data / "grantpool.toml"
        cfg.write_text(config_toml(data, "http://127.0.0.1:9", extra="\n" + b.text))
        p = subprocess.run([str(GRANTPOOL), "--config", str(cfg), "accounts", "list"],
                           capture_output=True, text=True, env=_clean_env(), timeout=60)
        assert p.returncode == 0, f"{b.where}: the config was refused:\n{p.stdout}\n{p.stderr}"
        checked += 1
    assert checked >= 3, f"only {checked} config blocks found"


# ---- links ----------------------------------------------------------------------


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose(page: Path) -> str:
    """The page without its code blocks and inline code."""
    text = re.sub(r"^\s*```.*?^\s*```\s*$", "", page.read_text(), flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    s = re.sub(r"[`*_]|\[|\]\([^)]*\)", "", heading).strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose(page).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            out.add(base if n == 0 else f"{base}-{n}")
            seen[base] = n + 1
    return out


def links(page: Path) -> list[str]:
    return LINK.findall(prose(page))


def test_relative_links_and_anchors_resolve():
    bad = []
    for page in LINKED:
        for target in links(page):
            if re.match(r"^[a-z]+:", target):
                continue  # http(s):, mailto:
            path, _, frag = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.is_relative_to(ROOT) or not dest.exists():
                bad.append(f"{page.relative_to(ROOT)}: {target} (no such file in the repository)")
                continue
            if frag and dest.suffix == ".md" and frag not in anchors(dest):
                bad.append(f"{page.relative_to(ROOT)}: {target} (no heading #{frag} in {dest.relative_to(ROOT)})")
    assert not bad, "\n".join(bad)


def test_every_docs_page_is_linked_from_the_readme_and_back():
    from_readme = {(ROOT / t.partition("#")[0]).resolve() for t in links(README)}
    assert DOCS, "no docs/*.md"
    missing = [p.name for p in DOCS if p.resolve() not in from_readme]
    assert not missing, f"docs pages the README does not link: {missing}"
    for p in DOCS:
        lines = p.read_text().splitlines()
        assert lines[0].startswith("# "), f"{p.name}: no title"
        intro = next(l for l in lines[1:] if l.strip())
        assert "](../README.md)" in intro, f"{p.name}: the first line after the title must link back to the README"


def test_every_image_in_docs_is_shown():
    shown = {(page.parent / t).resolve() for page in LINKED for t in links(page)}
    unshown = [i.name for i in sorted((ROOT / "docs").glob("*.png")) if i.resolve() not in shown]
    assert not unshown, f"images in docs/ no page shows: {unshown}"


def test_readme_is_short():
    size = len(README.read_bytes())
    assert size < README_LIMIT, f"README.md is {size} bytes; keep it under {README_LIMIT} (move detail to docs/)"
