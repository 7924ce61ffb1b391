"""`./dev soak [minutes]`: grantpool under load in the three client
protocols (streaming and not, with the official SDKs) while the fake Google
injects random faults — 5xx, 429 of each kind, dropped connections and
streams cut mid-way, slow answers, revoked grants, 401s, spells of
`invalid_client` at the token endpoint. At the end it asserts:

- only the revoked accounts are disabled (0 wrong disables);
- no request failed while a healthy account existed (a stream the upstream
  cut after its first bytes cannot be moved to another account: those are
  counted apart, and each must end with an error event, not hang);
- resident memory and open descriptors flat after warm-up (within 10 %);
- every account file parses.

It prints the figures as a Markdown table (for BENCHMARKS.md) and exits
non-zero when an invariant fails.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from conftest import World, anthropic_client, genai_client, openai_client  # noqa: E402

ACCOUNTS = 10
REVOKED = 3
WORKERS = 6
MODEL = "gemini-2.5-pro"
WARMUP = 20.0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.failed: list[str] = []
        self.cut: list[str] = []
        self.by_kind: dict[str, int] = {}

    def add(self, kind: str, error: str | None = None, cut: bool = False):
        with self.lock:
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            if error is None:
                self.ok += 1
            elif cut:
                self.cut.append(f"{kind}: {error}")
            else:
                self.failed.append(f"{kind}: {error}")


def one_request(world: World, rng: random.Random, counts: Counts, clients: dict) -> None:
    """One request of a random kind, on this worker's own SDK clients (kept
    across requests, as a long-running tool keeps its client: the proxy's
    descriptors then measure the proxy, not the garbage collector's pace at
    closing clients dropped by the test)."""

    def client(name, make):
        if name not in clients:
            clients[name] = make()
        return clients[name]

    kind = rng.choice(["openai", "openai-stream", "anthropic", "anthropic-stream", "gemini", "gemini-stream"])
    text = f"soak {rng.randrange(10**6)}"
    got_bytes = False
    try:
        if kind.startswith("openai"):
            c = client("openai", lambda: openai_client(world.url, timeout=30))
            if kind.endswith("stream"):
                out = ""
                for chunk in c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}], stream=True):
                    got_bytes = True
                    if chunk.choices and chunk.choices[0].delta.content:
                        out += chunk.choices[0].delta.content
                assert text in out, out
            else:
                r = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])
                assert text in r.choices[0].message.content
        elif kind.startswith("anthropic"):
            c = client("anthropic", lambda: anthropic_client(world.url, timeout=30))
            if kind.endswith("stream"):
                out = ""
                with c.messages.stream(model=MODEL, max_tokens=128, messages=[{"role": "user", "content": text}]) as s:
                    for t in s.text_stream:
                        got_bytes = True
                        out += t
                assert text in out, out
            else:
                m = c.messages.create(model=MODEL, max_tokens=128, messages=[{"role": "user", "content": text}])
                assert text in m.content[0].text
        else:
            c = client("genai", lambda: genai_client(world.url))
            if kind.endswith("stream"):
                out = ""
                for chunk in c.models.generate_content_stream(model=MODEL, contents=text):
                    got_bytes = True
                    out += chunk.text or ""
                assert text in out, out
            else:
                assert text in c.models.generate_content(model=MODEL, contents=text).text
        counts.add(kind)
    except Exception as e:  # noqa: BLE001 - every failure is counted and shown
        counts.add(kind, f"{type(e).__name__}: {str(e)[:300]}", cut=got_bytes)


def faults(world: World, rng: random.Random, healthy: list[str], stop: threading.Event, log: list[str]) -> None:
    """Random faults on the healthy accounts, never more than a few at once."""
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
    while not stop.wait(rng.uniform(0.3, 0.8)):
        spec = dict(rng.choice(kinds))
        spec["email"] = rng.choice(healthy)
        spec["times"] = 1
        try:
            world.fake.fault(**spec)
            log.append(spec["kind"])
        except AssertionError as e:
            log.append(f"refused {e}")
        # Now and then: every access token stops working (a 401 each, then a refresh).
        if rng.random() < 0.05:
            world.fake.call("POST", "invalidate_access_tokens", {"email": rng.choice(healthy)})
            log.append("invalidate_access_tokens")


def main() -> int:
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    duration = minutes * 60
    rng = random.Random(int(os.environ.get("SOAK_SEED", "4242")))
    world = World(accounts=ACCOUNTS, server="max_attempts = 6")
    try:
        pid = world.proc.pid
        emails = list(world.emails)
        revoked = emails[:REVOKED]
        healthy = emails[REVOKED:]
        counts = Counts()
        stop = threading.Event()
        fault_log: list[str] = []
        samples: list[tuple[float, int, int]] = []
        started = time.monotonic()

        def load():
            r = random.Random(rng.random())
            clients: dict = {}
            while not stop.is_set():
                one_request(world, r, counts, clients)

        threads = [threading.Thread(target=load, daemon=True) for _ in range(WORKERS)]
        threads.append(threading.Thread(target=faults, args=(world, random.Random(rng.random()), healthy, stop, fault_log), daemon=True))
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
            samples.append((elapsed, rss_kib(pid), fds(pid)))
            time.sleep(2.0)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        time.sleep(2.0)
        samples.append((time.monotonic() - started, rss_kib(pid), fds(pid)))

        # Invariants.
        problems: list[str] = []
        disabled = {}
        for f in (world.dir / "accounts").glob("*.json"):
            try:
                v = json.loads(f.read_text())
            except ValueError as e:
                problems.append(f"{f.name} does not parse: {e}")
                continue
            if v.get("disabled"):
                disabled[v["email"]] = v.get("disabled_reason")
        wrong = sorted(set(disabled) - set(revoked))
        if wrong:
            problems.append(f"wrongly disabled: {wrong} ({[disabled[w] for w in wrong]})")
        if counts.failed:
            problems.append(f"{len(counts.failed)} requests failed while healthy accounts existed, e.g. {counts.failed[:3]}")
        after = [s for s in samples if s[0] >= WARMUP]
        if len(after) >= 4:
            third = max(1, len(after) // 3)
            first, last = after[:third], after[-third:]
            med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
            rss0, rss1 = med([s[1] for s in first]), med([s[1] for s in last])
            fd0, fd1 = med([s[2] for s in first]), med([s[2] for s in last])
            if rss1 > rss0 * 1.10 + 2048:
                problems.append(f"resident memory grew: {rss0} KiB → {rss1} KiB")
            if fd1 > fd0 * 1.10 + 4:
                problems.append(f"open descriptors grew: {fd0} → {fd1}")
        else:
            rss0 = rss1 = samples[-1][1]
            fd0 = fd1 = samples[-1][2]
        total = counts.ok + len(counts.failed) + len(counts.cut)
        print(f"\n### Soak: {minutes:g} min, {ACCOUNTS} accounts ({REVOKED} revoked during the run), {WORKERS} clients\n")
        print("| figure | value |")
        print("|---|---|")
        print(f"| requests | {total} ({total / duration:.1f}/s) |")
        print(f"| answered | {counts.ok} |")
        print(f"| failed while a healthy account existed | {len(counts.failed)} |")
        print(f"| streams cut mid-way by the upstream (error event sent) | {len(counts.cut)} |")
        print(f"| faults injected | {len(fault_log)} ({', '.join(f'{k} {fault_log.count(k)}' for k in sorted(set(fault_log)) if not k.startswith('revoke'))}) |")
        print(f"| disabled | {sorted(disabled)} (revoked: {sorted(revoked)}) |")
        print(f"| RSS after warm-up → end | {rss0} KiB → {rss1} KiB |")
        print(f"| open descriptors after warm-up → end | {fd0} → {fd1} |")
        print(f"| requests by kind | {json.dumps(counts.by_kind, sort_keys=True)} |")
        if problems:
            print("\nSOAK FAILED:\n- " + "\n- ".join(problems))
            print("\nproxy log (last 60 lines):\n" + "\n".join(world.logs[-60:]))
            return 1
        print("\nsoak passed: every invariant held")
        return 0
    finally:
        world.close()


if __name__ == "__main__":
    sys.exit(main())
