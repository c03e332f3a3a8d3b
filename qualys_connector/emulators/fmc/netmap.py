"""The emulator's network map: hosts, OS strings, attributes and scan results, in SQLite.

Scan results are kept per (scanner, host) and are unique per (vuln id, port, protocol) — for a
generic result (no vuln id) the name is part of the key too — which is how the FMC shows them.
Each scanner has a type, vulnerability or generic, fixed when its first results are stored: the
type decides what ``DeleteScanResult,<ip>,"<scanner>"`` removes (docs/host-input.md §1.4).
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ScanResult:
    vuln_id: str | None
    port: int | None
    proto: str | None
    name: str = ""
    desc: str = ""
    cve_ids: tuple[str, ...] = ()
    bugtraq_ids: tuple[str, ...] = ()
    source: str | None = None       # the SetSource in effect when the result was queued (not part of the key)

    @property
    def key(self):
        return (self.vuln_id, self.port, self.proto, None if self.vuln_id else self.name)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS hosts (ip TEXT PRIMARY KEY, mac TEXT, os_vendor TEXT, os_product TEXT,
                                  os_version TEXT);
CREATE TABLE IF NOT EXISTS attributes (ip TEXT, name TEXT, value TEXT, PRIMARY KEY (ip, name));
CREATE TABLE IF NOT EXISTS attribute_defs (name TEXT PRIMARY KEY, type TEXT);
CREATE TABLE IF NOT EXISTS scan_results (ip TEXT, scanner TEXT, vuln_id TEXT, port INTEGER, proto TEXT,
                                         name TEXT, description TEXT, cve_ids TEXT, bugtraq_ids TEXT,
                                         source TEXT);
CREATE INDEX IF NOT EXISTS scan_results_host ON scan_results (ip, scanner);
CREATE TABLE IF NOT EXISTS scanners (name TEXT PRIMARY KEY, type TEXT);
"""
VULN, GENERIC = "vuln", "generic"

# Every column the map reads, so an SQLite file of some other program fails on opening, not mid-export.
_CHECK = ("SELECT ip, mac, os_vendor, os_product, os_version FROM hosts",
          "SELECT ip, name, value FROM attributes",
          "SELECT name, type FROM attribute_defs",
          "SELECT ip, scanner, vuln_id, port, proto, name, description, cve_ids, bugtraq_ids, source FROM scan_results",
          "SELECT name, type FROM scanners")
_WHAT_TO_DO = "use the file fmc-emulator serve --db wrote, or a new name for serve to create"


class NetworkMapError(ValueError):
    """The map's file cannot be used: one line naming it and what to do, instead of an sqlite3 traceback."""


