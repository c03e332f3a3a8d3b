"""Host List Detection pages: a streaming parser of one page file, and a pager over all of them.

The pager downloads each page to a temporary file first (through an injected ``post``, so it
works with any transport), parses it with lxml iterparse, clearing every HOST once yielded, and
deletes the file before it asks for the next page: memory stays flat however many hosts there
are, and a page is never held in memory. Pages link by Qualys's WARNING CODE 1980, whose URL
carries ``id_min`` for the next page; we keep POSTing our own form with that ``id_min`` rather
than following the URL (no credentials or IP lists in a URL, same transport).
Hostile XML (entity declarations) is refused and a cut-off page is an error, as for reports
(``report/xmlguard.py``).
"""
from __future__ import annotations

import datetime
import os
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from ..errors import QualysError, ReportFormatError
from ..report.xmlguard import PARSER_OPTIONS, inspect_root, simple_return_error, translated
from ..statedir import create_private
from .responses import ResponseFormatError, parse_simple_return

DETECTION_PATH = "/api/5.0/fo/asset/host/vm/detection/"
ROOT = "HOST_LIST_VM_DETECTION_OUTPUT"
TRUNCATED_CODE = "1980"
DEFAULT_STATUSES = "New,Active,Re-Opened"
# An incremental pull asks for Fixed detections too: a host whose detections were all remediated
# since the last pull comes back with them Fixed, and is cleared on the FMC.
CHANGED_STATUSES = "New,Active,Re-Opened,Fixed"
# An incremental pull asks for hosts processed after the last pull's first DATETIME minus this:
# a margin for clocks and for processing that Qualys stamps a little before it becomes visible
# to the API. Hosts in the overlap are sent again (harmless: ScanFlush replaces them).
OVERLAP = datetime.timedelta(minutes=5)

# post(path, form, dest): POST ``form`` to ``path`` and write the response body into the file
# ``dest``; raises the toolkit's QualysError on an error answer (see httpx_post for a plain one).
Post = Callable[[str, dict, str], None]


@dataclass(frozen=True)
class Detection:
    qid: int
    type: str                  # Confirmed | Potential | Info (see report_type for the report's names)
    severity: int | None
    port: int | None           # None: a host-level finding
    protocol: str | None
    status: str | None         # New | Active | Re-Opened | Fixed


@dataclass(frozen=True)
class Host:
    id: int
    ip: str                    # the IPV6 when there is one (a mapped host's IP is Qualys's IPv4 placeholder,
                               # docs/qualys-api.md §3.8; the report path likewise takes IP/@v6), else the IP
    os: str
    dns: str
    detections: tuple[Detection, ...] = field(default_factory=tuple)


REPORT_TYPES = {"Confirmed": "Vuln", "Potential": "Practice", "Info": "Ig"}


def report_type(detection_type: str) -> str:
    """The detection API's TYPE as the report's TYPE (Confirmed→Vuln, Potential→Practice, Info→Ig)."""
    try:
        return REPORT_TYPES[detection_type]
    except KeyError:
        raise ReportFormatError(f"unknown detection TYPE {detection_type!r} (expected Confirmed, Potential or Info)",
                                "Qualys changed its output; report this") from None


class DetectionPage:
    """One page file. Iterate for its hosts; afterwards ``datetime``, ``next_url`` and ``next_id_min``
    are known (the WARNING comes after the host list, so they are not known before)."""

    def __init__(self, path: str):
        self.path = path
        self.datetime: str | None = None
        self.next_url: str | None = None
        self.next_id_min: int | None = None
        self.done = False

    def __iter__(self) -> Iterator[Host]:
        try:
            yield from self._hosts()
        except ReportFormatError as exc:
            raise ReportFormatError(exc.message.replace("the report", "the detection page", 1), exc.hint) from None

    def _hosts(self) -> Iterator[Host]:
        root = inspect_root(self.path)
        if root == "SIMPLE_RETURN":
            raise simple_return_error(self.path)
        if root != ROOT:
            raise ReportFormatError(f"the report has root <{root}>, not <{ROOT}>",
                                    "the answer is not a Host List Detection page; check the url")
        _check_complete(self.path)
        with translated(self.path), open(self.path, "rb") as fh:
            for _, elem in etree.iterparse(fh, events=("end",), tag=("HOST", "DATETIME", "WARNING"),
                                           **PARSER_OPTIONS):
                parent = elem.getparent()
                if elem.tag == "HOST":
                    host = _host(elem)
                    elem.clear()
                    while elem.getprevious() is not None:       # drop cleared siblings too
                        del parent[0]
                    yield host
                elif parent is not None and parent.tag == "RESPONSE":
                    if elem.tag == "DATETIME":
                        self.datetime = _text(elem)
                    else:
                        self._warning(elem)
        self.done = True

    def _warning(self, elem) -> None:
        if _text(elem.find("CODE")) != TRUNCATED_CODE:
            return      # [unsure] other WARNING codes: none documented for this call; ignored
        url = _text(elem.find("URL"))
        values = parse_qs(urlsplit(url).query).get("id_min")
        if not values or not values[-1].isdigit():
            raise ReportFormatError(f"the report is truncated (CODE 1980) but its URL has no id_min: {url[:200]}",
                                    "Qualys changed its paging; report this")
        self.next_url, self.next_id_min = url, int(values[-1])


