"""Run metrics for monitoring: a Prometheus text file and a JSON copy after every run, whatever its result."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from conftest import CLIENT_PASSWORD, wait_for
from qualys_connector import metrics
from qualys_connector.emulators.fmc.server import FMCEmulator
from qualys_connector.emulators.qualys.server import QualysEmulator, TemplateSpec
from qualys_connector.errors import UsageError
from qualys_connector.locking import RunLock

parser = pytest.importorskip("prometheus_client.parser")
QPW = "metrics-qualys-pw"


def parse(path) -> dict[str, dict[tuple, float]]:
    """{metric name: {sorted label items: value}}, read by prometheus_client's own parser."""
    out: dict[str, dict[tuple, float]] = {}
    with open(path) as fh:
        text = fh.read()
    for family in parser.text_string_to_metric_families(text):
        assert family.type == "gauge" and family.documentation, family.name
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def result_of(series, prefix="qualys_connector", **labels) -> str:
    ones = [dict(k)["result"] for k, v in series[f"{prefix}_last_run_result"].items()
            if v == 1 and all(dict(k).get(n) == v2 for n, v2 in labels.items())]
    assert len(ones) == 1, series[f"{prefix}_last_run_result"]
    return ones[0]


# ---------------------------------------------------------------- the format, pure
def test_every_series_is_a_documented_gauge_of_the_last_run_in_base_units(tmp_path):
    run = metrics.Run("delivered", 0, 12.5, {"hosts": 3, "findings": 7, "commands": 11, "data_messages_sent": 2,
                                            "data_messages_acknowledged": 2, "fmc_error_replies": 0,
                                            "hosts_cleared": 0}, finished=1700000000.0)
    path = tmp_path / "qc.prom"
    path.write_text(metrics.render("qualys-connector", [run]))
    series = parse(path)
    assert not [name for name in series if name.endswith("_total") or not name.startswith("qualys_connector_")]
    assert series["qualys_connector_last_run_timestamp_seconds"] == {(): 1700000000.0}
    assert series["qualys_connector_last_success_timestamp_seconds"] == {(): 1700000000.0}
    assert series["qualys_connector_last_run_duration_seconds"] == {(): 12.5}
    assert series["qualys_connector_last_run_hosts_cleared"] == {(): 0}
    assert series["qualys_connector_last_run_data_messages_acknowledged"] == {(): 2}
    assert result_of(series) == "delivered"
    assert {dict(k)["result"] for k in series["qualys_connector_last_run_result"]} == set(metrics.RESULTS)


def test_a_failed_run_keeps_the_last_success_of_the_previous_file_per_template(tmp_path):
    path = tmp_path / "pm.prom"
    reporter = metrics.Reporter("process-multiple", str(path))
    first = [metrics.Run("delivered", 0, 1, {}, {"template": t}, finished=1000.0) for t in ("11", "22")]
    reporter.write(first, log=None)
    reporter.write([metrics.Run("failed", 2, 1, {}, {"template": "11"}, finished=2000.0),
                    metrics.Run("written", 0, 1, {}, {"template": "22"}, finished=2000.0),
                    metrics.Run("locked", 75, 0, {}, {"template": "33"}, finished=2000.0)], log=None)
    success = parse(path)["qualys_connector_last_success_timestamp_seconds"]
    assert success == {(("template", "11"),): 1000.0, (("template", "22"),): 2000.0, (("template", "33"),): 0}
    assert parse(path)["qualys_connector_last_run_timestamp_seconds"][(("template", "11"),)] == 2000.0


def test_label_values_are_escaped_and_read_back():
    odd = 'a "quoted" \\ back\nslash'
    text = metrics.render("qualys-connector", [metrics.Run("delivered", 0, 1, {}, {"template": odd}, finished=5.0)])
    samples = [s for f in parser.text_string_to_metric_families(text) for s in f.samples]
    assert {s.labels["template"] for s in samples} == {odd}


def test_the_files_are_replaced_atomically_world_readable_and_nothing_is_left_behind(tmp_path):
    path = tmp_path / "qc.prom"
    path.write_text("old\n")
    metrics.write_atomically(str(path), "new\n")
    assert path.read_text() == "new\n" and stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert os.listdir(tmp_path) == ["qc.prom"]


