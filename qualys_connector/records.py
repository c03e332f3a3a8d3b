"""Typed records that flow between the report parser, the command generator and the tests.

They hold what the report says, normalised once (addresses validated, protocol lower-cased,
HTML already removed from text), so later stages never re-interpret raw XML.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Finding:
    """One VULN_INFO of a host: a QID seen on a port/protocol, or at host level."""

    qid: int
    type: str                 # "Vuln", "Practice" or "Ig", as the report spells it
    port: int | None = None   # None for host-level findings
    protocol: str | None = None  # lower-case as reported ("tcp", "udp", "icmp", ...) or None

    @property
    def key(self) -> tuple[int, int | None, str | None]:
        """Findings of one host are distinct by (qid, port, protocol)."""
        return (self.qid, self.port, self.protocol)

    @property
    def target(self) -> tuple[int | None, str | None]:
        """(port, protocol) as an AddScanResult carries them: both, or neither (host level).

        icmp, a port-less protocol and port 0 become host level, as the FMC wants (host-input
        docs/host-input.md §1.3). The one place this rule lives.
        """
        if self.protocol in ("tcp", "udp") and self.port:
            return self.port, self.protocol
        return None, None

    @property
    def fmc_key(self) -> tuple[int, int | None, str | None]:
        """What the FMC can tell apart: an icmp and a host-level finding of one QID look alike."""
        return (self.qid, *self.target)


@dataclass(slots=True)
class Host:
    """One HOST of the report with its findings in report order (deduplicated)."""

    ip: str                       # the address the FMC should know: IP/@v6 if present, else IP text
    os: str | None = None         # OPERATING_SYSTEM text, if any
    dns: str | None = None
    netbios: str | None = None
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Vuln:
    """One glossary entry (VULN_DETAILS): what a QID is called and how bad it is."""

    qid: int
    title: str
    severity: int | None = None
    category: str | None = None
    threat: str = ""              # THREAT text with HTML removed, entities decoded, whitespace collapsed
    cve_ids: tuple[str, ...] = ()
    bugtraq_ids: tuple[str, ...] = ()
