"""Live progress at a terminal, and none anywhere else (README "Progress at a terminal").

A person running the connector by hand sees a row per long phase (Qualys building the report,
the download, parsing, writing, sending); cron, a pipe or a log file get the log lines only,
exactly as before. ``-quiet``, ``NO_COLOR`` and ``TERM=dumb`` turn the display off.
"""
from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from conftest import CLIENT_PASSWORD, run_cli
from qualys_connector import argv, liveprogress, logsetup
from qualys_connector.emulators.fmc.server import FMCEmulator
from qualys_connector.emulators.qualys.server import QualysEmulator, TemplateSpec
from qualys_connector.progress import NO_PROGRESS, Progress

QUALYS_PASSWORD = "qualys-pw-progress"
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[(DEBUG|INFO|WARNING|ERROR)\] \S")
PHASES = ("Qualys builds report", "downloading", "parsing", "writing commands", "sending")


class Recorder:
    """A Progress that remembers every call, to see what the lower layers report."""

    def __init__(self):
        self.calls: list[tuple] = []

    def phase(self, name, total=None):
        self.calls.append(("phase", name, total))

    def update(self, **counts):
        self.calls.append(("update", counts))

    def done(self):
        self.calls.append(("done",))

    def phases(self):
        return [c[1] for c in self.calls if c[0] == "phase"]


# ---------------------------------------------------------------- the interface and the choice
def test_the_default_does_nothing_and_both_satisfy_the_protocol():
    NO_PROGRESS.phase("parsing", total=3)
    NO_PROGRESS.update(hosts=1)
    NO_PROGRESS.done()
    assert isinstance(NO_PROGRESS, Progress) and isinstance(Recorder(), Progress)


def test_a_display_only_for_a_terminal_that_the_log_goes_to():
    master, slave = pty.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            assert liveprogress.wanted(tty, environ={"TERM": "xterm"})
            assert not liveprogress.wanted(tty, quiet=True, environ={"TERM": "xterm"})
            assert not liveprogress.wanted(tty, environ={"TERM": "dumb"})
            assert not liveprogress.wanted(tty, environ={"TERM": "xterm", "NO_COLOR": "1"})
            assert not liveprogress.wanted(tty, stderr_logging=False, environ={"TERM": "xterm"})
    finally:
        os.close(master)
        os.close(slave)
    assert not liveprogress.wanted(io.StringIO(), environ={"TERM": "xterm"})


def test_only_stderr_logging_counts_as_a_person_watching(tmp_path):
    try:
        logsetup.configure(2, logfile=str(tmp_path / "log"))
        assert not logsetup.stderr_logging()
        logsetup.configure(2, logfile=str(tmp_path / "log"), stderr=True)
        assert logsetup.stderr_logging()
    finally:
        logsetup.configure(2)
    assert isinstance(liveprogress.NoTerminal().row("x"), type(NO_PROGRESS))


def test_quiet_is_a_newer_option_that_steals_no_old_abbreviation():
    from qualys_connector.cli import COMMON_OPTIONS, MULTI_OPTIONS
    assert "quiet" in argv.NEWER_OPTIONS
    assert argv.normalize(["-q"], COMMON_OPTIONS) == ["--quiet"]
    assert argv.normalize(["-quiet"], MULTI_OPTIONS) == ["--quiet"]
    assert argv.normalize(["-st", "-i"], COMMON_OPTIONS) == ["--stderr", "--ipv6"]


def test_rows_show_the_counts_as_a_person_reads_them():
    assert liveprogress._show("read_bytes", 1_900_000, 78_500_000) == "read 1.9 MB of 78.5 MB"
    assert liveprogress._show("bytes", 512, None) == "512 B"
    assert liveprogress._show("messages", 469, 12928) == "messages 469 of 12,928"
    assert liveprogress._show("left", 3725, None) == "max_wait left 1h02m05s"
    assert liveprogress._show("waited", 65, None) == "waited 1m05s"
    assert liveprogress._show("state", "Running 40%", None) == "Running 40%"


def test_log_lines_go_out_above_the_rows_whole_and_unwrapped():
    from rich.console import Console
    out = io.StringIO()
    stream = liveprogress._LogLines(Console(file=out, width=20, force_terminal=False))
    line = "2026-12-02 00:49:07,026 [INFO] client certificate /a/very/long/path (CN=x)"
    stream.write(line[:30])
    assert out.getvalue() == ""
    stream.write(line[30:] + "\n")
    assert out.getvalue() == line + "\n"


