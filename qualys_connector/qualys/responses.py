"""Pure parsing of Qualys API v2 answers: SIMPLE_RETURN, REPORT_LIST_OUTPUT, IP_LIST_OUTPUT, limit headers.

No I/O. The presence of CODE in a SIMPLE_RETURN is the failure signal (docs/qualys-api.md §4.1);
limit headers are read case-insensitively in both spellings Qualys uses (§4.4).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class ResponseFormatError(ValueError):
    """The body is not the XML we expected."""


@dataclass(frozen=True)
class SimpleReturn:
    code: str | None
    text: str
    items: dict[str, list[str]] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.code is not None

    def item(self, key: str) -> str | None:
        values = self.items.get(key)
        return values[0] if values else None


@dataclass(frozen=True)
class ReportStatus:
    report_id: str
    state: str | None          # Submitted, Running, Finished, Canceled, Errors; None = vanished
    message: str | None = None
    percent: str | None = None


@dataclass
class Limits:
    rate_limit: int | None = None
    window_sec: int | None = None
    remaining: int | None = None
    to_wait_sec: int | None = None
    concurrency_limit: int | None = None
    concurrency_running: int | None = None


def _xml(body: bytes):
    try:
        return etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ResponseFormatError(f"not XML ({str(exc).splitlines()[0][:100]})") from None


def parse_simple_return(body: bytes) -> SimpleReturn:
    root = _xml(body)
    if root.tag != "SIMPLE_RETURN":
        raise ResponseFormatError(f"expected SIMPLE_RETURN, got <{root.tag}>")
    response = root.find("RESPONSE")
    if response is None:
        raise ResponseFormatError("SIMPLE_RETURN without RESPONSE")
    items: dict[str, list[str]] = {}
    for item in response.iterfind("ITEM_LIST/ITEM"):
        key = (item.findtext("KEY") or "").strip()
        items.setdefault(key, []).extend((v.text or "").strip() for v in item.iterfind("VALUE"))
    code = response.findtext("CODE")
    return SimpleReturn(code.strip() if code is not None else None, " ".join((response.findtext("TEXT") or "").split()), items)


def parse_report_list(body: bytes, report_id: str) -> ReportStatus:
    root = _xml(body)
    if root.tag == "SIMPLE_RETURN":
        raise ResponseFormatError("SIMPLE_RETURN")
    if root.tag != "REPORT_LIST_OUTPUT":
        raise ResponseFormatError(f"expected REPORT_LIST_OUTPUT, got <{root.tag}>")
    for report in root.iterfind("RESPONSE/REPORT_LIST/REPORT"):
        if (report.findtext("ID") or "").strip() == str(report_id):
            return ReportStatus(str(report_id), (report.findtext("STATUS/STATE") or "").strip() or None,
                                report.findtext("STATUS/MESSAGE"), report.findtext("STATUS/PERCENT"))
    return ReportStatus(str(report_id), None)


def parse_ip_list(body: bytes) -> list[str]:
    root = _xml(body)
    if root.tag != "IP_LIST_OUTPUT":
        raise ResponseFormatError(f"expected IP_LIST_OUTPUT, got <{root.tag}>")
    return [(e.text or "").strip() for e in root.iterfind("RESPONSE/IP_SET/*") if e.tag in ("IP", "IP_RANGE")]


def as_int(value) -> int | None:
    """A header or ITEM value as a number, None when absent or not a number."""
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def parse_limits(headers) -> Limits:
    """``headers``: any mapping with case-insensitive ``get`` (httpx.Headers)."""
    get = headers.get
    return Limits(
        rate_limit=as_int(get("X-RateLimit-Limit")), window_sec=as_int(get("X-RateLimit-Window-Sec")),
        remaining=as_int(get("X-RateLimit-Remaining")), to_wait_sec=as_int(get("X-RateLimit-ToWait-Sec")),
        concurrency_limit=as_int(get("X-Concurrency-Limit-Limit") or get("X-ConcurrencyLimit-Limit")),
        concurrency_running=as_int(get("X-Concurrency-Limit-Running") or get("X-ConcurrencyLimit-Running")))


def collapse_ranges(ips) -> list[str]:
    """Merge contiguous IPv4 addresses into ``a-b`` ranges (IPv6 and ranges pass through).

    Entries are text or ``ipaddress`` objects (typed values are not parsed again).
    """
    import ipaddress
    singles, other = [], []
    for entry in ips:
        if isinstance(entry, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            address = entry
        else:
            entry = entry.strip()
            try:
                address = ipaddress.ip_address(entry)
            except ValueError:
                other.append(entry)
                continue
        if address.version == 4:
            singles.append(int(address))
        else:
            other.append(str(address))
    out = []
    for value in sorted(set(singles)):
        if out and value == out[-1][1] + 1:
            out[-1][1] = value
        else:
            out.append([value, value])
    text = [str(ipaddress.IPv4Address(a)) if a == b else f"{ipaddress.IPv4Address(a)}-{ipaddress.IPv4Address(b)}"
            for a, b in out]
    return text + other


def chunk_ips(entries: list[str], max_chars: int = 5000) -> list[list[str]]:
    """Split so that every comma-joined chunk stays under ``max_chars`` (URL/body size limits)."""
    chunks: list[list[str]] = [[]]
    size = 0
    for entry in entries:
        if chunks[-1] and size + len(entry) + 1 > max_chars:
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += len(entry) + 1
    return [c for c in chunks if c]
