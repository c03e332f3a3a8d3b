"""Plain HTTP and verification (README "Security"), both tools: ``http://`` to a host that is not
loopback is refused at load time unless ``allow_plain_http: y``; every weak choice warns every run.

No test sends anything to an address that is not loopback: the refusals are shown to happen while
the configuration is read, before any client or socket exists.
"""
import logging
import os
import socket
import subprocess
import sys
import textwrap

import httpx
import pytest

from conftest import run_cli
from input_plugins import qualysguard
from qualys_connector import qgconfig, yamlconf
from qualys_connector.censys import settings as censys_settings
from qualys_connector.emulators.censys.server import CensysEmulator
from qualys_connector.emulators.qualys.server import QualysEmulator, TemplateSpec
from qualys_connector.errors import ConfigError
from qualys_connector.pipeline import Options, run

PASSWORD = "plain-http-pw"
FAR = "http://10.255.255.1"       # never contacted: every test stops before a client exists


@pytest.fixture
def warnings(caplog):
    logger = logging.getLogger("qualys_connector")
    logger.addHandler(caplog.handler)
    qgconfig._WARNED.clear()
    yield caplog
    logger.removeHandler(caplog.handler)
    qgconfig._WARNED.clear()


def qg_file(tmp_path, url, *more):
    path = tmp_path / "QualysGuard.yaml"
    path.write_text("user_id: u\npassword: p\ntemplate_id: 1\n" + f"url: {url}\n" + "".join(f"{m}\n" for m in more))
    path.chmod(0o600)
    return str(path)


def censys_file(tmp_path, asm_url, qualys_url, auth_more="", qualys_more=""):
    path = tmp_path / "settings.yaml"
    path.write_text(textwrap.dedent(f"""\
        authentication:
          asm_api_key: censys-key-123
          asm_api_url: {asm_url}
        """) + auth_more + textwrap.dedent(f"""\
        qualys:
          qualys_api_url: {qualys_url}
          qualys_username: u
          qualys_password: {PASSWORD}
        """) + qualys_more)
    path.chmod(0o600)
    return str(path)


# ---------------------------------------------------------------- the rule
@pytest.mark.parametrize("url,loopback", [("http://127.0.0.1:8080", True), ("http://127.9.9.9", True),
                                          ("http://[::1]:80", True), ("http://LOCALHOST:1", True),
                                          ("http://10.255.255.1", False), ("http://qualysapi.qualys.com", False),
                                          ("http://127.0.0.1.example.com", False), ("http://[::ffff:10.0.0.1]", False)])
def test_what_counts_as_loopback(url, loopback):
    assert yamlconf.is_loopback_url(url) is loopback


# ---------------------------------------------------------------- QualysGuard.yaml
def test_plain_http_to_a_far_host_is_a_config_error_naming_key_and_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        qgconfig.load(qg_file(tmp_path, FAR))
    assert "line 4: key 'url'" in str(info.value) and "plain http" in str(info.value)
    assert "allow_plain_http: y" in str(info.value)


def test_the_refusal_comes_before_any_client_or_socket(tmp_path, monkeypatch):
    touched = []
    monkeypatch.setattr(httpx.Client, "__init__", lambda *a, **k: touched.append("client") or None)
    monkeypatch.setattr(socket.socket, "connect", lambda *a, **k: touched.append("connect"))
    options = Options(plugin=qualysguard, plugininfo=qg_file(tmp_path, FAR), csvfile=str(tmp_path / "out.csv"))
    with pytest.raises(ConfigError, match="key 'url'"):
        run(options)
    assert touched == [] and not (tmp_path / "out.csv").exists()


def test_allow_plain_http_lets_it_through_with_a_warning(tmp_path, warnings):
    config = qgconfig.load(qg_file(tmp_path, FAR, "allow_plain_http: y"))
    assert config.url == FAR
    assert "is plain http to a host that is not loopback (allow_plain_http: y)" in warnings.text


def test_verify_n_warns(tmp_path, warnings):
    qgconfig.load(qg_file(tmp_path, "https://qualysapi.qualys.com", "verify: n"))
    assert "verify: n: the certificate of https://qualysapi.qualys.com is not checked" in warnings.text


