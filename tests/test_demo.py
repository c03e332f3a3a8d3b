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
