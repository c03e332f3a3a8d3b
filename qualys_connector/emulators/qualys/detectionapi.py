"""The Host List Detection and KnowledgeBase answers of the emulator, rendered from a ``DetectionModel``.

Shapes (elements we are not sure of are marked [unsure]): the detection page is
``HOST_LIST_VM_DETECTION_OUTPUT/RESPONSE/{DATETIME, HOST_LIST/HOST*, WARNING?}`` with hosts sorted by
ID, and a WARNING with CODE 1980 and a URL carrying ``id_min`` when more hosts match than
``truncation_limit``; the KB answer is ``KNOWLEDGE_BASE_VULN_LIST_OUTPUT/RESPONSE/{DATETIME, VULN_LIST/VULN*}``.
Parameter errors answer CODE 1905 with HTTP 400, as the report endpoints do.
"""
from __future__ import annotations

from urllib.parse import urlencode
from xml.sax.saxutils import escape

from .detectionmodel import DEFAULT_STATUSES, STATUSES, DetectionModel, Host, Vuln, parse_iso

DETECTION_PATH = "/api/5.0/fo/asset/host/vm/detection/"
KB_PATH = "/api/2.0/fo/knowledge_base/vuln/"
DEFAULT_TRUNCATION = 1000
# [unsure] the DTD URLs: Qualys names one per output in its DOCTYPE lines; these follow that pattern.
_DETECTION_DOCTYPE = ('<!DOCTYPE HOST_LIST_VM_DETECTION_OUTPUT SYSTEM "https://qualysapi.qualys.com/api/5.0/'
                      'fo/asset/host/vm/detection/host_list_vm_detection_output.dtd">')
_KB_DOCTYPE = ('<!DOCTYPE KNOWLEDGE_BASE_VULN_LIST_OUTPUT SYSTEM "https://qualysapi.qualys.com/api/2.0/fo/'
               'knowledge_base/vuln/knowledge_base_vuln_list_output.dtd">')


class ParamError(ValueError):
    """A parameter Qualys would refuse with CODE 1903/1905; ``code`` says which."""

    def __init__(self, text: str, code: str = "1905"):
        super().__init__(text)
        self.code = code


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _int(params: dict, name: str, default: int) -> int:
    raw = params.get(name, "")
    if raw == "":
        return default
    if not raw.strip().isdigit():
        raise ParamError(f"parameter {name} has invalid value: {raw}")
    return int(raw)


def _datetime(params: dict, name: str):
    raw = params.get(name, "")
    if not raw:
        return None
    try:
        return parse_iso(raw)
    except ValueError:
        raise ParamError(f"parameter {name} has invalid value: {raw}") from None


def detection_page(model: DetectionModel, params: dict, base_url: str, cap: int, expand_ips) -> bytes:
    """One page of the Host List Detection answer for ``params`` (already past auth and limits)."""
    if params.get("action") != "list":
        raise ParamError(f"parameter action has invalid value: {params.get('action')}")
    limit = _int(params, "truncation_limit", DEFAULT_TRUNCATION)
    limit = cap if limit == 0 else min(limit, cap)    # 0 = "no limit" [unsure]; the emulator caps pages
    id_min = _int(params, "id_min", 0)
    after = _datetime(params, "vm_processed_after")
    show_results = params.get("show_results", "1") != "0"   # [unsure] the default
    statuses = DEFAULT_STATUSES
    if params.get("status"):
        statuses = tuple(s.strip() for s in params["status"].split(","))
        bad = [s for s in statuses if s not in STATUSES]
        if bad:
            raise ParamError(f"parameter status has invalid value: {bad[0]}")
    ips = None
    if params.get("ips"):
        try:
            ips = set(expand_ips(params["ips"]))
        except ValueError as exc:
            raise ParamError(f"parameter ips has invalid value: {exc}") from None
    hosts, next_id = model.select(id_min=id_min, ips=ips, after=after, statuses=statuses, limit=limit)
    warning = ""
    if next_id is not None:
        query = {k: v for k, v in params.items() if k not in ("id_min", "ips")}
        query["truncation_limit"] = str(limit)
        query["id_min"] = str(next_id)
        url = f"{base_url}{DETECTION_PATH}?{urlencode(query)}"
        warning = (f"    <WARNING>\n      <CODE>1980</CODE>\n      <TEXT>{limit} record limit exceeded. Use URL "
                   f"to get next batch of results.</TEXT>\n      <URL>{_cdata(url)}</URL>\n    </WARNING>\n")
    return _answer(_DETECTION_DOCTYPE, "HOST_LIST_VM_DETECTION_OUTPUT", model.stamp(), "HOST_LIST",
                   [_host_xml(h, show_results) for h in hosts], warning)


def _answer(doctype: str, root: str, stamp: str, list_tag: str, items: list[str], after: str = "") -> bytes:
    """The envelope both list calls share: DOCTYPE, RESPONSE/DATETIME, the list when not empty, then ``after``."""
    parts = ['<?xml version="1.0" encoding="UTF-8" ?>\n', doctype, f"\n<{root}>\n",
             f"  <RESPONSE>\n    <DATETIME>{stamp}</DATETIME>\n"]
    if items:
        parts += [f"    <{list_tag}>\n", *items, f"    </{list_tag}>\n"]
    parts += [after, f"  </RESPONSE>\n</{root}>\n"]
    return "".join(parts).encode()


