"""Reports we launched in Qualys and have not deleted yet, remembered in the state directory.

A run killed with SIGKILL (or by the OOM killer, or a power cut) cannot delete the report it
launched; it would stay in the account, holding space and, while running, a report slot. So the
report ID is written to a small file (atomically) right after the launch, and removed once the
report is deleted. The next run with the same url and user deletes what a dead run left: a
record of this host whose process is gone, or any record past its run's own deadline
(launch + max_wait + an hour), since a run on another host cannot be asked whether it lives.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path

from ..errors import ConfigError
from ..logsetup import get_logger
from ..privatecopy import replace_atomically
from ..statedir import state_dir
from ..tempnames import alive

log = get_logger()

SUBDIR = "qualys-launched"
GRACE = 3600.0          # seconds past max_wait after which a run is surely over


class LaunchedReports:
    def __init__(self, directory: str | os.PathLike, url: str, user: str, max_wait: float):
        self.directory = Path(directory) / SUBDIR
        self.key = hashlib.sha256(f"{url}\0{user}".encode()).hexdigest()[:16]
        self.max_wait = max_wait
        self.current: str | None = None

    def _path(self, report_id: str) -> Path:
        safe = "".join(ch for ch in report_id if ch.isalnum())[:40]
        return self.directory / f"{self.key}-{safe}.json"

    def record(self, report_id: str) -> None:
        """Remember ``report_id`` (a failure to write is a warning: the run itself goes on)."""
        self.current = str(report_id)
        content = json.dumps({"report_id": self.current, "pid": os.getpid(), "host": socket.gethostname(),
                              "until": time.time() + self.max_wait + GRACE}).encode()
        try:
            self.directory.mkdir(mode=0o700, exist_ok=True)
            replace_atomically(self._path(self.current), lambda out: out.write(content))
        except OSError as exc:
            log.warning("could not record launched report %s in %s: %s; a killed run would leave it in Qualys",
                        report_id, self.directory, exc.strerror)

    def forget(self, report_id: str | None = None) -> None:
        report_id = report_id or self.current
        if report_id is None:
            return
        try:
            self._path(str(report_id)).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.debug("could not remove the record of report %s: %s", report_id, exc.strerror)
        if report_id == self.current:
            self.current = None

    def leftovers(self) -> list[str]:
        """IDs of reports a dead run of this url and user launched and did not delete."""
        found = []
        try:
            entries = sorted(self.directory.glob(f"{self.key}-*.json"))
        except OSError:
            return []
        for path in entries:
            try:
                record = json.loads(path.read_bytes()[:4096])
                report_id, pid = str(record["report_id"]), int(record["pid"])
                host, until = str(record.get("host", "")), float(record.get("until", 0))
            except (OSError, ValueError, KeyError, TypeError):
                log.debug("ignored the unreadable record %s", path)
                continue
            dead = host == socket.gethostname() and pid != os.getpid() and not alive(pid)
            if dead or time.time() > until:
                found.append(report_id)
        return found

    def delete_leftovers(self, client) -> None:
        """Best effort: delete (and forget) each report a dead run left; failures are logged."""
        for report_id in self.leftovers():
            log.warning("deleting report %s, which a run that was killed launched and left in Qualys", report_id)
            client.delete_report(report_id)
            self.forget(report_id)


class _Nowhere(LaunchedReports):
    """No usable state directory: nothing is remembered (the run itself goes on)."""

    def __init__(self):
        self.current = None

    def record(self, report_id: str) -> None:
        self.current = str(report_id)

    def forget(self, report_id: str | None = None) -> None:
        self.current = None

    def leftovers(self) -> list[str]:
        return []


def remembered_launches(explicit_state_dir, url: str, user: str, max_wait: float) -> LaunchedReports:
    """The launch records of ``url`` and ``user`` in the state directory (-statedir, QC_STATE_DIR...)."""
    try:
        directory = state_dir(explicit_state_dir)
    except ConfigError as exc:
        log.warning("launched reports are not remembered: %s", exc.message)
        return _Nowhere()
    return LaunchedReports(directory, url, user, max_wait)
