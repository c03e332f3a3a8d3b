"""The qualys-connector command line without a network: version screen, usage errors, csv dry runs."""
import os
import subprocess
import sys

import pytest

from qualys_connector import __version__


def run(*args, cwd=None, env=None):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "qualys_connector", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=60)


def test_no_arguments_prints_version_first_then_usage_and_plugins():
    result = run()
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"qualys-connector Ver. {__version__}"
    assert "usage: qualys-connector [options] [plugin]" in result.stdout
    assert "-se[rver]=ADDR" in result.stdout and "QualysGuard" in result.stdout and "csv -" in result.stdout


def test_help_lists_every_option():
    result = run("--help")
    assert result.returncode == 0
    for option in ("--server", "--port", "--plugininfo", "--ipv6", "--pkcs12", "--password", "--syslog",
                   "--stderr", "--logfile", "--level", "--csvfile"):
        assert option in result.stdout


@pytest.mark.parametrize("args,needle", [
    (["-bogus=1"], "unknown option '-bogus=1'"),
    (["-s=1"], "ambiguous"),
    (["-c=x.csv", "nosuchplugin"], "unknown plugin 'nosuchplugin'"),
    (["-pl=whatever.csv", "csv"], "no -server and no -csvfile"),
    (["-le=9", "-c=x.csv"], "--level"),
    (["-runondc=y", "-c=x.csv", "-pl=in.csv", "csv"], "-runondc=y"),
    (["-runondc=maybe", "-c=x.csv", "-pl=in.csv", "csv"], "-runondc='maybe' is not y or n"),
])
def test_usage_errors_are_one_line_and_exit_1(tmp_path, args, needle):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_csv_plugin_dry_run_writes_the_file_back_byte_for_byte(tmp_path):
    source = tmp_path / "in.csv"
    data = b'SetSource,Test\n# comment\nAddHost,192.0.2.1\nAddScanResult,192.0.2.1,"Test",1,,,"t","d","cve_ids:","bugtraq_ids:"\nScanFlush'
    source.write_bytes(data)
    result = run("-server=10.10.10.10", f"-pl={source}", f"-c={tmp_path / 'out.csv'}", "CSV", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.csv").read_bytes() == data
    assert "-server 10.10.10.10 is ignored" in result.stderr
    assert result.stderr.strip().splitlines()[-1].split("] ", 1)[1].startswith("Summary: ")
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".qc-")]


def test_non_utf8_input_is_refused_with_its_line(tmp_path):
    (tmp_path / "in.csv").write_bytes(b"SetSource,T\nAddHost,1.2.3.4\nSetOS,1.2.3.4,\xe9t\xe9,x,y\n")
    result = run("-c=out.csv", "-pl=in.csv", "csv", cwd=tmp_path)
    assert result.returncode == 1
    assert "in.csv, line 3: not UTF-8" in result.stderr
    assert not (tmp_path / "out.csv").exists()


def test_missing_input_file(tmp_path):
    result = run("-c=out.csv", "-pl=nope.csv", "csv", cwd=tmp_path)
    assert result.returncode == 1 and "nope.csv does not exist" in result.stderr


def test_log_levels_and_logfile(tmp_path):
    (tmp_path / "in.csv").write_text("SetSource,T\n")
    result = run("-c=out.csv", "-pl=in.csv", "-lo", "run.log", "-le=0", "csv", cwd=tmp_path)
    assert result.returncode == 0
    (line,) = (tmp_path / "run.log").read_text().splitlines()   # level 0: errors only, and the summary
    assert "Summary:" in line and "result=written" in line
    result = run("-c=out.csv", "-pl=in.csv", "-lo=run.log", "-st", "csv", cwd=tmp_path)
    assert "Summary:" in (tmp_path / "run.log").read_text() and "Summary:" in result.stderr


def test_syslog_without_a_socket_warns_once_and_carries_on(tmp_path):
    if os.path.exists("/dev/log"):
        pytest.skip("this machine has a syslog socket")
    (tmp_path / "in.csv").write_text("SetSource,T\n")
    result = run("-c=out.csv", "-pl=in.csv", "-sy", "csv", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stderr.count("no syslog socket") == 1


def big_host_input(count):
    lines = [b"SetSource,T"]
    for i in range(count):
        lines.append(b"AddHost,10.%d.%d.%d" % (i // 65536, i // 256 % 256, i % 256))
        lines.append(b'AddScanResult,10.%d.%d.%d,"T",%d,443,tcp,"Title ""%d"", with a comma","%s","cve_ids:","bugtraq_ids:"'
                     % (i // 65536, i // 256 % 256, i % 256, i, i, b"d" * (i % 300)))
    return lines + [b"ScanFlush"]


def test_a_csv_file_of_many_blocks_is_written_back_byte_for_byte_and_counted(tmp_path):
    data = b"\n".join(big_host_input(20000)) + b"\n"          # ~6 MB: several blocks of the bulk check
    (tmp_path / "in.csv").write_bytes(data)
    result = run("-c=out.csv", "-pl=in.csv", "csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.csv").read_bytes() == data
    assert "read 40002 commands" in result.stderr
    assert "hosts=20000 findings=20000 commands=40002" in result.stderr


def test_a_file_of_multi_byte_text_is_checked_in_bulk_and_counted_the_same(tmp_path):
    lines = [line.replace(b"with a comma", "with « é » and 漢字".encode()) for line in big_host_input(20000)]
    data = b"\n".join(lines) + b"\n"
    (tmp_path / "in.csv").write_bytes(data)
    result = run("-c=out.csv", "-pl=in.csv", "csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.csv").read_bytes() == data
    assert "hosts=20000 findings=20000 commands=40002" in result.stderr


def test_a_broken_multi_byte_character_deep_in_a_file_is_named_with_its_line(tmp_path):
    lines = [line.replace(b"with a comma", "with é".encode()) for line in big_host_input(20000)]
    lines[31234] = lines[31234].replace("é".encode(), b"\xc3(")
    (tmp_path / "in.csv").write_bytes(b"\n".join(lines) + b"\n")
    result = run("-c=out.csv", "-pl=in.csv", "csv", cwd=tmp_path)
    assert result.returncode == 1 and "in.csv, line 31235: not UTF-8" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("bad, reason", [
    (b'AddHost,"10.0.0.1', "unterminated quoted field"),
    (b'AddHost,"10.0.0.1" x', "unexpected character 'x' after a quoted field"),
    (b'AddHost,10.0"0.1', "a quote inside an unquoted field"),
])
def test_a_bad_line_deep_in_a_large_file_is_named_with_its_number(tmp_path, bad, reason):
    lines = big_host_input(20000)
    lines[31234] = bad
    (tmp_path / "in.csv").write_bytes(b"\n".join(lines) + b"\n")
    result = run("-c=out.csv", "-pl=in.csv", "csv", cwd=tmp_path)
    assert result.returncode == 1
    assert f"in.csv, line 31235: {reason}" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.csv").exists()
