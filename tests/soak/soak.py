"""`./dev soak [minutes]`: grantpool under load in the three client
protocols (streaming and not, with the official SDKs) while the fake Google
injects random faults — 5xx, 429 of each kind, dropped connections and
streams cut mid-way, slow answers, revoked grants, 401s, spells of
`invalid_client` at the token endpoint. `--cluster`: two nodes on one real
`redis-server`, the load split between them (`./dev soak-cluster [minutes]`).
At the end it asserts:

- only the revoked accounts are disabled (0 wrong disables);
- no request failed while a healthy account existed — exactly what the
  proxy promises (docs/safety.md): a request that gets no answer either made
  `max_attempts` upstream calls, or, when it gave up, no account could serve
  it within what it may still wait (`max_wait_secs` less what it waited):
  each was disabled, off the proxy, resting past that, or had just failed a
  token refresh for it. Each failed request is judged on the proxy's own
  line for it (`request failed: {…}`, found by the request's session id):
  the accounts tried and what each answered, and the pool when it gave up.
  A stream the upstream cut after its first bytes cannot be moved to
  another account: those are counted apart, and each must end with an error
  event, not hang;
- resident memory and open descriptors flat after warm-up (within 10 %);
- every account record parses;
- cluster: both nodes agree on every account's state at the end.

It prints the figures as a Markdown table (for BENCHMARKS.md) and exits
non-zero when an invariant fails.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import conftest  # noqa: E402
from conftest import World, anthropic_client, genai_client, openai_client  # noqa: E402

ACCOUNTS = 10
REVOKED = 3
WORKERS = 6
MODEL = "gemini-2.5-pro"
WARMUP = 20.0
MAX_ATTEMPTS = 6
SERVER = f"max_attempts = {MAX_ATTEMPTS}"
MARK = "request failed: "


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def admin(url: str, path: str):
    req = urllib.request.Request(url + path, headers={"authorization": f"Bearer {conftest.ADMIN_KEY}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


class Node:
    """One running `grantpool serve`: its URL, process and log lines."""

    def __init__(self, url: str, proc, logs: list[str]):
        self.url, self.proc, self.logs = url, proc, logs


class Cluster:
    """Two `grantpool serve` nodes on one `redis-server` (no persistence,
    a free loopback port), the same fake Google and accounts: a node each
    has its own data directory and the same config otherwise."""

    def __init__(self, accounts: int, server: str):
        conftest.ensure_binaries()
        self._tmp = tempfile.TemporaryDirectory(prefix="grantpool-soak-")
        self.dir = Path(self._tmp.name)
        self.redis = None
        self.procs: list = []
        self.fake = conftest.Fake(self.dir)
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.redis_port = s.getsockname()[1]
            (self.dir / "redis").mkdir()
            self.redis = subprocess.Popen(
                ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.dir / "redis"), "--logfile", str(self.dir / "redis" / "redis.log"), "--daemonize", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while self.redis_cli("PING") != "PONG":
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
            self.emails = [f"user{i}@example.com" for i in range(1, accounts + 1)]
            self.nodes: list[Node] = []
            for n in ("a", "b"):
                d = self.dir / n
                d.mkdir()
                (d / "policy.toml").write_text(conftest.SPREAD_POLICY)
                (d / "grantpool.toml").write_text(conftest.config_toml(d, self.fake.url, top='policy = "policy.toml"', server=server,
                                                                     extra=f'''
[cluster]
redis_url = "redis://127.0.0.1:{self.redis_port}/0"
key_prefix = "soak"
'''))
            a = self.dir / "a" / "grantpool.toml"
            for i, email in enumerate(self.emails, 1):
                rt = f"1//refresh-{i}-{email}"
                self.fake.add_account(email, rt)
                out = subprocess.run([str(conftest.GRANTPOOL), "--config", str(a), "accounts", "add", "--refresh-token", rt],
                                     capture_output=True, text=True, env=conftest._clean_env(), timeout=60)
                assert out.returncode == 0, f"accounts add failed:\n{out.stdout}\n{out.stderr}"
            for n in ("a", "b"):
                self.nodes.append(self._serve(self.dir / n / "grantpool.toml"))
        except BaseException:
            self.close()
            raise

    def redis_cli(self, *args: str) -> str:
        out = subprocess.run(["redis-cli", "-p", str(self.redis_port), *args], capture_output=True, text=True)
        return out.stdout.strip()

    def _serve(self, config: Path) -> Node:
        proc = subprocess.Popen([str(conftest.GRANTPOOL), "--config", str(config), "serve"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, errors="replace", env=conftest._clean_env())
        self.procs.append(proc)
        logs: list[str] = []
        found: dict[str, str] = {}
        ready = threading.Event()

        def pump():
            import re
            for line in proc.stderr:
                plain = conftest.ANSI.sub("", line.rstrip("\n"))
                logs.append(plain)
                m = re.search(r"listening on (http://\S+)", plain)
                if m and not ready.is_set():
                    found["url"] = m.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(conftest.START_TIMEOUT) or "url" not in found:
            raise RuntimeError("grantpool did not start; log:\n" + "\n".join(logs))
        return Node(found["url"], proc, logs)

    def records(self) -> list[tuple[str, str]]:
        """(key, JSON text) of every account record in Redis."""
        out = []
        for key in self.redis_cli("--scan", "--pattern", "soak:*").split():
            if self.redis_cli("TYPE", key) == "string":
                text = self.redis_cli("GET", key)
                if text.startswith("{") and '"refresh_token"' in text:
                    out.append((key, text))
        return out

    def close(self) -> None:
        for p in self.procs:
            conftest._stop(p)
        self.fake.stop()
        if self.redis is not None:
            conftest._stop(self.redis)
        self._tmp.cleanup()


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.failed: list[dict] = []
        self.cut: list[str] = []
        self.by_kind: dict[str, int] = {}

    def add(self, kind: str, session: str, error: str | None = None, cut: bool = False):
        with self.lock:
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            if error is None:
                self.ok += 1
            elif cut:
                self.cut.append(f"{kind}: {error}")
            else:
                self.failed.append({"kind": kind, "session": session, "error": error, "at": time.strftime("%H:%M:%S")})


def one_request(url: str, rng: random.Random, counts: Counts, clients: dict, session: str) -> None:
    """One request of a random kind, on this worker's own SDK clients (kept
    across requests, as a long-running tool keeps its client: the proxy's
    descriptors then measure the proxy, not the garbage collector's pace at
    closing clients dropped by the test). Its session id (a header; the
    soak's selector reads none) finds the proxy's line for it if it fails."""

    def client(name, make):
        if name not in clients:
            clients[name] = make()
        return clients[name]

    kind = rng.choice(["openai", "openai-stream", "anthropic", "anthropic-stream", "gemini", "gemini-stream"])
    text = f"soak {rng.randrange(10**6)}"
    headers = {"x-session-id": session}
    got_bytes = False
    try:
        if kind.startswith("openai"):
            c = client("openai", lambda: openai_client(url, timeout=30))
            msgs = [{"role": "user", "content": text}]
            if kind.endswith("stream"):
                out = ""
                for chunk in c.chat.completions.create(model=MODEL, messages=msgs, stream=True, extra_headers=headers):
                    got_bytes = True
                    if chunk.choices and chunk.choices[0].delta.content:
                        out += chunk.choices[0].delta.content
                assert text in out, out
            else:
                r = c.chat.completions.create(model=MODEL, messages=msgs, extra_headers=headers)
                assert text in r.choices[0].message.content
        elif kind.startswith("anthropic"):
            c = client("anthropic", lambda: anthropic_client(url, timeout=30))
            msgs = [{"role": "user", "content": text}]
            if kind.endswith("stream"):
                out = ""
                with c.messages.stream(model=MODEL, max_tokens=128, messages=msgs, extra_headers=headers) as s:
                    for t in s.text_stream:
                        got_bytes = True
                        out += t
                assert text in out, out
            else:
                m = c.messages.create(model=MODEL, max_tokens=128, messages=msgs, extra_headers=headers)
                assert text in m.content[0].text
        else:
            from google.genai import types

            c = client("genai", lambda: genai_client(url))
            config = types.GenerateContentConfig(http_options=types.HttpOptions(headers=headers))
            if kind.endswith("stream"):
                out = ""
                for chunk in c.models.generate_content_stream(model=MODEL, contents=text, config=config):
                    got_bytes = True
                    out += chunk.text or ""
                assert text in out, out
            else:
                assert text in c.models.generate_content(model=MODEL, contents=text, config=config).text
        counts.add(kind, session)
    except Exception as e:  # noqa: BLE001 - every failure is counted and shown
        counts.add(kind, session, f"{type(e).__name__}: {str(e)[:300]}", cut=got_bytes)


def faults(fake, rng: random.Random, healthy: list[str], stop: threading.Event, log: list[str]) -> None:
    """Random faults on the healthy accounts, every 0.3–0.8 s. A fault waits
    in the fake's queue until its account is called (a token fault: until
    its next refresh), so those aimed at an account the proxy is resting
    come in a burst when it is back."""
    kinds = [
        {"endpoint": "generate", "kind": "status", "status": 503},
        {"endpoint": "stream", "kind": "status", "status": 500},
        {"endpoint": "any", "kind": "rate_limit_exceeded", "retry_delay": "1.5s"},
        {"endpoint": "any", "kind": "quota_exhausted", "retry_delay": "4s", "model": MODEL},
        {"endpoint": "any", "kind": "model_capacity_exhausted", "model": MODEL},
        {"endpoint": "any", "kind": "drop"},
        {"endpoint": "stream", "kind": "drop_mid_stream", "after_events": 1},
        {"endpoint": "any", "kind": "slow", "delay_ms": 1500},
        {"endpoint": "any", "kind": "unauthenticated"},
        {"endpoint": "token", "kind": "status", "status": 401, "body": {"error": "invalid_client", "error_description": "The OAuth client was not found."}},
        {"endpoint": "token", "kind": "status", "status": 503},
    ]
    # SOAK_FAULT_SCALE=3: three times as many (to bring rare failures out in
    # a short run; the figures in BENCHMARKS.md are at 1).
    scale = float(os.environ.get("SOAK_FAULT_SCALE", "1"))
    while not stop.wait(rng.uniform(0.3, 0.8) / scale):
        spec = dict(rng.choice(kinds))
        spec["email"] = rng.choice(healthy)
        spec["times"] = 1
        try:
            fake.fault(**spec)
            log.append(spec["kind"])
        except AssertionError as e:
            log.append(f"refused {e}")
        # Now and then: every access token stops working (a 401 each, then a refresh).
        if rng.random() < 0.05:
            fake.call("POST", "invalidate_access_tokens", {"email": rng.choice(healthy)})
            log.append("invalidate_access_tokens")


def failure_lines(nodes: list[Node]) -> dict[str, dict]:
    """The proxy's `request failed: {…}` lines, by session id."""
    found = {}
    dec = json.JSONDecoder()
    for node in nodes:
        for line in list(node.logs):
            i = line.find(MARK)
            if i < 0:
                continue
            try:
                v, _ = dec.raw_decode(line[i + len(MARK):])
            except ValueError:
                continue
            if v.get("session"):
                found[v["session"]] = v
    return found


