"""Logs: secrets masked without garbling text, failing sinks dropped once, private file modes."""
from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from conftest import run_cli
from qualys_connector import logsetup
from qualys_connector.statedir import create_private


@pytest.fixture
def fresh_secrets(monkeypatch):
    monkeypatch.setattr(logsetup, "_secrets", set())
    monkeypatch.setattr(logsetup, "_short_secret_warned", False)


def csv_job(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("SetSource,T\nAddHost,192.0.2.1\n")
    return str(source)


# ---------------------------------------------------------------- secrets
@pytest.mark.parametrize("url,shown", [
    ("http://zaphod:t0w3L@192.168.1.100:443", "http://zaphod:******@192.168.1.100:443"),
    ("https://token@proxy.example/x", "https://******@proxy.example/x"),
    ("https://qualysapi.qualys.com/api/2.0/?a=b@c", "https://qualysapi.qualys.com/api/2.0/?a=b@c"),
    ("https://qualysapi.qualys.com", "https://qualysapi.qualys.com"),
])
def test_mask_url_hides_the_userinfo_password_only(url, shown):
    assert logsetup.mask_url(url) == shown


def test_the_last_resort_filter_masks_url_userinfo_in_any_message(fresh_secrets):
    assert logsetup.redact("proxy http://u:pa55@10.0.0.1:3128 refused") == "proxy http://u:******@10.0.0.1:3128 refused"


@pytest.mark.parametrize("secret", ["x", "e", "the", "host", "report"])
def test_short_secrets_never_garble_ordinary_text(fresh_secrets, secret):
    logsetup.add_secret(secret)
    text = "the report for host 10.0.0.1 does not exist; x=1, e.g. the end"
    assert logsetup.redact(text) == text


def test_long_secrets_are_masked_wherever_they_appear(fresh_secrets):
    logsetup.add_secret("s3cret-pkcs12-pw")
    assert logsetup.redact("pw=s3cret-pkcs12-pw;x") == "pw=******;x"


def _run_with_pkcs12_password(tmp_path, pki, fmc, password):
    from qualys_connector.emulators.pki import write_client_pkcs12
    p12 = write_client_pkcs12(str(tmp_path / "short.pkcs12"), pki, password=password)
    return run_cli("-se=127.0.0.1", f"-po={fmc.port}", f"-pk={p12}", f"-pl={csv_job(tmp_path)}", "-le=3", "csv",
                   env={"QC_PKCS12_PASSWORD": password})


@pytest.mark.parametrize("password", ["x", "the"])
def test_a_one_letter_or_common_word_password_leaves_the_log_readable(tmp_path, pki, fmc, lock_dir, password):
    result = _run_with_pkcs12_password(tmp_path, pki, fmc, password)
    assert result.returncode == 0, result.stderr
    assert "******" not in result.stderr
    assert "shorter than 8 characters" in result.stderr
    assert "connected to the FMC at 127.0.0.1" in result.stderr and "result=delivered" in result.stderr
    assert fmc.netmap.has_host("192.0.2.1")


def test_a_qualys_url_with_credentials_is_masked_in_errors(tmp_path, lock_dir):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]           # nothing listens there once closed
    config = tmp_path / "QualysGuard.yaml"
    config.write_text(f"user_id: u\ntemplate_id: 1\nurl: http://u:hunter2hunter2@127.0.0.1:{port}\n")
    config.chmod(0o600)
    result = run_cli(f"-pl={config}", f"-c={tmp_path / 'o.csv'}", env={"QC_QUALYS_PASSWORD": "qualys-pw-long"})
    assert result.returncode == 2, result.stderr
    assert "hunter2" not in result.stderr
    assert f"http://u:******@127.0.0.1:{port}" in result.stderr