def test_a_path_that_can_never_be_written_is_refused_before_the_run(tmp_path):
    with pytest.raises(UsageError, match="-metrics .* directory does not exist"):
        metrics.Reporter("qualys-connector", str(tmp_path / "no" / "qc.prom")).check()
    with pytest.raises(UsageError, match="-summaryjson .* is a directory"):
        metrics.Reporter("qualys-connector", None, str(tmp_path)).check()


def test_a_path_that_is_not_a_regular_file_is_never_replaced(tmp_path):
    """README "Security": /dev/null or a FIFO is refused, a link's target is replaced, the link kept."""
    os.mkfifo(tmp_path / "fifo")
    for path in ("/dev/null", str(tmp_path / "fifo")):
        with pytest.raises(UsageError, match="is not a regular file"):
            metrics.Reporter("qualys-connector", path).check()
        with pytest.raises(OSError):
            metrics.write_atomically(path, "x\n")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode) and stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)
    (tmp_path / "real.prom").write_text("old\n")
    os.symlink(tmp_path / "real.prom", tmp_path / "link.prom")
    metrics.write_atomically(str(tmp_path / "link.prom"), "new\n")
    assert os.path.islink(tmp_path / "link.prom") and (tmp_path / "real.prom").read_text() == "new\n"


def test_the_json_copy_holds_the_same_summary(tmp_path):
    path = tmp_path / "s.json"
    metrics.Reporter("censys-qualys", None, str(path)).write(
        [metrics.Run("ok", 0, 2.0, {"events": 4, "added": 3, "excluded": 1, "position": 9}, finished=50.0)], None)
    run, = json.loads(path.read_text())["runs"]
    assert run == {"labels": {}, "result": "delivered", "exit_code": 0, "duration_seconds": 2.0, "finished": 50.0,
                   "last_success": 50.0, "events": 4, "added": 3, "excluded": 1, "position": 9}


# ---------------------------------------------------------------- qualys-connector, end to end
def _config(tmp_path, url) -> str:
    config = tmp_path / "QualysGuard.yaml"
    config.write_text(f"user_id: u\ntemplate_id: 1\nurl: {url}\nadd_host: y\npoll_interval: 0.05\n")
    config.chmod(0o600)
    return str(config)


def _cmd(program, *args):
    module = {"qualys-connector": "qualys_connector", "process-multiple": "qualys_connector.multi_main"}[program]
    return [sys.executable, "-m", module, *args]


