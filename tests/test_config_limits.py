"""Odd values and huge files in QualysGuard.yaml and settings.yaml: one clear line each (issue: robustness)."""
from __future__ import annotations

import textwrap

import pytest

from conftest import run_cli
from qualys_connector import qgconfig
from qualys_connector.censys import settings as censys_settings
from qualys_connector.errors import ConfigError

BASE = "user_id: u\npassword: qualys-pw-long\ntemplate_id: 424242\n"


def write(tmp_path, text, name="QualysGuard.yaml"):
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


def load_error(path) -> str:
    with pytest.raises(ConfigError) as info:
        qgconfig.load(path)
    return str(info.value)


def test_a_huge_config_file_is_refused_by_name(tmp_path):
    path = tmp_path / "QualysGuard.yaml"
    with open(path, "wb") as fh:
        fh.truncate(100 * 1024 * 1024)          # sparse: 100 MB that cost no disk
    message = load_error(str(path))
    assert f"{path} is larger than 1024 KiB" in message


def test_deep_nesting_is_a_config_error_not_a_recursion_error(tmp_path):
    path = write(tmp_path, BASE + "ip_ranges: " + "[" * 20000 + "]" * 20000 + "\n")
    message = load_error(path)
    assert "nested too deeply" in message and path in message


@pytest.mark.parametrize("key", ["timeout", "poll_interval", "max_wait"])
@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf", ".NaN"])
def test_infinite_or_nan_durations_name_key_and_line(tmp_path, key, value):
    path = write(tmp_path, BASE + f"{key}: {value}\n")
    message = load_error(path)
    assert f"line 4: key '{key}'" in message and "not a finite number" in message


@pytest.mark.parametrize("key, limit", [("timeout", "86400"), ("poll_interval", "86400"), ("max_wait", "2592000")])
def test_durations_beyond_any_use_are_refused_with_key_and_line(tmp_path, key, limit):
    """1e300 seconds is finite, but overflows the clock's arithmetic once the run waits on it."""
    message = load_error(write(tmp_path, BASE + f"{key}: 1e300\n"))
    assert f"line 4: key '{key}'" in message and f"above the maximum of {limit}" in message
    assert qgconfig.load(write(tmp_path, BASE + f"{key}: {limit}\n")) is not None


def test_settings_yaml_interval_and_timeout_have_a_maximum(tmp_path):
    for extra, key in (("  timeout: 1e300\n", "timeout"), ("run:\n  interval: 100000000000000000000\n", "interval")):
        with pytest.raises(ConfigError) as info:
            censys_settings.load(write(tmp_path, settings_text(extra), "settings.yaml"))
        assert f"key '{key}'" in str(info.value) and "above the maximum" in str(info.value)


@pytest.mark.parametrize("value", ["0x1A", "0o32", "0b11010", "26_0"])
def test_template_id_must_be_decimal_digits(tmp_path, value):
    message = load_error(write(tmp_path, f"user_id: u\npassword: p\ntemplate_id: {value}\n"))
    assert "line 3: key 'template_id'" in message and "decimal digits" in message


def test_a_decimal_template_id_still_loads(tmp_path):
    assert qgconfig.load(write(tmp_path, BASE)).template_id == "424242"


def test_min_severity_in_hex_is_refused_too(tmp_path):
    assert "decimal digits" in load_error(write(tmp_path, BASE + "min_severity: 0x3\n"))


@pytest.mark.parametrize("bundle", ["/dev/null", "text"])
@pytest.mark.parametrize("key", ["ca_bundle", "fmc_ca"])
def test_a_ca_file_that_is_not_pem_says_so(tmp_path, bundle, key):
    if bundle == "text":
        bundle = write(tmp_path, "hello\n", "bundle.txt")
    message = load_error(write(tmp_path, BASE + f"{key}: {bundle}\n"))
    assert f"key '{key}'" in message and "is not a PEM file" in message and "does not exist" not in message


def test_a_missing_ca_bundle_still_says_it_does_not_exist(tmp_path):
    message = load_error(write(tmp_path, BASE + "ca_bundle: nowhere.pem\n"))
    assert "does not exist" in message


def settings_text(extra_qualys=""):
    return textwrap.dedent("""\
        authentication:
          asm_api_key: censys-key-long
        qualys:
          qualys_api_url: https://qualysapi.qualys.com
          qualys_username: u
          qualys_password: qualys-pw-long
        """) + extra_qualys