# ---------------------------------------------------------------- failing sinks
def test_a_failing_sink_is_reported_once_and_the_others_get_everything(tmp_path, capfd):
    broken = io.StringIO()
    broken.close()                                      # writing raises ValueError
    log = logsetup.configure(2, logfile=str(tmp_path / "good.log"))
    bad = logsetup._StreamSink(broken)
    bad.addFilter(logsetup._RedactingFilter())
    log.addHandler(bad)
    try:
        for i in range(5):
            log.info("record %d", i)
        logsetup.log_summary(log, "Summary: done")
    finally:
        logsetup.configure(2, stderr=True)
    err = capfd.readouterr().err
    assert err.count("dropped") == 1 and "Traceback" not in err
    lines = (tmp_path / "good.log").read_text().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [f"record {i}" for i in range(5)] + ["Summary: done"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_log_file_is_one_line_and_the_run_still_reports(tmp_path, lock_dir):
    result = run_cli(f"-pl={csv_job(tmp_path)}", f"-c={tmp_path / 'o.csv'}", "-logfile=/dev/full", "-stderr", "csv")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    failures = [line for line in result.stderr.splitlines() if "/dev/full" in line]
    assert len(failures) == 1 and "No space left on device" in failures[0] and "dropped" in failures[0]
    assert "wrote 2 commands" in result.stderr
    assert result.stderr.splitlines()[-1].split("] ", 1)[1].startswith("Summary:")
    assert (tmp_path / "o.csv").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_when_the_only_sink_fails_stderr_takes_over(tmp_path, lock_dir):
    result = run_cli(f"-pl={csv_job(tmp_path)}", f"-c={tmp_path / 'o.csv'}", "-logfile=/dev/full", "csv")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert "log file /dev/full failed" in lines[0] and "result=written" in lines[-1]


def test_a_closed_stderr_does_not_stop_the_run_or_the_log_file(tmp_path, lock_dir):
    log = tmp_path / "run.log"
    result = subprocess.run([sys.executable, "-m", "qualys_connector", f"-pl={csv_job(tmp_path)}",
                             f"-c={tmp_path / 'o.csv'}", f"-logfile={log}", "-stderr", "csv"],
                            preexec_fn=lambda: os.close(2), capture_output=False, stdout=subprocess.DEVNULL,
                            env=dict(os.environ), timeout=60)
    assert result.returncode == 0
    lines = log.read_text().splitlines()
    assert any("wrote 2 commands" in line for line in lines) and "result=written" in lines[-1]


# ---------------------------------------------------------------- file modes
def test_a_new_log_file_is_0600_under_umask_022(tmp_path, lock_dir):
    old = os.umask(0o022)
    try:
        result = run_cli(f"-pl={csv_job(tmp_path)}", f"-c={tmp_path / 'o.csv'}", f"-logfile={tmp_path / 'run.log'}",
                         "csv")
    finally:
        os.umask(old)
    assert result.returncode == 0
    assert oct(os.stat(tmp_path / "run.log").st_mode & 0o777) == oct(0o600)
    assert oct(os.stat(tmp_path / "o.csv").st_mode & 0o777) == oct(0o600)


def test_create_private_is_0600_even_over_a_wider_file(tmp_path):
    old = os.umask(0o022)
    try:
        with create_private(tmp_path / "new.xml") as fh:
            fh.write(b"<x/>")
        wide = tmp_path / "wide.xml"
        wide.write_text("old")
        wide.chmod(0o644)
        with create_private(wide) as fh:
            fh.write(b"<y/>")
    finally:
        os.umask(old)
    assert oct(os.stat(tmp_path / "new.xml").st_mode & 0o777) == oct(0o600)
    assert oct(os.stat(wide).st_mode & 0o777) == oct(0o600) and wide.read_bytes() == b"<y/>"


def test_a_kept_report_is_0600_under_umask_022(tmp_path, pki, lock_dir):
    from qualys_connector.emulators.fmc.server import FMCEmulator
    from qualys_connector.emulators.qualys.server import QualysEmulator, TemplateSpec
    from test_qualysguard_e2e import QUALYS_PASSWORD, env, write_config

    with QualysEmulator(users={"api_user": QUALYS_PASSWORD}, templates={"424242": TemplateSpec(hosts=5)}) as q, \
            FMCEmulator(pki=pki, accept_unknown_hosts=True) as fmc:
        config = write_config(tmp_path, q.url, keep_report=str(tmp_path / "kept.xml"))
        old = os.umask(0o022)
        try:
            result = run_cli("-se=127.0.0.1", f"-po={fmc.port}", f"-pk={pki.client_pkcs12}", f"-pl={config}", env=env())
        finally:
            os.umask(old)
        assert result.returncode == 0, result.stderr
        assert fmc.stats.data_messages >= 1
    assert oct(os.stat(tmp_path / "kept.xml").st_mode & 0o777) == oct(0o600)
    assert b"ASSET_DATA_REPORT" in (tmp_path / "kept.xml").read_bytes()
