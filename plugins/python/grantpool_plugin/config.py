"""Reading a plugin's table from ``policy.toml``.

The host hands ``configure`` the table as a JSON object (``{}`` when the
policy gives none). :func:`parse` checks it against the defaults you give:
an unknown key or a value of the wrong type refuses the policy with a
sentence naming the key, instead of being ignored::

    cfg = config.parse(text, {"label": "tier", "prefer": "paid"})
    cfg.label, cfg["prefer"]
"""

import json
from typing import Any, Dict, Optional


class ConfigError(ValueError):
    """The config is refused; the message is shown to the user (``policy
    check``, the proxy's log). Raise it from ``__init__`` to refuse."""


class Config(dict):
    """The parsed table: a ``dict`` whose keys are also attributes."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _fits(default: Any, value: Any) -> bool:
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, int):
        return isinstance(value, int)
    return isinstance(value, type(default))


def parse(text: str, defaults: Optional[Dict[str, Any]] = None) -> Config:
    """Parse the plugin's config. With ``defaults``, every key must be one of
    them and of the same type (an int is accepted for a float; a ``None``
    default takes anything); missing keys take the default. Without
    ``defaults`` any object is returned as it is. Raises :class:`ConfigError`."""
    text = text if text and text.strip() else "{}"
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"invalid plugin config: not JSON ({e})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"invalid plugin config: expected a table, got {_kind(value)}")
    if defaults is None:
        return Config(value)
    out = Config(defaults)
    for key, given in value.items():
        if key not in defaults:
            known = ", ".join(f"`{k}`" for k in defaults) or "none"
            raise ConfigError(f"invalid plugin config: unknown field `{key}`, expected one of {known}")
        if not _fits(defaults[key], given):
            raise ConfigError(
                f"invalid plugin config: `{key}` must be {_kind(defaults[key])}, got {_kind(given)}"
            )
        out[key] = given
    return out
