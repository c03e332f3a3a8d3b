"""The ``QualysGuard`` plugin (default): a Qualys report template becomes host input.

Steps: load ``QualysGuard.yaml`` → have Qualys build the template's report and stream it to
a temp file (or take ``report_file``) → parse it completely (nothing is sent for a broken
report) → one ``AddScanResult`` per distinct (QID, port, protocol) of every host inside
``ip_ranges``, exactly as README "What the QualysGuard plugin sends" describes.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from operator import attrgetter

from qualys_connector import hostinput, qgconfig
from qualys_connector.hostinput import Command
from qualys_connector.text import ascii_text, clean_text
from qualys_connector.logsetup import mask_url
from qualys_connector.privatecopy import copy_private
from qualys_connector import tempnames

NAME = "QualysGuard"
SUMMARY = "download a Qualys report template and send its vulnerabilities (default)"
PARAMETERS = [
    ("-plugininfo=FILE", "QualysGuard.yaml (default: the first of input_plugins/QualysGuard.yaml, "
                         "./QualysGuard.yaml, InputPlugins/QualysGuard.yaml)"),
    ("required keys", "user_id, password, template_id (not with report_file or pull: detections)"),
    ("optional keys", "url, add_host, ip_ranges, proxy, proxy_username, proxy_password, report_file, "
                      "keep_report, scanner_name, source_name, vuln_types, min_severity, set_os, ascii_only, domain, "
                      "ca_bundle, verify, timeout, poll_interval, max_wait, remove_missing, max_clear"),
]
SHORTEN = True
FMC_KEY = attrgetter("fmc_key")


# The Perl connector's InputPlugins/ spelling is accepted too, so old setups keep working.
SEARCHED = (os.path.join("input_plugins", "QualysGuard.yaml"), "QualysGuard.yaml",
            os.path.join("InputPlugins", "QualysGuard.yaml"))


def default_plugininfo() -> str:
    for candidate in SEARCHED:
        if os.path.exists(candidate):
            return candidate
    return SEARCHED[0]


def load_config(plugininfo: str | None, template_id: str | None):
    if not plugininfo and not any(os.path.exists(c) for c in SEARCHED):
        from qualys_connector.errors import ConfigError
        raise ConfigError(f"no QualysGuard.yaml found (looked for {', '.join(SEARCHED)} in {os.getcwd()})",
                          "give one with -plugininfo=FILE, or create one from QualysGuard.yaml.example")
    return qgconfig.load(plugininfo or default_plugininfo(), template_override=template_id)


def lock_key(plugininfo: str | None) -> str:
    """One run per QualysGuard.yaml at a time (process-multiple holds it for all its templates)."""
    return os.path.abspath(plugininfo or default_plugininfo())


def clear_scope(cfg):
    """Whose results this job writes, and how far the core may clear them (README "Keeping the FMC current")."""
    from qualys_connector.deliveryrecord import ClearScope
    return ClearScope(domain=cfg.domain, source_name=cfg.source_name, scanner_name=cfg.scanner_name,
                      job=job_id(cfg), remove_missing=cfg.remove_missing,
                      max_clear=cfg.max_clear)


def job_id(cfg) -> str:
    """The job of the delivery record: ``detections`` for a detection pull (one per
    QualysGuard.yaml target), else the template ID, or ``report_file`` for a saved report."""
    if getattr(cfg, "pull", "report") == "detections":
        return "detections"
    return cfg.template_id or "report_file"


def note_host(job, host) -> None:
    """Tell the run's clearing whether ``host`` got results (or has none left: it is cleared)."""
    clearing = getattr(job, "clearing", None)
    if clearing is not None:
        (clearing.sent if host.findings else clearing.absent)(host.ip)


