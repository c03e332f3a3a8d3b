"""The host input client over real TLS sockets against the FMC emulator (issue: host input core)."""
from __future__ import annotations

import os
import shutil
import socket

import pytest

from conftest import CLIENT_PASSWORD, run_cli


def sample_lines(count: int) -> list[str]:
    lines = ["SetSource,QualysGuard"]
    for i in range(count):
        ip = f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"
        lines.append(f"AddHost,{ip}")
        lines.append(f'AddScanResult,{ip},"QualysGuard",{1000 + i % 97},443,tcp,"Title {i}, quoted ""x""",'
                     f'"Description of finding {i}","cve_ids: CVE-2020-{i % 9999:04d}","bugtraq_ids: {i}"')
    lines.append("ScanFlush")
    return lines


def write_csv(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def env():
    return {"QC_PKCS12_PASSWORD": CLIENT_PASSWORD}


def test_thousands_of_commands_arrive_complete_and_in_order_with_a_small_max_size(tmp_path, pki, lock_dir):
    from qualys_connector.emulators.fmc.server import FMCEmulator
    lines = sample_lines(1500)                      # 3,002 commands
    source = write_csv(tmp_path / "in.csv", lines)
    with FMCEmulator(pki=pki, max_size=512, accept_unknown_hosts=True) as fmc:
        result = run_cli("-server=127.0.0.1", f"-port={fmc.port}", f"-pkcs12={pki.client_pkcs12}",
                         f"-pl={source}", "csv", env=env())
        assert result.returncode == 0, result.stderr
        received = [l for m in fmc.messages for l in m.decode().splitlines() if l != "SetSource,QualysGuard"]
        assert received == lines[1:]
        assert all(len(m) <= 512 for m in fmc.messages)
        assert all(m.startswith(b"SetSource,QualysGuard\n") for m in fmc.messages)
        hosts = fmc.netmap.export()["hosts"]
    assert len(hosts) == 1500
    result_999 = hosts["10.0.3.231"]["scan_results"]
    assert [(r["vuln_id"], r["port"], r["proto"]) for r in result_999] == [(str(1000 + 999 % 97), 443, "tcp")]
    assert result_999[0]["name"] == 'Title 999, quoted "x"'
    assert "Summary:" in result.stderr.splitlines()[-1] and "result=delivered" in result.stderr


def test_a_file_of_several_megabyte_blocks_arrives_complete_and_in_order(tmp_path, pki, lock_dir):
    """The csv check and the batching work a block of lines at a time: nothing lost at block edges."""
    from qualys_connector.emulators.fmc.server import FMCEmulator
    lines = sample_lines(12000)                     # ~2 MB: two blocks and a bit
    lines[7001] = "# a comment deep in the file"    # one block taken line by line
    source = write_csv(tmp_path / "in.csv", lines)
    assert os.path.getsize(source) > 1 << 20
    with FMCEmulator(pki=pki, max_size=4096, accept_unknown_hosts=True) as fmc:
        result = run_cli("-server=127.0.0.1", f"-port={fmc.port}", f"-pkcs12={pki.client_pkcs12}",
                         f"-pl={source}", "csv", env=env())
        assert result.returncode == 0, result.stderr
        received = [l for m in fmc.messages for l in m.decode().splitlines() if l != "SetSource,QualysGuard"]
        assert received == lines[1:]
        assert all(len(m) <= 4096 and m.startswith(b"SetSource,QualysGuard\n") for m in fmc.messages)
    assert f"data_messages={len(fmc.messages)}/{len(fmc.messages)}" in result.stderr
    assert "commands=24001" in result.stderr


@pytest.mark.parametrize("family", ["ipv4", "ipv6", "ipv6-bracketed", "ipv6-without-the-flag"])
def test_ipv4_and_ipv6(tmp_path, pki, lock_dir, family):
    from qualys_connector.emulators.fmc.server import FMCEmulator
    if family != "ipv4" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    host = "::1" if family != "ipv4" else "127.0.0.1"
    source = write_csv(tmp_path / "in.csv", sample_lines(20))
    with FMCEmulator(host=host, pki=pki, accept_unknown_hosts=True) as fmc:
        given = "[::1]" if family == "ipv6-bracketed" else host
        args = [f"-server={given}", f"-port={fmc.port}", f"-pkcs12={pki.client_pkcs12}", f"-pl={source}", "csv"]
        if family in ("ipv6", "ipv6-bracketed"):
            args.insert(0, "-ipv6")
        result = run_cli(*args, env=env())
        assert result.returncode == 0, result.stderr
        assert len(fmc.netmap.export()["hosts"]) == 20


@pytest.mark.parametrize("reply_type", [1, 2, 7])
def test_replies_are_read_whatever_their_frame_type(tmp_path, pki, lock_dir, reply_type):
    """The reply's TLV type is unconfirmed (docs/host-input.md §2.1): only ERROR (4) means an error."""
    from qualys_connector.emulators.fmc.server import FMCEmulator
    source = write_csv(tmp_path / "in.csv", sample_lines(3))
    with FMCEmulator(pki=pki, accept_unknown_hosts=True, reply_type=reply_type) as fmc:
        result = run_cli("-server=127.0.0.1", f"-port={fmc.port}", f"-pkcs12={pki.client_pkcs12}",
                         f"-pl={source}", "csv", env=env())
        assert result.returncode == 0, result.stderr
        assert len(fmc.netmap.export()["hosts"]) == 3


def test_fmc_error_lines_are_warnings_and_exit_2(tmp_path, pki, lock_dir):
    from qualys_connector.emulators.fmc.server import FMCEmulator
    source = write_csv(tmp_path / "in.csv", [
        "SetSource,QualysGuard", "AddHost,10.0.0.1",
        'AddScanResult,10.0.0.1,"QualysGuard",82003,,icmp,"ICMP timestamp","d","cve_ids:","bugtraq_ids:"',
        "ScanFlush"])
    with FMCEmulator(pki=pki, accept_unknown_hosts=True) as fmc:
        result = run_cli("-server=127.0.0.1", f"-port={fmc.port}", f"-pkcs12={pki.client_pkcs12}",
                         f"-pl={source}", "csv", env=env())
    assert result.returncode == 2
    assert "[WARNING] FMC:" in result.stderr and "replies_with_errors=1" in result.stderr


def test_no_pkcs12_given_uses_the_only_one_in_the_directory(tmp_path, pki, fmc, lock_dir):
    shutil.copy(pki.client_pkcs12, tmp_path / "CertFile.pkcs12")
    source = write_csv(tmp_path / "in.csv", sample_lines(3))
    result = run_cli("-se=127.0.0.1", f"-po={fmc.port}", f"-pl={source}", "csv", cwd=tmp_path, env=env())
    assert result.returncode == 0, result.stderr


def test_two_pkcs12_files_and_no_option_is_an_error_naming_them(tmp_path, pki, fmc, lock_dir):
    shutil.copy(pki.client_pkcs12, tmp_path / "a.pkcs12")
    shutil.copy(pki.client_pkcs12, tmp_path / "b.pkcs12")
    source = write_csv(tmp_path / "in.csv", sample_lines(3))
    result = run_cli("-se=127.0.0.1", f"-po={fmc.port}", f"-pl={source}", "csv", cwd=tmp_path, env=env())
    assert result.returncode == 1
    assert "a.pkcs12, b.pkcs12" in result.stderr and "-pkcs12" in result.stderr


@pytest.mark.parametrize("case", ["missing", "wrong-password", "no-password", "corrupt", "unreadable", "pem",
                                  "yaml"])
def test_bad_pkcs12_files_are_one_clear_line(tmp_path, pki, fmc, lock_dir, case):
    cert = tmp_path / "c.pkcs12"
    shutil.copy(pki.client_pkcs12, cert)
    environment = env()
    if case == "missing":
        cert.unlink()
    elif case == "wrong-password":
        environment = {"QC_PKCS12_PASSWORD": "not-the-password"}
    elif case == "no-password":
        environment = {"QC_PKCS12_PASSWORD": ""}
    elif case == "corrupt":
        cert.write_bytes(cert.read_bytes()[:100])
    elif case == "pem":
        cert.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    elif case == "yaml":
        cert.write_text("user_id: someone\n")
    elif case == "unreadable":
        if os.geteuid() == 0:
            cert.write_bytes(b"")       # root reads everything: use an empty file instead
        else:
            cert.chmod(0)
    source = write_csv(tmp_path / "in.csv", sample_lines(2))
    result = run_cli("-se=127.0.0.1", f"-po={fmc.port}", f"-pk={cert}", f"-pl={source}", "csv", env=environment)
    assert result.returncode == 1, result.stderr
    assert "PKCS#12" in result.stderr and "Traceback" not in result.stderr
    assert "not-the-password" not in result.stderr
    if case in ("pem", "yaml"):
        assert ("is a PEM file, not a PKCS#12 file" if case == "pem" else "is not a PKCS#12 file") in result.stderr


def test_legacy_pkcs12_encryptions_work(tmp_path, pki, fmc, lock_dir):
    from qualys_connector.emulators.pki import write_client_pkcs12
    source = write_csv(tmp_path / "in.csv", sample_lines(2))
    for encryption in ("3des", "rc2", "aes", "none"):
        path = tmp_path / f"{encryption}.pkcs12"
        try:
            write_client_pkcs12(str(path), pki, password=None if encryption == "none" else "legacy-pw",
                                encryption=encryption)
        except Exception:  # RC2 needs the openssl CLI with -legacy
            if encryption == "rc2":
                continue
            raise
        result = run_cli("-se=127.0.0.1", f"-po={fmc.port}", f"-pk={path}", f"-pl={source}", "csv",
                         env={"QC_PKCS12_PASSWORD": "" if encryption == "none" else "legacy-pw"})
        assert result.returncode == 0, (encryption, result.stderr)


def test_connection_refused(tmp_path, pki, lock_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = write_csv(tmp_path / "in.csv", sample_lines(2))
    result = run_cli("-se=127.0.0.1", f"-po={port}", f"-pk={pki.client_pkcs12}", f"-pl={source}", "csv", env=env())
    assert result.returncode == 2
    assert f"cannot connect to the FMC at 127.0.0.1:{port}" in result.stderr and f"port {port} is open" in result.stderr


def test_untrusted_client_certificate_is_rejected_at_the_handshake(tmp_path, pki, fmc, lock_dir):
    source = write_csv(tmp_path / "in.csv", sample_lines(2))
    # -fmcca: our side trusts the FMC (its CA is not the one in the foreign PKCS#12), so the refusal is the FMC's
    result = run_cli("-se=127.0.0.1", f"-po={fmc.port}", f"-pk={pki.untrusted_client_pkcs12}", f"-fmcca={pki.ca_cert}",
                     f"-pl={source}", "csv", env=env())
    assert result.returncode == 1, result.stderr            # a person must act: exit 1
    assert "refused the TLS handshake" in result.stderr and "did not accept the client certificate" in result.stderr
    assert fmc.stats.data_messages == 0


def test_a_port_that_does_not_speak_tls_is_named_as_such(tmp_path, pki, lock_dir):
    import threading
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def answer_in_plain_text():
            conn, _ = listener.accept()
            conn.recv(1024)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            conn.close()
        threading.Thread(target=answer_in_plain_text, daemon=True).start()
        source = write_csv(tmp_path / "in.csv", sample_lines(2))
        result = run_cli("-se=127.0.0.1", f"-po={port}", f"-pk={pki.client_pkcs12}", f"-pl={source}", "csv", env=env())
    assert result.returncode == 2
    assert f"the service at 127.0.0.1:{port} does not speak TLS" in result.stderr and "Traceback" not in result.stderr


def test_an_ipv4_address_with_ipv6_says_to_drop_the_option(tmp_path, pki, lock_dir):
    source = write_csv(tmp_path / "in.csv", sample_lines(2))
    result = run_cli("-i", "-se=127.0.0.1", "-po=9", f"-pk={pki.client_pkcs12}", f"-pl={source}", "csv", env=env())
    assert result.returncode == 2 and "drop -ipv6" in result.stderr


def test_server_closing_mid_run_says_how_far_it_got(tmp_path, pki, lock_dir):
    from qualys_connector.emulators.fmc.server import FMCEmulator
    source = write_csv(tmp_path / "in.csv", sample_lines(400))
    with FMCEmulator(pki=pki, max_size=1024, close_after_data=3, accept_unknown_hosts=True) as fmc:
        result = run_cli("-se=127.0.0.1", f"-po={fmc.port}", f"-pk={pki.client_pkcs12}", f"-pl={source}",
                         "csv", env=env())
    assert result.returncode == 2
    assert "2 of" in result.stderr and "DATA messages were acknowledged" in result.stderr
    assert "data_messages=2/" in result.stderr


def test_a_line_longer_than_max_size_is_refused_before_any_data(tmp_path, pki, lock_dir):
    from qualys_connector.emulators.fmc.server import FMCEmulator
    lines = sample_lines(5)
    lines.insert(3, 'AddScanResult,10.0.0.9,"X",1,,,"' + "t" * 900 + '","d","cve_ids:","bugtraq_ids:"')
    source = write_csv(tmp_path / "in.csv", lines)
    with FMCEmulator(pki=pki, max_size=512, accept_unknown_hosts=True) as fmc:
        result = run_cli("-se=127.0.0.1", f"-po={fmc.port}", f"-pk={pki.client_pkcs12}", f"-pl={source}",
                         "csv", env=env())
        assert fmc.stats.data_messages == 0
    assert result.returncode == 1
    assert "line 4" in result.stderr and "512" in result.stderr


def test_the_password_never_appears_in_the_log_at_any_level(tmp_path, pki, fmc, lock_dir):
    source = write_csv(tmp_path / "in.csv", sample_lines(3))
    log = tmp_path / "run.log"
    result = run_cli("-se=127.0.0.1", f"-po={fmc.port}", f"-pk={pki.client_pkcs12}",
                     f"-password={CLIENT_PASSWORD}", "-le=3", f"-lo={log}", "-st", f"-pl={source}", "csv")
    assert result.returncode == 0, result.stderr
    everything = result.stderr + result.stdout + log.read_text()
    assert CLIENT_PASSWORD not in everything
    assert "visible to other users" in everything


def test_no_key_material_is_written_to_disk(tmp_path, pki, fmc, lock_dir):
    source = write_csv(tmp_path / "in.csv", sample_lines(3))
    before = set(os.listdir(tmp_path))
    result = run_cli("-se=127.0.0.1", f"-po={fmc.port}", f"-pk={pki.client_pkcs12}", f"-pl={source}", "csv",
                     cwd=tmp_path, env=dict(env(), TMPDIR=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert set(os.listdir(tmp_path)) - {"locks"} == before
