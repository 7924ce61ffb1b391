"""A selector: prefer accounts labelled ``tier = "paid"`` and, among the
preferred (or, when none can serve, among all), take the least recently
used one. The Python twin of the Rust template (``plugins/template``).

Policy (both keys optional)::

    [selector]
    plugin = "build/python_selector.wasm"
    config = { label = "tier", prefer = "paid" }
"""

from grantpool_plugin import config, selector


class PreferPaid(selector.Strategy):
    # Labels and last use only: no request outcomes, no session ids (the
    # host then skips that work on every request).
    interests = set()

    def __init__(self, text: str) -> None:
        # Unknown keys or wrong types refuse the policy, naming the key.
        cfg = config.parse(text, {"label": "tier", "prefer": "paid"})
        self.label, self.prefer = cfg.label, cfg.prefer

    def select(self, pool, request):
        label, prefer = self.label, self.prefer
        # `False` sorts first: preferred accounts, then least recently used.
        best = min(pool.candidates(request),
                   key=lambda a: (a.labels.get(label) != prefer, a.last_used_ms),
                   default=None)
        return best.slot if best else None


Selection = selector.export(PreferPaid)
