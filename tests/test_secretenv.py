"""Every secret environment variable X has an X_FILE form (Kubernetes/Docker secret files)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import CLIENT_PASSWORD
from qualys_connector.emulators.fmc.server import FMCEmulator
from qualys_connector.emulators.qualys.server import QualysEmulator, TemplateSpec
from qualys_connector.errors import ConfigError
from qualys_connector.secretenv import read_secret

QPW = "file-qualys-pw"


@pytest.fixture
def clean(monkeypatch):
    for name in ("QC_TEST_SECRET", "QC_TEST_SECRET_FILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_neither_form_set_is_none_and_the_plain_form_is_read_as_before(clean):
    assert read_secret("QC_TEST_SECRET") is None
    clean.setenv("QC_TEST_SECRET", "pw\n")
    assert read_secret("QC_TEST_SECRET") == "pw\n"


def test_exactly_one_trailing_newline_is_stripped(clean, tmp_path):
    path = tmp_path / "s"
    clean.setenv("QC_TEST_SECRET_FILE", str(path))
    for content, expected in (("pw", "pw"), ("pw\n", "pw"), ("pw\n\n", "pw\n"), (" p w \n", " p w ")):
        path.write_text(content)
        assert read_secret("QC_TEST_SECRET") == expected


def test_both_forms_set_is_an_error_naming_both(clean, tmp_path):
    (tmp_path / "s").write_text("pw")
    clean.setenv("QC_TEST_SECRET", "pw")
    clean.setenv("QC_TEST_SECRET_FILE", str(tmp_path / "s"))
    with pytest.raises(ConfigError, match="both QC_TEST_SECRET and QC_TEST_SECRET_FILE are set") as info:
        read_secret("QC_TEST_SECRET")
    assert info.value.exit_code == 1


@pytest.mark.parametrize("make, reason", [
    (lambda p: None, "No such file"),
    (lambda p: p.mkdir(), "Is a directory"),
    (lambda p: p.write_text(""), "empty"),
    (lambda p: p.write_text("\n"), "empty"),
    (lambda p: p.write_bytes(b"\xff\xfe"), "not UTF-8"),
])
def test_a_file_that_gives_no_secret_is_an_error_naming_variable_and_path(clean, tmp_path, make, reason):
    path = tmp_path / "secret"
    make(path)
    clean.setenv("QC_TEST_SECRET_FILE", str(path))
    with pytest.raises(ConfigError) as info:
        read_secret("QC_TEST_SECRET")
    assert f"QC_TEST_SECRET_FILE={path}" in str(info.value) and reason in str(info.value)


# ---------------------------------------------------------------- end to end
def test_passwords_from_files_deliver_and_never_show_in_the_log(tmp_path, pki):
    (tmp_path / "p12").write_text(CLIENT_PASSWORD + "\n")
    (tmp_path / "qualys").write_text(QPW + "\n")
    env = dict(os.environ, QC_PKCS12_PASSWORD_FILE=str(tmp_path / "p12"), QC_QUALYS_PASSWORD_FILE=str(tmp_path / "qualys"),
               QC_LOCK_DIR=str(tmp_path / "locks"))
    env.pop("QC_PKCS12_PASSWORD", None)
    env.pop("QC_QUALYS_PASSWORD", None)
    with QualysEmulator(users={"u": QPW}, templates={"1": TemplateSpec(hosts=6, vulns_per_host=2)}) as q, \
            FMCEmulator(pki=pki) as fmc:
        config = tmp_path / "QualysGuard.yaml"
        config.write_text(f"user_id: u\ntemplate_id: 1\nurl: {q.url}\nadd_host: y\npoll_interval: 0.05\n")
        config.chmod(0o600)
        args = [sys.executable, "-m", "qualys_connector", "-se=127.0.0.1", f"-po={fmc.port}",
                f"-pk={pki.client_pkcs12}", f"-pl={config}", "-level=3"]
        result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "result=delivered" in result.stderr and fmc.stats.data_messages > 0
        assert CLIENT_PASSWORD not in result.stderr and QPW not in result.stderr
        both = subprocess.run(args, env=dict(env, QC_PKCS12_PASSWORD=CLIENT_PASSWORD), capture_output=True,
                              text=True, timeout=120)
    assert both.returncode == 1 and "both QC_PKCS12_PASSWORD and QC_PKCS12_PASSWORD_FILE" in both.stderr
    assert "Traceback" not in both.stderr and CLIENT_PASSWORD not in both.stderr


def test_censys_api_key_from_a_file(tmp_path):
    from qualys_connector.emulators.censys.server import CensysEmulator
    from test_censys import KEY, QPW as CQPW, host, write_settings
    with CensysEmulator(api_key=KEY) as censys, QualysEmulator(users={"u": CQPW}) as qualys:
        censys.append([host("198.51.100.31", "ASSOCIATE")])
        settings = write_settings(tmp_path, censys.url, qualys.url)
        with open(settings) as fh:
            text = fh.read().replace(f"asm_api_key: {KEY}", "asm_api_key: ''")
        with open(settings, "w") as fh:
            fh.write(text)
        (tmp_path / "key").write_text(KEY + "\n")
        run = lambda **env: subprocess.run(
            [sys.executable, "-m", "qualys_connector.censys.cli", "once", "--settings", settings],
            capture_output=True, text=True, timeout=120, env=dict(os.environ, QC_LOCK_DIR=str(tmp_path), **env))
        missing = run(CENSYS_ASM_API_KEY_FILE=str(tmp_path / "nokey"))
        assert missing.returncode == 1 and f"CENSYS_ASM_API_KEY_FILE={tmp_path / 'nokey'}" in missing.stderr
        ok = run(CENSYS_ASM_API_KEY_FILE=str(tmp_path / "key"))
        assert ok.returncode == 0, ok.stderr
        assert qualys.state.asset_ips == {"198.51.100.31"}


def test_every_secret_variable_the_code_reads_has_its_file_form_in_the_readme():
    """Secrets are read only through read_secret (directly or as a key's ``env=``), so each has an
    X_FILE form; the README's Secrets section must list every one of them."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    source = "".join(p.read_text() for d in ("qualys_connector", "input_plugins")
                     for p in (repo / d).rglob("*.py") if "emulators" not in p.parts)
    names = set(re.findall(r'(?:read_secret\(|env=)"([A-Z0-9_]+)"', source))
    assert {"QC_PKCS12_PASSWORD", "QC_QUALYS_PASSWORD", "QC_PROXY_PASSWORD", "CENSYS_ASM_API_KEY"} <= names
    readme = (repo / "README.md").read_text()
    secrets = readme.split("## Secrets", 1)[1].split("\n## ", 1)[0]
    assert [n for n in sorted(names) if f"`{n}_FILE`" not in secrets] == []
    # and no secret reaches the code through os.environ directly
    assert not re.search(r'environ(?:\.get)?[\[(]"(?:%s)"' % "|".join(n for n in names if n != "QC_PKCS12_PASSWORD"),
                         source)
