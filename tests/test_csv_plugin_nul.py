"""The csv plugin refuses a line holding a NUL byte before anything is sent (README "The csv plugin")."""
from __future__ import annotations

from conftest import CLIENT_PASSWORD, run_cli

GOOD = b'SetSource,QualysGuard\nAddHost,192.0.2.1\n'
BAD = b'AddScanResult,192.0.2.1,"QualysGuard",1,,,"ti\x00tle","d","cve_ids:","bugtraq_ids:"\nScanFlush\n'


def test_a_nul_byte_is_refused_with_its_line_in_a_dry_run(tmp_path, lock_dir):
    (tmp_path / "in.csv").write_bytes(GOOD + BAD)
    result = run_cli("-c=out.csv", "-pl=in.csv", "csv", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert BAD.index(b"\x00") + 1 == 46
    assert "in.csv, line 3: a NUL byte (character 46)" in result.stderr and "nothing was sent" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.csv").exists()


def test_a_nul_byte_sends_nothing_to_the_fmc(tmp_path, pki, fmc, lock_dir):
    (tmp_path / "in.csv").write_bytes(GOOD + BAD)
    result = run_cli("-server=127.0.0.1", f"-port={fmc.port}", f"-pkcs12={pki.client_pkcs12}", "-pl=in.csv", "csv",
                     cwd=tmp_path, env={"QC_PKCS12_PASSWORD": CLIENT_PASSWORD})
    assert result.returncode == 1, result.stderr
    assert "line 3: a NUL byte" in result.stderr
    assert fmc.messages == [] and fmc.netmap.export()["hosts"] == {}
    (tmp_path / "in.csv").write_bytes(GOOD + BAD.replace(b"\x00", b""))      # without it, all of it arrives
    result = run_cli("-server=127.0.0.1", f"-port={fmc.port}", f"-pkcs12={pki.client_pkcs12}", "-pl=in.csv", "csv",
                     cwd=tmp_path, env={"QC_PKCS12_PASSWORD": CLIENT_PASSWORD})
    assert result.returncode == 0, result.stderr
    assert fmc.netmap.export()["hosts"]["192.0.2.1"]["scan_results"][0]["name"] == "title"
