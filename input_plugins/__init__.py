"""Input plugins: each turns some source into host input lines (``qualysguard``, ``csv``).

A plugin module provides ``NAME``, ``SUMMARY``, ``PARAMETERS`` (what ``-plugininfo`` means and
which keys it reads), ``SHORTEN`` (may its lines be shortened to fit the FMC's MAX_SIZE),
``default_plugininfo()``, and ``produce(job) -> None`` which writes encoded lines to
``job.out`` and counts into ``job.summary``.
"""
from __future__ import annotations

import importlib

from qualys_connector.errors import UsageError

PLUGINS = {"qualysguard": "input_plugins.qualysguard", "csv": "input_plugins.csv"}


def load(name: str):
    key = (name or "QualysGuard").lower()
    if key not in PLUGINS:
        raise UsageError(f"unknown plugin '{name}'", f"plugins: {', '.join(all_names())}")
    return importlib.import_module(PLUGINS[key])


def all_names() -> list[str]:
    return [load(key).NAME for key in PLUGINS]
