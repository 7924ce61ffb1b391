"""Writing a selector: subclass :class:`Strategy`, export it with
:func:`export`::

    from grantpool_plugin import selector

    class LeastFailures(selector.Strategy):
        interests = {"outcomes"}          # live in_flight and failures

        def select(self, pool, request):
            best = min(pool.candidates(request), key=lambda a: (a.failures, a.in_flight), default=None)
            return best.slot if best else None

    Selection = selector.export(LeastFailures)

The SDK keeps a :class:`Pool` — the accounts that may serve now — from the
host's ``observe`` events, and counts in-flight requests itself the moment
``select`` answers. A strategy reads that view; it never receives the whole
pool per request.
"""

from dataclasses import dataclass
from typing import Dict, Iterator, List, NamedTuple, Optional

from . import log
from .config import ConfigError, parse

#: What a selector may ask the host to send (see :attr:`Strategy.interests`).
INTERESTS = ("outcomes", "sessions", "quota")


class ModelQuota(NamedTuple):
    """Remaining quota of one account for one model."""

    #: Fraction left, 0.0 to 1.0.
    remaining_fraction: float
    #: When it resets, Unix ms (0 = unknown).
    reset_at_ms: int


class Account:
    """One account that may serve, as the strategy sees it."""

    __slots__ = ("slot", "id", "email", "labels", "in_flight", "last_used_ms", "successes", "failures", "quota")

    def __init__(self, slot: int, id: str, email: str = "", labels: Optional[Dict[str, str]] = None,
                 in_flight: int = 0, last_used_ms: int = 0, successes: int = 0, failures: int = 0,
                 quota: Optional[Dict[str, ModelQuota]] = None) -> None:
        #: Handle to answer ``select`` with.
        self.slot = slot
        #: The account's id and email.
        self.id = id
        self.email = email
        #: Labels from the account file.
        self.labels = labels or {}
        #: Requests in flight (kept live only with the ``outcomes`` interest).
        self.in_flight = in_flight
        #: Last time it was picked or used, Unix ms.
        self.last_used_ms = last_used_ms
        #: Successes and failures seen.
        self.successes = successes
        self.failures = failures
        #: Remaining quota per model, where the host knows it.
        self.quota = quota or {}

    def label(self, key: str) -> Optional[str]:
        """The value of a label, if set."""
        return self.labels.get(key)

    def remaining(self, model: str) -> Optional[float]:
        """Remaining quota fraction for ``model``, if known."""
        q = self.quota.get(model)
        return q.remaining_fraction if q else None

    def __repr__(self) -> str:
        return f"Account(slot={self.slot}, id={self.id!r}, in_flight={self.in_flight})"


_NOTHING = frozenset()


class Request:
    """The request being routed."""

    __slots__ = ("model", "protocol", "session_id", "attempt", "tried", "unavailable", "_skip")

    def __init__(self, model: str, protocol: str = "openai", session_id: Optional[str] = None,
                 attempt: int = 1, tried: Optional[List[int]] = None, unavailable: Optional[List[int]] = None) -> None:
        #: Upstream model (after the host's model mapping).
        self.model = model
        #: ``"gemini"``, ``"openai"`` or ``"anthropic"``.
        self.protocol = protocol
        #: Conversation id (only with the ``sessions`` interest).
        self.session_id = session_id
        #: 1 for the first try.
        self.attempt = attempt
        #: Slots tried already, and slots not available for this model now.
        self.tried = tried or []
        self.unavailable = unavailable or []
        self._skip = frozenset(self.tried + self.unavailable) if (self.tried or self.unavailable) else _NOTHING

    def excludes(self, slot: int) -> bool:
        """True when ``slot`` must not be picked for this request."""
        return slot in self._skip


@dataclass
class Event:
    """A change in the pool, as :meth:`Strategy.observe` sees it."""

    #: ``"reset"``, ``"joined"``, ``"left"`` or ``"finished"``.
    kind: str
    #: The slot it is about (``None`` for ``reset``).
    slot: Optional[int] = None
    #: The account, for ``joined``.
    account: Optional[Account] = None
    #: For ``finished``: ``success``, ``status``, ``latency_ms``, ``model``,
    #: ``session_id`` of the request that ended.
    outcome: object = None