def produce(job) -> None:
    from qualys_connector.report import open_report

    cfg = job.config if getattr(job, "config", None) is not None else load_config(job.plugininfo, job.template_id)
    if getattr(cfg, "pull", "report") == "detections":
        return produce_detections(cfg, job)
    if getattr(job, "resync", False):
        job.log.warning("-resync has no effect with pull: report (every report is complete)")
    workdir = tempfile.mkdtemp(prefix=tempnames.prefix(tempnames.REPORT_DIR))
    try:
        if cfg.report_file:
            path = cfg.report_file
            job.log.info("processing saved report %s", path)
        else:
            path = os.path.join(workdir, "report.xml")
            download(cfg, path, job)
            if cfg.keep_report:
                copy_private(path, cfg.keep_report, "the copy of the report (keep_report)")
                job.log.info("kept the downloaded report as %s", cfg.keep_report)
        job.check_stop()

        job.progress.phase("parsing", total=os.path.getsize(path))

        def progress(hosts_seen: int) -> None:
            job.check_stop()
            job.log.info("parsed %d hosts of the report so far", hosts_seen)

        # Findings are made distinct as the FMC sees them (Finding.fmc_key), once, by the report reader.
        with open_report(path, include=cfg.ip_ranges.__contains__, vuln_types=cfg.vuln_types,
                         min_severity=cfg.min_severity, progress=progress, distinct_by=FMC_KEY,
                         live=job.progress) as report:
            write_commands(report, cfg, job)
            stats = report.stats
        job.log.info("QualysGuard Report Processing Complete: %d of %d hosts inside ip_ranges, "
                     "%d findings, %d commands", job.summary.hosts, getattr(stats, "hosts_total", 0),
                     job.summary.findings, job.summary.commands)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def qualys_client(cfg, job):
    from qualys_connector.qualys.api import QualysClient

    return QualysClient.for_config(cfg, poll_interval=cfg.poll_interval, max_wait=cfg.max_wait, sleep=job.sleep,
                                   stop=job.stop.is_set, live=job.progress)


