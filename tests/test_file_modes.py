"""Files that hold vulnerability data are 0600 whatever the umask (README "Secrets"): the downloaded
report, every spool and temporary file of a run, the -csvfile output and keep_report. The metrics
and summary JSON files stay 0644 on purpose (counts and exit codes only; a collector reads them)."""
import os
import stat

import pytest

from input_plugins import qualysguard
from qualys_connector.emulators.qualys.server import QualysEmulator, TemplateSpec
from qualys_connector.pipeline import Options, run
from qualys_connector.qualys.api import QualysClient

PASSWORD = "modes-pw"


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path, **kw):
    return stat.S_IMODE(os.stat(path, **kw).st_mode)


def test_the_downloaded_report_is_0600(tmp_path, umask_022):
    with QualysEmulator(users={"u": PASSWORD}, templates={"7": TemplateSpec(hosts=2, seed=7)}) as q:
        with QualysClient(q.url, "u", PASSWORD, poll_interval=0.05) as client:
            client.download_report("7", str(tmp_path / "report.xml"))
    assert mode(tmp_path / "report.xml") == 0o600


def test_every_file_a_run_writes_and_removes_is_0600(tmp_path, umask_022, monkeypatch, lock_dir):
    """Each file is looked at just before it is removed: the report, the host spool, the line spool."""
    seen: dict[str, int] = {}
    real_unlink = os.unlink

    def unlink(path, *, dir_fd=None):
        info = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISREG(info.st_mode):
            seen[os.fspath(path)] = stat.S_IMODE(info.st_mode)
        return real_unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", unlink)
    config = tmp_path / "QualysGuard.yaml"
    with QualysEmulator(users={"u": PASSWORD}, templates={"1": TemplateSpec(hosts=5, vulns_per_host=2, seed=3)}) as q:
        config.write_text(f"user_id: u\npassword: {PASSWORD}\ntemplate_id: 1\nurl: {q.url}\npoll_interval: 0.05\n"
                          f"keep_report: kept.xml\nvuln_types: Vuln, Practice, Ig\n")   # every host has findings to send
        config.chmod(0o600)
        summary = run(Options(plugin=qualysguard, plugininfo=str(config), csvfile=str(tmp_path / "out.csv")))
    assert summary.outcome == "written" and summary.hosts == 5
    assert "report.xml" in seen and any(os.path.basename(name).startswith("qc-report-hosts-") for name in seen), seen
    assert set(seen.values()) == {0o600}, seen
    assert mode(tmp_path / "out.csv") == 0o600
    assert mode(tmp_path / "kept.xml") == 0o600
