"""Logging into the host's log. The host tags every line with the plugin's
name; keep lines short and never log anything secret (the host cuts a line
at 2 KiB).

Outside a component (a unit test run by plain Python) the lines go to
stderr instead."""

import sys


def _emit(level: str, message: str) -> None:
    try:
        from wit_world.imports import host, types
    except ImportError:  # plain Python, not inside a component
        print(f"[{level}] {message}", file=sys.stderr)
        return
    host.log(getattr(types.LogLevel, level.upper()), str(message))


def debug(message: str) -> None:
    """Log at ``debug``."""
    _emit("debug", message)


def info(message: str) -> None:
    """Log at ``info``."""
    _emit("info", message)


def warn(message: str) -> None:
    """Log at ``warn``."""
    _emit("warn", message)


def error(message: str) -> None:
    """Log at ``error``."""
    _emit("error", message)


def now_ms() -> int:
    """Wall-clock time from the host, Unix milliseconds."""
    try:
        from wit_world.imports import host
    except ImportError:
        import time

        return int(time.time() * 1000)
    return host.now_ms()


def exception(during: str) -> None:
    """Log the exception being handled (type, message, where) at ``error``."""
    import traceback

    lines = traceback.format_exc().strip().splitlines()
    # The last frames and the message say the most; keep the line short.
    tail = lines[-6:] if len(lines) > 6 else lines
    error(f"uncaught exception in {during}: " + " | ".join(line.strip() for line in tail))
