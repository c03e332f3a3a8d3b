"""What a run killed with SIGKILL leaves is cleaned up by the next run: its temporary files
(named with their PID) and the report it launched in Qualys (remembered in the state directory)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from conftest import wait_for
from qualys_connector import tempnames
from qualys_connector.emulators.qualys.server import QualysEmulator, TemplateSpec
from qualys_connector.qualys.launched import SUBDIR, LaunchedReports

PASSWORD = "killed-pw"


def write_config(tmp_path, url, template_id):
    path = tmp_path / f"QG{template_id}.yaml"
    path.write_text(f"user_id: u\ntemplate_id: {template_id}\nurl: {url}\npoll_interval: 0.05\nmax_wait: 120\n")
    path.chmod(0o600)
    return str(path)


def start(tmp_path, config, lock_dir):
    env = dict(os.environ, QC_QUALYS_PASSWORD=PASSWORD, QC_STATE_DIR=str(tmp_path / "state"),
               TMPDIR=str(tmp_path / "tmp"), QC_LOCK_DIR=str(lock_dir))
    return subprocess.Popen([sys.executable, "-m", "qualys_connector", f"-plugininfo={config}",
                             f"-csvfile={tmp_path / 'out' / 'Out.csv'}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_next_run_deletes_the_report_and_the_files_a_killed_run_left(tmp_path, lock_dir):
    (tmp_path / "tmp").mkdir()
    (tmp_path / "out").mkdir()
    records = tmp_path / "state" / SUBDIR
    templates = {"1": TemplateSpec(hosts=5, vulns_per_host=2, delay=300),
                 "2": TemplateSpec(hosts=5, vulns_per_host=2, delay=0)}
    with QualysEmulator(users={"u": PASSWORD}, templates=templates) as qualys:
        first = start(tmp_path, write_config(tmp_path, qualys.url, 1), lock_dir)
        assert wait_for(lambda: records.is_dir() and any(records.glob("*.json"))), first.communicate()
        left_behind = sorted(os.listdir(tmp_path / "tmp")) + sorted(os.listdir(tmp_path / "out"))
        first.send_signal(signal.SIGKILL)
        first.communicate()
        (killed_report,) = list(qualys.state.reports)
        assert killed_report not in qualys.state.deleted_reports
        assert left_behind and all(f"{first.pid}@" in name for name in left_behind)

        second = start(tmp_path, write_config(tmp_path, qualys.url, 2), lock_dir)
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 0, stderr
    assert killed_report in qualys.state.deleted_reports and len(qualys.state.deleted_reports) == 2
    assert f"deleting report {killed_report}, which a run that was killed launched" in stderr
    assert os.listdir(tmp_path / "tmp") == [] and os.listdir(tmp_path / "out") == ["Out.csv"]
    assert not list(records.glob("*.json"))
    assert stderr.count("left behind by a run that was killed") == len(left_behind)


def test_a_record_of_a_live_run_is_left_alone(tmp_path):
    mine = LaunchedReports(tmp_path, "https://q.example", "u", max_wait=60)
    mine.record("77")
    assert LaunchedReports(tmp_path, "https://q.example", "u", 60).leftovers() == []     # our own PID
    assert LaunchedReports(tmp_path, "https://q.example", "other", 60).leftovers() == []  # another account
    mine.forget()
    assert not list((tmp_path / SUBDIR).iterdir())


def test_the_sweep_removes_only_dead_runs_files_of_its_kind(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live_name = tempnames.prefix(tempnames.SPOOL) + "a.csv"
    dead_name = tempnames.prefix(tempnames.SPOOL).replace(f"{os.getpid()}@", f"{dead.pid}@") + "b.csv"
    other = ".qc-spool-abc.csv"
    for name in (live_name, dead_name, other):
        (tmp_path / name).write_text("x")
    assert tempnames.sweep(tmp_path, (tempnames.SPOOL,)) == 1
    assert sorted(os.listdir(tmp_path)) == sorted([live_name, other])
