"""GLOSSARY/VULN_DETAILS_LIST/VULN_DETAILS -> ``Vuln``: what a QID is called and how bad it is."""
from __future__ import annotations

import html
import re

from ..text import clean_text
from ..records import Vuln

# Only things that look like tags (a letter or "/" after "<", or a comment) are removed, so a
# stray "a < b" in a title survives.
_HTML_TAG = re.compile(r"<(?:/?[A-Za-z][^<>]*|!--.*?--)>", re.S)
_BARE_CVE = re.compile(r"^\d{4}-\d+$")


def html_to_text(text: str | None) -> str:
    """One line of plain text: HTML tags removed, entities decoded, whitespace collapsed.

    Qualys puts HTML (``<P>``, ``<BR>``) and HTML entities (``&quot;``) *inside* CDATA, so the
    XML parser leaves both alone; tags are removed first, so an encoded ``&lt;b&gt;`` stays text.
    """
    if not text:
        return ""
    if "<" in text:
        text = _HTML_TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return clean_text(text)


def parse_qid(text: str | None) -> int | None:
    try:
        qid = int((text or "").strip())
    except ValueError:
        return None
    return qid if qid >= 0 else None


def vuln_from_element(elem) -> Vuln | None:
    """The glossary entry, or None when it has no usable QID (the caller counts and logs it)."""
    qid = title = severity = category = threat = None
    cves: tuple[str, ...] = ()
    bids: tuple[str, ...] = ()
    for child in elem:
        tag = child.tag
        if tag == "QID":
            qid = parse_qid(child.text)
        elif tag == "TITLE":
            title = child.text
        elif tag == "SEVERITY":
            severity = child.text
        elif tag == "CATEGORY":
            category = child.text
        elif tag == "THREAT":
            threat = child.text
        elif tag == "CVE_ID_LIST":
            cves = tuple(_cve(i) for i in _ids(child, "CVE_ID"))
        elif tag == "BUGTRAQ_ID_LIST":
            bids = tuple(_ids(child, "BUGTRAQ_ID"))
    if qid is None:  # fall back on the IDREF target id="qid_N"
        ident = elem.get("id") or ""
        qid = parse_qid(ident[4:]) if ident.startswith("qid_") else None
    if qid is None:
        return None
    return Vuln(qid=qid, title=html_to_text(title) or f"QID {qid}", severity=_severity(severity),
                category=html_to_text(category) or None, threat=html_to_text(threat),
                cve_ids=cves, bugtraq_ids=bids)


def placeholder(qid: int) -> Vuln:
    """What a finding whose QID the glossary lacks is sent as."""
    return Vuln(qid=qid, title=f"QID {qid}")


def _severity(text: str | None) -> int | None:
    # SEVERITY is 1-5 in every report seen; anything else is kept as "unknown" (None), and
    # unknown severities pass the min_severity filter rather than silently losing findings.
    try:
        value = int((text or "").strip())
    except ValueError:
        return None
    return value if 1 <= value <= 5 else None


def _ids(parent, item_tag: str) -> list[str]:
    """Text of <ITEM><ID>..</ID></ITEM> children, stripped, empty ones dropped, order kept."""
    out = []
    for item in parent:
        if item.tag != item_tag:
            continue
        for field in item:
            if field.tag == "ID":
                value = clean_text(field.text)
                if value and value not in out:
                    out.append(value)
    return out


def _cve(value: str) -> str:
    """Keep the ``CVE-`` form the FMC expects in ``cve_ids:`` (it strips the prefix itself)."""
    if value[:4].upper() == "CVE-":
        return "CVE-" + value[4:]
    return "CVE-" + value if _BARE_CVE.match(value) else value