def test_a_saved_report_asks_nobody_so_its_url_is_not_judged(tmp_path):
    (tmp_path / "r.xml").write_text("<x/>")
    path = tmp_path / "QualysGuard.yaml"
    path.write_text(f"report_file: r.xml\nurl: {FAR}\n")
    path.chmod(0o600)
    assert qgconfig.load(str(path)).url == FAR


def test_cli_refuses_far_plain_http_with_one_line_exit_1(tmp_path, lock_dir):
    result = run_cli(f"-pl={qg_file(tmp_path, FAR)}", f"-c={tmp_path / 'out.csv'}", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and "line 4: key 'url'" in errors[0] and "plain http" in errors[0]
    assert not (tmp_path / "out.csv").exists()


def test_loopback_plain_http_still_works_with_a_warning_every_run(tmp_path, lock_dir):
    with QualysEmulator(users={"u": "p"}, templates={"1": TemplateSpec(hosts=3, vulns_per_host=1, seed=1)}) as q:
        config = qg_file(tmp_path, q.url, "poll_interval: 0.05")
        for _ in range(2):
            result = run_cli(f"-pl={config}", f"-c={tmp_path / 'out.csv'}", cwd=tmp_path)
            assert result.returncode == 0, result.stderr
            assert result.stderr.count("is plain http: fine for the bundled emulators") == 1
    assert (tmp_path / "out.csv").read_text().startswith("SetSource,QualysGuard\n")


# ---------------------------------------------------------------- censys-qualys settings.yaml
@pytest.mark.parametrize("which", ["asm_api_url", "qualys_api_url"])
def test_censys_refuses_far_plain_http_for_either_url(tmp_path, which, monkeypatch):
    monkeypatch.delenv("CENSYS_API_URL", raising=False)
    urls = {"asm_api_url": "https://app.censys.io/api", "qualys_api_url": "https://qualysapi.qualys.com"}
    urls[which] = FAR
    with pytest.raises(ConfigError) as info:
        censys_settings.load(censys_file(tmp_path, urls["asm_api_url"], urls["qualys_api_url"]))
    assert f"key '{which}'" in str(info.value) and "line" in str(info.value)


def test_censys_url_from_the_environment_is_refused_by_its_name(tmp_path, monkeypatch):
    monkeypatch.setenv("CENSYS_API_URL", FAR)
    with pytest.raises(ConfigError, match="CENSYS_API_URL: .* plain http"):
        censys_settings.load(censys_file(tmp_path, "https://app.censys.io/api", "https://qualysapi.qualys.com"))


def test_censys_allow_plain_http_and_verify_n_warn(tmp_path, warnings, monkeypatch):
    monkeypatch.delenv("CENSYS_API_URL", raising=False)
    settings = censys_settings.load(censys_file(
        tmp_path, FAR, "https://qualysapi.qualys.com", auth_more="  allow_plain_http: y\n",
        qualys_more="  verify: n\n"))
    assert settings.asm_api_url == FAR and settings.verify is False
    assert "asm_api_url http://10.255.255.1 is plain http to a host that is not loopback" in warnings.text
    assert "verify: n: the certificate of https://qualysapi.qualys.com is not checked" in warnings.text


def test_censys_qualys_over_loopback_plain_http_warns_and_works(tmp_path):
    env = dict(os.environ, QC_LOCK_DIR=str(tmp_path))
    env.pop("CENSYS_API_URL", None)
    with CensysEmulator(api_key="censys-key-123", page_size=3) as censys, \
            QualysEmulator(users={"u": PASSWORD}) as qualys:
        censys.append([{"type": "HOST", "operation": "ASSOCIATE", "entity": {"ipAddress": "10.9.0.1"}}])
        path = censys_file(tmp_path, censys.url, qualys.url)
        result = subprocess.run([sys.executable, "-m", "qualys_connector.censys.cli", "once", "--settings", path],
                                capture_output=True, text=True, timeout=120, env=env)
        assets = set(qualys.state.asset_ips)
    assert result.returncode == 0, result.stderr
    assert "asm_api_url http://127.0.0.1" in result.stderr and "qualys_api_url http://127.0.0.1" in result.stderr
    assert result.stderr.count("is plain http: fine for the bundled emulators") == 2
    assert assets == {"10.9.0.1"}
