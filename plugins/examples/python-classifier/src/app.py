"""A classifier: a provider that answers a token refresh with its own OAuth
error (``token_revoked``) has lost the grant: disable the account. A 429
that says ``RATE_LIMIT_EXCEEDED`` cools the account down for Google's
``retryDelay``. Anything else: no opinion (the next classifier decides).

Policy (all keys optional)::

    [[classifier]]
    plugin = "build/python_classifier.wasm"
    config = { errors = ["token_revoked"], max_cooldown_ms = 300000 }

    [[classifier]]
    plugin = "default"
"""

from grantpool_plugin import classifier, config
from grantpool_plugin.classifier import Verdict, google_error, oauth_error


class Revoked(classifier.Classifier):
    def __init__(self, text: str) -> None:
        cfg = config.parse(text, {"errors": ["token_revoked"], "max_cooldown_ms": 300_000})
        self.errors = set(cfg.errors)
        self.max_cooldown_ms = cfg.max_cooldown_ms

    def classify(self, failure):
        if failure.phase == "token-refresh":
            e = oauth_error(failure.body)
            if e and e.error in self.errors:
                return Verdict.disable(e.summary())
        elif failure.status == 429:
            g = google_error(failure.body)
            if g and "RATE_LIMIT_EXCEEDED" in g.reasons and g.retry_delay_ms is not None:
                return Verdict.cooldown(f"rate limited: {g.message}", min(g.retry_delay_ms, self.max_cooldown_ms))
        return None


Classification = classifier.export(Revoked)