@pytest.mark.parametrize("program", ["qualys-connector", "process-multiple"])
def test_metrics_after_success_failure_lock_and_interruption(tmp_path, pki, monkeypatch, program):
    monkeypatch.setenv("QC_LOCK_DIR", str(tmp_path / "locks"))
    prom, summary_json = tmp_path / "m" / "qc.prom", tmp_path / "m" / "qc.json"
    prom.parent.mkdir()
    templates = {"1": TemplateSpec(hosts=40, vulns_per_host=3), "2": TemplateSpec(hosts=5, delay=60)}
    multi = program == "process-multiple"
    labels = {"template": "1"} if multi else {}
    key = (("template", "1"),) if multi else ()
    env = dict(os.environ, QC_PKCS12_PASSWORD=CLIENT_PASSWORD, QC_QUALYS_PASSWORD=QPW, QC_METRICS_FILE=str(prom))
    with QualysEmulator(users={"u": QPW}, templates=templates) as q, FMCEmulator(pki=pki, max_size=600) as fmc:
        config = _config(tmp_path, q.url)
        args = ["-se=127.0.0.1", f"-po={fmc.port}", f"-pk={pki.client_pkcs12}", f"-pl={config}",
                f"-su={summary_json}", *(["-m=1"] if multi else [])]
        # 1. delivered (the metrics file named by QC_METRICS_FILE, the JSON copy by -su)
        ok = subprocess.run(_cmd(program, *args), env=env, capture_output=True, text=True, timeout=120)
        assert ok.returncode == 0, ok.stderr
        series = parse(prom)
        assert result_of(series, **labels) == "delivered"
        assert series["qualys_connector_last_run_hosts"][key] == 40
        assert series["qualys_connector_last_run_findings"][key] > 0
        sent = series["qualys_connector_last_run_data_messages_sent"][key]
        assert sent == series["qualys_connector_last_run_data_messages_acknowledged"][key] == fmc.stats.data_messages > 1
        assert series["qualys_connector_last_run_exit_code"][key] == 0
        success = series["qualys_connector_last_success_timestamp_seconds"][key]
        assert success == series["qualys_connector_last_run_timestamp_seconds"][key] <= time.time()
        run, = json.loads(summary_json.read_text())["runs"]
        assert run["result"] == "delivered" and run["hosts"] == 40 and run["labels"] == labels

        def check(result, code):
            series = parse(prom)
            assert result_of(series, **labels) == result
            assert series["qualys_connector_last_run_exit_code"][key] == code
            assert series["qualys_connector_last_success_timestamp_seconds"][key] == success   # kept
            assert series["qualys_connector_last_run_timestamp_seconds"][key] > success
            assert json.loads(summary_json.read_text())["runs"][0]["result"] == result
            assert sorted(os.listdir(prom.parent)) == ["qc.json", "qc.prom"]

        # 2. failed: Qualys refuses the password
        bad = subprocess.run(_cmd(program, *args), env=dict(env, QC_QUALYS_PASSWORD="wrong"),
                             capture_output=True, text=True, timeout=120)
        assert bad.returncode in (1, 2), bad.stderr
        check("failed", bad.returncode)
        # 3. locked: another run holds the lock on this QualysGuard.yaml
        with RunLock(config):
            locked = subprocess.run(_cmd(program, *args), env=env, capture_output=True, text=True, timeout=120)
        assert locked.returncode == 75, locked.stderr
        check("locked", 75)
        # 4. interrupted: SIGTERM while Qualys builds the report
        slow = [a.replace("-m=1", "-m=2") for a in args]
        if not multi:
            config2 = tmp_path / "QualysGuard.yaml"
            config2.write_text(config2.read_text().replace("template_id: 1", "template_id: 2"))
        before = len(q.state.request_log)
        proc = subprocess.Popen(_cmd(program, *slow), env=env, stderr=subprocess.PIPE, text=True)
        assert wait_for(lambda: any(a == "list" for _, a, _ in q.state.request_log[before:]))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    series = parse(prom)
    key2 = (("template", "2"),) if multi else ()
    assert result_of(series, **({"template": "2"} if multi else {})) == "interrupted"
    assert series["qualys_connector_last_run_exit_code"][key2] == 2