def produce_detections(cfg, job) -> None:
    """``pull: detections``: every page of the host detection API, titles from the KnowledgeBase
    (cached in the state directory), sent like a report (README "Pulling detections instead of reports").

    The first run to a target (no delivery record, or one without a watermark), ``full_resync: y``
    and ``-resync`` pull every host and mirror them as a report does. Later runs pull only the
    hosts Qualys processed since the previous delivery's watermark (less ``OVERLAP``), Fixed
    detections included: each host listed gets its current findings (ScanFlush replaces the old
    ones) or, with none left, is cleared; hosts not listed are left as they are.
    """
    from qualys_connector.qualys.detections import CHANGED_STATUSES, OVERLAP, detection_form, processed_after
    from qualys_connector.qualys.detectionsource import DetectionSource, qualys_ips
    from qualys_connector.qualys.knowledgebase import KnowledgeBase, KnowledgeBaseCache
    from qualys_connector.statedir import state_dir

    clearing = getattr(job, "clearing", None)
    since = after = None
    if clearing is not None and clearing.previous_watermark:
        if cfg.full_resync or getattr(job, "resync", False):
            job.log.info("full pull: %s asks for every host (the watermark %s is reset)",
                         "-resync" if getattr(job, "resync", False) else "full_resync: y", clearing.previous_watermark)
        else:
            try:
                since, after = clearing.previous_watermark, processed_after(clearing.previous_watermark)
            except ValueError:
                job.log.warning("the delivery record's watermark %r is not a time; pulling every host",
                                clearing.previous_watermark[:40])
    incremental = since is not None
    if incremental:
        clearing.changes_only()
        form = detection_form(truncation_limit=cfg.page_size, ips=qualys_ips(cfg.ip_ranges),
                              processed_after=after, statuses=CHANGED_STATUSES)
    else:
        form = detection_form(truncation_limit=cfg.page_size, ips=qualys_ips(cfg.ip_ranges))
    dry_run = getattr(job, "dry_run", False)
    kb_path = os.path.join(state_dir(getattr(job, "statedir", None)), "kb.sqlite")
    workdir = tempfile.mkdtemp(prefix="qc-detections-")

    def progress(hosts_seen: int) -> None:
        job.check_stop()
        job.log.info("read %d hosts of the detection pull so far", hosts_seen)

    if incremental:
        job.log.info("pulling host detections from Qualys at %s (%d hosts per page, incremental: hosts processed "
                     "after %s, the last delivery's %s less %d minutes)", mask_url(cfg.url), cfg.page_size, after,
                     since, OVERLAP.total_seconds() // 60)
    else:
        job.log.info("pulling host detections from Qualys at %s (%d hosts per page, full pull)",
                     mask_url(cfg.url), cfg.page_size)
    try:
        # The cache is only read here; what this run learns is written after the FMC acknowledged
        # the delivery (job.after_delivery), never by a dry run or a failed run.
        with qualys_client(cfg, job) as client, \
                KnowledgeBaseCache(kb_path, write=not dry_run, defer=True) as cache:
            kb = KnowledgeBase(client.post, cache, tmpdir=workdir)
            with DetectionSource(client.post, kb, form, include=cfg.ip_ranges.__contains__,
                                 vuln_types=cfg.vuln_types, min_severity=cfg.min_severity, tmpdir=workdir,
                                 progress=progress, fixed_hosts=incremental) as source:
                stats = source.stats
                if clearing is not None:
                    clearing.watermark = source.datetime
                    if source.datetime is None:
                        job.log.warning("Qualys's detection page had no DATETIME: the next run pulls every host again")
                job.log.info("read %d detection pages: %d hosts, %d inside ip_ranges; %d distinct QIDs, "
                             "%d KnowledgeBase calls", stats.pages, stats.hosts_total, stats.hosts_kept,
                             stats.qids, stats.kb_calls)
                if not dry_run and getattr(job, "after_delivery", None) is not None:
                    job.after_delivery.append(cache.commit)     # the core calls it once the FMC acknowledged
                if incremental and not stats.hosts_kept:
                    job.log.info("no host changed since %s (Qualys lists none inside ip_ranges processed after %s); "
                                 "nothing to send", since, after)
                    return
                if not incremental and not stats.findings_kept and not (cfg.add_host and stats.hosts_kept):
                    job.log.warning("Qualys reported no open detections to send (%d hosts, none with a detection "
                                    "that passes ip_ranges, vuln_types and min_severity); nothing sent",
                                    stats.hosts_total)
                    if clearing is None or not (clearing.use_record and clearing.record.exists):
                        return      # no record: nothing of ours is known to be on the FMC
                    # the record's hosts are still to be cleared (the valve decides): SetSource first
                job.check_stop()
                write_commands(source, cfg, job)
        job.log.info("QualysGuard Detection Processing Complete: %d of %d hosts inside ip_ranges, "
                     "%d findings, %d commands%s", job.summary.hosts, stats.hosts_total,
                     job.summary.findings, job.summary.commands,
                     f" ({stats.hosts_only_fixed} hosts with every detection Fixed)" if incremental else "")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def download(cfg, dest: str, job) -> None:
    from qualys_connector.qualys.launched import remembered_launches

    job.log.info("asking Qualys at %s for the report of template %s", mask_url(cfg.url), cfg.template_id)
    launched = remembered_launches(getattr(job, "statedir", None), cfg.url, cfg.user_id, cfg.max_wait)
    with qualys_client(cfg, job) as client:
        launched.delete_leftovers(client)
        try:
            client.download_report(cfg.template_id, dest, on_launch=launched.record)
        finally:
            launched.forget()
    job.log.info("downloaded the report (%.1f MB)", os.path.getsize(dest) / 1e6)


def write_commands(report, cfg, job) -> None:
    out, summary = job.out, job.summary
    # An AddScanResult line is head (per host: name, address, scanner) + middle (per distinct
    # finding: QID, port, protocol) + tail (per QID: title, description, id lists, LF), each
    # encoded by the codec once and cached; the two caches are bounded by the distinct findings
    # and QIDs. The middle's key is a plain tuple: it hashes in C, a Finding (a dataclass) in Python.
    tails: dict[int, tuple[str, int]] = {}     # QID -> (tail, its size in bytes)
    middles: dict[tuple, tuple[str, int]] = {}  # (qid, port, protocol) -> (middle, its size in bytes)

    # With -csvfile, lines are shortened so that each fits a DATA message of job.max_size together
    # with the header lines the client repeats (so the file can later be sent with the csv plugin).
    # When sending, delivery shortens to the MAX_SIZE the FMC actually announces.
    header = len(f"SetSource,{cfg.source_name}\n".encode())
    if cfg.domain:
        header += len(f"SetDomain,{cfg.domain}\n".encode())
    limit = job.max_size - header if getattr(job, "max_size", None) else None

    def emit(command: Command) -> None:
        line = None
        if limit is not None:
            line, shortened = hostinput.fit_line(command, limit)
            if shortened and len(line) > limit:   # the CVE/Bugtraq lists alone are too long
                job.log.warning("the line for %s QID %s is %d bytes even without title and description; "
                                "an FMC with a MAX_SIZE of %d will refuse it", command.args[0], command.args[2],
                                len(line), job.max_size)
            elif shortened:
                job.log.debug("shortened the line for %s QID %s to fit %d bytes",
                              command.args[0], command.args[2], limit)
        out.write(line or hostinput.encode_line(command))
        summary.commands += 1

    free_text = ascii_text if cfg.ascii_only else clean_text

    def tail(qid: int) -> tuple[str, int]:
        vuln = report.vuln(qid)          # a QID missing from the glossary reads "QID <n>"
        text = hostinput.encode_args("AddScanResult", (
            free_text(vuln.title), free_text(vuln.threat),
            hostinput.id_list_field(hostinput.CVE_HEADER, vuln.cve_ids),
            hostinput.id_list_field(hostinput.BUGTRAQ_HEADER, vuln.bugtraq_ids)), first=5) + "\n"
        entry = tails[qid] = (text, len(text.encode()))
        return entry

    debug = job.log.isEnabledFor(10)
    # SetDomain first: SetSource needs a leaf domain (docs/host-input.md §1.2), and a parent-domain certificate
    # starts every DATA message in its own, non-leaf domain (§2.1). README "What the QualysGuard plugin sends" lists SetSource
    # first; with a domain set that order would fail on such an FMC, so we reverse it.
    if cfg.domain:
        emit(hostinput.set_domain(cfg.domain))
    emit(hostinput.set_source(cfg.source_name))
    job.progress.phase("writing commands", total=report.stats.hosts_kept)
    room = limit if limit is not None else float("inf")
    scanner = hostinput.encode_args("AddScanResult", (cfg.scanner_name,), first=1) + ","
    for host in report.hosts():
        note_host(job, host)
        if not host.findings and not cfg.add_host and not (cfg.set_os and host.os):
            continue
        summary.hosts += 1
        address = hostinput.encode_args("AddHost", (host.ip,))     # ip_address, as in AddScanResult
        if cfg.add_host:
            out.write(f"AddHost,{address}\n".encode())               # short: never anything to shorten
            summary.commands += 1
        if cfg.set_os and host.os:
            emit(hostinput.set_os(host.ip, *split_os(free_text(host.os))))
        head = f"AddScanResult,{address},{scanner}"
        head_size = len(head.encode())
        parts: list[str] = []           # this host's results, written at once
        for finding in host.findings:   # already distinct by Finding.fmc_key
            key = (finding.qid, finding.port, finding.protocol)
            entry = middles.get(key)
            if entry is None:
                port, proto = finding.target
                text = hostinput.encode_args(
                    "AddScanResult", (str(finding.qid), "" if port is None else str(port), proto or ""), first=2) + ","
                entry = middles[key] = (text, len(text.encode()))
            middle, middle_size = entry
            end, end_size = tails.get(finding.qid) or tail(finding.qid)
            if head_size + middle_size + end_size > room:
                out.write("".join(parts).encode())      # keep the order: what came before goes first
                parts.clear()
                vuln = report.vuln(finding.qid)
                emit(hostinput.add_scan_result(host.ip, cfg.scanner_name, finding.qid, *finding.target,
                                               free_text(vuln.title), free_text(vuln.threat),
                                               vuln.cve_ids, vuln.bugtraq_ids))
                summary.commands -= 1       # counted below with the others
            else:
                parts += (head, middle, end)
            if debug:
                port, proto = finding.target
                job.log.debug("%s QID %d %s/%s", host.ip, finding.qid, port or "-", proto or "-")
        if parts:
            out.write("".join(parts).encode())
        summary.commands += len(host.findings)
        summary.findings += len(host.findings)
        if summary.hosts % 500 == 0:
            job.progress.update(hosts=summary.hosts, commands=summary.commands)
        if summary.hosts % 10000 == 0:
            job.check_stop()
    emit(hostinput.scan_flush())


# OPERATING_SYSTEM is free text ("Windows Server 2016 Standard 64 bit Edition Version 1607",
# "Linux 3.x"); the FMC wants vendor / product / version display strings. This split is a
# heuristic of ours: Qualys publishes no grammar for the field.
_VENDORS = [("windows", "Microsoft"), ("microsoft", "Microsoft"), ("cisco", "Cisco"),
            ("mac os", "Apple"), ("macos", "Apple"), ("ios", "Apple"), ("red hat", "Red Hat"),
            ("ubuntu", "Canonical"), ("debian", "Debian"), ("centos", "CentOS"), ("suse", "SUSE"),
            ("freebsd", "FreeBSD"), ("solaris", "Oracle"), ("hp-ux", "HP"), ("aix", "IBM"),
            ("juniper", "Juniper"), ("junos", "Juniper"), ("vmware", "VMware"), ("linux", "Linux")]
_VERSION = re.compile(r"(?:\bversion\s+|\b)(\d+(?:[.\-]\w+)*(?:\.x)?)\s*$", re.IGNORECASE)
_SERVICE_PACK = re.compile(r"\b(?:service\s+pack|sp)\s*\d+\s*$", re.IGNORECASE)


def _vendor(text: str) -> str:
    lowered = text.lower()
    return next((name for prefix, name in _VENDORS if lowered.startswith(prefix)), "")


def split_os(text: str) -> tuple[str, str, str]:
    """(vendor, product, version) of an OPERATING_SYSTEM text; see README "set_os".

    A text listing alternatives ("Windows 2008 R2/7", "Ubuntu / Tiny Core Linux / Linux 2.6.x")
    is Qualys being unsure: it keeps no version (the trailing number belongs to one alternative
    only), and a vendor only when no other alternative names a different one. "Service Pack N"
    stays part of the product: it is not the product's version.
    """
    text = clean_text(text)
    if "/" in text:
        vendors = {_vendor(part.strip()) for part in text.split("/")} - {""}
        return (vendors.pop() if len(vendors) == 1 else ""), text, ""
    vendor = _vendor(text)
    product, version = text, ""
    match = None if _SERVICE_PACK.search(text) else _VERSION.search(text)
    if match:
        version = match.group(1)
        product = text[:match.start()].rstrip()
        if product.lower().endswith(" version"):
            product = product[: -len(" version")].rstrip()
    if vendor and product.lower().startswith(vendor.lower() + " "):
        product = product[len(vendor) + 1:]
    return vendor, product or text, version
