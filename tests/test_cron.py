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