def test_process_multiple_writes_one_series_per_template(tmp_path, pki, monkeypatch):
    monkeypatch.setenv("QC_LOCK_DIR", str(tmp_path / "locks"))
    templates = {"11": TemplateSpec(hosts=3, vulns_per_host=2, seed=11, network="10.11.0.0/16"),
                 "22": TemplateSpec(hosts=4, vulns_per_host=2, fault="errors")}
    prom = tmp_path / "pm.prom"
    env = dict(os.environ, QC_PKCS12_PASSWORD=CLIENT_PASSWORD, QC_QUALYS_PASSWORD=QPW)
    with QualysEmulator(users={"u": QPW}, templates=templates) as q, FMCEmulator(pki=pki) as fmc:
        config = _config(tmp_path, q.url)
        result = subprocess.run(_cmd("process-multiple", "-m=11,22", "-jobs=2", "-se=127.0.0.1", f"-po={fmc.port}",
                                     f"-pk={pki.client_pkcs12}", f"-pl={config}", f"-metrics={prom}"),
                                env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    series = parse(prom)
    assert result_of(series, template="11") == "delivered" and result_of(series, template="22") == "failed"
    assert series["qualys_connector_last_run_hosts"] == {(("template", "11"),): 3, (("template", "22"),): 0}
    assert series["qualys_connector_last_success_timestamp_seconds"][(("template", "22"),)] == 0


def test_a_bad_multiinfo_still_writes_the_metrics(tmp_path):
    prom = tmp_path / "pm.prom"
    result = subprocess.run(_cmd("process-multiple", "-m=11,x", "-c=out.csv", f"-me={prom}"), cwd=str(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    series = parse(prom)
    assert result_of(series, template="11") == "failed" and result_of(series, template="x") == "failed"


def test_an_unwritable_metrics_path_is_a_usage_error_before_anything_runs(tmp_path):
    result = subprocess.run(_cmd("qualys-connector", "-c=out.csv", f"-metrics={tmp_path / 'no' / 'm.prom'}",
                                 f"-pl={tmp_path / 'in.csv'}", "csv"), cwd=str(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "-metrics" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().splitlines()[-1].split("] ")[1].startswith("Summary")


# ---------------------------------------------------------------- censys-qualys, end to end
def test_censys_qualys_metrics_after_success_failure_lock_and_interruption(tmp_path):
    from qualys_connector.emulators.censys.server import CensysEmulator
    from test_censys import KEY, QPW as CQPW, host, write_settings
    prom = tmp_path / "cq.prom"

    def once(settings, env=None):
        return subprocess.run([sys.executable, "-m", "qualys_connector.censys.cli", "once", "--settings", settings,
                               "--metrics", str(prom)], capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, **(env or {})))

    with CensysEmulator(api_key=KEY, page_size=3) as censys, QualysEmulator(users={"u": CQPW}) as qualys:
        censys.append([host(f"192.0.2.{i}", "ASSOCIATE") for i in range(1, 6)] + [host("192.0.2.9", "DISASSOCIATE")])
        settings = write_settings(tmp_path, censys.url, qualys.url)
        ok = once(settings)
        assert ok.returncode == 0, ok.stderr
        series = parse(prom)
        assert not [n for n in series if not n.startswith("censys_qualys_last_")]
        assert result_of(series, "censys_qualys") == "delivered"
        assert series["censys_qualys_last_run_events"][()] == 6
        assert series["censys_qualys_last_run_added"][()] == len(qualys.state.asset_ips) == 5
        assert series["censys_qualys_last_run_excluded"][()] == 1
        assert series["censys_qualys_last_run_position"][()] == 7
        success = series["censys_qualys_last_success_timestamp_seconds"][()]

        def check(result, code):
            series = parse(prom)
            assert result_of(series, "censys_qualys") == result
            assert series["censys_qualys_last_run_exit_code"][()] == code
            assert series["censys_qualys_last_success_timestamp_seconds"][()] == success

        censys.append([host("192.0.2.20", "ASSOCIATE")])
        bad = once(settings, {"CENSYS_ASM_API_KEY": "not-the-key"})
        assert bad.returncode == 1, bad.stderr
        check("failed", 1)
        with RunLock("x", str(tmp_path / "censys-qualys.lock")):
            locked = once(settings)
        assert locked.returncode == 75
        check("locked", 75)
        assert "censys_qualys_last_run_position" not in parse(prom)        # unknown: it never got to read it
        for _ in range(20):
            censys.inject("429")                                         # Retry-After: 1, twenty times
        proc = subprocess.Popen([sys.executable, "-m", "qualys_connector.censys.cli", "once", "--settings", settings,
                                 "--metrics", str(prom)], stderr=subprocess.PIPE, text=True)
        assert wait_for(lambda: len(censys._faults) < 20), "never asked Censys"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    check("interrupted", 2)
    assert parse(prom)["censys_qualys_last_run_position"][()] == 7


# ---------------------------------------------------------------- the options
def test_the_new_options_leave_every_old_abbreviation_as_it_was():
    from qualys_connector.argv import normalize
    from qualys_connector.cli import COMMON_OPTIONS, MULTI_OPTIONS
    assert normalize(["-m=1,2", "-me=m.prom", "-su", "s.json"], MULTI_OPTIONS) == [
        "--multiinfo=1,2", "--metrics=m.prom", "--summaryjson=s.json"]
    assert normalize(["-metrics=m.prom", "--summaryjson=s.json"], COMMON_OPTIONS) == [
        "--metrics=m.prom", "--summaryjson=s.json"]
    with pytest.raises(UsageError, match=r"could be -server, -stderr, -syslog \("):
        normalize(["-s=1"], COMMON_OPTIONS)


@pytest.mark.parametrize("program", ["qualys-connector", "process-multiple"])
def test_the_help_screens_name_the_options(program):
    result = subprocess.run(_cmd(program), capture_output=True, text=True, timeout=60)
    assert "-me[trics]=F" in result.stdout and "QC_METRICS_FILE" in result.stdout and "-su[mmaryjson]=F" in result.stdout
    result = subprocess.run(_cmd(program, "--help"), capture_output=True, text=True, timeout=60)
    assert "--metrics FILE" in result.stdout and "--summaryjson FILE" in result.stdout
