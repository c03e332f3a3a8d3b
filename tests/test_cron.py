"""Cron safety: one run per configuration at a time (issue: process-multiple and cron)."""
import os

from conftest import run_cli
from qualys_connector.locking import RunLock


def test_a_second_run_on_the_same_config_exits_75_at_once(tmp_path, lock_dir):
    source = tmp_path / "in.csv"
    source.write_text("SetSource,T\nAddHost,192.0.2.1\n")
    with RunLock(str(source)):
        result = run_cli(f"-pl={source}", f"-c={tmp_path / 'out.csv'}", "csv")
    assert result.returncode == 75, result.stderr
    assert "another run is already working on" in result.stderr
    assert not (tmp_path / "out.csv").exists()
    result = run_cli(f"-pl={source}", f"-c={tmp_path / 'out.csv'}", "csv")
    assert result.returncode == 0, result.stderr


def test_runs_on_different_configs_do_not_block_each_other(tmp_path, lock_dir):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("SetSource,T\n")
    b.write_text("SetSource,T\n")
    with RunLock(str(a)):
        result = run_cli(f"-pl={b}", f"-c={tmp_path / 'out.csv'}", "csv")
    assert result.returncode == 0, result.stderr


def test_the_lock_is_released_when_the_holder_dies(tmp_path, lock_dir):
    import subprocess
    import sys
    source = tmp_path / "in.csv"
    source.write_text("SetSource,T\n")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from qualys_connector.locking import RunLock\n"
        f"l = RunLock({str(source)!r}).__enter__(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, env=dict(os.environ))
    assert holder.stdout.readline().strip() == b"held"
    assert run_cli(f"-pl={source}", f"-c={tmp_path / 'o.csv'}", "csv").returncode == 75
    holder.kill()
    holder.wait()
    assert run_cli(f"-pl={source}", f"-c={tmp_path / 'o.csv'}", "csv").returncode == 0


def test_process_multiple_on_a_held_lock_says_locked(tmp_path, lock_dir):
    config = tmp_path / "QualysGuard.yaml"
    config.write_text("report_file: nothing-needed.xml\n")
    (tmp_path / "nothing-needed.xml").write_text("")     # report_file must exist; it is never read
    config.chmod(0o600)
    with RunLock(str(config)):
        result = run_cli("-m=1,2", f"-pl={config}", f"-c={tmp_path / 'o.csv'}", program="process-multiple")
    assert result.returncode == 75, result.stderr
    assert "Summary: templates=2 ok=0 failed=0 (1: locked, 2: locked)" in result.stderr.splitlines()[-1]


def test_process_multiple_logs_an_early_error_to_its_log_file_with_a_summary(tmp_path, lock_dir):
    log = tmp_path / "run.log"
    result = run_cli("-m=424242", f"-pl={tmp_path / 'missing.yaml'}", "-c=o.csv", f"-logfile={log}",
                     program="process-multiple", cwd=tmp_path)
    assert result.returncode == 1
    lines = log.read_text().splitlines()
    assert "missing.yaml does not exist" in lines[-2] and lines[-1].endswith("Summary: templates=1 ok=0 failed=0 (nothing started)")

