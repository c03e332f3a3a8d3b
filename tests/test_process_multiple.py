"""process-multiple (README "process-multiple"): one run per template, failures isolated, worst exit code."""
import os

import pytest

from conftest import CLIENT_PASSWORD, run_cli
from qualys_connector.emulators.fmc.server import FMCEmulator
from qualys_connector.emulators.qualys.server import QualysEmulator, TemplateSpec

PASSWORD = "multi-pw"


def env():
    return {"QC_PKCS12_PASSWORD": CLIENT_PASSWORD, "QC_QUALYS_PASSWORD": PASSWORD}


def config(tmp_path, url):
    path = tmp_path / "QualysGuard.yaml"
    path.write_text(f"user_id: u\ntemplate_id: 1\nurl: {url}\nadd_host: y\npoll_interval: 0.05\nmax_wait: 60\n")
    path.chmod(0o600)
    return str(path)


def templates():
    return {"424242": TemplateSpec(hosts=40, vulns_per_host=3, seed=1, network="10.1.0.0/16"),
            "535353": TemplateSpec(hosts=40, vulns_per_host=3, seed=2, fault="errors", network="10.2.0.0/16"),
            "646464": TemplateSpec(hosts=30, vulns_per_host=3, seed=3, ipv6_every=0, network="10.3.0.0/16")}


def test_one_failing_template_does_not_stop_the_others(tmp_path, pki, lock_dir):
    with QualysEmulator(users={"u": PASSWORD}, templates=templates(), report_delay=0.1) as q, \
            FMCEmulator(pki=pki) as fmc:
        result = run_cli("-multiinfo", "424242,535353,646464", "-server=127.0.0.1", f"-port={fmc.port}",
                         f"-pkcs12={pki.client_pkcs12}", f"-plugininfo={config(tmp_path, q.url)}",
                         program="process-multiple", env=env())
        hosts = fmc.netmap.export()["hosts"]
    assert result.returncode == 2, result.stderr
    assert len(hosts) == 70          # 40 + 30 hosts of the two good templates
    lines = result.stderr.splitlines()
    assert any("template 424242: hosts=40" in l and "result=delivered" in l for l in lines)
    assert any("template 535353:" in l and "result=failed" in l for l in lines)
    assert "Summary: templates=3 ok=2 failed=1 (535353: failed)" in lines[-1]


def test_csv_files_are_named_after_each_template(tmp_path, lock_dir):
    with QualysEmulator(users={"u": PASSWORD}, templates=templates()) as q:
        result = run_cli("-m=424242,646464", f"-c={tmp_path / 'Output.csv'}", f"-pl={config(tmp_path, q.url)}",
                         program="process-multiple", env=env())
    assert result.returncode == 0, result.stderr
    assert sorted(p for p in os.listdir(tmp_path) if p.endswith(".csv")) == ["424242_Output.csv", "646464_Output.csv"]
    assert (tmp_path / "424242_Output.csv").read_text().startswith("SetSource,QualysGuard\n")


def test_jobs_run_templates_side_by_side_within_the_concurrency_limit(tmp_path, pki, lock_dir):
    specs = {str(t): TemplateSpec(hosts=20, vulns_per_host=2, seed=t, ipv6_every=0, network=f"10.{t}.0.0/16") for t in (11, 22, 33, 44)}
    with QualysEmulator(users={"u": PASSWORD}, templates=specs, report_delay=0.6, concurrency_limit=2) as q, \
            FMCEmulator(pki=pki) as fmc:
        result = run_cli("-m=11,22,33,44", "-jobs=3", "-se=127.0.0.1", f"-po={fmc.port}",
                         f"-pk={pki.client_pkcs12}", f"-pl={config(tmp_path, q.url)}",
                         program="process-multiple", env=env())
        assert result.returncode == 0, result.stderr
        assert q.state.max_concurrent_reports == 2      # really two at once, never three
        assert q.state.max_concurrent_calls <= 2
        assert len(fmc.netmap.export()["hosts"]) == 80
    assert "Qualys allows 2 concurrent calls: running 2 templates at once, not 3" in result.stderr


