"""The csv plugin sends a checked file from where it lies (no spool copy), and only as it was checked.

README "The csv plugin": the whole file is checked before connecting; a bad line anywhere sends
nothing; ``-csvfile`` writes the file back byte for byte. A send hands the checked file to the
pipeline (``Job.checked_file``) instead of copying it, so what goes out must be the file that was
checked: one that changed in between is refused with nothing sent.
"""
from __future__ import annotations

import io
import logging
import os
import threading
import types

import pytest

import input_plugins.csv as csv_plugin
from conftest import CLIENT_PASSWORD, run_cli
from qualys_connector.errors import InputFileError
from qualys_connector.pipeline import Options, run
from qualys_connector.hostinput.lineblocks import CheckedFile
from qualys_connector.plugin import Job
from qualys_connector.runinfo import Summary

LOG = logging.getLogger("test-csv-direct")
ENV = {"QC_PKCS12_PASSWORD": CLIENT_PASSWORD}


def lines_of(count: int) -> list[bytes]:
    out = [b"SetSource,QualysGuard\n"]
    for i in range(count):
        ip = f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}".encode()
        out.append(b"AddHost," + ip + b"\n")
        out.append(b"AddScanResult," + ip + b',"QualysGuard",%d,443,tcp,"T %d, ""q""","D","cve_ids:","bugtraq_ids:"\n'
                   % (1000 + i % 50, i))
    return out


def job_for(path, *, dry_run: bool) -> Job:
    return Job(str(path), io.BytesIO(), Summary(), LOG, threading.Event(), dry_run=dry_run)


def test_a_send_checks_the_file_and_hands_it_over_without_copying(tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(b"".join(lines_of(30)) + b"# done\nScanFlush")     # a comment, no final LF
    job = job_for(source, dry_run=False)
    csv_plugin.produce(job)
    assert job.out.getvalue() == b""
    assert job.checked_file == CheckedFile.of(str(source), open(source, "rb"))
    assert (job.summary.commands, job.summary.hosts, job.summary.findings) == (62, 30, 30)
    job.checked_file.still_same()                                         # unchanged: no error


def test_a_dry_run_copies_the_file_through_the_spool_and_hands_nothing_over(tmp_path):
    source = tmp_path / "in.csv"
    data = b"".join(lines_of(30)) + b"# done\nScanFlush"
    source.write_bytes(data)
    job = job_for(source, dry_run=True)
    csv_plugin.produce(job)
    assert job.out.getvalue() == data and job.checked_file is None
    assert (job.summary.commands, job.summary.hosts, job.summary.findings) == (62, 30, 30)


@pytest.mark.parametrize("change", ["append", "replace", "remove", "touch"])
def test_a_checked_file_that_changed_is_named(tmp_path, change):
    source = tmp_path / "in.csv"
    source.write_bytes(b"".join(lines_of(3)))
    job = job_for(source, dry_run=False)
    csv_plugin.produce(job)
    if change == "append":
        with open(source, "ab") as fh:
            fh.write(b"AddHost,10.9.9.9\n")
    elif change == "replace":
        other = tmp_path / "other.csv"
        other.write_bytes(source.read_bytes())
        os.replace(other, source)
    elif change == "remove":
        source.unlink()
    else:
        st = os.stat(source)
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(InputFileError) as caught:
        job.checked_file.still_same()
    assert str(source) in caught.value.message and "nothing was sent" in caught.value.hint


def test_a_file_changed_between_the_check_and_the_send_sends_nothing(tmp_path, fmc, pki):
    """What goes out is what was checked: a line slipped in after the check never reaches the FMC."""
    source = tmp_path / "in.csv"
    source.write_bytes(b"".join(lines_of(5)))

    def produce_then_change(job):
        csv_plugin.produce(job)
        with open(source, "ab") as fh:
            fh.write(b'AddScanResult,10.0.0.1,"unterminated\n')

    plugin = types.SimpleNamespace(**{name: getattr(csv_plugin, name) for name in (
        "NAME", "SUMMARY", "PARAMETERS", "SHORTEN", "default_plugininfo", "load_config", "lock_key")},
        produce=produce_then_change)
    options = Options(plugin=plugin, plugininfo=str(source), server="127.0.0.1", port=fmc.port,
                      pkcs12=pki.client_pkcs12, password=CLIENT_PASSWORD)
    with pytest.raises(InputFileError) as caught:
        run(options, log=LOG, stop=threading.Event())
    assert "changed after it was checked" in caught.value.message
    assert fmc.messages == [] and fmc.netmap.export()["hosts"] == {}


def test_a_bad_line_deep_in_a_large_file_sends_nothing(tmp_path, pki, fmc, lock_dir):
    lines = lines_of(9000)                                   # ~1.5 MB: the bad line is in the second block
    lines[16001] = b'AddScanResult,10.0.31.64,"QualysGuard",1,443,tcp,"a "quote" inside","D","cve_ids:","bugtraq_ids:"\n'
    (tmp_path / "in.csv").write_bytes(b"".join(lines))
    assert os.path.getsize(tmp_path / "in.csv") > 1 << 20
    result = run_cli("-server=127.0.0.1", f"-port={fmc.port}", f"-pkcs12={pki.client_pkcs12}", "-pl=in.csv", "csv",
                     cwd=tmp_path, env=ENV)
    assert result.returncode == 1, result.stderr
    assert "in.csv, line 16002:" in result.stderr and "nothing was sent" in result.stderr
    assert "Traceback" not in result.stderr
    assert fmc.messages == [] and fmc.netmap.export()["hosts"] == {}


def test_a_large_file_is_sent_as_it_is_and_written_back_byte_for_byte(tmp_path, pki, fmc, lock_dir):
    """Both ways over one file of several blocks with comments, a blank line and no final LF."""
    lines = lines_of(9000)
    lines[5000] = b"# a comment\n"
    lines[12000] = b"\n"
    data = b"".join(lines) + b"ScanFlush"
    (tmp_path / "in.csv").write_bytes(data)
    result = run_cli("-c=out.csv", "-pl=in.csv", "csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.csv").read_bytes() == data
    result = run_cli("-server=127.0.0.1", f"-port={fmc.port}", f"-pkcs12={pki.client_pkcs12}", "-pl=in.csv", "csv",
                     cwd=tmp_path, env=ENV)
    assert result.returncode == 0, result.stderr
    body = [line for m in fmc.messages for line in m.split(b"\n") if line and line != b"SetSource,QualysGuard"]
    expected = [line for line in data.split(b"\n") if line and line != b"SetSource,QualysGuard"]
    assert body == expected
    assert len(fmc.netmap.export()["hosts"]) == 9000
    assert (tmp_path / "in.csv").read_bytes() == data                  # the user's file is left as it was