@pytest.mark.parametrize("bundle", ["/dev/null", "text"])
def test_settings_yaml_ca_bundle_must_be_pem(tmp_path, bundle):
    if bundle == "text":
        bundle = write(tmp_path, "hello\n", "bundle.txt")
    path = write(tmp_path, settings_text(f"  ca_bundle: {bundle}\n"), "settings.yaml")
    with pytest.raises(ConfigError) as info:
        censys_settings.load(path)
    assert "key 'ca_bundle'" in str(info.value) and "is not a PEM file" in str(info.value)


def test_settings_yaml_timeout_must_be_finite(tmp_path):
    path = write(tmp_path, settings_text("  timeout: .inf\n"), "settings.yaml")
    with pytest.raises(ConfigError) as info:
        censys_settings.load(path)
    assert "line 7: key 'timeout'" in str(info.value) and "finite" in str(info.value)


def test_settings_yaml_that_is_huge_is_refused(tmp_path):
    path = tmp_path / "settings.yaml"
    with open(path, "wb") as fh:
        fh.truncate(100 * 1024 * 1024)
    with pytest.raises(ConfigError) as info:
        censys_settings.load(str(path))
    assert "larger than 1024 KiB" in str(info.value)


@pytest.mark.parametrize("section, key, value, says", [
    ("qualys", "proxy", '"http://[proxy"', "has no valid host name or address"),
    ("qualys", "proxy", "proxy.example.com:3128", "is not a proxy URL"),
    ("qualys", "qualys_api_url", '"http://[::1:1"', "is not a valid URL"),
    ("qualys", "qualys_api_url", '"https://qualysapi.qualys.com/\\nx"', "holds a space, newline or control character"),
    ("authentication", "asm_api_url", '"http://[::1:1"', "is not a valid URL"),
    ("authentication", "asm_api_url", '"https:///api"', "names no host"),
])
def test_settings_yaml_urls_and_proxy_that_cannot_be_used_name_key_and_line(tmp_path, section, key, value, says):
    text = settings_text(f"  {key}: {value}\n" if key == "proxy" else "")
    if key == "qualys_api_url":
        text = text.replace("  qualys_api_url: https://qualysapi.qualys.com\n", f"  {key}: {value}\n")
    if section == "authentication":
        text = text.replace("  asm_api_key: censys-key-long\n", f"  asm_api_key: censys-key-long\n  {key}: {value}\n")
    path = write(tmp_path, text, "settings.yaml")
    with pytest.raises(ConfigError) as info:
        censys_settings.load(path)
    assert f"key '{key}'" in str(info.value) and says in str(info.value) and "line " in str(info.value)


def test_a_censys_api_url_from_the_environment_that_cannot_be_used_is_named_as_such(tmp_path, monkeypatch):
    monkeypatch.setenv("CENSYS_API_URL", "http://[::1:1")
    with pytest.raises(ConfigError) as info:
        censys_settings.load(write(tmp_path, settings_text(), "settings.yaml"))
    assert str(info.value).startswith("CENSYS_API_URL: 'http://[::1:1' is not a valid URL")


def test_censys_qualys_with_a_malformed_proxy_is_one_line_and_exit_1(tmp_path):
    import subprocess
    import sys
    path = write(tmp_path, settings_text('  proxy: "http://[proxy"\n'), "settings.yaml")
    result = subprocess.run([sys.executable, "-m", "qualys_connector.censys.cli", "once", "--settings", path,
                             "--state-dir", str(tmp_path / "state")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and "line 7: key 'proxy'" in errors[0] and "has no valid host name" in errors[0]


# ---------------------------------------------------------------- end to end: one line, exit 1
@pytest.mark.parametrize("case", ["huge", "deep", "inf", "hex", "devnull", "huge-timeout"])
def test_the_cli_reports_each_as_one_line_and_exit_1(tmp_path, lock_dir, case):
    if case == "huge":
        path = tmp_path / "QualysGuard.yaml"
        with open(path, "wb") as fh:
            fh.truncate(100 * 1024 * 1024)
        path = str(path)
    else:
        body = {"deep": BASE + "ip_ranges: " + "[" * 20000 + "]" * 20000 + "\n", "inf": BASE + "timeout: .inf\n",
                "hex": "user_id: u\npassword: p\ntemplate_id: 0x1A\n", "devnull": BASE + "ca_bundle: /dev/null\n", "huge-timeout": BASE + "timeout: 1e300\n"}[case]
        path = write(tmp_path, body)
    result = run_cli(f"-pl={path}", f"-c={tmp_path / 'o.csv'}", timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and path in errors[0]
