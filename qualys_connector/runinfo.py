"""The two records of one run: what the command line asked for, and what happened."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .delivery import DeliveryStats
from .hostinput.client import DEFAULT_PORT

if TYPE_CHECKING:     # plugin.py needs Summary; this only names the type
    from .plugin import InputPlugin


@dataclass
class Options:
    """What the command line asked for (after Perl spellings were normalised)."""

    plugin: str | InputPlugin = "QualysGuard"   # a name (looked up by plugin.find_plugin) or the plugin
    server: str | None = None
    port: int = DEFAULT_PORT
    plugininfo: str | None = None
    ipv6: bool = False
    pkcs12: str | None = None
    password: str | None = None
    csvfile: str | None = None
    template_id: str | None = None      # process-multiple overrides template_id per run
    timeout: float = 120.0
    # hardening: where state and locks live, and how the FMC's certificate is checked
    statedir: str | None = None
    fmcca: str | None = None
    insecure: bool = False
    resync: bool = False                # -resync: an incremental source pulls everything this run


@dataclass
class Summary:
    label: str = ""
    hosts: int = 0
    findings: int = 0
    commands: int = 0
    hosts_cleared: int = 0      # hosts whose results the run cleared (README "Keeping the FMC current")
    delivery: DeliveryStats = field(default_factory=DeliveryStats)
    started: float = field(default_factory=time.monotonic)
    outcome: str = "not started"
    exit_code: int = 0

    def line(self) -> str:
        d = self.delivery
        label = f"template {self.label}: " if self.label else ""
        return (f"Summary: {label}hosts={self.hosts} findings={self.findings} "
                f"commands={self.commands} cleared={self.hosts_cleared} data_messages={d.messages_acked}/{d.messages_total} "
                f"replies_with_errors={d.replies_with_errors} "
                f"elapsed={time.monotonic() - self.started:.1f}s result={self.outcome}")