# ---------------------------------------------------------------- what the lower layers report
def test_a_dry_run_reports_parsing_and_writing(tmp_path):
    from qualys_connector.emulators.qualys.reportgen import generate_report
    from qualys_connector.pipeline import Options, run
    import input_plugins
    from qualys_connector.plugin import use_plugins
    use_plugins(input_plugins.load)
    report = tmp_path / "report.xml"
    with open(report, "wb") as out:
        generate_report(out, hosts=1200, vulns_per_host=3)
    config = tmp_path / "QualysGuard.yaml"
    # every type: the real-shaped generator makes most findings Ig, so hosts would have nothing to send
    config.write_text(f"report_file: {report}\nvuln_types: Vuln, Practice, Ig\n")
    config.chmod(0o600)
    recorder = Recorder()
    summary = run(Options(plugin="QualysGuard", plugininfo=str(config), csvfile=str(tmp_path / "out.csv")),
                  progress=recorder)
    assert recorder.phases() == ["parsing", "writing commands"]
    parsed = [c[1] for c in recorder.calls if c[0] == "update" and "read_bytes" in c[1]]
    assert [c["hosts"] for c in parsed] == [500, 1000]
    assert 0 < parsed[0]["read_bytes"] < parsed[1]["read_bytes"] <= report.stat().st_size
    written = [c[1]["hosts"] for c in recorder.calls if c[0] == "update" and "commands" in c[1]]
    assert written == [500, 1000] and 1000 < summary.hosts <= 1200


# ---------------------------------------------------------------- end to end, under a terminal
def _env(tmp_path, **extra):
    env = dict(os.environ, QC_PKCS12_PASSWORD=CLIENT_PASSWORD, QC_QUALYS_PASSWORD=QUALYS_PASSWORD,
               QC_LOCK_DIR=str(tmp_path / "locks"), TERM="xterm")
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env


def _config(tmp_path, url):
    path = tmp_path / "QualysGuard.yaml"
    path.write_text(f"user_id: api_user\ntemplate_id: 424242\nurl: {url}\nadd_host: y\n"
                    "poll_interval: 0.2\nmax_wait: 60\n")
    path.chmod(0o600)
    return str(path)


