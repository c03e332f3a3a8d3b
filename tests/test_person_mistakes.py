"""A person's mistake ends with one clear line and exit 1, never "internal error"."""
from __future__ import annotations

import pytest

from conftest import run_cli
from qualys_connector.errors import ReportFormatError, UsageError
from qualys_connector.report import open_report
from qualys_connector.serveraddr import check_server


def write_config(tmp_path, text):
    path = tmp_path / "QualysGuard.yaml"
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


def one_error_line(result):
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    errors = [l for l in result.stderr.splitlines() if "[ERROR]" in l or l.startswith("qualys-connector:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize("url, says", [
    ('"http://[::1:1"', "is not a valid URL"),
    ('"https://qualysapi.qualys.com/\\nx"', "holds a space, newline or control character"),
    ('"https:///api"', "names no host"),
    ('"https://[qualysapi/"', "has no valid host name or address"),
])
def test_a_bad_url_is_a_config_error_with_key_and_line(tmp_path, lock_dir, url, says):
    config = write_config(tmp_path, f"user_id: u\npassword: p\ntemplate_id: 1\nurl: {url}\n")
    result = run_cli(f"-plugininfo={config}", f"-csvfile={tmp_path / 'o.csv'}")
    assert result.returncode == 1
    line = one_error_line(result)
    assert "line 4: key 'url':" in line and says in line


def test_a_bad_proxy_is_a_config_error_too(tmp_path, lock_dir):
    config = write_config(tmp_path, 'user_id: u\npassword: p\ntemplate_id: 1\nproxy: "http://[proxy"\n')
    result = run_cli(f"-plugininfo={config}", f"-csvfile={tmp_path / 'o.csv'}")
    assert result.returncode == 1 and "line 4: key 'proxy':" in one_error_line(result)


def test_a_300_character_server_is_a_usage_error(tmp_path, lock_dir):
    config = write_config(tmp_path, "user_id: u\npassword: p\ntemplate_id: 1\n")
    result = run_cli(f"-plugininfo={config}", "-server=" + "a" * 300, "-pkcs12=/nonexistent.p12")
    assert result.returncode == 1
    assert "-server aaaa" in one_error_line(result) and "300 characters" in result.stderr


@pytest.mark.parametrize("value", ["a" * 300, "a" * 64 + ".example", "fmc\nx", "fmc host", "", "a..b"])
def test_check_server_refuses_what_cannot_be_a_host(value):
    with pytest.raises(UsageError):
        check_server(value)


@pytest.mark.parametrize("value, address", [("fmc.example.com", "fmc.example.com"), ("[fd00::10]", "fd00::10"),
                                            ("10.0.0.5", "10.0.0.5"), ("fe80::1%eth0", "fe80::1%eth0"),
                                            ("bücher.example", "bücher.example"), ("a" * 63 + ".x", "a" * 63 + ".x")])
def test_check_server_accepts_names_and_addresses(value, address):
    assert check_server(value) == address


def test_a_source_name_longer_than_allowed_is_refused_at_load(tmp_path, lock_dir):
    config = write_config(tmp_path, f"report_file: r.xml\nsource_name: {'S' * 70000}\n")
    result = run_cli(f"-plugininfo={config}", f"-csvfile={tmp_path / 'o.csv'}")
    assert result.returncode == 1
    line = one_error_line(result)
    assert "line 2: key 'source_name': is 70000 characters long, more than 255" in line
    assert len(result.stderr.splitlines()) < 5


@pytest.mark.parametrize("text, line", [
    ("&foo;<ASSET_DATA_REPORT></ASSET_DATA_REPORT>\n", 1),
    ('<?xml version="1.0"?>\n<ASSET_DATA_REPORT><HEADER>&foo;</HEADER></ASSET_DATA_REPORT>\n', 2),
    ('<?xml version="1.0"?>\n<!DOCTYPE ASSET_DATA_REPORT SYSTEM "x.dtd">\n'
     "<ASSET_DATA_REPORT><HEADER>&foo;</HEADER></ASSET_DATA_REPORT>\n", 3),
])
def test_an_undeclared_entity_is_named(tmp_path, text, line):
    path = tmp_path / "r.xml"
    path.write_text(text)
    with pytest.raises(ReportFormatError) as caught:
        open_report(str(path)).close()
    assert caught.value.message == f"the report uses the undeclared entity &foo; at line {line}"


def test_an_undeclared_entity_ends_the_run_with_one_line(tmp_path, lock_dir):
    (tmp_path / "r.xml").write_text("&foo;<ASSET_DATA_REPORT></ASSET_DATA_REPORT>\n")
    config = write_config(tmp_path, "report_file: r.xml\n")
    result = run_cli(f"-plugininfo={config}", f"-csvfile={tmp_path / 'o.csv'}")
    assert result.returncode == 2
    assert "undeclared entity &foo; at line 1" in one_error_line(result)


def test_a_report_file_that_does_not_exist_is_one_configuration_line(tmp_path, lock_dir):
    config = write_config(tmp_path, "template_id: 424242\nreport_file: no-such-report.xml\n")
    result = run_cli(f"-plugininfo={config}", f"-csvfile={tmp_path / 'o.csv'}", f"-statedir={tmp_path / 'state'}")
    assert result.returncode == 1
    line = one_error_line(result)
    assert "line 2: key 'report_file':" in line and "no-such-report.xml does not exist" in line
    assert not (tmp_path / "o.csv").exists()


def test_a_nul_byte_in_scanner_name_is_refused_at_load(tmp_path, lock_dir):
    (tmp_path / "r.xml").write_text("<ASSET_DATA_REPORT><HOST_LIST></HOST_LIST></ASSET_DATA_REPORT>")
    config = write_config(tmp_path, 'report_file: r.xml\nscanner_name: "Qualys\\x00Guard"\n')
    result = run_cli(f"-plugininfo={config}", f"-csvfile={tmp_path / 'o.csv'}", f"-statedir={tmp_path / 'state'}")
    assert result.returncode == 1
    assert "line 2: key 'scanner_name': may not contain quotes, newlines or other control characters" in one_error_line(result)
    assert not (tmp_path / "o.csv").exists()
