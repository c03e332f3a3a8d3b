"""SIGTERM during a run: stop cleanly, remove temp files, say how far it got, exit non-zero."""
import os
import signal
import subprocess
import sys

from conftest import CLIENT_PASSWORD, wait_for
from qualys_connector.emulators.fmc.server import FMCEmulator
from qualys_connector.emulators.qualys.server import QualysEmulator, TemplateSpec

PASSWORD = "sig-pw"


def start(tmp_path, url, fmc_port, pkcs12, *more):
    config = tmp_path / "QualysGuard.yaml"
    config.write_text(f"user_id: u\ntemplate_id: 1\nurl: {url}\nadd_host: y\npoll_interval: 0.05\n")
    config.chmod(0o600)
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    env = dict(os.environ, QC_PKCS12_PASSWORD=CLIENT_PASSWORD, QC_QUALYS_PASSWORD=PASSWORD, TMPDIR=str(scratch),
               QC_LOCK_DIR=str(tmp_path / "locks"))
    proc = subprocess.Popen([sys.executable, "-m", "qualys_connector", "-se=127.0.0.1", f"-po={fmc_port}",
                             f"-pk={pkcs12}", f"-pl={config}", *more], env=env, stderr=subprocess.PIPE, text=True)
    return proc, scratch


def test_sigterm_while_sending(tmp_path, pki):
    templates = {"1": TemplateSpec(hosts=3000, vulns_per_host=6)}
    with QualysEmulator(users={"u": PASSWORD}, templates=templates) as q, FMCEmulator(pki=pki, max_size=300) as fmc:
        proc, scratch = start(tmp_path, q.url, fmc.port, pki.client_pkcs12)
        assert wait_for(lambda: fmc.stats.data_messages >= 20), "sending never started"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "stopped by SIGTERM" in err
    summary = err.strip().splitlines()[-1]
    acked, total = summary.split("data_messages=")[1].split()[0].split("/")
    assert 20 <= int(acked) < int(total) and "result=interrupted" in summary
    assert os.listdir(scratch) == []          # spool, report and host spool all removed


def test_sigterm_while_sending_leaves_the_previous_delivery_record_as_it_was(tmp_path, pki):
    """An interrupted run must not become the record the next run clears against (README "Keeping
    the FMC current"): the record of the last complete delivery stays byte for byte."""
    state = tmp_path / "state"
    templates = {"1": TemplateSpec(hosts=30, vulns_per_host=6)}
    with QualysEmulator(users={"u": PASSWORD}, templates=templates) as q, FMCEmulator(pki=pki, max_size=300) as fmc:
        proc, _ = start(tmp_path, q.url, fmc.port, pki.client_pkcs12, f"-statedir={state}")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        (record,) = state.glob("delivered-*.sqlite")
        before = record.read_bytes()
        q.templates["1"] = TemplateSpec(hosts=3000, vulns_per_host=6, seed=2)
        sent = fmc.stats.data_messages
        proc, scratch = start(tmp_path, q.url, fmc.port, pki.client_pkcs12, f"-statedir={state}")
        assert wait_for(lambda: fmc.stats.data_messages >= sent + 20), "sending never started"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "result=interrupted" in err.strip().splitlines()[-1]
    assert sorted(p.name for p in state.iterdir() if "delivered" in p.name) == [record.name]   # no scratch left
    assert record.read_bytes() == before


def test_sigterm_while_qualys_builds_the_report_deletes_it(tmp_path, pki):
    templates = {"1": TemplateSpec(hosts=10, delay=60)}
    with QualysEmulator(users={"u": PASSWORD}, templates=templates) as q, FMCEmulator(pki=pki) as fmc:
        proc, scratch = start(tmp_path, q.url, fmc.port, pki.client_pkcs12)
        assert wait_for(lambda: any(a == "list" for _, a, _ in q.state.request_log))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert q.state.deleted_reports, "the launched report is deleted from Qualys"
        actions = [a for _, a, _ in q.state.request_log]
        assert actions[-2:] == ["cancel", "delete"], "canceled first, so it frees its report slot"
    assert proc.returncode == 2 and "stopped by SIGTERM" in err
    assert os.listdir(scratch) == []


def test_sigterm_stops_parallel_templates_between_data_messages(tmp_path, pki):
    specs = {str(t): TemplateSpec(hosts=2500, vulns_per_host=6, seed=t, network=f"10.{t}.0.0/16") for t in (11, 22)}
    config = tmp_path / "QualysGuard.yaml"
    with QualysEmulator(users={"u": PASSWORD}, templates=specs) as q, FMCEmulator(pki=pki, max_size=300) as fmc:
        config.write_text(f"user_id: u\ntemplate_id: 1\nurl: {q.url}\nadd_host: y\npoll_interval: 0.05\n")
        config.chmod(0o600)
        env = dict(os.environ, QC_PKCS12_PASSWORD=CLIENT_PASSWORD, QC_QUALYS_PASSWORD=PASSWORD,
                   QC_LOCK_DIR=str(tmp_path / "locks"))
        proc = subprocess.Popen([sys.executable, "-m", "qualys_connector.multi_main", "-m=11,22", "-jobs=2",
                                 "-se=127.0.0.1", f"-po={fmc.port}", f"-pk={pki.client_pkcs12}", f"-pl={config}"],
                                env=env, stderr=subprocess.PIPE, text=True)
        assert wait_for(lambda: fmc.stats.data_messages >= 20), "sending never started"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        sent = fmc.stats.data_messages
    assert proc.returncode == 2, err
    assert "stopped on request" in err and "Traceback" not in err
    assert "result=interrupted" in err
    total = sum(int(l.split("data_messages=")[1].split("/")[1].split()[0]) for l in err.splitlines()
                if "Summary: template" in l and "data_messages=" in l)
    assert sent < total, "it stopped before everything was sent"


def test_a_password_given_on_the_command_line_is_masked_in_the_process_list(tmp_path, pki):
    templates = {"1": TemplateSpec(hosts=5, delay=60)}
    config = tmp_path / "QualysGuard.yaml"
    with QualysEmulator(users={"u": PASSWORD}, templates=templates) as q, FMCEmulator(pki=pki) as fmc:
        config.write_text(f"user_id: u\ntemplate_id: 1\nurl: {q.url}\npoll_interval: 0.05\n")
        config.chmod(0o600)
        env = dict(os.environ, QC_QUALYS_PASSWORD=PASSWORD, QC_LOCK_DIR=str(tmp_path / "locks"))
        env.pop("QC_PKCS12_PASSWORD", None)
        proc = subprocess.Popen([sys.executable, "-m", "qualys_connector", "-se=127.0.0.1", f"-po={fmc.port}",
                                 f"-pk={pki.client_pkcs12}", f"-pa={CLIENT_PASSWORD}", f"-pl={config}"],
                                env=env, stderr=subprocess.PIPE, text=True)
        try:
            assert wait_for(lambda: any(a == "list" for _, a, _ in q.state.request_log)), "never got to Qualys"
            with open(f"/proc/{proc.pid}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode()
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
    assert CLIENT_PASSWORD not in cmdline and "-pa=******" in cmdline, cmdline
    assert CLIENT_PASSWORD not in err and "visible to other users" in err

