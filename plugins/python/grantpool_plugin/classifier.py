"""Writing a classifier: subclass :class:`Classifier`, export it with
:func:`export`::

    from grantpool_plugin import classifier
    from grantpool_plugin.classifier import Verdict, oauth_error

    class Revoked(classifier.Classifier):
        def classify(self, failure):
            e = oauth_error(failure.body)
            if failure.phase == "token-refresh" and e and e.error == "token_revoked":
                return Verdict.disable(e.summary())
            return None          # no opinion: the next classifier decides

    Classification = classifier.export(Revoked)

The helpers read the two error shapes a classifier meets: the OAuth token
endpoint's ``{"error": "invalid_grant", "error_description": …}`` and Google
APIs' ``{"error": {"code", "status", "message", "details": […]}}`` with
``retryDelay`` / ``quotaResetDelay``.
"""

import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from . import duration, log
from .config import ConfigError, parse

#: Where a failure happened: refreshing the access token at the OAuth token
#: endpoint, or calling the upstream API.
TOKEN_REFRESH = "token-refresh"
UPSTREAM = "upstream"


@dataclass
class Failure:
    """One failure to judge (tokens are never included)."""

    #: ``"token-refresh"`` or ``"upstream"``.
    phase: str
    #: HTTP status, if a response came back.
    status: Optional[int]
    #: Response body, or the network error's text.
    body: str
    #: Response headers that matter for a decision, lowercase names.
    headers: Dict[str, str]
    #: True when no HTTP response came back.
    network_error: bool
    #: The account's id and email.
    account_id: str
    email: str
    #: Upstream model of the request, if any.
    model: Optional[str]
    #: 1 for the first try, 2 for the first retry, …
    attempt: int


@dataclass
class Verdict:
    """What to do about a failure. Build one with the constructors below."""

    action: str
    reason: str = ""
    duration_ms: Optional[int] = None
    scope: str = "account"
    after_ms: int = 0

    @staticmethod
    def disable(reason: str) -> "Verdict":
        """The account is dead (its grant is gone): persist ``disabled`` with
        this reason, until it is re-added with a new token."""
        return Verdict("disable", reason)

    @staticmethod
    def proxy_disable(reason: str) -> "Verdict":
        """Keep the account off the proxy (its grant is fine) until a user
        enables it."""
        return Verdict("proxy_disable", reason)

    @staticmethod
    def cooldown(reason: str, duration_ms: Optional[int] = None, scope: str = "account") -> "Verdict":
        """Keep the account (``scope="account"``) or the request's model on it
        (``scope="model"``) out of selection for ``duration_ms`` (``None``: the
        host's default), then retry on another account."""
        if scope not in ("account", "model"):
            raise ValueError(f"cooldown scope must be 'account' or 'model', not {scope!r}")
        return Verdict("cooldown", reason, duration_ms=duration_ms, scope=scope)

    @staticmethod
    def retry_next() -> "Verdict":
        """Retry the request on another account; no penalty."""
        return Verdict("retry_next")

    @staticmethod
    def retry_same(after_ms: int) -> "Verdict":
        """Retry on the same account after ``after_ms``."""
        return Verdict("retry_same", after_ms=after_ms)

    @staticmethod
    def refresh_and_retry() -> "Verdict":
        """Refresh the access token, then retry once on the same account."""
        return Verdict("refresh_and_retry")

    @staticmethod
    def pass_to_client() -> "Verdict":
        """Send the upstream's answer to the client as it is; no retry."""
        return Verdict("pass_to_client")


class Classifier:
    """A classification rule set. ``__init__`` receives the plugin's table
    from ``policy.toml`` as JSON (see :func:`grantpool_plugin.config.parse`);
    raising :class:`~grantpool_plugin.config.ConfigError` refuses the policy."""

    def __init__(self, config: str) -> None:
        parse(config, {})

    def classify(self, failure: Failure) -> Optional[Verdict]:
        """Judge a failure; ``None`` defers to the next classifier."""
        raise NotImplementedError


@dataclass
class OAuthError:
    """An OAuth error answer."""

    #: The ``error`` code, e.g. ``invalid_grant``.
    error: str
    #: The human description, if any.
    description: Optional[str] = None

    def summary(self) -> str:
        """``"invalid_grant: Token has been expired or revoked."``"""
        return f"{self.error}: {self.description}" if self.description is not None else self.error


def _json(body: str):
    try:
        return json.loads(body)
    except (ValueError, TypeError):
        return None


def oauth_error(body: str) -> Optional[OAuthError]:
    """Read an OAuth token endpoint error body, if it is one."""
    v = _json(body)
    if not isinstance(v, dict) or not isinstance(v.get("error"), str):
        return None
    d = v.get("error_description")
    return OAuthError(v["error"], d if isinstance(d, str) else None)