def _check_complete(path: str) -> None:
    """A download cut short is refused before its first host is yielded, not after half of them:
    the page must end with the closing root tag (a trailing comment allowed)."""
    with open(path, "rb") as fh:
        fh.seek(max(0, os.path.getsize(path) - 4096))
        tail = fh.read().rstrip()
    while tail.endswith(b"-->") and b"<!--" in tail:
        tail = tail[:tail.rindex(b"<!--")].rstrip()
    if not tail.endswith(b"</" + ROOT.encode() + b">"):
        raise ReportFormatError(f"the report is not complete, well-formed XML: it does not end with </{ROOT}>",
                                "the download was cut short or the file is damaged; run again")


def _text(elem) -> str:
    return (elem.text or "").strip() if elem is not None else ""


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _host(elem) -> Host:
    host_id = _text(elem.find("ID"))
    if not host_id.isdigit():
        raise ReportFormatError(f"the report has a HOST without a numeric ID near line {elem.sourceline}",
                                "Qualys changed its output; report this")
    ip = _text(elem.find("IPV6")) or _text(elem.find("IP"))
    detections = tuple(
        Detection(int(_text(d.find("QID")) or 0), _text(d.find("TYPE")), _int_or_none(_text(d.find("SEVERITY"))),
                  _int_or_none(_text(d.find("PORT"))), _text(d.find("PROTOCOL")) or None,
                  _text(d.find("STATUS")) or None)
        for d in elem.iterfind("DETECTION_LIST/DETECTION"))
    return Host(int(host_id), ip, _text(elem.find("OS")), _text(elem.find("DNS")), detections)


def processed_after(watermark: str, overlap: datetime.timedelta = OVERLAP) -> str:
    """``vm_processed_after`` for an incremental pull: the watermark (a DATETIME Qualys gave, ISO
    8601 in UTC) less ``overlap``, in Qualys's format; ValueError if the watermark is not a time."""
    text = watermark.strip()
    when = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return (when - overlap).astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def detection_form(*, truncation_limit: int = 1000, processed_after: str | None = None, ips: str | None = None,
                   statuses: str = DEFAULT_STATUSES, show_results: bool = False) -> dict[str, str]:
    """The form of the first page (``processed_after`` is an ISO datetime, e.g. the last pull's DATETIME)."""
    form = {"action": "list", "truncation_limit": str(truncation_limit), "show_results": "1" if show_results else "0",
            "status": statuses}
    if processed_after:
        form["vm_processed_after"] = processed_after
    if ips:
        form["ips"] = ips
    return form


class DetectionPull:
    """Every host of a pull, page after page. ``datetime`` is the first page's DATETIME: the time
    to give ``processed_after`` next time (changes made while we page are then seen again, not lost)."""

    def __init__(self, post: Post, form: dict[str, str], *, tmpdir: str | None = None,
                 path: str = DETECTION_PATH):
        self.post, self.form, self.tmpdir, self.path = post, dict(form), tmpdir, path
        self.datetime: str | None = None
        self.pages = 0

    def __iter__(self) -> Iterator[Host]:
        id_min = None
        while True:
            form = dict(self.form)
            if id_min is not None:
                form["id_min"] = str(id_min)
            fd, page_file = tempfile.mkstemp(prefix="detections-", suffix=".xml", dir=self.tmpdir)
            os.close(fd)
            try:
                self.post(self.path, form, page_file)
                page = DetectionPage(page_file)
                yield from page
            finally:
                os.unlink(page_file)
            self.pages += 1
            if self.datetime is None:
                self.datetime = page.datetime
            if page.next_id_min is None:
                return
            if id_min is not None and page.next_id_min <= id_min:
                raise ReportFormatError(f"the detection page's next id_min {page.next_id_min} does not move past "
                                        f"{id_min}", "Qualys's paging went round in a circle; run again")
            id_min = page.next_id_min


def httpx_post(client, what: str = "the host detection pull") -> Post:
    """A ``Post`` over a bare ``httpx.Client`` (base_url, auth and X-Requested-With set on it):
    streams a 200 body to the file; any other answer becomes a QualysError with Qualys's CODE and TEXT.
    The connector proper wires ``QualysClient`` instead (retries and limits live there)."""
    def post(path: str, form: dict, dest: str) -> None:
        with client.stream("POST", path, data=form) as response:
            if response.status_code != 200:
                body = response.read()
                try:
                    simple = parse_simple_return(body)
                    detail = f"CODE {simple.code}: {simple.text}"
                except ResponseFormatError:
                    simple, detail = None, f"HTTP {response.status_code}"
                raise QualysError(f"Qualys refused {what}: {detail} (HTTP {response.status_code})",
                                  "see the Qualys error code; run again later if it is a limit",
                                  code=simple.code if simple else None, text=simple.text if simple else None,
                                  status=response.status_code)
            with create_private(dest) as out:
                for chunk in response.iter_bytes(1 << 16):
                    out.write(chunk)
    return post
