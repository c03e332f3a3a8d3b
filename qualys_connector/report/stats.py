"""What the parser saw and what it kept: counts for the run summary and the tests."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class ReportStats:
    """Complete when ``open_report`` returns (the severity join is counted at parse time).

    Invariants the tests check:
      hosts_total = hosts_kept + hosts_outside_ranges + hosts_bad_address + hosts_with_error
      findings_total = findings_kept + findings_filtered + duplicates_dropped
                       + findings_outside_ranges + findings_invalid
    """

    hosts_total: int = 0             # HOST elements in the report
    hosts_kept: int = 0              # passed ``include``; yielded by Report.hosts()
    hosts_outside_ranges: int = 0    # valid address, refused by ``include`` (ip_ranges)
    hosts_bad_address: int = 0       # IP (or IP/@v6) missing or not an address: skipped
    hosts_with_error: int = 0        # HOST holding an ERROR instead of data: skipped
    findings_total: int = 0          # VULN_INFO elements of all hosts
    findings_kept: int = 0           # what Report.hosts() yields
    findings_filtered: int = 0       # dropped by vuln_types, min_severity or VULN_STATUS Fixed (sum of the next three)
    findings_filtered_type: int = 0
    findings_filtered_severity: int = 0
    findings_filtered_status: int = 0   # VULN_STATUS Fixed: not current, so never sent
    duplicates_dropped: int = 0      # same (qid, port, protocol) again on one host (or open_report's distinct_by)
    findings_outside_ranges: int = 0  # VULN_INFO of hosts refused by ``include``
    findings_invalid: int = 0        # VULN_INFO without a numeric QID
    ports_without_protocol: int = 0  # kept findings with a PORT but no tcp/udp PROTOCOL: sent at host level
                                     # (the FMC cannot place them), merged with the QID's other host-level ones
    qids_without_glossary: int = 0   # distinct QIDs of kept findings missing from the glossary
    glossary_entries: int = 0        # distinct QIDs in GLOSSARY
    glossary_invalid: int = 0        # VULN_DETAILS without a numeric QID: ignored

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