def judge(line: dict | None, revoked_ids: set[str]) -> str | None:
    """Why the proxy was right to give up on this request, or None when it
    gave up while an account could serve it (the invariant's breach)."""
    if line is None or line["outcome"].startswith("refused"):
        return None  # the soak sends nothing Google refuses for its content
    if line["upstream_calls"] >= line["max_attempts"]:
        return f"made max_attempts = {line['max_attempts']} upstream calls"
    budget = line["max_wait_ms"] - line["waited_ms"]
    last = {}
    for step in line["tried"]:
        if "account" in step:
            last[step["account"]] = step["answer"]
    for acc in line["pool"]:
        if acc["state"] == "disabled" and acc["account"] in revoked_ids:
            continue
        # The proxy waits for a rest when its end, plus the 20 ms it sleeps
        # past it, is within the budget.
        if acc["state"] == "resting" and acc["back_in_ms"] + 20 > budget:
            continue
        # No token could be had for it: its refresh failed (before a call,
        # or after Google's 401).
        if acc["state"] == "ready" and last.get(acc["account"], "").startswith(("no token", "HTTP 401")):
            continue
        return None
    return f"no account could serve within {budget} ms more (the rest of max_wait_secs)"


def timeline(line: dict | None, ids: dict[str, str]) -> str:
    if line is None:
        return "  (no `request failed` line from the proxy for it)"
    who = lambda a: ids.get(a, a)  # noqa: E731
    steps = []
    for s in line["tried"]:
        steps.append(f"waited {s['waited_ms']} ms" if "waited_ms" in s else f"{who(s['account'])} → {s['answer']}")
    pool = []
    for a in line["pool"]:
        state = a["state"]
        if state == "resting":
            state = f"resting {a['back_in_ms'] / 1000:.1f} s more ({a['reason']})"
        pool.append(f"{who(a['account'])} {state}")
    return (f"  outcome: {line['outcome']}; {line['upstream_calls']}/{line['max_attempts']} upstream calls, waited "
            f"{line['waited_ms']}/{line['max_wait_ms']} ms\n  tried: " + "; ".join(steps) + "\n  pool when it gave up: " + "; ".join(pool))


