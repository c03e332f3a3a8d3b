"""Input plugins: each turns some source into host input lines (``qualysguard``, ``csv``).

Each plugin module satisfies ``qualys_connector.plugin.InputPlugin`` (NAME, SUMMARY, PARAMETERS,
SHORTEN, default_plugininfo, load_config, lock_key, produce). The core never imports this package:
the command-line edge hands ``load`` to it (``qualys_connector.plugin.use_plugins``).
"""
from __future__ import annotations

import importlib

from qualys_connector.errors import UsageError
from qualys_connector.plugin import InputPlugin

PLUGINS = {"qualysguard": "input_plugins.qualysguard", "csv": "input_plugins.csv"}


def load(name: str) -> InputPlugin:
    key = (name or "QualysGuard").lower()
    if key not in PLUGINS:
        raise UsageError(f"unknown plugin '{name}'", f"plugins: {', '.join(all_names())}")
    return importlib.import_module(PLUGINS[key])


def all_names() -> list[str]:
    return [load(key).NAME for key in PLUGINS]