@pytest.mark.parametrize("value", ["424242, 535353", "abc", ""])
def test_bad_multiinfo_is_a_usage_error(tmp_path, lock_dir, value):
    result = run_cli(f"-multiinfo={value}", f"-c={tmp_path / 'o.csv'}", program="process-multiple")
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_without_arguments_it_prints_its_version_and_usage():
    result = run_cli(program="process-multiple")
    assert result.returncode == 0 and result.stdout.startswith("process-multiple Ver. ")
    assert "-m[ultiinfo]=ID,ID" in result.stdout


def test_a_template_whose_output_cannot_be_written_does_not_stop_the_others(tmp_path, lock_dir):
    (tmp_path / "424242_Out.csv").mkdir()          # the first template's output name is taken by a directory
    with QualysEmulator(users={"u": PASSWORD}, templates=templates()) as q:
        result = run_cli("-m=424242,646464", f"-c={tmp_path / 'Out.csv'}", f"-pl={config(tmp_path, q.url)}",
                         program="process-multiple", env=env())
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "template 424242: -csvfile" in result.stderr and "is a directory" in result.stderr
    assert (tmp_path / "646464_Out.csv").is_file()
    assert "Summary: templates=2 ok=1 failed=1 (424242: failed)" in result.stderr.splitlines()[-1]


def test_parallel_templates_label_their_log_lines_and_time_themselves(tmp_path, pki, lock_dir):
    specs = {str(t): TemplateSpec(hosts=10, vulns_per_host=2, seed=t, ipv6_every=0, network=f"10.{t}.0.0/16")
             for t in (11, 22)}
    with QualysEmulator(users={"u": PASSWORD}, templates=specs, report_delay=0.3) as q, FMCEmulator(pki=pki) as fmc:
        result = run_cli("-m=11,22", "-jobs=2", "-se=127.0.0.1", f"-po={fmc.port}", f"-pk={pki.client_pkcs12}",
                         f"-pl={config(tmp_path, q.url)}", program="process-multiple", env=env())
    assert result.returncode == 0, result.stderr
    for tid in ("11", "22"):
        assert f"template {tid}: downloaded the report" in result.stderr
        assert f"template {tid}: connected to the FMC" in result.stderr
    assert "template 11: template 11:" not in result.stderr
    assert result.stderr.count("plain http") == 1


def test_overlapping_templates_keep_each_others_results_with_a_per_template_scanner(tmp_path, pki, lock_dir):
    same = {tid: TemplateSpec(hosts=15, vulns_per_host=3, seed=seed, ipv6_every=0, network="10.9.0.0/24")
            for tid, seed in (("71", 1), ("72", 2))}
    path = tmp_path / "QualysGuard.yaml"
    with QualysEmulator(users={"u": PASSWORD}, templates=same) as q, FMCEmulator(pki=pki) as fmc:
        path.write_text(open(config(tmp_path, q.url)).read() + "scanner_name: QualysGuard-{template_id}\n")
        result = run_cli("-m=71,72", "-se=127.0.0.1", f"-po={fmc.port}", f"-pk={pki.client_pkcs12}",
                         f"-pl={path}", program="process-multiple", env=env())
        assert result.returncode == 0, result.stderr
        hosts = fmc.netmap.export()["hosts"]
    scanners = {r["scanner"] for h in hosts.values() for r in h["scan_results"]}
    assert scanners == {"QualysGuard-71", "QualysGuard-72"}
    shared = [h for h in hosts.values() if {r["scanner"] for r in h["scan_results"]} == scanners]
    assert shared, "both templates' results survive on the hosts they share"


def test_a_trailing_plugin_name_is_accepted_only_for_qualysguard(tmp_path, lock_dir):
    with QualysEmulator(users={"u": PASSWORD}, templates=templates()) as q:
        result = run_cli("-m=424242", f"-c={tmp_path / 'Out.csv'}", f"-pl={config(tmp_path, q.url)}", "QualysGuard",
                         program="process-multiple", env=env())
    assert result.returncode == 0, result.stderr
    result = run_cli("-m=424242", f"-c={tmp_path / 'Out.csv'}", "csv", program="process-multiple")
    assert result.returncode == 1 and "QualysGuard plugin only" in result.stderr

