"""A run's summary for monitoring: a Prometheus text file and a JSON copy, both replaced atomically.

The Prometheus file is meant for node_exporter's textfile collector (or any scraper reading a
file): it is written to a temporary file in the same directory, fsynced and renamed, so the
collector never reads half a file. Every series is a gauge describing the LAST run, so none ends
in ``_total``. ``last_success_timestamp_seconds`` is carried over from the previous file when
this run did not succeed, so "no success for a day" can be alerted on.

No secrets go into either file (counts, times and results only): mode 0644.
"""
from __future__ import annotations

import json
import os
import re
import stat
import time
from dataclasses import dataclass, field

from .errors import UsageError
from .privatecopy import replace_atomically

RESULTS = ("delivered", "written", "failed", "interrupted", "locked")
SUCCESS = ("delivered", "written")
# censys-qualys says ok/stopped in its summary line; the metrics use the same words everywhere.
_SYNONYMS = {"ok": "delivered", "stopped": "interrupted"}

# (name, help) of the per-run counts, in the order they are written.
QC_COUNTS = (
    ("hosts", "Hosts read from the Qualys report (or CSV file) in the last run."),
    ("findings", "Vulnerability findings read in the last run."),
    ("commands", "Host input commands produced in the last run."),
    ("data_messages_sent", "DATA messages sent to the FMC in the last run."),
    ("data_messages_acknowledged", "DATA messages the FMC acknowledged in the last run."),
    ("fmc_error_replies", "FMC replies reporting errors in the last run."),
    ("hosts_cleared", "Hosts cleared on the FMC in the last run."),
)
CQ_COUNTS = (
    ("events", "Censys ASM logbook events handled in the last cycle."),
    ("added", "IPs added to Qualys VM in the last cycle."),
    ("excluded", "IPs excluded from scanning in the last cycle."),
    ("unexcluded", "IPs taken off the excluded list in the last cycle."),
    ("position", "Logbook event id the next cycle starts at."),
)
PREFIXES = {"qualys-connector": "qualys_connector", "process-multiple": "qualys_connector",
            "censys-qualys": "censys_qualys"}


@dataclass
class Run:
    """One series set: a run of a command, or of one template under process-multiple."""

    result: str
    exit_code: int
    duration_seconds: float
    counts: dict[str, float]
    labels: dict[str, str] = field(default_factory=dict)
    finished: float = field(default_factory=time.time)

    def __post_init__(self):
        self.result = _SYNONYMS.get(self.result, self.result)
        if self.result not in RESULTS:          # "producing", "sending", "not started": it failed there
            self.result = "failed"


def from_summary(summary, *, exit_code: int, template: str | None = None) -> Run:
    """A qualys-connector / process-multiple ``Summary`` as a Run."""
    d = summary.delivery
    counts = {"hosts": summary.hosts, "findings": summary.findings, "commands": summary.commands,
              "data_messages_sent": d.messages_total, "data_messages_acknowledged": d.messages_acked,
              "fmc_error_replies": d.replies_with_errors,
              "hosts_cleared": getattr(summary, "hosts_cleared", 0)}
    return Run(summary.outcome, exit_code, time.monotonic() - summary.started, counts,
               {"template": template} if template is not None else {})


def from_cycle(result, outcome: str, exit_code: int, started: float) -> Run:
    """A censys-qualys ``CycleResult`` as a Run (``started`` from time.monotonic())."""
    counts = {"events": result.events, "added": result.added, "excluded": result.excluded,
              "unexcluded": result.unexcluded}
    if result.next_id is not None:       # unknown when the run never got to read it (locked, bad settings)
        counts["position"] = result.next_id
    return Run(outcome, exit_code, time.monotonic() - started, counts)


# ------------------------------------------------------------------ the text format
def _labels(labels: dict[str, str], **extra: str) -> str:
    items = {**labels, **extra}
    if not items:
        return ""
    escaped = (f'{k}="{_escape(v)}"' for k, v in items.items())
    return "{" + ",".join(escaped) + "}"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) and not float(value).is_integer() else str(int(value))


