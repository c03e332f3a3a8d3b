"""The emulator's network map: hosts, OS strings, attributes and scan results, in SQLite.

Scan results are kept per (scanner, host) and are unique per (vuln id, port, protocol) — for a
generic result (no vuln id) the name is part of the key too — which is how the FMC shows them.
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

    @property
    def key(self):
        return (self.vuln_id, self.port, self.proto, None if self.vuln_id else self.name)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS hosts (ip TEXT PRIMARY KEY, mac TEXT, os_vendor TEXT, os_product TEXT,
                                  os_version TEXT);
CREATE TABLE IF NOT EXISTS attributes (ip TEXT, name TEXT, value TEXT, PRIMARY KEY (ip, name));
CREATE TABLE IF NOT EXISTS attribute_defs (name TEXT PRIMARY KEY, type TEXT);
CREATE TABLE IF NOT EXISTS scan_results (ip TEXT, scanner TEXT, vuln_id TEXT, port INTEGER, proto TEXT,
                                         name TEXT, description TEXT, cve_ids TEXT, bugtraq_ids TEXT);
CREATE INDEX IF NOT EXISTS scan_results_host ON scan_results (ip, scanner);
"""

# Every column the map reads, so an SQLite file of some other program fails on opening, not mid-export.
_CHECK = ("SELECT ip, mac, os_vendor, os_product, os_version FROM hosts",
          "SELECT ip, name, value FROM attributes",
          "SELECT name, type FROM attribute_defs",
          "SELECT ip, scanner, vuln_id, port, proto, name, description, cve_ids, bugtraq_ids FROM scan_results")
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
            self._conn.execute("DELETE FROM scan_results WHERE ip=? AND scanner=?", (ip, scanner))
            self._insert(scanner, ip, results)
            self._conn.execute("COMMIT")

    def merge_results(self, scanner: str, ip: str, results: list[ScanResult]) -> None:
        """ScanUpdate: existing results stay; a result with the same key is updated."""
        with self._lock:
            self._conn.execute("BEGIN")
            for result in results:
                self._delete_key(scanner, ip, result)
            self._insert(scanner, ip, results)
            self._conn.execute("COMMIT")

    def delete_results(self, ip: str, scanner: str | None = None, vuln_ids: list[str] | None = None,
                       port: int | None = None, proto: str | None = None) -> int:
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
        with self._lock:
            return self._conn.execute(sql, args).rowcount

    def _delete_key(self, scanner: str, ip: str, r: ScanResult) -> None:
        sql = "DELETE FROM scan_results WHERE ip=? AND scanner=? AND vuln_id IS ? AND port IS ? AND proto IS ?"
        args = [ip, scanner, r.vuln_id, r.port, r.proto]
        if not r.vuln_id:
            sql += " AND name IS ?"
            args.append(r.name)
        self._conn.execute(sql, args)

    def _insert(self, scanner: str, ip: str, results: list[ScanResult]) -> None:
        self._conn.executemany(
            "INSERT INTO scan_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(ip, scanner, r.vuln_id, r.port, r.proto, r.name, r.desc, json.dumps(list(r.cve_ids)),
              json.dumps(list(r.bugtraq_ids))) for r in results])

    # ------------------------------------------------------------------ views
    def export(self) -> dict:
        """The whole map as JSON-able data (``fmc-emulator export``)."""
        with self._lock:
            hosts: dict[str, dict] = {}
            for ip, mac, vendor, product, version in self._conn.execute(
                    "SELECT ip, mac, os_vendor, os_product, os_version FROM hosts ORDER BY rowid"):
                hosts[ip] = {"mac": mac, "os": None if vendor is None and product is None and version is None
                             else {"vendor": vendor, "product": product, "version": version},
                             "attributes": {}, "scan_results": []}
            for ip, name, value in self._conn.execute("SELECT ip, name, value FROM attributes ORDER BY rowid"):
                hosts.setdefault(ip, _empty_host())["attributes"][name] = value
            for row in self._conn.execute("SELECT ip, scanner, vuln_id, port, proto, name, description, cve_ids, "
                                          "bugtraq_ids FROM scan_results ORDER BY rowid"):
                ip, scanner, vuln_id, port, proto, name, desc, cves, bids = row
                hosts.setdefault(ip, _empty_host())["scan_results"].append({
                    "scanner": scanner, "vuln_id": vuln_id, "port": port, "proto": proto, "name": name,
                    "desc": desc, "cve_ids": json.loads(cves), "bugtraq_ids": json.loads(bids)})
            return {"hosts": hosts}

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
    return {"mac": None, "os": None, "attributes": {}, "scan_results": []}
