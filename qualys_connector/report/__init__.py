"""Streaming reader of Qualys ASSET_DATA_REPORT XML (docs/qualys-api.md §3, README "What the QualysGuard plugin sends").

    with open_report(path, include=ranges.__contains__, min_severity=2) as report:
        for host in report.hosts():
            ...report.vuln(finding.qid).title...

Memory grows with the distinct QIDs of the report, never with its hosts; a truncated,
malformed or hostile file raises before any host is yielded. Modules: ``reader`` (the pass and
the join), ``hosts`` (HOST -> spool record), ``glossary`` (VULN_DETAILS -> Vuln), ``spool``
(the temp file), ``xmlguard`` (parser options, refusals, lxml error translation), ``stats``.
"""
from .glossary import html_to_text
from .reader import PROGRESS_EVERY, Report, open_report
from .stats import ReportStats

__all__ = ["open_report", "Report", "ReportStats", "html_to_text", "PROGRESS_EVERY"]
