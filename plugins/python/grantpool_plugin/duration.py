"""Durations as people and Google write them: ``"1.5s"``, ``"500ms"``,
``"3m"``, ``"1h"``, ``"2h30m"``, or a bare number of seconds."""

import datetime
import math
from typing import Optional

_UNITS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "min": 60_000.0, "h": 3_600_000.0, "d": 86_400_000.0}


def parse_ms(text: str) -> Optional[int]:
    """Milliseconds of a duration, or ``None`` when the text is not one."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        secs = float(text)
    except ValueError:
        pass
    else:
        return round(secs * 1000) if math.isfinite(secs) and secs >= 0 else None
    total, i, n = 0.0, 0, len(text)
    while i < n:
        j = i
        while j < n and (text[j].isdigit() or text[j] == "."):
            j += 1
        if j == i:
            return None
        try:
            value = float(text[i:j])
        except ValueError:
            return None
        k = j
        while k < n and not (text[k].isdigit() or text[k] == "."):
            k += 1
        factor = _UNITS.get(text[j:k])
        if factor is None:
            return None
        total += value * factor
        i = k
    return round(total)


def timestamp_ms(text: str) -> Optional[int]:
    """Unix milliseconds of an RFC 3339 timestamp (``2025-12-18T20:18:34Z``,
    optional fraction and offset), or ``None``."""
    text = (text or "").strip()
    if not text:
        return None
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    try:
        when = datetime.datetime.fromisoformat(text.replace("t", "T", 1))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    ms = round(when.timestamp() * 1000)
    return ms if ms >= 0 else None