@dataclass
class NetworkMap:
    """Thread-safe store; ``db`` is a file path or ``:memory:``."""

    db: str = ":memory:"
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self):
        conn = None
        try:
            conn = sqlite3.connect(self.db, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL" if self.db != ":memory:" else "PRAGMA journal_mode=MEMORY")
            conn.executescript(_SCHEMA)
            _add_source_column(conn)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise NetworkMapError(_unusable(self.db, exc)) from exc
        try:
            for sql in _CHECK:
                conn.execute(sql + " LIMIT 0")
        except sqlite3.Error as exc:
            conn.close()
            raise NetworkMapError(f"{self.db} is an SQLite database but not a network map ({exc}): "
                                  + _WHAT_TO_DO) from exc
        self._conn = conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ hosts
    def has_host(self, ip: str) -> bool:
        with self._lock:
            return self._conn.execute("SELECT 1 FROM hosts WHERE ip=?", (ip,)).fetchone() is not None

    def add_host(self, ip: str, mac: str | None = None) -> None:
        with self._lock:
            self._conn.execute("INSERT INTO hosts (ip, mac) VALUES (?, ?) ON CONFLICT(ip) DO UPDATE "
                               "SET mac=COALESCE(excluded.mac, hosts.mac)", (ip, mac or None))

    def delete_host(self, ip: str) -> None:
        with self._lock:
            for table in ("hosts", "attributes", "scan_results"):
                self._conn.execute(f"DELETE FROM {table} WHERE ip=?", (ip,))

    def host_keys(self) -> list[str]:
        """Every host's key (its IP, or its MAC for a MAC-only host), in the order added."""
        with self._lock:
            return [row[0] for row in self._conn.execute("SELECT ip FROM hosts ORDER BY rowid")]

    def hosts_with_mac(self, mac: str) -> list[str]:
        with self._lock:
            return [row[0] for row in self._conn.execute("SELECT ip FROM hosts WHERE lower(mac)=lower(?)", (mac,))]

    def set_os(self, ip: str, vendor: str, product: str, version: str) -> None:
        with self._lock:
            self._conn.execute("UPDATE hosts SET os_vendor=?, os_product=?, os_version=? WHERE ip=?",
                               (vendor, product, version, ip))

    def unset_os(self, ip: str) -> None:
        self.set_os(ip, None, None, None)

    def define_attribute(self, name: str, kind: str) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO attribute_defs VALUES (?, ?)", (name, kind))

    def delete_attribute_definition(self, name: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM attribute_defs WHERE name=?", (name,))
            self._conn.execute("DELETE FROM attributes WHERE name=?", (name,))

    def set_attribute(self, ip: str, name: str, value: str) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO attributes VALUES (?, ?, ?)", (ip, name, value))

    def delete_attribute(self, ip: str, name: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM attributes WHERE ip=? AND name=?", (ip, name))

    # ------------------------------------------------------------------ scan results
    def replace_results(self, scanner: str, ip: str, results: list[ScanResult]) -> None:
        """ScanFlush: this scanner's results on this host become exactly ``results``."""
        with self._lock:
            self._conn.execute("BEGIN")
            self._record_scanner(scanner, results)
            self._conn.execute("DELETE FROM scan_results WHERE ip=? AND scanner=?", (ip, scanner))
            self._insert(scanner, ip, results)
            self._conn.execute("COMMIT")

    def merge_results(self, scanner: str, ip: str, results: list[ScanResult]) -> None:
        """ScanUpdate: existing results stay; a result with the same key is updated."""
        with self._lock:
            self._conn.execute("BEGIN")
            self._record_scanner(scanner, results)
            for result in results:
                self._delete_key(scanner, ip, result)
            self._insert(scanner, ip, results)
            self._conn.execute("COMMIT")

    def delete_results(self, ip: str, scanner: str | None = None, vuln_ids: list[str] | None = None,
                       port: int | None = None, proto: str | None = None, kind: str | None = None) -> int:
        """Remove the results of ``ip`` that match every filter given; ``kind`` is VULN (results with
        a vuln id) or GENERIC (without); ``port``/``proto`` are matched when given."""
        sql, args = "DELETE FROM scan_results WHERE ip=?", [ip]
        if scanner:
            sql += " AND scanner=?"
            args.append(scanner)
        if vuln_ids:
            sql += f" AND vuln_id IN ({','.join('?' * len(vuln_ids))})"
            args += vuln_ids
        if port is not None:
            sql += " AND port IS ?"
            args.append(port)
        if proto:
            sql += " AND proto IS ?"
            args.append(proto)
        if kind == VULN:
            sql += " AND vuln_id IS NOT NULL"
        elif kind == GENERIC:
            sql += " AND vuln_id IS NULL"
        with self._lock:
            return self._conn.execute(sql, args).rowcount

    def scanner_type(self, scanner: str) -> str | None:
        """VULN or GENERIC, or None for a scanner that never stored a result."""
        with self._lock:
            row = self._conn.execute("SELECT type FROM scanners WHERE name=?", (scanner,)).fetchone()
            return row[0] if row else None

    def _record_scanner(self, scanner: str, results: list[ScanResult]) -> None:
        # [unsure] The spec says DeleteScanResult,ip,"Scanner" removes "vuln or generic depending on the
        # scanner type" but not how the type is set. We follow the server module copy: the scan source is
        # created, with its type, the first time results of that name are applied — a vulnerability
        # scanner when that first group holds at least one result with a vuln id — and never changes.
        kind = VULN if any(r.vuln_id for r in results) else GENERIC
        self._conn.execute("INSERT OR IGNORE INTO scanners VALUES (?, ?)", (scanner, kind))

    def _delete_key(self, scanner: str, ip: str, r: ScanResult) -> None:
        sql = "DELETE FROM scan_results WHERE ip=? AND scanner=? AND vuln_id IS ? AND port IS ? AND proto IS ?"
        args = [ip, scanner, r.vuln_id, r.port, r.proto]
        if not r.vuln_id:
            sql += " AND name IS ?"
            args.append(r.name)
        self._conn.execute(sql, args)

    def _insert(self, scanner: str, ip: str, results: list[ScanResult]) -> None:
        self._conn.executemany(
            "INSERT INTO scan_results (ip, scanner, vuln_id, port, proto, name, description, cve_ids, "
            "bugtraq_ids, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(ip, scanner, r.vuln_id, r.port, r.proto, r.name, r.desc, json.dumps(list(r.cve_ids)),
              json.dumps(list(r.bugtraq_ids)), r.source) for r in results])

    # ------------------------------------------------------------------ views
    def export(self, scanner: str | None = None) -> dict:
        """The whole map as JSON-able data (``fmc-emulator export``).

        Every host is listed, with or without results. Per host: ``scan_results`` (one entry per
        result, with its scanner and source) and ``by_scanner`` — per scanner name the sorted vuln
        ids and the names of its generic results — which is what a test compares with a truth set.
        ``scanners`` gives each scanner's type. ``scanner`` keeps only that scanner's results.
        """
        with self._lock:
            hosts: dict[str, dict] = {}
            for ip, mac, vendor, product, version in self._conn.execute(
                    "SELECT ip, mac, os_vendor, os_product, os_version FROM hosts ORDER BY rowid"):
                hosts[ip] = _empty_host()
                hosts[ip].update(mac=mac, os=None if vendor is None and product is None and version is None
                                 else {"vendor": vendor, "product": product, "version": version})
            for ip, name, value in self._conn.execute("SELECT ip, name, value FROM attributes ORDER BY rowid"):
                hosts.setdefault(ip, _empty_host())["attributes"][name] = value
            sql, args = ("SELECT ip, scanner, vuln_id, port, proto, name, description, cve_ids, bugtraq_ids, "
                         "source FROM scan_results"), ()
            if scanner is not None:
                sql, args = sql + " WHERE scanner=?", (scanner,)
            for row in self._conn.execute(sql + " ORDER BY rowid", args):
                ip, name_of_scanner, vuln_id, port, proto, name, desc, cves, bids, source = row
                host = hosts.setdefault(ip, _empty_host())
                host["scan_results"].append({
                    "scanner": name_of_scanner, "source": source, "vuln_id": vuln_id, "port": port, "proto": proto,
                    "name": name, "desc": desc, "cve_ids": json.loads(cves), "bugtraq_ids": json.loads(bids)})
                per_scanner = host["by_scanner"].setdefault(name_of_scanner, {"vuln_ids": [], "generic": []})
                if vuln_id is None:
                    per_scanner["generic"].append(name)
                elif vuln_id not in per_scanner["vuln_ids"]:
                    per_scanner["vuln_ids"].append(vuln_id)
            for host in hosts.values():
                for per_scanner in host["by_scanner"].values():
                    per_scanner["vuln_ids"].sort(key=_id_order)
                    per_scanner["generic"].sort()
            scanners = {name: {"type": kind} for name, kind in self._conn.execute(
                "SELECT name, type FROM scanners ORDER BY rowid") if scanner is None or name == scanner}
            return {"hosts": hosts, "scanners": scanners}

    def summary(self) -> dict:
        with self._lock:
            hosts = self._conn.execute("SELECT COUNT(*) FROM hosts").fetchone()[0]
            per_scanner = dict(self._conn.execute("SELECT scanner, COUNT(*) FROM scan_results GROUP BY scanner"))
            return {"hosts": hosts, "scan_results": sum(per_scanner.values()), "per_scanner": per_scanner}


def _unusable(db: str, exc: sqlite3.Error) -> str:
    """Why ``db`` could not be opened, in words a user can act on (sqlite3 only says "unable to open")."""
    parent = os.path.dirname(os.path.abspath(db))
    if os.path.isdir(db):
        return f"{db} is a directory: give a file name for the network map, e.g. {os.path.join(db, 'map.sqlite')}"
    if not os.path.isdir(parent):
        return f"cannot create {db}: the directory {parent} does not exist; create it or choose another path"
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
        return f"{db} is not an SQLite database: {_WHAT_TO_DO}"
    return f"cannot open {db} as an SQLite database ({exc}): check the file and its directory are writable"


def _empty_host() -> dict:
    return {"mac": None, "os": None, "attributes": {}, "scan_results": [], "by_scanner": {}}


def _id_order(vuln_id: str):
    return (0, int(vuln_id), "") if vuln_id.isdigit() else (1, 0, vuln_id)


def _add_source_column(conn: sqlite3.Connection) -> None:
    """Maps written before results kept their source lack the column; add it (old rows: no source)."""
    columns = [row[1] for row in conn.execute("PRAGMA table_info(scan_results)")]
    if columns and "source" not in columns:
        conn.execute("ALTER TABLE scan_results ADD COLUMN source TEXT")
