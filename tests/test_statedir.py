"""Where the lock and the state live, and why we trust them (issues: operations, security sweep)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import CLIENT_PASSWORD, run_cli
from qualys_connector import statedir
from qualys_connector.argv import normalize
from qualys_connector.cli import COMMON_OPTIONS, MULTI_OPTIONS
from qualys_connector.errors import ConfigError, LockHeld
from qualys_connector.locking import RunLock, lock_path

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


def clean_env(tmp_path, **more):
    """The environment of a cron job: no QC_LOCK_DIR/QC_STATE_DIR, its own HOME and TMPDIR."""
    env = {k: v for k, v in os.environ.items() if k not in ("QC_LOCK_DIR", "QC_STATE_DIR", "XDG_STATE_HOME")}
    env.update(HOME=str(tmp_path / "home"), **more)
    return env


def csv_job(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("SetSource,T\nAddHost,192.0.2.1\n")
    return str(source)


# ---------------------------------------------------------------- where
def test_the_state_directory_comes_from_the_option_the_environment_or_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("QC_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert statedir.state_dir() == tmp_path / "xdg" / "qualys-connector"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert statedir.state_dir() == tmp_path / "home" / ".local" / "state" / "qualys-connector"
    monkeypatch.setenv("QC_STATE_DIR", str(tmp_path / "env"))
    assert statedir.state_dir() == tmp_path / "env"
    assert statedir.state_dir(str(tmp_path / "opt")) == tmp_path / "opt"


def test_created_directories_are_0700_whatever_the_umask(tmp_path, monkeypatch):
    monkeypatch.delenv("QC_LOCK_DIR", raising=False)
    old = os.umask(0)
    try:
        locks = statedir.lock_dir(str(tmp_path / "state"))
    finally:
        os.umask(old)
    assert locks == tmp_path / "state" / "locks"
    assert oct(os.stat(locks).st_mode & 0o777) == oct(0o700)
    assert oct(os.stat(tmp_path / "state").st_mode & 0o777) == oct(0o700)


def test_the_lock_does_not_depend_on_tmpdir(tmp_path, monkeypatch):
    monkeypatch.delenv("QC_LOCK_DIR", raising=False)
    monkeypatch.delenv("QC_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "a"))
    first = lock_path("/etc/QualysGuard.yaml")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "b"))
    assert lock_path("/etc/QualysGuard.yaml") == first
    assert first.startswith(str(tmp_path / "xdg" / "qualys-connector" / "locks"))


def test_perl_short_forms_keep_their_meaning_next_to_the_new_options():
    assert normalize(["-st", "-i"], COMMON_OPTIONS) == ["--stderr", "--ipv6"]
    assert normalize(["-sta=/var/lib/qc", "-in", "-f=ca.pem"], COMMON_OPTIONS) == [
        "--statedir=/var/lib/qc", "--insecure", "--fmcca=ca.pem"]
    assert normalize(["-statedir", "/x", "-fmcca=c.pem", "-insecure"], MULTI_OPTIONS) == [
        "--statedir=/x", "--fmcca=c.pem", "--insecure"]


# ---------------------------------------------------------------- trust
def test_a_directory_others_can_write_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConfigError) as info:
        statedir.state_dir(str(shared))
    assert f"{shared} is writable by group or others" in str(info.value) and f"chmod 700 {shared}" in str(info.value)


@needs_root
def test_a_directory_of_another_user_is_refused(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 12345, 12345)
    with pytest.raises(ConfigError) as info:
        statedir.state_dir(str(theirs))
    assert "belongs to uid 12345" in str(info.value)


def test_a_symlinked_lock_file_is_not_followed(tmp_path, monkeypatch):
    monkeypatch.setenv("QC_LOCK_DIR", str(tmp_path / "locks"))
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.symlink(victim, lock_path("/etc/QualysGuard.yaml"))
    with pytest.raises(ConfigError) as info:
        RunLock("/etc/QualysGuard.yaml").__enter__()
    assert "is a symbolic link" in str(info.value)
    assert victim.read_text() == "precious\n"


def test_a_held_lock_is_75_and_a_bad_directory_is_1(tmp_path, monkeypatch):
    monkeypatch.setenv("QC_LOCK_DIR", str(tmp_path / "locks"))
    with RunLock("k"):
        with pytest.raises(LockHeld):
            RunLock("k").__enter__()
    monkeypatch.setenv("QC_LOCK_DIR", "/proc/1")
    with pytest.raises(ConfigError):
        RunLock("k").__enter__()


# ---------------------------------------------------------------- end to end (real processes, real flock)
@pytest.mark.parametrize("case", ["mode-0777", "other-owner", "proc", "statedir-proc", "symlinked-lock"])
def test_an_untrustworthy_or_unusable_lock_place_is_exit_1_with_one_line(tmp_path, case):
    if case == "other-owner" and os.geteuid() != 0:
        pytest.skip("chown to another uid needs root")
    source = csv_job(tmp_path)
    env = clean_env(tmp_path)
    args = [f"-pl={source}", f"-c={tmp_path / 'out.csv'}"]
    locks = tmp_path / "locks"
    if case == "mode-0777":
        locks.mkdir()
        locks.chmod(0o777)
        env["QC_LOCK_DIR"] = str(locks)
    elif case == "other-owner":
        locks.mkdir(mode=0o700)
        os.chown(locks, 12345, 12345)
        env["QC_LOCK_DIR"] = str(locks)
    elif case == "proc":
        env["QC_LOCK_DIR"] = "/proc/1"
    elif case == "statedir-proc":
        args.append("-statedir=/proc/1")
    else:
        locks.mkdir(mode=0o700)
        env["QC_LOCK_DIR"] = str(locks)
        digest_path = subprocess.run([sys.executable, "-c", f"from qualys_connector.locking import lock_path; "
                                      f"print(lock_path({source!r}))"], env=env, capture_output=True,
                                     text=True).stdout.strip()
        os.symlink(tmp_path / "elsewhere", digest_path)
    result = run_cli(*args, "csv", env=env)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert "another run is already working" not in result.stderr
    expected = {"mode-0777": "writable by group or others", "other-owner": "belongs to uid 12345",
                "proc": "/proc/1", "statedir-proc": "/proc/1",
                "symlinked-lock": "is a symbolic link"}[case]
    assert expected in errors[0]
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "elsewhere").exists()


def test_censys_qualys_with_an_unusable_state_dir_is_a_configuration_error(tmp_path):
    settings = tmp_path / "settings.yaml"
    settings.write_text("authentication:\n  asm_api_key: k\nqualys:\n  qualys_api_url: http://127.0.0.1:9\n"
                        "  qualys_username: u\n  qualys_password: p\n")
    settings.chmod(0o600)
    result = subprocess.run([sys.executable, "-m", "qualys_connector.censys.cli", "once", "--settings",
                             str(settings), "--state-dir", "/proc/1"], capture_output=True, text=True,
                            env=clean_env(tmp_path), timeout=60)
    assert result.returncode == 1, result.stderr
    assert "/proc/1" in result.stderr and "another run" not in result.stderr


def test_two_runs_with_different_tmpdirs_exclude_each_other(tmp_path):
    source = csv_job(tmp_path)
    a, b = tmp_path / "tmp-a", tmp_path / "tmp-b"
    a.mkdir()
    b.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from qualys_connector.locking import RunLock\n"
        f"l = RunLock({source!r}).__enter__(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, env=clean_env(tmp_path, TMPDIR=str(a)))
    try:
        assert holder.stdout.readline().strip() == b"held"
        result = run_cli(f"-pl={source}", f"-c={tmp_path / 'out.csv'}", "csv", env=clean_env(tmp_path, TMPDIR=str(b)))
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 75, result.stderr
    assert "another run is already working on" in result.stderr
    assert os.listdir(a) == [] and os.listdir(b) == []
    assert os.listdir(tmp_path / "home" / ".local" / "state" / "qualys-connector" / "locks")


def test_an_interrupted_run_leaves_nothing_in_tmpdir(tmp_path, pki):
    from qualys_connector.emulators.fmc.server import FMCEmulator
    from test_hostinput_e2e import sample_lines, write_csv

    source = write_csv(tmp_path / "in.csv", sample_lines(20000))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = clean_env(tmp_path, TMPDIR=str(scratch), QC_PKCS12_PASSWORD=CLIENT_PASSWORD)
    with FMCEmulator(pki=pki, max_size=300, accept_unknown_hosts=True) as fmc:
        proc = subprocess.Popen([sys.executable, "-m", "qualys_connector", "-se=127.0.0.1", f"-po={fmc.port}",
                                 f"-pk={pki.client_pkcs12}", f"-pl={source}", "csv"],
                                env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while fmc.stats.data_messages < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fmc.stats.data_messages >= 5, "sending never started"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "stopped by SIGTERM" in err
    assert os.listdir(scratch) == []


def test_statedir_option_holds_the_lock_for_both_commands(tmp_path):
    source = csv_job(tmp_path)
    state = tmp_path / "state"
    result = run_cli(f"-sta={state}", f"-pl={source}", f"-c={tmp_path / 'out.csv'}", "csv", env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert oct(os.stat(state).st_mode & 0o777) == oct(0o700) and len(os.listdir(state / "locks")) == 1
    assert not (tmp_path / "home").exists()         # nothing in the default place
    config = tmp_path / "QualysGuard.yaml"
    config.write_text("report_file: nothing-needed.xml\n")
    (tmp_path / "nothing-needed.xml").write_text("")     # report_file must exist; it is never read
    config.chmod(0o600)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from qualys_connector.locking import RunLock\n"
        f"l = RunLock({str(config)!r}, state_dir={str(state)!r}).__enter__(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, env=clean_env(tmp_path))
    try:
        assert holder.stdout.readline().strip() == b"held"
        result = run_cli("-m=1,2", f"-statedir={state}", f"-pl={config}", f"-c={tmp_path / 'o.csv'}",
                         program="process-multiple", env=clean_env(tmp_path))
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 75, result.stderr
