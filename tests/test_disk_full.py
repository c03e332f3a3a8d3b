"""A full disk is the machine's state, not a bug: one line naming what and where, exit 1, nothing
half-written left behind (the -csvfile spool, the report's host spool, the download, keep_report)."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys

import pytest

from conftest import run_cli
from qualys_connector.emulators.qualys.reportgen import generate_report
from qualys_connector.emulators.qualys.server import QualysEmulator, TemplateSpec

PASSWORD = "full-disk-pw"


@pytest.fixture
def small_fs(tmp_path):
    """A 64 KiB tmpfs (needs root and mount rights; skipped otherwise)."""
    path = tmp_path / "small"
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(path)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (not root?); the RLIMIT_FSIZE test covers the CSV spool")
    yield path
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture(scope="module")
def big_report(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.xml"
    with open(path, "wb") as out:
        generate_report(out, hosts=4000, vulns_per_host=6)
    return str(path)


@pytest.fixture(scope="module")
def small_report(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.xml"
    with open(path, "wb") as out:
        generate_report(out, hosts=400, vulns_per_host=6)     # its host spool stays under 100 kB
    return str(path)


def write_config(tmp_path, **keys):
    path = tmp_path / "QualysGuard.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in keys.items()))
    path.chmod(0o600)
    return str(path)


def assert_one_clear_line(result, *needles):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "[ERROR]" in line or line.startswith("qualys-connector:")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_csvfile_on_a_full_disk(tmp_path, small_fs, big_report, lock_dir):
    config = write_config(tmp_path, report_file=big_report)
    result = run_cli(f"-plugininfo={config}", f"-csvfile={small_fs / 'out.csv'}")
    assert_one_clear_line(result, "cannot write the spool of host input lines in", str(small_fs), "No space left")
    assert os.listdir(small_fs) == []


def test_the_report_spool_on_a_full_tmpdir(tmp_path, small_fs, big_report, lock_dir):
    config = write_config(tmp_path, report_file=big_report)
    result = run_cli(f"-plugininfo={config}", f"-csvfile={tmp_path / 'out.csv'}", env={"TMPDIR": str(small_fs)})
    assert_one_clear_line(result, "cannot write the spool of the report's hosts in", str(small_fs))
    assert os.listdir(small_fs) == [] and not (tmp_path / "out.csv").exists()


def test_the_download_on_a_full_tmpdir(tmp_path, small_fs, lock_dir):
    templates = {"5": TemplateSpec(hosts=400, vulns_per_host=6)}
    with QualysEmulator(users={"u": PASSWORD}, templates=templates) as qualys:
        config = write_config(tmp_path, user_id="u", template_id=5, url=qualys.url, poll_interval=0.05)
        result = run_cli(f"-plugininfo={config}", f"-csvfile={tmp_path / 'out.csv'}",
                         env={"TMPDIR": str(small_fs), "QC_QUALYS_PASSWORD": PASSWORD,
                              "QC_STATE_DIR": str(tmp_path / "state")})
        assert qualys.state.deleted_reports, "the launched report is deleted all the same"
    assert_one_clear_line(result, "cannot write the downloaded report in", str(small_fs))
    assert os.listdir(small_fs) == []


def test_keep_report_on_a_full_disk_leaves_no_truncated_copy(tmp_path, small_fs, lock_dir):
    templates = {"5": TemplateSpec(hosts=400, vulns_per_host=6)}
    kept = small_fs / "kept.xml"
    with QualysEmulator(users={"u": PASSWORD}, templates=templates) as qualys:
        config = write_config(tmp_path, user_id="u", template_id=5, url=qualys.url, poll_interval=0.05,
                              keep_report=str(kept))
        result = run_cli(f"-plugininfo={config}", f"-csvfile={tmp_path / 'out.csv'}",
                         env={"QC_QUALYS_PASSWORD": PASSWORD, "QC_STATE_DIR": str(tmp_path / "state")})
    assert_one_clear_line(result, "cannot write the copy of the report (keep_report) in", str(small_fs))
    assert os.listdir(small_fs) == [] and not (tmp_path / "out.csv").exists()


def test_a_file_size_limit_is_a_full_disk_too(tmp_path, small_report, lock_dir):
    """Without root: ``ulimit -f`` (RLIMIT_FSIZE, SIGXFSZ ignored) makes writes fail with EFBIG."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    config = write_config(tmp_path, report_file=small_report)
    result = subprocess.run([sys.executable, "-m", "qualys_connector", f"-plugininfo={config}",
                             f"-csvfile={tmp_path / 'out.csv'}"], capture_output=True, text=True,
                            preexec_fn=limit, timeout=120, env=dict(os.environ))
    assert_one_clear_line(result, "cannot write the spool of host input lines in", "file-size limit")
    assert sorted(os.listdir(tmp_path)) == ["QualysGuard.yaml", "locks"]
