"""The Python guest SDK in plain CPython (no component): the same cases as
the Rust SDK's unit tests, and the two example plugins' decisions.

Run by ./dev test (`pytest plugins/python/tests`)."""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from grantpool_plugin import config, duration  # noqa: E402
from grantpool_plugin.classifier import Failure, Verdict, google_error, oauth_error, retry_after_ms  # noqa: E402
from grantpool_plugin.selector import Account, Event, Pool, Request  # noqa: E402


def failure(body, phase="token-refresh", status=400, headers=None):
    return Failure(phase, status, body, headers or {}, False, "a", "a@example.com", None, 1)


def test_durations_in_google_and_human_forms():
    assert duration.parse_ms("1.5s") == 1500
    assert duration.parse_ms("500ms") == 500
    assert duration.parse_ms("2h30m") == 9_000_000
    assert duration.parse_ms("42") == 42_000
    assert duration.parse_ms("0.25") == 250
    for bad in ["soon", "5x", "", "-1"]:
        assert duration.parse_ms(bad) is None, bad
    assert duration.timestamp_ms("2025-12-18T20:18:34Z") == 1_766_089_114_000
    assert duration.timestamp_ms("not a time") is None


def test_oauth_errors():
    e = oauth_error('{"error":"invalid_grant","error_description":"Token has been expired or revoked."}')
    assert e.summary() == "invalid_grant: Token has been expired or revoked."
    assert oauth_error("not json") is None
    assert oauth_error('{"error":{"code":400}}') is None


def test_google_errors_with_delays_resets_and_links():
    body = '{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"},{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED","metadata":{"quotaResetDelay":"2s"}}]}}'
    g = google_error(body)
    assert (g.code, g.status, g.reasons, g.retry_delay_ms) == (429, "RESOURCE_EXHAUSTED", ["RATE_LIMIT_EXCEEDED"], 2000)
    body = '{"error":{"code":429,"message":"m","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"QUOTA_EXHAUSTED","metadata":{"model":"claude-sonnet-4-5","quotaResetDelay":"161h39m41.300432511s","quotaResetTimeStamp":"2025-12-18T20:18:34Z"}},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"581981.300432511s"}]}}'
    g = google_error(body)
    assert (g.reasons, g.model, g.retry_delay_ms, g.reset_at_ms) == (["QUOTA_EXHAUSTED"], "claude-sonnet-4-5", 581_981_300, 1_766_089_114_000)
    body = '{"error":{"code":403,"details":[{"@type":"type.googleapis.com/google.rpc.Help","links":[{"url":"https://help.example/h"}]},{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"VALIDATION_REQUIRED","metadata":{"validation_url":"https://accounts.google.com/x"}}]}}'
    assert google_error(body).url == "https://accounts.google.com/x"
    assert google_error('[{"error":{"code":403,"details":[{"links":[{"url":"https://help.example/h"}]}]}}]').url == "https://help.example/h"
    assert google_error('{"error":"invalid_grant"}') is None
    assert retry_after_ms(failure("", headers={"retry-after": "3"})) == 3000


def test_config_refuses_unknown_keys_and_wrong_types():
    cfg = config.parse('{"prefer": "gold"}', {"label": "tier", "prefer": "paid", "ratio": 0.5})
    assert (cfg.label, cfg["prefer"], cfg.ratio) == ("tier", "gold", 0.5)
    assert config.parse('{"ratio": 1}', {"ratio": 0.5}).ratio == 1
    assert config.parse("", {"a": 1}).a == 1
    with pytest.raises(config.ConfigError, match="unknown field `x`"):
        config.parse('{"x": 1}', {"a": 1})
    with pytest.raises(config.ConfigError, match="`a` must be a number, got a string"):
        config.parse('{"a": "1"}', {"a": 1})
    with pytest.raises(config.ConfigError, match="boolean"):
        config.parse('{"a": 1}', {"a": True})
    with pytest.raises(config.ConfigError, match="expected a table"):
        config.parse("[1]", {})


def test_the_pool_view_follows_events():
    pool = Pool()
    for i in range(4):
        pool.apply(Event("joined", i, Account(i, f"a{i}", labels={"tier": "paid" if i % 2 else "free"})))
    pool.apply(Event("left", 1))
    assert sorted(a.slot for a in pool) == [0, 2, 3] and len(pool) == 3
    assert sorted(pool.slots()) == [0, 2, 3] and pool.nth(0).slot in (0, 2, 3)
    req = Request("m", tried=[0], unavailable=[3])
    assert [a.slot for a in pool.candidates(req)] == [2]
    assert pool.is_candidate(2, req) and not pool.is_candidate(1, req)
    pool.mark_picked(2, 1234)
    assert (pool.get(2).in_flight, pool.get(2).last_used_ms) == (1, 1234)

    class Outcome:
        success = False

    pool.apply(Event("finished", 2, outcome=Outcome()))
    assert (pool.get(2).in_flight, pool.get(2).failures) == (0, 1)
    pool.apply(Event("reset"))
    assert len(pool) == 0 and pool.get(2) is None


def example(name):
    sys.path.insert(0, str(HERE.parents[1] / "examples" / name / "src"))
    try:
        sys.modules.pop("app", None)
        import app

        return app
    finally:
        sys.path.pop(0)


def test_the_example_classifier():
    app = example("python-classifier")
    assert app.Classification is None, "nothing is exported outside a component"
    c = app.Revoked("{}")
    v = c.classify(failure('{"error":"token_revoked","error_description":"gone"}'))
    assert v == Verdict.disable("token_revoked: gone")
    assert c.classify(failure('{"error":"invalid_grant"}')) is None, "left to the next classifier"
    body = '{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED","metadata":{"quotaResetDelay":"20s"}}]}}'
    assert c.classify(failure(body, phase="upstream", status=429)) == Verdict.cooldown("rate limited: slow down", 20_000)
    with pytest.raises(config.ConfigError):
        app.Revoked('{"eror": []}')


def test_the_example_selector():
    app = example("python-selector")
    s = app.PreferPaid("{}")
    assert s.interests == set()
    pool = Pool()
    for i, tier in enumerate(["free", "paid", "paid"]):
        pool.apply(Event("joined", i, Account(i, f"a{i}", labels={"tier": tier})))
    req = Request("m")
    picks = []
    for now in (1, 2, 3):
        slot = s.select(pool, req)
        pool.mark_picked(slot, now)
        picks.append(slot)
    assert picks == [1, 2, 1]
    assert s.select(pool, Request("m", tried=[1, 2])) == 0
    assert s.select(pool, Request("m", tried=[0, 1, 2])) is None