def run_in_terminal(args, env, timeout=120, module="qualys_connector"):
    """Run qualys-connector with stdout and stderr on a pseudo-terminal; returns (exit code, text seen)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", module, *args], stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:         # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = proc.wait(timeout=timeout)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def emulators(pki):
    with QualysEmulator(users={"api_user": QUALYS_PASSWORD}, report_delay=1.0,
                        templates={"424242": TemplateSpec(hosts=1500, vulns_per_host=4)}) as qualys, \
            FMCEmulator(pki=pki, max_size=4096) as fmc:
        yield qualys, fmc


def _args(tmp_path, pki, qualys, fmc, *more):
    return ["-server=127.0.0.1", f"-port={fmc.port}", f"-pkcs12={pki.client_pkcs12}",
            f"-plugininfo={_config(tmp_path, qualys.url)}", *more]


def _log_lines(text):
    """The log lines in what a terminal received: escape codes and redrawn rows taken out."""
    lines = []
    for piece in re.split(r"[\r\n]+", ESCAPE.sub("", text)):
        match = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[", piece)
        if match:
            lines.append(piece[match.start():].rstrip())
    return lines


def test_at_a_terminal_every_long_phase_shows_live_and_the_log_lines_stay_whole(tmp_path, pki, emulators):
    qualys, fmc = emulators
    code, seen = run_in_terminal(_args(tmp_path, pki, qualys, fmc), _env(tmp_path))
    assert code == 0, seen
    plain = ESCAPE.sub("", seen)
    for phase in PHASES:
        assert phase in plain, phase
    assert re.search(r"(Submitted|Running)[^\r\n]*waited \d+s\s+max_wait left \d+s", plain)
    assert re.search(r"read [\d.]+ [kM]B of [\d.]+ [kM]B", plain)
    assert re.search(r"messages ([\d,]+) of \1", plain)          # the last row: every DATA message acknowledged
    assert "\x1b[?25l" in seen                                    # rich hid the cursor: a live display
    lines = _log_lines(seen)
    assert all(LOG_LINE.match(line) for line in lines)
    assert any("client certificate" in line and "(CN=" in line for line in lines)   # not wrapped
    assert lines[-1].split("] ", 1)[1].startswith("Summary: hosts=")
    assert "data_messages=" in lines[-1] and "result=delivered" in lines[-1]
    assert fmc.stats.error_lines == 0 and fmc.netmap.export()["hosts"]


def test_with_stderr_to_a_file_there_is_no_display_and_the_log_is_as_before(tmp_path, pki, emulators):
    qualys, fmc = emulators
    result = run_cli(*_args(tmp_path, pki, qualys, fmc), env=_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stderr
    lines = result.stderr.splitlines()
    assert all(LOG_LINE.match(line) for line in lines), lines
    assert not any("━" in line for line in lines)
    assert any("report" in line and "is Submitted" in line for line in lines)
    assert lines[-1].split("] ", 1)[1].startswith("Summary: hosts=") and "result=delivered" in lines[-1]


@pytest.mark.parametrize("how", ["-quiet", "TERM=dumb", "NO_COLOR=1"])
def test_quiet_or_a_dumb_terminal_shows_the_log_lines_only(tmp_path, pki, emulators, how):
    qualys, fmc = emulators
    more, env = ([how], _env(tmp_path)) if how.startswith("-") else ([], _env(tmp_path, **dict([how.split("=")])))
    code, seen = run_in_terminal(_args(tmp_path, pki, qualys, fmc, *more), env)
    assert code == 0, seen
    assert "\x1b" not in seen
    lines = [line for line in seen.replace("\r", "").split("\n") if line]
    assert all(LOG_LINE.match(line) for line in lines), lines
    assert not any("writing commands" in line or "━" in line for line in lines)
    assert "result=delivered" in lines[-1]


def test_censys_qualys_reports_pages_events_and_ips_added(tmp_path):
    from test_censys import KEY, QPW, write_settings
    from qualys_connector.censys import settings as settings_module
    from qualys_connector.censys.api import CensysClient
    from qualys_connector.censys.position import Position
    from qualys_connector.censys.sync import run_cycle
    from qualys_connector.emulators.censys.server import CensysEmulator
    from qualys_connector.qualys.api import QualysClient
    with CensysEmulator(api_key=KEY, generate=250, page_size=100) as censys, \
            QualysEmulator(users={"u": QPW}) as qualys:
        s = settings_module.load(write_settings(tmp_path, censys.url, qualys.url, batchSize=100))
        recorder = Recorder()
        with CensysClient(KEY, censys.url) as c, QualysClient(qualys.url, "u", QPW) as q:
            result = run_cycle(s, c, q, Position(str(tmp_path)), live=recorder)
    assert recorder.phases() == ["reading the Censys logbook"]
    pages = [c[1] for c in recorder.calls if c[0] == "update" and "pages" in c[1]]
    assert [p["pages"] for p in pages] == list(range(1, len(pages) + 1)) and len(pages) >= 3
    assert pages[-1]["events"] >= result.events > 0
    ips = [c[1] for c in recorder.calls if c[0] == "update" and "added" in c[1]]
    assert len(ips) == result.batches and ips[-1] == {"added": result.added, "excluded": result.excluded}


def test_process_multiple_shows_one_row_per_template(tmp_path, pki):
    templates = {"424242": TemplateSpec(hosts=600, vulns_per_host=2), "535353": TemplateSpec(hosts=700, vulns_per_host=2)}
    with QualysEmulator(users={"api_user": QUALYS_PASSWORD}, report_delay=0.5, templates=templates) as qualys:
        code, seen = run_in_terminal(["-multiinfo=424242,535353", f"-plugininfo={_config(tmp_path, qualys.url)}",
                                      f"-csvfile={tmp_path / 'Out.csv'}"], _env(tmp_path),
                                     module="qualys_connector.multi_main")
    assert code == 0, seen
    plain = ESCAPE.sub("", seen)
    assert re.search(r"template 424242 (Qualys builds|downloading|parsing|writing)", plain)
    assert re.search(r"template 535353 (Qualys builds|downloading|parsing|writing)", plain)
    lines = _log_lines(seen)
    assert all(LOG_LINE.match(line) for line in lines)
    assert "Summary: templates=2 ok=2 failed=0" in lines[-1]
    assert (tmp_path / "424242_Out.csv").exists() and (tmp_path / "535353_Out.csv").exists()


def test_scripts_demo_at_a_terminal_shows_the_bars_and_still_matches(tmp_path):
    """The README's first command, run by a person: the connector it starts draws its rows."""
    code, seen = run_in_terminal(["--dir", str(tmp_path / "demo"), "--hosts", "300", "--vulns", "4"],
                                 {**{k: v for k, v in os.environ.items() if k != "NO_COLOR"}, "TERM": "xterm"},
                                 timeout=180,
                                 module="qualys_connector.emulators.demo")
    assert code == 0, seen
    plain = ESCAPE.sub("", seen)
    assert "\x1b[?25l" in seen and "━" in plain                   # a live display with bars
    assert re.search(r"messages ([\d,]+) of \1", plain)
    assert "MATCH: every finding inside ip_ranges arrived exactly once" in plain
