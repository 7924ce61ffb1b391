"""Guest-side helpers for grantpool plugins written in Python.

A plugin is a WebAssembly component for one of the two worlds of
``grantpool:plugin@0.1.0`` (``wit/grantpool-plugin.wit``), built with
componentize-py (``grantpool plugin build`` runs it). This package is the
Python twin of the Rust SDK (``plugins/sdk``): it turns the WIT calls into
a small Python API so a plugin is its decision and little else.

- :mod:`grantpool_plugin.classifier`: :class:`~grantpool_plugin.classifier.Classifier`,
  :class:`~grantpool_plugin.classifier.Verdict`, and readers of the OAuth and
  Google error bodies (``oauth_error``, ``google_error``, ``retry_after_ms``).
- :mod:`grantpool_plugin.selector`: :class:`~grantpool_plugin.selector.Strategy`
  and the :class:`~grantpool_plugin.selector.Pool` view the SDK keeps from the
  host's events, so a strategy never copies the pool.
- :mod:`grantpool_plugin.config`: the plugin's table from ``policy.toml``,
  with unknown keys and wrong types refused.
- :mod:`grantpool_plugin.duration`, :mod:`grantpool_plugin.log`: ``"1.5s"``
  durations, and logging into the host's log.

A plugin runs sandboxed: no files, no network, no environment. Every call is
bounded in time and memory; an uncaught exception is logged (with its
traceback) into the host's log and the host falls back to a safe choice.
"""

__version__ = "0.1.0"

#: The WIT package this SDK speaks.
WIT_PACKAGE = "grantpool:plugin@0.1.0"
