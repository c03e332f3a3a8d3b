"""What a job delivered to one FMC target last time, so the next run can clear what left.

One record per delivery target and job (``Target``): the FMC address and port, the domain,
source and scanner names, and a job id (a template ID, ``report_file``, or ``detections``). It lives in the
state directory as a small SQLite file, replaced atomically (written aside, fsynced, renamed),
and only by ``commit``: a dry run, a failed or an interrupted run never call it, so the
previous record stays exactly as it was.

    record = DeliveryRecord.open(state_dir, target)   # reads nothing into memory
    record.add_current(ip) ...                          # hosts that got results this run
    record.add_absent(ip) ...                           # hosts seen without anything to send
    for ip in record.to_clear(include_missing=True): ...
    record.commit(watermark="...")                      # after the FMC acknowledged everything
    record.close()

Sets live in a scratch SQLite file beside the record, never in Python sets: a million hosts
cost a few MB of page cache, not hundreds of MB of str objects.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .errors import StateFileError

VERSION = 1
PREFIX = "delivered-"
_BATCH = 5000


@dataclass(frozen=True)
class Target:
    """Where results went and which job sent them; one record per distinct Target."""

    server: str
    port: int
    domain: str | None
    source_name: str
    scanner_name: str
    job: str

    def key(self) -> str:
        """A stable text naming the target (stored in the record and checked on open)."""
        return "\t".join((self.server.lower().strip("[]"), str(self.port), self.domain or "",
                          self.source_name, self.scanner_name, self.job))

    def group(self) -> str:
        """The target without the job: what two jobs writing the same results share."""
        return self.key().rsplit("\t", 1)[0]

    def filename(self) -> str:
        digest = hashlib.sha256(self.key().encode()).hexdigest()[:20]
        return f"{PREFIX}{digest}.sqlite"


@dataclass(frozen=True)
class MaxClear:
    """The safety valve: how many of the hosts delivered last time one run may clear.

    ``50%`` (a share of the previous record) or ``1000`` (a number of hosts).
    """

    value: float
    percent: bool = True

    @classmethod
    def parse(cls, text: str | int | float) -> "MaxClear":
        """``"50%"``, ``"12.5%"`` or ``"1000"``; ValueError with what is wrong."""
        raw = str(text).strip()
        try:
            if raw.endswith("%"):
                value = float(raw[:-1].strip())
                if not 0 <= value <= 100:
                    raise ValueError
                return cls(value, True)
            number = int(raw)
            if number < 0:
                raise ValueError
            return cls(number, False)
        except ValueError:
            raise ValueError(f"'{raw}' is neither a percentage from 0% to 100% nor a number of hosts "
                             "(for example 50% or 1000)") from None

    def allows(self, clears: int, base: int) -> bool:
        """May a run clear ``clears`` of ``base`` hosts?"""
        limit = base * self.value / 100 if self.percent else self.value
        return clears <= limit

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else str(int(self.value))


@dataclass(frozen=True)
class ClearScope:
    """What a plugin says about the results it writes (from its configuration): the target
    without the FMC address, and how far clearing may go."""

    domain: str | None
    source_name: str
    scanner_name: str
    job: str                                # the template ID, "report_file" or "detections"
    remove_missing: bool = True
    max_clear: MaxClear = field(default_factory=lambda: MaxClear(50))


class DeliveryRecord:
    """The previous record of a target (read-only) and this run's host sets (scratch)."""

    def __init__(self, path: Path, target: Target, scratch: str, db: sqlite3.Connection,
                 exists: bool, previous_count: int, watermark: str | None):
        self.path, self.target = path, target
        self._scratch, self._db = scratch, db
        self.exists = exists                    # a previous record was found
        self.previous_count = previous_count    # hosts it holds
        self.watermark = watermark              # the text value it holds, or None
        self._pending: dict[str, list[str]] = {"current": [], "absent": []}

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, state_dir: str | os.PathLike, target: Target, *, previous: bool = True) -> "DeliveryRecord":
        """Open the record of ``target`` in ``state_dir``; StateFileError (exit 1) if it is unusable.

        ``previous=False`` ignores an existing record (a run with nothing to compare against).
        """
        path = Path(state_dir) / target.filename()
        exists, count, watermark = False, 0, None
        if previous and path.exists():
            count, watermark = _check(path, target)
            exists = True
        try:
            fd, scratch = tempfile.mkstemp(prefix=f".{PREFIX}", suffix=".work", dir=path.parent)
        except OSError as exc:
            raise StateFileError(f"cannot create a file in the state directory {path.parent}: {exc.strerror}",
                                 "check free space and permissions of the state directory") from None
        os.close(fd)
        try:
            db = sqlite3.connect(Path(scratch).as_uri(), uri=True, check_same_thread=False, isolation_level=None)
            db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-4000;"
                             "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;"
                             "CREATE TABLE hosts (ip TEXT PRIMARY KEY) WITHOUT ROWID;"
                             "CREATE TABLE absent (ip TEXT PRIMARY KEY) WITHOUT ROWID;"
                             "CREATE TABLE previous (ip TEXT PRIMARY KEY) WITHOUT ROWID;")
            if exists:
                db.execute("ATTACH DATABASE ? AS prev", (f"{path.as_uri()}?mode=ro",))
                db.execute("BEGIN")
                db.execute("INSERT INTO previous SELECT ip FROM prev.hosts")
                db.execute("COMMIT")
                db.execute("DETACH DATABASE prev")
        except sqlite3.Error as exc:
            _remove(scratch)
            raise StateFileError(f"cannot use the state directory {path.parent} for the delivery record: {exc}",
                                 "check free space and permissions of the state directory") from None
        except BaseException:
            _remove(scratch)
            raise
        return cls(path, target, scratch, db, exists, count, watermark)

    # ------------------------------------------------------------------ this run
    def add_current(self, ip: str) -> None:
        """``ip`` got results this run (it will be in the next record)."""
        self._add("current", ip)

    def add_absent(self, ip: str) -> None:
        """``ip`` was in the source but has nothing to send: its results are to be cleared."""
        self._add("absent", ip)

    def _add(self, kind: str, ip: str) -> None:
        pending = self._pending[kind]
        pending.append(ip)
        if len(pending) >= _BATCH:
            self._flush(kind)

    def _flush(self, kind: str | None = None) -> None:
        for name in ([kind] if kind else list(self._pending)):
            rows = self._pending[name]
            if rows:
                table = "hosts" if name == "current" else "absent"
                self._db.execute("BEGIN")
                self._db.executemany(f"INSERT OR IGNORE INTO {table} VALUES (?)", ((ip,) for ip in rows))
                self._db.execute("COMMIT")
                rows.clear()

    def previous_hosts(self) -> Iterator[str]:
        """Every host of the previous record, in address-text order."""
        yield from self._query("SELECT ip FROM previous ORDER BY ip")

    def current_hosts(self) -> Iterator[str]:
        """Every host added with ``add_current``, in address-text order."""
        yield from self._query("SELECT ip FROM hosts ORDER BY ip")

    def missing(self) -> Iterator[str]:
        """Hosts of the previous record that did not get results this run."""
        yield from self._query("SELECT ip FROM previous WHERE ip NOT IN (SELECT ip FROM hosts) ORDER BY ip")

    def to_clear(self, *, include_missing: bool) -> Iterator[str]:
        """Absent hosts (and, if asked, missing ones), never a host that got results this run."""
        union = " UNION SELECT ip FROM previous" if include_missing else ""
        yield from self._query(f"SELECT ip FROM (SELECT ip FROM absent{union}) "
                               "WHERE ip NOT IN (SELECT ip FROM hosts) ORDER BY ip")

    def count_to_clear(self, *, include_missing: bool, previous_only: bool) -> int:
        """How many ``to_clear`` yields; with ``previous_only``, only those the previous record holds."""
        union = " UNION SELECT ip FROM previous" if include_missing else ""
        extra = " AND ip IN (SELECT ip FROM previous)" if previous_only else ""
        return next(self._query(f"SELECT count(*) FROM (SELECT ip FROM absent{union}) "
                                f"WHERE ip NOT IN (SELECT ip FROM hosts){extra}"))

    @property
    def current_count(self) -> int:
        return next(self._query("SELECT count(*) FROM hosts"))

    def is_current(self, ip: str) -> bool:
        self._flush()
        return self._db.execute("SELECT 1 FROM hosts WHERE ip = ?", (ip,)).fetchone() is not None

    def _query(self, sql: str) -> Iterator:
        self._flush()
        cursor = self._db.execute(sql)
        while True:
            rows = cursor.fetchmany(1000)
            if not rows:
                return
            for row in rows:
                yield row[0]

    # ------------------------------------------------------------------ the end
    def commit(self, *, watermark: str | None = None, keep_missing: bool = False,
               forget: Iterable[str] = (), forget_absent: bool = False) -> None:
        """Replace the record atomically by this run's hosts (and ``watermark``).

        ``keep_missing`` keeps the previous hosts that got nothing this run (they were not
        cleared, so they may still hold results); ``forget`` drops hosts from it (another job
        took them over); ``forget_absent`` drops the hosts added with ``add_absent`` (they were
        cleared: an incremental run keeps the unchanged hosts and forgets the cleared ones).
        Call only after the FMC acknowledged everything; ends the record.
        """
        try:
            self._write_final(watermark, keep_missing, forget, forget_absent)
        except sqlite3.Error as exc:
            raise StateFileError(f"cannot write the delivery record {self.path}: {exc}",
                                 "check free space in the state directory; the previous record was kept") from None
        try:
            fd = os.open(self._scratch, os.O_RDONLY)
            try:
                os.fchmod(fd, 0o600)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self._scratch, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise StateFileError(f"cannot write the delivery record {self.path}: {exc.strerror}",
                                 "check free space and permissions of the state directory; the previous "
                                 "record was kept, so the next run compares with it") from None
        self._scratch = None

    def _write_final(self, watermark, keep_missing, forget, forget_absent=False) -> None:
        self._flush()
        db = self._db
        db.execute("BEGIN")
        if keep_missing:
            db.execute("INSERT OR IGNORE INTO hosts SELECT ip FROM previous")
        if forget_absent:
            db.execute("DELETE FROM hosts WHERE ip IN (SELECT ip FROM absent)")
        db.executemany("DELETE FROM hosts WHERE ip = ?", ((ip,) for ip in forget))
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                       [("version", str(VERSION)), ("target", self.target.key()),
                        ("watermark", watermark)])
        db.execute("DROP TABLE absent")
        db.execute("DROP TABLE previous")
        db.execute("COMMIT")
        db.execute("VACUUM")
        db.close()
        self._db = None

    def close(self) -> None:
        """Drop this run's sets; the previous record stays as it was (unless committed)."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._scratch:
            _remove(self._scratch)
            self._scratch = None

    def __enter__(self) -> "DeliveryRecord":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check(path: Path, target: Target) -> tuple[int, str | None]:
    """Version, target and host count of an existing record; StateFileError if it is unusable."""
    hint = f"move {path} aside to start over (the next run then clears only hosts without findings)"
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
        if head != b"SQLite format 3\x00":
            raise StateFileError(f"the delivery record {path} is not a record of this tool (not SQLite)", hint)
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
            count = db.execute("SELECT count(*) FROM hosts").fetchone()[0]
        finally:
            db.close()
    except OSError as exc:
        raise StateFileError(f"cannot read the delivery record {path}: {exc.strerror}", hint) from None
    except sqlite3.Error as exc:
        raise StateFileError(f"the delivery record {path} is unreadable ({exc})", hint) from None
    try:
        version = int(meta.get("version", ""))
    except ValueError:
        raise StateFileError(f"the delivery record {path} has no valid version", hint) from None
    if version > VERSION:
        raise StateFileError(f"the delivery record {path} was written by a newer version of qualys-connector "
                             f"(record version {version}, this one reads up to {VERSION})",
                             "run the newer version, or move the file aside to start over")
    if meta.get("target") != target.key():
        raise StateFileError(f"the delivery record {path} belongs to another target ({meta.get('target')!r})", hint)
    return count, meta.get("watermark")


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


__all__ = ["ClearScope", "DeliveryRecord", "MaxClear", "Target", "VERSION"]