def render(command: str, runs: list[Run], previous_success: dict[tuple, float] | None = None) -> str:
    """The exposition text for ``runs``; ``previous_success`` maps sorted label items to the old value."""
    prefix = PREFIXES[command]
    counts = QC_COUNTS if prefix == "qualys_connector" else CQ_COUNTS
    previous_success = previous_success or {}
    families: list[tuple[str, str, list[tuple[str, float]]]] = [
        ("last_run_timestamp_seconds", "When the last run ended (Unix time).",
         [(_labels(r.labels), r.finished) for r in runs]),
        ("last_success_timestamp_seconds", "When a run last succeeded (Unix time; 0: never).",
         [(_labels(r.labels), r.finished if r.result in SUCCESS
           else previous_success.get(_key(r.labels), 0)) for r in runs]),
        ("last_run_duration_seconds", "How long the last run took.",
         [(_labels(r.labels), round(r.duration_seconds, 3)) for r in runs]),
        ("last_run_exit_code", "Exit code of the last run (0 ok, 1 configuration, 2 run-time, 75 locked).",
         [(_labels(r.labels), r.exit_code) for r in runs]),
        ("last_run_result", "1 for the result of the last run, 0 for the others.",
         [(_labels(r.labels, result=name), int(r.result == name)) for r in runs for name in RESULTS]),
    ]
    for name, help_text in counts:
        families.append((f"last_run_{name}", help_text,
                         [(_labels(r.labels), r.counts.get(name, 0)) for r in runs
                          if name in r.counts or name != "position"]))
    lines = []
    for name, help_text, samples in families:
        full = f"{prefix}_{name}"
        lines += [f"# HELP {full} {help_text}", f"# TYPE {full} gauge"]
        lines += [f"{full}{labels} {_number(value)}" for labels, value in samples]
    return "\n".join(lines) + "\n"


def _key(labels: dict[str, str]) -> tuple:
    return tuple(sorted(labels.items()))


_SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)\s*$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def previous_successes(path: str, command: str) -> dict[tuple, float]:
    """Read ``last_success_timestamp_seconds`` back from the file we wrote last time (missing: {})."""
    wanted = f"{PREFIXES[command]}_last_success_timestamp_seconds"
    found: dict[tuple, float] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                match = _SAMPLE.match(line)
                if not match or match["name"] != wanted:
                    continue
                labels = {k: _unescape(v) for k, v in _LABEL.findall(match["labels"] or "")}
                try:
                    found[_key(labels)] = float(match["value"])
                except ValueError:
                    continue
    except (OSError, UnicodeDecodeError):
        return {}
    return found


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], value)


def to_json(command: str, runs: list[Run], previous_success: dict[tuple, float] | None = None) -> str:
    previous_success = previous_success or {}
    body = {"command": command, "runs": [
        {"labels": r.labels, "result": r.result, "exit_code": r.exit_code,
         "duration_seconds": round(r.duration_seconds, 3), "finished": r.finished,
         "last_success": r.finished if r.result in SUCCESS else previous_success.get(_key(r.labels)),
         **r.counts} for r in runs]}
    return json.dumps(body, indent=2) + "\n"


def _not_a_regular_file(path: str) -> str | None:
    """What ``path`` is when it exists and is not a regular file (links followed): never replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return "it is a directory" if stat.S_ISDIR(mode) else "it is not a regular file"


def write_atomically(path: str, text: str, mode: int = 0o644) -> None:
    """Temporary file beside ``path``, fsync, rename: a reader sees the old file or the new one.

    A symbolic link is followed (its target is replaced, the link kept); a path that is not a
    regular file (``/dev/null``, a FIFO) is never replaced."""
    problem = _not_a_regular_file(path)
    if problem:
        raise OSError(0, problem)
    replace_atomically(os.path.realpath(path), lambda fh: fh.write(text.encode("utf-8")), mode=mode)


# ------------------------------------------------------------------ the hook the commands call
@dataclass
class Reporter:
    """Where a command writes its run files (``-metrics``, ``-summaryjson``); both optional."""

    command: str
    metrics: str | None = None
    summaryjson: str | None = None

    def check(self) -> None:
        """Refuse a path we could never write before the run starts, not after it."""
        for option, path in (("-metrics", self.metrics), ("-summaryjson", self.summaryjson)):
            if not path:
                continue
            directory = os.path.dirname(os.path.realpath(path))
            problem = (_not_a_regular_file(path) or
                       ("its directory does not exist" if not os.path.isdir(directory) else
                        "its directory is not writable" if not os.access(directory, os.W_OK) else None))
            if problem:
                self.metrics = self.summaryjson = None      # said once here, not again at the end
                raise UsageError(f"cannot write {option} {path}: {problem}",
                                 "give a regular file in a writable directory")

    def write(self, runs: list[Run], log) -> None:
        """Write both files; a failure is logged, never raised: the run's own result stands."""
        previous = previous_successes(self.metrics, self.command) if self.metrics else {}
        if not previous and self.summaryjson:
            previous = _json_successes(self.summaryjson)
        for option, path, text in (("-metrics", self.metrics, lambda: render(self.command, runs, previous)),
                                   ("-summaryjson", self.summaryjson, lambda: to_json(self.command, runs, previous))):
            if not path:
                continue
            try:
                write_atomically(path, text())
            except OSError as exc:
                log.error("cannot write %s %s: %s; monitoring will see the previous run", option, path,
                          exc.strerror or exc)


def _json_successes(path: str) -> dict[tuple, float]:
    try:
        with open(path, encoding="utf-8") as fh:
            runs = json.load(fh).get("runs", [])
        return {_key(r.get("labels") or {}): float(r["last_success"]) for r in runs if r.get("last_success")}
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return {}
