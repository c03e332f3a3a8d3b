"""QualysGuard.yaml (README "QualysGuard.yaml"): every key validated, errors name the key and the line."""
import os
import textwrap

import pytest

from qualys_connector import qgconfig
from qualys_connector.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(tmp_path, text, name="QualysGuard.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    path.chmod(0o600)
    return str(path)


def test_the_seed_sample_file_loads(tmp_path):
    cfg = qgconfig.load(write(tmp_path, """\
        # Required Parameters
        user_id: dirk_g
        password: 'd0ntp@nlc'
        template_id: 424242
        # Optional Parameters
        add_host: y
        ip_ranges: 192.168.1.0/24, 10.1.2.3-10.1.2.10, 42.4.2.1
        proxy: https://192.168.1.100:443
        proxy_username: zaphod
        proxy_password: 't0w3L'
        """))
    assert (cfg.user_id, cfg.password, cfg.template_id) == ("dirk_g", "d0ntp@nlc", "424242")
    assert cfg.add_host is True and cfg.url == "https://qualysapi.qualys.com"
    assert "10.1.2.5" in cfg.ip_ranges and "10.1.2.11" not in cfg.ip_ranges and "192.168.1.77" in cfg.ip_ranges
    assert cfg.proxy == "https://192.168.1.100:443" and cfg.proxy_password == "t0w3L"
    assert (cfg.vuln_types, cfg.min_severity, cfg.set_os, cfg.scanner_name) == (("Vuln", "Practice"), 1, False, "QualysGuard")


def test_the_example_file_in_the_repo_loads(tmp_path):
    text = open(os.path.join(REPO, "QualysGuard.yaml.example")).read()
    cfg = qgconfig.load(write(tmp_path, text))
    assert cfg.template_id == "424242" and cfg.ip_ranges.everything


def test_unknown_key_is_named_with_its_line(tmp_path):
    path = write(tmp_path, "user_id: a\npassword: b\ntemplate_id: 1\ntemplate: 2\n")
    with pytest.raises(ConfigError) as info:
        qgconfig.load(path)
    assert "line 4" in str(info.value) and "unknown key 'template'" in str(info.value)


def test_missing_required_key(tmp_path):
    with pytest.raises(ConfigError) as info:
        qgconfig.load(write(tmp_path, "user_id: a\npassword: b\n"))
    assert "template_id" in str(info.value)


def test_malformed_yaml_names_the_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        qgconfig.load(write(tmp_path, "user_id: a\npassword: 'unterminated\ntemplate_id: 1\n"))
    assert "line" in str(info.value) and "not valid YAML" in str(info.value)


@pytest.mark.parametrize("line,key", [
    ("template_id: abc", "template_id"), ("add_host: maybe", "add_host"),
    ("ip_ranges: 10.0.0.1, banana", "ip_ranges"), ("min_severity: 9", "min_severity"),
    ("vuln_types: Vuln, Bogus", "vuln_types"), ("url: ftp://x", "url"), ("timeout: soon", "timeout"),
    ("proxy: 192.168.1.1:3128", "proxy"), ("remove_missing: perhaps", "remove_missing"),
    ("max_clear: 150%", "max_clear"), ("max_clear: half", "max_clear"), ("max_clear: [1]", "max_clear"),
])
def test_bad_values_name_key_and_line(tmp_path, line, key):
    third = "add_host: n" if key == "template_id" else "template_id: 1"
    path = write(tmp_path, f"user_id: a\npassword: b\n{third}\n{line}\n")
    with pytest.raises(ConfigError) as info:
        qgconfig.load(path)
    message = str(info.value)
    assert f"key '{key}'" in message and "line 4" in message, message


def test_passwords_from_the_environment_win(tmp_path, monkeypatch):
    monkeypatch.setenv("QC_QUALYS_PASSWORD", "from-env")
    monkeypatch.setenv("QC_PROXY_PASSWORD", "proxy-env")
    cfg = qgconfig.load(write(tmp_path, "user_id: a\ntemplate_id: 1\nproxy_password: x\n"))
    assert cfg.password == "from-env" and cfg.proxy_password == "proxy-env"


def test_report_file_makes_credentials_optional_and_is_relative_to_the_file(tmp_path):
    (tmp_path / "saved.xml").write_text("<ASSET_DATA_REPORT/>")
    cfg = qgconfig.load(write(tmp_path, "report_file: saved.xml\nvuln_types: [Vuln, Ig]\n"))
    assert cfg.report_file == str(tmp_path / "saved.xml") and cfg.vuln_types == ("Vuln", "Ig")


def test_template_override_for_process_multiple(tmp_path):
    cfg = qgconfig.load(write(tmp_path, "user_id: a\npassword: b\ntemplate_id: 1\n"), template_override="535353")
    assert cfg.template_id == "535353"


def test_world_readable_file_warns(tmp_path, caplog):
    path = write(tmp_path, "user_id: a\npassword: b\ntemplate_id: 1\n")
    os.chmod(path, 0o644)
    import logging
    logger = logging.getLogger("qualys_connector")
    logger.addHandler(caplog.handler)
    try:
        qgconfig.load(path)
    finally:
        logger.removeHandler(caplog.handler)
    assert "readable by other users" in caplog.text


def test_remove_missing_and_max_clear(tmp_path):
    cfg = qgconfig.load(write(tmp_path, "user_id: a\npassword: b\ntemplate_id: 1\n"))
    assert cfg.remove_missing is True and str(cfg.max_clear) == "50%"
    cfg = qgconfig.load(write(tmp_path, "user_id: a\npassword: b\ntemplate_id: 1\nremove_missing: n\nmax_clear: 2000\n"))
    assert cfg.remove_missing is False and str(cfg.max_clear) == "2000" and not cfg.max_clear.percent


@pytest.mark.parametrize("make, says", [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "is not a regular file"),
])
def test_a_report_file_that_cannot_be_read_is_refused_at_load_with_key_and_line(tmp_path, make, says):
    make(tmp_path / "saved.xml")
    with pytest.raises(ConfigError) as caught:
        qgconfig.load(write(tmp_path, "vuln_types: Vuln\nreport_file: saved.xml\n"))
    text = str(caught.value)
    assert "line 2" in text and "report_file" in text and says in text and str(tmp_path / "saved.xml") in text


@pytest.mark.parametrize("key", ["scanner_name", "source_name", "domain"])
@pytest.mark.parametrize("value", ['"a\\x00b"', '"a\\tb"', '"a\\nb"', "'a\"b'"])
def test_names_written_into_host_input_lines_refuse_control_characters_and_quotes(tmp_path, key, value):
    with pytest.raises(ConfigError) as caught:
        qgconfig.load(write(tmp_path, f"user_id: a\npassword: b\ntemplate_id: 1\n{key}: {value}\n"))
    assert "line 4" in str(caught.value) and key in str(caught.value) and "control characters" in str(caught.value)
