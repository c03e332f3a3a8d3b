"""Qualys KnowledgeBase: titles, diagnoses, CVE and Bugtraq IDs per QID, fetched in batches and cached.

The detection API gives QIDs without titles; the KnowledgeBase call gives the rest. Qualys lets
one KnowledgeBase call run per subscription at a time, so calls here are made one after another
(never in parallel, even from threads sharing a ``KnowledgeBase``), at most 500 QIDs each. The
SQLite cache means a later run asks only for QIDs it has not seen; ``refresh`` asks for what
Qualys changed since the newest LAST_SERVICE_MODIFICATION_DATETIME in the cache.
"""
from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator

from lxml import etree

from ..errors import InputFileError, ReportFormatError, StateFileError
from ..report.xmlguard import PARSER_OPTIONS, inspect_root, simple_return_error, translated
from .detections import Post

KB_PATH = "/api/2.0/fo/knowledge_base/vuln/"
ROOT = "KNOWLEDGE_BASE_VULN_LIST_OUTPUT"
BATCH = 500


@dataclass(frozen=True)
class Vuln:
    qid: int
    title: str                          # 'QID n' when Qualys gives none
    diagnosis: str
    cve_ids: tuple[str, ...]
    bugtraq_ids: tuple[str, ...]
    modified: str | None = None         # LAST_SERVICE_MODIFICATION_DATETIME


def _text(elem) -> str:
    return (elem.text or "").strip() if elem is not None else ""


def _ids(elem, path: str) -> tuple[str, ...]:
    return tuple(t for t in (_text(e) for e in elem.iterfind(path)) if t)


def parse_kb(path: str) -> Iterator[Vuln]:
    """Stream the VULNs of one KnowledgeBase answer file (hostile or cut-off XML refused)."""
    try:
        root = inspect_root(path)
        if root == "SIMPLE_RETURN":
            raise simple_return_error(path)
        if root != ROOT:
            raise ReportFormatError(f"the report has root <{root}>, not <{ROOT}>",
                                    "the answer is not a KnowledgeBase list; check the url")
        with translated(path), open(path, "rb") as fh:
            for _, elem in etree.iterparse(fh, events=("end",), tag="VULN", **PARSER_OPTIONS):
                qid = _text(elem.find("QID"))
                if not qid.isdigit():
                    raise ReportFormatError(f"the report has a VULN without a numeric QID near line {elem.sourceline}",
                                            "Qualys changed its output; report this")
                yield Vuln(int(qid), _text(elem.find("TITLE")) or f"QID {qid}", _text(elem.find("DIAGNOSIS")),
                           _ids(elem, "CVE_LIST/CVE/ID"), _ids(elem, "BUGTRAQ_LIST/BUGTRAQ/ID"),
                           _text(elem.find("LAST_SERVICE_MODIFICATION_DATETIME")) or None)
                elem.clear()
                while elem.getprevious() is not None:
                    del elem.getparent()[0]
    except ReportFormatError as exc:
        raise ReportFormatError(exc.message.replace("the report", "the KnowledgeBase answer", 1), exc.hint) from None


_SCHEMA = ("CREATE TABLE IF NOT EXISTS {db}vuln (qid INTEGER PRIMARY KEY, title TEXT NOT NULL, "
           "diagnosis TEXT NOT NULL, cve_ids TEXT NOT NULL, bugtraq_ids TEXT NOT NULL, modified TEXT)")


def _row(v: Vuln) -> tuple:
    return (v.qid, v.title, v.diagnosis, ",".join(v.cve_ids), ",".join(v.bugtraq_ids), v.modified)


