"""scripts/bench --quick runs and writes its JSON (no timing is asserted: figures are for people)."""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_quick_prints_a_table_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "bench.py"), "--quick",
                             "--cache", str(tmp_path / "cache"), "--json", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "findings/s" in result.stdout and "peak RSS MB" in result.stdout
    data = json.loads(out.read_text())
    assert {r["stage"] for r in data["rows"]} == {"floor", "parse", "send", "csvsend", "refsend"}
    assert "x refsend" in result.stdout          # our CSV send beside the minimal client, same run
    for row in data["rows"]:
        assert set(row) >= {"hosts", "stage", "seconds", "findings", "findings_per_s", "peak_rss_mb", "ratio_to_floor", "cpu_s"}
        assert row["hosts"] == 1000 and row["findings"] > 0


def test_bench_only_detections_times_the_pull_alone(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "bench.py"), "--quick", "--only-detections",
                             "--cache", str(tmp_path / "cache"), "--json", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["stage"], r["hosts"], r["findings"]) for r in rows] == [("pull", 1000, 5000)]
    assert not list((tmp_path / "cache").glob("report-*.xml"))        # no report was generated
