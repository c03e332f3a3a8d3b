"""The report download ends within its limits: ``timeout`` is the read timeout, ``max_wait`` the
whole run's, and a redirect is never followed (the credentials would go with it)."""
from __future__ import annotations

import time

import pytest

from conftest import run_cli
from hostile_qualys import HostileQualys
from qualys_connector.emulators.qualys.server import QualysEmulator, TemplateSpec
from qualys_connector.errors import QualysError
from qualys_connector.qualys.api import QualysClient

PASSWORD = "hostile-pw"


@pytest.fixture
def qualys():
    with QualysEmulator(users={"u": PASSWORD}, templates={"7": TemplateSpec(hosts=5, vulns_per_host=2)}) as emulator:
        yield emulator


def config(tmp_path, url, **extra):
    keys = {"user_id": "u", "template_id": "7", "url": url, "poll_interval": 0.05, "timeout": 2, "max_wait": 4}
    keys.update(extra)
    path = tmp_path / "QualysGuard.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in keys.items()))
    path.chmod(0o600)
    return str(path)


def run(tmp_path, url, **extra):
    started = time.monotonic()
    result = run_cli(f"-plugininfo={config(tmp_path, url, **extra)}", f"-csvfile={tmp_path / 'out.csv'}",
                     env={"QC_QUALYS_PASSWORD": PASSWORD}, timeout=180)
    return result, time.monotonic() - started


def error_lines(result):
    return [line for line in result.stderr.splitlines() if "ERROR" in line or "error" in line.lower()]


def test_a_trickling_download_ends_at_max_wait_with_one_line_and_exit_2(tmp_path, qualys, lock_dir):
    with HostileQualys(qualys.url, "trickle") as hostile:
        result, took = run(tmp_path, hostile.url)
    assert hostile.fetches == 1
    assert result.returncode == 2, result.stderr
    assert "did not finish within max_wait (4 s)" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert not (tmp_path / "out.csv").exists()
    assert took < 60          # generous: without the deadline it would read for ~1000 s
    assert qualys.state.deleted_reports, "the launched report is still deleted"


def test_a_stalled_download_fails_after_the_read_timeout_it_names(tmp_path, qualys, lock_dir):
    with HostileQualys(qualys.url, "stall") as hostile:
        result, took = run(tmp_path, hostile.url, max_wait=600)
    assert result.returncode == 2, result.stderr
    assert "did not answer downloading report" in result.stderr and "within 2 s" in result.stderr
    assert "Traceback" not in result.stderr
    assert took < 60          # the old max(timeout, 300) read for 300 s


def test_a_redirect_of_the_fetch_is_a_qualys_error_naming_it(tmp_path, qualys, lock_dir):
    with HostileQualys(qualys.url, "redirect") as hostile:
        result, _ = run(tmp_path, hostile.url)
    assert result.returncode == 2, result.stderr
    assert "redirect (HTTP 302 to https://elsewhere.example/" in result.stderr
    assert "not followed" in result.stderr and "Traceback" not in result.stderr


def test_the_client_raises_a_qualys_error_for_a_redirect(qualys, tmp_path):
    with HostileQualys(qualys.url, "redirect") as hostile, \
            QualysClient(hostile.url, "u", PASSWORD, poll_interval=0.01, max_wait=30) as client:
        with pytest.raises(QualysError) as caught:
            client.download_report("7", str(tmp_path / "r.xml"))
    assert caught.value.status == 302 and "elsewhere.example" in caught.value.message
