"""The QualysGuard plugin's output, line by line (DESIGN.md §4)."""
import os

from conftest import run_cli

DATA = os.path.join(os.path.dirname(__file__), "data")


def config(tmp_path, **keys):
    keys.setdefault("report_file", os.path.join(DATA, "sample_asset_data_report.xml"))
    path = tmp_path / "QualysGuard.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in keys.items()))
    path.chmod(0o600)
    return str(path)


def dry_run(tmp_path, **keys):
    out = tmp_path / "Out.csv"
    result = run_cli(f"-c={out}", f"-pl={config(tmp_path, **keys)}")
    assert result.returncode == 0, result.stderr
    return out.read_text().splitlines(), result


def test_the_sample_report_becomes_exactly_these_lines(tmp_path, lock_dir):
    lines, result = dry_run(tmp_path, add_host="y", set_os="y")
    expected = open(os.path.join(DATA, "sample_expected.csv")).read().splitlines()
    for number, (got, want) in enumerate(zip(lines, expected), 1):
        assert got == want, f"line {number}"
    assert len(lines) == len(expected)
    assert "QualysGuard Report Processing Complete" in result.stderr


def test_defaults_send_no_addhost_no_setos_and_end_with_scanflush(tmp_path, lock_dir):
    lines, _ = dry_run(tmp_path)
    assert lines[0] == "SetSource,QualysGuard" and lines[-1] == "ScanFlush"
    assert not [l for l in lines if l.startswith(("AddHost", "SetOS"))]
    assert len([l for l in lines if l.startswith("AddScanResult")]) == 6


def test_ip_ranges_domain_names_types_and_severity(tmp_path, lock_dir):
    lines, _ = dry_run(tmp_path, ip_ranges="10.20.30.0/24", domain="Global\\Leaf", scanner_name="QG",
                       source_name="Qualys", vuln_types="Vuln, Ig", min_severity=1)
    assert lines[:2] == ["SetDomain,Global\\Leaf", "SetSource,Qualys"]   # the leaf domain first
    results = [l for l in lines if l.startswith("AddScanResult")]
    assert all(l.split(",")[1].startswith("10.20.30.") and l.split(",")[2] == '"QG"' for l in results)
    qids = [int(l.split(",")[3]) for l in results]
    assert qids == [6, 82003, 38601, 45038, 121695]        # Practice 370876 left out, Ig in


def test_text_is_folded_to_ascii_unless_ascii_only_is_off(tmp_path, lock_dir):
    text = open(os.path.join(DATA, "sample_asset_data_report.xml"), encoding="utf-8").read()
    fancy = tmp_path / "fancy.xml"
    fancy.write_text(text.replace("use of weak RC4(Arcfour) cipher", "use of weak RC4 \u2014 \u201cArcfour\u201d r\u00e9sum\u00e9 \u2713", 1),
                     encoding="utf-8")
    lines, _ = dry_run(tmp_path, report_file=str(fancy))
    (line,) = [l for l in lines if ",38601," in l]
    assert '"SSL/TLS use of weak RC4 - ""Arcfour"" resume"' in line and line.isascii()
    lines, _ = dry_run(tmp_path, report_file=str(fancy), ascii_only="n")
    (line,) = [l for l in lines if ",38601," in l]
    assert '"SSL/TLS use of weak RC4 \u2014 \u201cArcfour\u201d r\u00e9sum\u00e9 \u2713"' in line


def test_a_truncated_saved_report_writes_nothing(tmp_path, lock_dir):
    data = open(os.path.join(DATA, "sample_asset_data_report.xml"), "rb").read()
    cut = tmp_path / "cut.xml"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "Out.csv"
    result = run_cli(f"-c={out}", f"-pl={config(tmp_path, report_file=str(cut))}")
    assert result.returncode == 2 and "not complete, well-formed XML" in result.stderr
    assert not out.exists() and "Traceback" not in result.stderr


def test_an_overlong_description_is_shortened_to_fit_and_said_at_debug_level(tmp_path, lock_dir):
    text = open(os.path.join(DATA, "sample_asset_data_report.xml")).read()
    big = tmp_path / "big.xml"
    big.write_text(text.replace("The service still negotiates RC4 cipher suites.", "RC4 is weak. " * 8000, 1))
    out = tmp_path / "Out.csv"
    result = run_cli(f"-c={out}", f"-pl={config(tmp_path, report_file=str(big))}", "-le=3")
    assert result.returncode == 0, result.stderr
    (line,) = [l for l in out.read_text().splitlines() if ",38601," in l]
    assert len(line.encode()) + 1 <= 65536 and '..."' in line
    assert "shortened the line for 10.20.30.41 QID 38601" in result.stderr