class Pool:
    """The accounts that may serve now, kept up to date from host events."""

    def __init__(self) -> None:
        self._by_slot: Dict[int, Account] = {}
        self._live: List[int] = []
        self._pos: Dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._live)

    def get(self, slot: int) -> Optional[Account]:
        """The account in ``slot``, if selectable."""
        return self._by_slot.get(slot)

    def slots(self) -> List[int]:
        """Selectable slots, in no particular order (index them with
        :meth:`nth` for O(1) random or rotating picks)."""
        return self._live

    def nth(self, i: int) -> Account:
        """The ``i``-th selectable account (``i < len(pool)``)."""
        return self._by_slot[self._live[i]]

    def __iter__(self) -> Iterator[Account]:
        return iter(self._by_slot.values())

    def candidates(self, request: Request) -> Iterator[Account]:
        """The accounts that may serve ``request``: selectable, not tried,
        not unavailable for its model."""
        skip = request._skip
        if not skip:
            return iter(self._by_slot.values())
        return (a for a in self._by_slot.values() if a.slot not in skip)

    def is_candidate(self, slot: int, request: Request) -> bool:
        """True when ``slot`` may serve ``request``."""
        return slot in self._by_slot and slot not in request._skip

    def apply(self, event: Event) -> None:
        """Apply one event (the SDK does this for you)."""
        if event.kind == "reset":
            self._by_slot.clear()
            self._live.clear()
            self._pos.clear()
        elif event.kind == "joined":
            self._insert(event.account)
        elif event.kind == "left":
            self._remove(event.slot)
        elif event.kind == "finished":
            acc = self._by_slot.get(event.slot)
            if acc is not None:
                acc.in_flight = max(0, acc.in_flight - 1)
                if event.outcome.success:
                    acc.successes += 1
                else:
                    acc.failures += 1

    def mark_picked(self, slot: int, now_ms: int) -> None:
        """Record that ``select`` picked ``slot`` (the SDK does this for you)."""
        acc = self._by_slot.get(slot)
        if acc is not None:
            acc.in_flight += 1
            acc.last_used_ms = now_ms

    def _insert(self, acc: Account) -> None:
        if acc.slot not in self._pos:
            self._pos[acc.slot] = len(self._live)
            self._live.append(acc.slot)
        self._by_slot[acc.slot] = acc

    def _remove(self, slot: int) -> None:
        i = self._pos.pop(slot, None)
        if i is None:
            return
        last = self._live.pop()
        if last != slot:
            self._live[i] = last
            self._pos[last] = i
        del self._by_slot[slot]


class Strategy:
    """A selection strategy. ``__init__`` receives the plugin's table from
    ``policy.toml`` as JSON (see :func:`grantpool_plugin.config.parse`);
    raising :class:`~grantpool_plugin.config.ConfigError` refuses the policy."""

    #: What the host should send; each costs work on every request, so ask
    #: only for what ``select`` reads: ``"outcomes"`` (``finished`` events,
    #: and with them live ``in_flight``, ``successes``, ``failures``),
    #: ``"sessions"`` (``Request.session_id``), ``"quota"`` (the host polls
    #: every account's quota: ``Account.quota``). Read after ``__init__``, so
    #: an instance may set its own. Default, as in the Rust SDK: outcomes
    #: and sessions.
    interests = frozenset({"outcomes", "sessions"})

    def __init__(self, config: str) -> None:
        parse(config, {})

    def select(self, pool: Pool, request: Request) -> Optional[int]:
        """The slot of the account that serves ``request`` (one of
        ``pool.candidates(request)``), or ``None`` when none fits."""
        raise NotImplementedError

    def observe(self, event: Event, pool: Pool) -> None:
        """Optional: learn from an event, after the pool view applied it."""


_PROTOCOLS = {0: "gemini", 1: "openai", 2: "anthropic"}


def export(cls):
    """Export ``cls`` (a :class:`Strategy` subclass) as the plugin's
    ``selection`` interface. Assign the result to ``Selection`` at the top
    level of ``app.py``: that is the name componentize-py looks for."""
    try:
        from componentize_py_types import Err
        from wit_world import exports
        from wit_world.exports import selection as wit
    except ImportError:  # plain Python (a unit test): nothing to export
        return None

    state = {"strategy": None}
    pool = Pool()
    flags = {"outcomes": wit.Interests.OUTCOMES, "sessions": wit.Interests.SESSIONS, "quota": wit.Interests.QUOTA}
    Joined, Left, Finished, Reset = wit.PoolEvent_Joined, wit.PoolEvent_Left, wit.PoolEvent_Finished, wit.PoolEvent_Reset

    def account(a) -> Account:
        return Account(a.slot, a.id, a.email, dict(a.labels), a.in_flight, a.last_used_ms, a.successes,
                       a.failures, {q.model: ModelQuota(q.remaining_fraction, q.reset_at_ms) for q in a.quota})

    def event(e) -> Event:
        if isinstance(e, Joined):
            return Event("joined", e.value.slot, account(e.value))
        if isinstance(e, Left):
            return Event("left", e.value)
        if isinstance(e, Finished):
            return Event("finished", e.value.slot, outcome=e.value)
        return Event("reset")

    class Selection(exports.Selection):
        def configure(self, config: str):
            try:
                strategy = cls(config)
                wanted = set(strategy.interests)
            except ConfigError as e:
                raise Err(str(e))
            except Exception as e:
                raise Err(f"{cls.__name__}(config) raised {type(e).__name__}: {e}")
            unknown = wanted - set(flags)
            if unknown:
                raise Err(f"{cls.__name__}.interests has {sorted(unknown)}; the host offers {list(INTERESTS)}")
            state["strategy"] = strategy
            out = wit.Interests(0)
            for name in wanted:
                out |= flags[name]
            return out

        def observe(self, events) -> None:
            strategy = state["strategy"]
            if strategy is not None and type(strategy).observe is Strategy.observe:
                strategy = None  # not overridden: skip the call per event
            try:
                for e in events:
                    ev = event(e)
                    pool.apply(ev)
                    if strategy is not None:
                        strategy.observe(ev, pool)
            except Exception:
                log.exception(f"{cls.__name__}.observe")
                raise

        def select(self, req) -> Optional[int]:
            strategy = state["strategy"]
            if strategy is None:
                return None
            r = Request(req.model, _PROTOCOLS.get(req.protocol.value, "openai"), req.session_id, req.attempt,
                        req.tried, req.unavailable)
            try:
                slot = strategy.select(pool, r)
            except Exception:
                log.exception(f"{cls.__name__}.select")
                raise
            if slot is None:
                return None
            pool.mark_picked(slot, log.now_ms())
            return int(slot)

    return Selection