@dataclass
class GoogleError:
    """A Google API error body, the parts a decision needs."""

    #: ``error.code``.
    code: Optional[int] = None
    #: ``error.status``, e.g. ``RESOURCE_EXHAUSTED``.
    status: Optional[str] = None
    #: ``error.message``.
    message: str = ""
    #: Every ``reason`` in ``error.details[]`` (``RATE_LIMIT_EXCEEDED``,
    #: ``QUOTA_EXHAUSTED``, ``VALIDATION_REQUIRED``, …).
    reasons: List[str] = field(default_factory=list)
    #: ``retryDelay`` or ``metadata.quotaResetDelay``, ms (the longer).
    retry_delay_ms: Optional[int] = None
    #: ``metadata.quotaResetTimeStamp``, Unix ms.
    reset_at_ms: Optional[int] = None
    #: ``metadata.model``.
    model: Optional[str] = None
    #: ``metadata.validation_url`` (or ``validationUrl``, ``activationUrl``),
    #: else the first ``google.rpc.Help`` link.
    url: Optional[str] = None


def google_error(body: str) -> Optional[GoogleError]:
    """Read a Google API error body, if it is one."""
    v = _json(body)
    if isinstance(v, list) and v:
        v = v[0]
    err = v.get("error") if isinstance(v, dict) else None
    if not isinstance(err, dict):
        return None
    code = err.get("code")
    out = GoogleError(
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        status=err.get("status") if isinstance(err.get("status"), str) else None,
        message=err.get("message") if isinstance(err.get("message"), str) else "",
    )
    help_link = None
    details = err.get("details")
    for d in details if isinstance(details, list) else []:
        if not isinstance(d, dict):
            continue
        if isinstance(d.get("reason"), str):
            out.reasons.append(d["reason"])
        meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}

        def meta_str(key):
            x = meta.get(key)
            return x if isinstance(x, str) else None

        retry = d.get("retryDelay") if isinstance(d.get("retryDelay"), str) else None
        for text in (retry or meta_str("quotaResetDelay"), meta_str("quotaResetDelay")):
            ms = duration.parse_ms(text) if text else None
            if ms is not None:
                out.retry_delay_ms = ms if out.retry_delay_ms is None else max(out.retry_delay_ms, ms)
        stamp = meta_str("quotaResetTimeStamp")
        at = duration.timestamp_ms(stamp) if stamp else None
        if at is not None:
            out.reset_at_ms = at
        if out.model is None and meta_str("model"):
            out.model = meta_str("model")
        url = meta_str("validation_url") or meta_str("validationUrl") or meta_str("activationUrl")
        if out.url is None and url:
            out.url = url
        links = d.get("links")
        if help_link is None and isinstance(links, list) and links and isinstance(links[0], dict):
            if isinstance(links[0].get("url"), str):
                help_link = links[0]["url"]
    if out.url is None:
        out.url = help_link
    return out


def header(failure: Failure, name: str) -> Optional[str]:
    """A header of the failure, by case-insensitive name."""
    return failure.headers.get(name.lower())


def retry_after_ms(failure: Failure) -> Optional[int]:
    """``Retry-After`` in ms (the seconds form)."""
    value = header(failure, "retry-after")
    return duration.parse_ms(value) if value else None


_PHASES = {0: TOKEN_REFRESH, 1: UPSTREAM}


def export(cls):
    """Export ``cls`` (a :class:`Classifier` subclass) as the plugin's
    ``classification`` interface. Assign the result to ``Classification`` at
    the top level of ``app.py``: that is the name componentize-py looks for."""
    try:
        from componentize_py_types import Err
        from wit_world import exports
        from wit_world.exports import classification as wit
    except ImportError:  # plain Python (a unit test): nothing to export
        return None

    state = {"plugin": None}

    def to_wit(v):
        if not isinstance(v, Verdict):
            raise TypeError(f"classify must return a grantpool_plugin.classifier.Verdict or None, not {type(v).__name__}")
        a = v.action
        if a == "disable":
            return wit.Verdict_Disable(v.reason)
        if a == "proxy_disable":
            return wit.Verdict_ProxyDisable(v.reason)
        if a == "cooldown":
            scope = wit.CooldownScope.MODEL if v.scope == "model" else wit.CooldownScope.ACCOUNT
            return wit.Verdict_Cooldown(wit.Cooldown(v.duration_ms, scope, v.reason))
        if a == "retry_next":
            return wit.Verdict_RetryNextAccount()
        if a == "retry_same":
            return wit.Verdict_RetrySameAccount(int(v.after_ms))
        if a == "refresh_and_retry":
            return wit.Verdict_RefreshAndRetry()
        if a == "pass_to_client":
            return wit.Verdict_PassToClient()
        raise ValueError(f"unknown verdict action {a!r}")

    class Classification(exports.Classification):
        def configure(self, config: str) -> None:
            try:
                state["plugin"] = cls(config)
            except ConfigError as e:
                raise Err(str(e))
            except Exception as e:
                raise Err(f"{cls.__name__}(config) raised {type(e).__name__}: {e}")

        def classify(self, failure):
            plugin = state["plugin"]
            if plugin is None:
                return None
            f = Failure(
                phase=_PHASES.get(failure.phase.value, UPSTREAM),
                status=failure.status,
                body=failure.body,
                headers={k.lower(): v for k, v in failure.headers},
                network_error=failure.network_error,
                account_id=failure.account_id,
                email=failure.email,
                model=failure.model,
                attempt=failure.attempt,
            )
            try:
                verdict = plugin.classify(f)
                return None if verdict is None else to_wit(verdict)
            except Exception:
                log.exception(f"{cls.__name__}.classify")
                raise

    return Classification
