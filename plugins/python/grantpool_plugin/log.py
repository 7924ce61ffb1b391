"""Logging into the host's log. The host tags every line with the plugin's
name; keep lines short and never log anything secret (the host cuts a line
at 2 KiB).

Outside a component (a unit test run by plain Python) the lines go to
stderr instead.

Inside a component, import every module you use at the top of ``app.py``:
componentize-py bundles only what was imported while it built the app."""

import sys
import time
import traceback

# Imported here, at build time: componentize-py keeps only the modules the
# app imported while it was being built, so a lazy import inside a function
# would fail inside the component.
try:
    from wit_world.imports import host as _host
    from wit_world.imports import types as _types
except ImportError:  # plain Python (a unit test), not inside a component
    _host = _types = None


def _emit(level: str, message: str) -> None:
    if _host is None:
        print(f"[{level}] {message}", file=sys.stderr)
        return
    _host.log(getattr(_types.LogLevel, level.upper()), str(message))


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
    if _host is None:
        return int(time.time() * 1000)
    return _host.now_ms()


def exception(during: str) -> None:
    """Log the exception being handled at ``error``: its type, message and
    the last frames (file:line in function). Never raises."""
    etype, e, tb = sys.exc_info()
    where = ""
    try:
        # No source lines: reading files is not possible in the sandbox.
        frames = traceback.StackSummary.extract(traceback.walk_tb(tb), lookup_lines=False)
        where = " at " + " <- ".join(
            f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in reversed(frames[-4:])
        )
    except Exception:
        pass
    try:
        error(f"uncaught exception in {during}: {getattr(etype, '__name__', etype)}: {e}{where}")
    except Exception:
        pass
