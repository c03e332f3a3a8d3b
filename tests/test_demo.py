"""The README's first command: the demo runs the whole job against the emulators and says MATCH."""
import os
import subprocess
import sys


def test_demo_runs_end_to_end_and_the_network_map_matches(tmp_path):
    run_dir = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "qualys_connector.emulators.demo", "--dir", str(run_dir),
                             "--hosts", "300", "--vulns", "4"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MATCH: every finding inside ip_ranges arrived exactly once" in result.stdout
    for name in ("QualysGuard.yaml", "network-map.json", "qualys-connector.log", "demo.env", "rerun.sh", "pki"):
        assert (run_dir / name).exists(), name
    assert oct(os.stat(run_dir / "demo.env").st_mode & 0o777) == "0o600"
    password = (run_dir / "demo.env").read_text().split("QC_PKCS12_PASSWORD=")[1].split()[0].strip("'")
    assert password not in result.stdout + result.stderr + (run_dir / "qualys-connector.log").read_text()


def test_the_detections_demo_matches_the_emulators_open_detections(tmp_path):
    run_dir = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "qualys_connector.emulators.demo", "--dir", str(run_dir),
                             "--hosts", "200", "--detections"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MATCH: every finding inside ip_ranges arrived exactly once" in result.stdout
    assert "pull: detections" in (run_dir / "QualysGuard.yaml").read_text()
    assert (run_dir / "state" / "kb.sqlite").exists()
    # the incremental step: four hosts changed in the emulator, only those sent, the map matches again
    assert result.stdout.count("MATCH: every finding inside ip_ranges arrived exactly once") == 2
    assert "second run: hosts=4 " in result.stdout and " cleared=1 " in result.stdout


def test_the_demos_expectation_at_its_default_size_is_what_the_report_holds(tmp_path):
    """The default demo report holds QIDs the generator made both Ig and Practice on one host:
    with vuln_types Vuln, Practice the Practice finding is the one sent, so it is expected too."""
    from operator import attrgetter

    from qualys_connector.emulators import demo
    from qualys_connector.emulators.qualys.reportgen import generate_report
    from qualys_connector.ipranges import IPRanges
    from qualys_connector.report import open_report

    path = tmp_path / "demo.xml"
    with open(path, "wb") as out:
        generate_report(out, hosts=demo.HOSTS, vulns_per_host=demo.VULNS)
    ranges = IPRanges.parse(demo.IP_RANGES)
    got = {}
    with open_report(str(path), include=lambda ip: ip in ranges, distinct_by=attrgetter("fmc_key")) as report:
        for host in report.hosts():
            for f in host.findings:
                port, proto = (f.port, f.protocol) if f.protocol in ("tcp", "udp") else (None, None)
                got[(host.ip, f.qid, port, proto)] = 1
    assert dict(demo.expected_findings(demo.HOSTS, demo.VULNS, demo.IP_RANGES)) == got


def test_the_incremental_steps_new_host_takes_an_address_no_host_of_the_model_has():
    """At the demo's default size the generated model already holds 10.0.7.250: a new host there
    would replace that host's results on the FMC (it knows hosts by address) and the demo said
    MISMATCH on a fresh clone."""
    from qualys_connector.emulators import demo
    from qualys_connector.emulators.qualys.detectionmodel import DetectionModel

    for hosts in (300, demo.HOSTS):
        model = DetectionModel.generate(hosts)
        added = [c for c in demo.demo_changes(model) if c["op"] == "add_host"]
        assert added and added[0]["ip"] not in {h.ip for h in model.hosts}