def _host_xml(host: Host, show_results: bool) -> str:
    address = f"<IP>{host.ip}</IP>" if host.ip else f"<IPV6>{host.ipv6}</IPV6>"
    parts = [f"      <HOST>\n        <ID>{host.id}</ID>\n        {address}\n"
             f"        <TRACKING_METHOD>{host.tracking_method}</TRACKING_METHOD>\n"
             f"        <OS>{_cdata(host.os)}</OS>\n        <DNS>{_cdata(host.dns)}</DNS>\n"
             f"        <LAST_SCAN_DATETIME>{host.last_scan}</LAST_SCAN_DATETIME>\n"
             f"        <LAST_VM_SCANNED_DATE>{host.last_scan}</LAST_VM_SCANNED_DATE>\n"   # [unsure] which date fields
             "        <DETECTION_LIST>\n"]
    for d in host.detections:
        parts.append(f"          <DETECTION>\n            <QID>{d.qid}</QID>\n            <TYPE>{d.type}</TYPE>\n"
                     f"            <SEVERITY>{d.severity}</SEVERITY>\n")
        if d.port is not None:
            parts.append(f"            <PORT>{d.port}</PORT>\n")
        if d.protocol:
            parts.append(f"            <PROTOCOL>{escape(d.protocol)}</PROTOCOL>\n")
        parts.append(f"            <SSL>{int(d.ssl)}</SSL>\n")
        if show_results and d.results:
            parts.append(f"            <RESULTS>{_cdata(d.results)}</RESULTS>\n")
        parts.append(f"            <STATUS>{d.status}</STATUS>\n"
                     f"            <FIRST_FOUND_DATETIME>{d.first_found}</FIRST_FOUND_DATETIME>\n"
                     f"            <LAST_FOUND_DATETIME>{d.last_found}</LAST_FOUND_DATETIME>\n"
                     f"            <TIMES_FOUND>{d.times_found}</TIMES_FOUND>\n"
                     f"            <IS_IGNORED>{int(d.is_ignored)}</IS_IGNORED>\n"
                     f"            <IS_DISABLED>{int(d.is_disabled)}</IS_DISABLED>\n"
                     f"            <LAST_PROCESSED_DATETIME>{d.processed}</LAST_PROCESSED_DATETIME>\n"
                     "          </DETECTION>\n")
    parts.append("        </DETECTION_LIST>\n      </HOST>\n")
    return "".join(parts)


def kb_list(model: DetectionModel, params: dict) -> bytes:
    """The KnowledgeBase answer: the VULNs named by ``ids`` (or all), modified after ``last_modified_after``."""
    if params.get("action") != "list":
        raise ParamError(f"parameter action has invalid value: {params.get('action')}")
    qids = None
    if params.get("ids"):
        try:
            qids = {int(q) for q in params["ids"].split(",") if q.strip()}
        except ValueError:
            raise ParamError(f"parameter ids has invalid value: {params['ids'][:50]}") from None
    after = _datetime(params, "last_modified_after")
    brief = params.get("details", "Basic") != "All"    # [unsure] Basic leaves out DIAGNOSIS and the lists
    vulns = model.vulns(qids, after)
    return _answer(_KB_DOCTYPE, "KNOWLEDGE_BASE_VULN_LIST_OUTPUT", model.stamp(), "VULN_LIST",
                   [_vuln_xml(v, brief) for v in vulns])


def _vuln_xml(v: Vuln, brief: bool) -> str:
    parts = [f"      <VULN>\n        <QID>{v.qid}</QID>\n        <VULN_TYPE>{v.vuln_type}</VULN_TYPE>\n"
             f"        <SEVERITY_LEVEL>{v.severity}</SEVERITY_LEVEL>\n        <TITLE>{_cdata(v.title)}</TITLE>\n"
             f"        <CATEGORY>{escape(v.category)}</CATEGORY>\n"
             f"        <LAST_SERVICE_MODIFICATION_DATETIME>{v.modified}</LAST_SERVICE_MODIFICATION_DATETIME>\n"
             f"        <PUBLISHED_DATETIME>{v.modified}</PUBLISHED_DATETIME>\n"]
    if v.bugtraq_ids and not brief:
        parts.append("        <BUGTRAQ_LIST>\n" + "".join(
            f"          <BUGTRAQ>\n            <ID>{_cdata(b)}</ID>\n"
            f"            <URL>{_cdata('http://www.securityfocus.com/bid/' + b)}</URL>\n          </BUGTRAQ>\n"
            for b in v.bugtraq_ids) + "        </BUGTRAQ_LIST>\n")
    parts.append(f"        <PATCHABLE>{int(v.patchable)}</PATCHABLE>\n")
    if v.diagnosis and not brief:
        parts.append(f"        <DIAGNOSIS>{_cdata(v.diagnosis)}</DIAGNOSIS>\n")
    if v.cve_ids and not brief:
        parts.append("        <CVE_LIST>\n" + "".join(
            f"          <CVE>\n            <ID>{_cdata(c)}</ID>\n"
            f"            <URL>{_cdata('https://cve.mitre.org/cgi-bin/cvename.cgi?name=' + c)}</URL>\n          </CVE>\n"
            for c in v.cve_ids) + "        </CVE_LIST>\n")
    parts.append("      </VULN>\n")
    return "".join(parts)