def state_of(v: dict) -> tuple:
    """An account's state as both nodes must see it."""
    cools = tuple(sorted((c["model"], c["until_ms"]) for c in v.get("model_cooldowns", [])))
    return (v["state"], v.get("until_ms"), v.get("reason") if v["state"] in ("disabled", "proxy_disabled") else None, cools)


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    cluster = "--cluster" in sys.argv[1:]
    minutes = float(args[0]) if args else 60.0
    duration = minutes * 60
    rng = random.Random(int(os.environ.get("SOAK_SEED", "4242")))
    if cluster:
        world = Cluster(accounts=ACCOUNTS, server=SERVER)
        nodes = world.nodes
    else:
        world = World(accounts=ACCOUNTS, server=SERVER)
        nodes = [Node(world.url, world.proc, world.logs)]
    try:
        pids = [n.proc.pid for n in nodes]
        emails = list(world.emails)
        revoked = emails[:REVOKED]
        healthy = emails[REVOKED:]
        counts = Counts()
        stop = threading.Event()
        fault_log: list[str] = []
        samples: list[tuple[float, list[int], list[int]]] = []
        started = time.monotonic()
        serial = itertools.count()

        def load(i: int):
            r = random.Random(rng.random())
            clients: dict = {}
            url = nodes[i % len(nodes)].url
            while not stop.is_set():
                one_request(url, r, counts, clients, f"soak-{next(serial)}")

        threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(WORKERS)]
        threads.append(threading.Thread(target=faults, args=(world.fake, random.Random(rng.random()), healthy, stop, fault_log), daemon=True))
        for t in threads:
            t.start()
        revoke_at = sorted(rng.uniform(WARMUP / 2, max(WARMUP, duration * 0.6)) for _ in revoked)
        pending = list(zip(revoke_at, revoked))
        while (elapsed := time.monotonic() - started) < duration:
            while pending and pending[0][0] <= elapsed:
                _, email = pending.pop(0)
                rt = f"1//refresh-{emails.index(email) + 1}-{email}"
                world.fake.call("POST", "revoke", {"refresh_token": rt})
                fault_log.append(f"revoke {email}")
            samples.append((elapsed, [rss_kib(p) for p in pids], [fds(p) for p in pids]))
            time.sleep(2.0)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        ended = time.strftime("%H:%M:%S")
        views = [admin(n.url, "/admin/accounts")["accounts"] for n in nodes]
        time.sleep(2.0)
        samples.append((time.monotonic() - started, [rss_kib(p) for p in pids], [fds(p) for p in pids]))

        # Invariants.
        problems: list[str] = []
        disabled = {}
        if cluster:
            records = [text for _, text in world.records()]
            if len(records) != ACCOUNTS:
                problems.append(f"{len(records)} account records in Redis, not {ACCOUNTS}")
            sources = [(f"record {i}", text) for i, text in enumerate(records)]
        else:
            sources = [(f.name, f.read_text()) for f in (world.dir / "accounts").glob("*.json")]
        for name, text in sources:
            try:
                v = json.loads(text)
            except ValueError as e:
                problems.append(f"{name} does not parse: {e}")
                continue
            if v.get("disabled"):
                disabled[v["email"]] = v.get("disabled_reason")
        wrong = sorted(set(disabled) - set(revoked))
        if wrong:
            problems.append(f"wrongly disabled: {wrong} ({[disabled[w] for w in wrong]})")

        ids = {v["id"]: v["email"] for v in views[0]}
        revoked_ids = {i for i, e in ids.items() if e in revoked}
        lines = failure_lines(nodes)
        breaches, excused = [], []
        for f in counts.failed:
            line = lines.get(f["session"])
            why = judge(line, revoked_ids)
            (excused if why else breaches).append((f, line, why))
        if breaches:
            problems.append(f"{len(breaches)} requests failed while a healthy account existed (each below, with its timeline)")

        if cluster:
            # Both nodes must see the same state of every account (the
            # cooldowns are shared: the same ends, to the millisecond).
            deadline = time.monotonic() + 10
            while True:
                a, b = ({v["id"]: state_of(v) for v in admin(n.url, "/admin/accounts")["accounts"]} for n in nodes)
                if a == b or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            differ = sorted(i for i in set(a) | set(b) if a.get(i) != b.get(i))
            if differ:
                problems.append("the nodes disagree on " + "; ".join(f"{ids.get(i, i)}: A {a.get(i)} / B {b.get(i)}" for i in differ))

        rss0, rss1, fd0, fd1 = [], [], [], []
        after = [s for s in samples if s[0] >= WARMUP]
        med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
        for k in range(len(nodes)):
            if len(after) >= 4:
                third = max(1, len(after) // 3)
                first, last = after[:third], after[-third:]
                r0, r1 = med([s[1][k] for s in first]), med([s[1][k] for s in last])
                d0, d1 = med([s[2][k] for s in first]), med([s[2][k] for s in last])
                if r1 > r0 * 1.10 + 2048:
                    problems.append(f"resident memory grew (node {k}): {r0} KiB → {r1} KiB")
                if d1 > d0 * 1.10 + 4:
                    problems.append(f"open descriptors grew (node {k}): {d0} → {d1}")
            else:
                r0 = r1 = samples[-1][1][k]
                d0 = d1 = samples[-1][2][k]
            rss0.append(r0), rss1.append(r1), fd0.append(d0), fd1.append(d1)

        total = counts.ok + len(counts.failed) + len(counts.cut)
        join = lambda xs, unit="": " / ".join(f"{x}{unit}" for x in xs)  # noqa: E731
        where = f"2 nodes on one Redis, {WORKERS} clients split between them" if cluster else f"{WORKERS} clients"
        print(f"\n### Soak: {minutes:g} min, {ACCOUNTS} accounts ({REVOKED} revoked during the run), {where}\n")
        print("| figure | value |")
        print("|---|---|")
        print(f"| requests | {total} ({total / duration:.1f}/s) |")
        print(f"| answered | {counts.ok} |")
        print(f"| failed while a healthy account existed | {len(breaches)} |")
        print(f"| failed with no account able to serve (every one resting past the wait, disabled, or without a token), or after max_attempts calls | {len(excused)} |")
        print(f"| streams cut mid-way by the upstream (error event sent) | {len(counts.cut)} |")
        print(f"| faults injected | {len(fault_log)} ({', '.join(f'{k} {fault_log.count(k)}' for k in sorted(set(fault_log)) if not k.startswith('revoke'))}) |")
        print(f"| disabled | {sorted(disabled)} (revoked: {sorted(revoked)}) |")
        print(f"| RSS after warm-up → end | {join(rss0, ' KiB')} → {join(rss1, ' KiB')} |")
        print(f"| open descriptors after warm-up → end | {join(fd0)} → {join(fd1)} |")
        if cluster:
            print("| nodes agree on every account's state at the end | " + ("yes" if not any("disagree" in p for p in problems) else "no") + " |")
        print(f"| requests by kind | {json.dumps(counts.by_kind, sort_keys=True)} |")
        for title, group in (("Failed while a healthy account existed", breaches), ("Failed with no account able to serve", excused)):
            if group:
                print(f"\n{title}:")
                for f, line, why in group:
                    print(f"- {f['at']} {f['kind']} ({f['session']}): {f['error'][:200]}" + (f"\n  why: {why}" if why else ""))
                    print(timeline(line, ids))
        print(f"\nThe pool at the end ({ended}):")
        now_ms = time.time() * 1000
        for v in sorted(views[0], key=lambda v: v["email"]):
            rest = [f"{c['model']} {max(0, c['until_ms'] - now_ms) / 1000:.1f} s more ({c['reason']})" for c in v.get("model_cooldowns", [])]
            until = f" {max(0, v['until_ms'] - now_ms) / 1000:.1f} s more ({v.get('reason')})" if v.get("until_ms") else ""
            print(f"- {v['email']}: {v['state']}{until}" + (f"; resting on {', '.join(rest)}" if rest else ""))
        if problems:
            print("\nSOAK FAILED:\n- " + "\n- ".join(problems))
            for k, n in enumerate(nodes):
                print(f"\nproxy log, node {k} (last 40 lines):\n" + "\n".join(n.logs[-40:]))
            return 1
        print("\nsoak passed: every invariant held")
        return 0
    finally:
        world.close()


if __name__ == "__main__":
    sys.exit(main())