class KnowledgeBaseCache:
    """QID → Vuln in SQLite; every ``put_many`` (or ``commit``) is one transaction (all rows or none).

    ``write=False`` (a dry run): the file is only read (and not created); what is learnt is kept
    in memory for this run. ``defer=True`` (a sending run): the file is only read as well, and what
    is learnt waits in memory until ``commit`` writes it in one transaction, which the connector
    does only after the FMC acknowledged the delivery (README "Pulling detections instead of
    reports"); a run that fails never calls it. ``commit`` works after ``close`` too."""

    def __init__(self, path: str, *, write: bool = True, defer: bool = False):
        self.path = path
        self.write, self.defer = write, defer
        immediate = write and not defer
        self._pending: dict[int, Vuln] | None = None if immediate else {}
        reading_only = not immediate and os.path.exists(path)
        try:
            if reading_only:
                self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
                self._db.execute("SELECT COUNT(*) FROM vuln").fetchone()
            else:
                self._db = sqlite3.connect(path if immediate else ":memory:", check_same_thread=False)
                with self._db:
                    self._db.execute(_SCHEMA.format(db=""))
        except sqlite3.Error as exc:
            raise InputFileError(f"cannot open the KnowledgeBase cache {path}: {exc}",
                                 "check the path and its permissions, or delete the file to start afresh") from None
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """How many entries wait for ``commit``."""
        return len(self._pending or ())

    def commit(self) -> int:
        """Write what this run learnt to the file in one transaction (created mode 0600); returns how
        many entries. Only for ``defer=True``; StateFileError if the file cannot be written."""
        if not (self.write and self.defer):
            raise RuntimeError("commit() is for a KnowledgeBaseCache opened with defer=True")
        with self._lock:
            rows = [_row(v) for v in (self._pending or {}).values()]
            if not rows:
                return 0
            try:
                if not os.path.exists(self.path):
                    os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                db = sqlite3.connect(self.path)
                try:
                    with db:
                        db.execute(_SCHEMA.format(db=""))
                        db.executemany("INSERT OR REPLACE INTO vuln VALUES (?, ?, ?, ?, ?, ?)", rows)
                finally:
                    db.close()
            except (OSError, sqlite3.Error) as exc:
                raise StateFileError(f"cannot write the KnowledgeBase cache {self.path}: "
                                     f"{getattr(exc, 'strerror', None) or exc}",
                                     "check free space and permissions of the state directory; "
                                     "the cache was left as it was") from None
            self._pending.clear()
            return len(rows)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "KnowledgeBaseCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get_many(self, qids: Iterable[int]) -> dict[int, Vuln]:
        wanted = sorted(set(qids))
        found: dict[int, Vuln] = {}
        with self._lock:
            if self._pending:
                found.update((q, self._pending[q]) for q in wanted if q in self._pending)
                wanted = [q for q in wanted if q not in found]
            for start in range(0, len(wanted), BATCH):        # stay under SQLite's variable limit
                chunk = wanted[start:start + BATCH]
                rows = self._db.execute(f"SELECT qid, title, diagnosis, cve_ids, bugtraq_ids, modified FROM vuln "
                                        f"WHERE qid IN ({','.join('?' * len(chunk))})", chunk)
                for qid, title, diagnosis, cves, bids, modified in rows:
                    if qid in found:
                        continue
                    found[qid] = Vuln(qid, title, diagnosis, tuple(filter(None, cves.split(","))),
                                      tuple(filter(None, bids.split(","))), modified)
        return found

    def put_many(self, vulns: Iterable[Vuln]) -> int:
        if self._pending is not None:
            vulns = list(vulns)
            with self._lock:
                self._pending.update((v.qid, v) for v in vulns)
            return len(vulns)
        rows = [_row(v) for v in vulns]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO vuln VALUES (?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def newest_modified(self) -> str | None:
        """The newest LAST_SERVICE_MODIFICATION_DATETIME cached (ISO UTC strings sort as times)."""
        with self._lock:
            stored = self._db.execute("SELECT MAX(modified) FROM vuln").fetchone()[0]
            learnt = [v.modified for v in (self._pending or {}).values() if v.modified]
        return max([m for m in (stored, *learnt) if m], default=None)

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM vuln").fetchone()[0]


class KnowledgeBase:
    """Looks QIDs up through the cache, asking Qualys (one call at a time) only for the unknown ones."""

    def __init__(self, post: Post, cache: KnowledgeBaseCache, *, tmpdir: str | None = None, batch: int = BATCH):
        self.post, self.cache, self.tmpdir, self.batch = post, cache, tmpdir, min(batch, BATCH)
        self.calls = 0
        self._one_at_a_time = threading.Lock()

    def lookup(self, qids: Iterable[int]) -> dict[int, Vuln]:
        wanted = set(qids)
        known = self.cache.get_many(wanted)
        missing = sorted(wanted - known.keys())
        for start in range(0, len(missing), self.batch):
            batch = missing[start:start + self.batch]
            got = self._call({"action": "list", "details": "All", "ids": ",".join(map(str, batch))})
            self.cache.put_many(got)
            known.update((v.qid, v) for v in got if v.qid in wanted)
        return known

    def refresh(self) -> int:
        """Ask for the QIDs Qualys changed since the newest one cached; returns how many were updated."""
        since = self.cache.newest_modified()
        if since is None:
            return 0       # an empty cache: lookup fills it
        # [unsure] whether Qualys compares last_modified_after inclusively; re-fetching the newest is harmless.
        return self.cache.put_many(self._call({"action": "list", "details": "All", "last_modified_after": since}))

    def _call(self, form: dict[str, str]) -> list[Vuln]:
        with self._one_at_a_time:
            fd, dest = tempfile.mkstemp(prefix="kb-", suffix=".xml", dir=self.tmpdir)
            os.close(fd)
            try:
                self.post(KB_PATH, form, dest)
                self.calls += 1
                return list(parse_kb(dest))
            finally:
                os.unlink(dest)
