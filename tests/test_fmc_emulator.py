"""The FMC emulator behaves like the host input service of the spec, checked with hand-built bytes."""
import json
import socket
import ssl
import struct
import subprocess
import sys
import time

import pytest

from qualys_connector.emulators.fmc.netmap import NetworkMap
from qualys_connector.emulators.fmc.processor import Session, Stats
from qualys_connector.emulators.fmc.server import FMCEmulator


def session(accept=True):
    return Session(NetworkMap(), Stats(), accept_unknown_hosts=accept)


ASR = 'AddScanResult,{ip},"QualysGuard",{qid},{port},{proto},"t{qid}","d","cve_ids: CVE-2020-1","bugtraq_ids: 7"'


def results(s, ip):
    return [(r["vuln_id"], r["port"], r["proto"]) for r in s.netmap.export()["hosts"][ip]["scan_results"]]


def test_reply_counts_commands_except_source_and_domain():
    s = session()
    reply = s.process("SetSource,Q\nSetDomain,Global\nAddHost,10.0.0.1\n# comment\n\nScanFlush\n")
    assert reply == "Done processing 2 commands.\n"


def test_results_wait_in_the_queue_until_scanflush_and_survive_message_boundaries():
    s = session()
    s.process("SetSource,Q\n" + ASR.format(ip="10.0.0.1", qid=1, port=80, proto="tcp"))
    assert s.netmap.export()["hosts"] == {}
    s.process("SetSource,Q\n" + ASR.format(ip="10.0.0.1", qid=2, port="", proto="") + "\nScanFlush")
    assert results(s, "10.0.0.1") == [("1", 80, "tcp"), ("2", None, None)]


def test_scanflush_replaces_and_scanupdate_merges():
    s = session()
    s.process("\n".join([ASR.format(ip="10.0.0.1", qid=1, port=80, proto="tcp"), "ScanFlush"]))
    s.process("\n".join([ASR.format(ip="10.0.0.1", qid=2, port=80, proto="tcp"), "ScanUpdate"]))
    assert results(s, "10.0.0.1") == [("1", 80, "tcp"), ("2", 80, "tcp")]
    s.process("\n".join([ASR.format(ip="10.0.0.1", qid=3, port=22, proto="6"), "ScanFlush"]))
    assert results(s, "10.0.0.1") == [("3", 22, "tcp")]


def test_leftover_queue_is_applied_as_an_update_when_the_connection_closes():
    s = session()
    s.process("\n".join([ASR.format(ip="10.0.0.1", qid=1, port=80, proto="tcp"), "ScanFlush"]))
    s.process(ASR.format(ip="10.0.0.1", qid=2, port=80, proto="tcp"))
    s.close()
    assert len(results(s, "10.0.0.1")) == 2


def test_unknown_hosts_results_are_dropped_unless_added():
    s = session(accept=False)
    reply = s.process("\n".join(["SetSource,Q", ASR.format(ip="10.0.0.1", qid=1, port=80, proto="tcp"),
                                 "AddHost,10.0.0.2", ASR.format(ip="10.0.0.2", qid=1, port=80, proto="tcp"),
                                 "ScanFlush"]))
    assert reply.startswith("Done processing")
    assert list(s.netmap.export()["hosts"]) == ["10.0.0.2"] and s.stats.dropped_unknown_host == 1


@pytest.mark.parametrize("line,needle", [
    (ASR.format(ip="10.0.0.1", qid=1, port="", proto="icmp"), "Wrong protocol"),
    (ASR.format(ip="10.0.0.1", qid=1, port=0, proto="tcp"), "port must be 1-65535"),
    (ASR.format(ip="10.0.0.300", qid=1, port=80, proto="tcp"), "Failed to recognize IP address"),
    ('AddScanResult,10.0.0.1,"Q",abc,80,tcp,"t","d","cve_ids:","bugtraq_ids:"', "not an integer vuln id"),
    ('AddScanResult,10.0.0.1,"Q",5,80,tcp,"t","d","CVE-1","bugtraq_ids:"', "CSV Error: can not find the header"),
    ('AddScanResult,10.0.0.1,"Q",5,80,tcp,"t","d"', "Wrong command syntax on Vuln ID"),
    ("AddHost,10.0.0.1", "[AddHost]: Must set source application"),
    ("SetMap,SomeMap", "[SetMap]: Must set source application"),
    ('AddHost,"10.0.0.1', "CSV Error"),
])
def test_bad_lines_get_error_lines_like_the_server(line, needle):
    reply = session().process(line + "\n")
    assert needle in reply and reply.rstrip().endswith("commands.")


def test_unknown_commands_and_csv_errors_are_not_counted():
    s = session()
    reply = s.process('SetSource,Q\nBogus,1\nAddHost,"10.0.0.1\nAddHost,10.0.0.2\n')
    # the CSV error has a reply line; the unknown command only a warning in the emulator's log
    assert reply.endswith("Done processing 1 commands.\n") and reply.count("\n") == 2
    assert "CSV Error" in reply and s.stats.unknown_commands == 1


def test_a_parent_domain_certificate_must_name_a_leaf_before_setsource():
    s = Session(NetworkMap(), Stats(), accept_unknown_hosts=True, leaf_domains=("Global\\East",))
    reply = s.process("SetSource,Q\nAddHost,10.0.0.1\nAddHost,10.0.0.2\n")
    assert reply.splitlines() == ["[SetSource]: Global is not a leaf domain; name one with SetDomain first",
                                  "Done processing 0 commands."]           # the rest of the message is not run
    assert s.netmap.export()["hosts"] == {}
    assert s.process("SetDomain,East\nSetSource,Q\nAddHost,10.0.0.1\n") == "Done processing 1 commands.\n"
    assert "not the certificate's domain" in s.process("SetDomain,Global\\West\nAddHost,10.0.0.3\n")
    # SetDomain lasts one message: the next one starts in Global again, SetSource is remembered
    assert "not a leaf domain" in s.process("SetSource,Q\nAddHost,10.0.0.4\n")


def test_address_fields_take_lists_ranges_cidr_and_exclusions():
    s = session()
    s.process("SetSource,Q\n" + "".join(f"AddHost,10.0.0.{i}\n" for i in range(1, 9)) + "AddHost,10.0.1.1\n")
    s.process('SetSource,Q\nSetOS,"10.0.0.0/29,!10.0.0.2,10.0.1.1-10.0.1.5","V","P","1"\n')
    hosts = s.netmap.export()["hosts"]
    assert sorted(ip for ip, h in hosts.items() if h["os"]) == ["10.0.0.1", "10.0.0.3", "10.0.0.4", "10.0.0.5",
                                                               "10.0.0.6", "10.0.0.7", "10.0.1.1"]
    s.process('SetSource,Q\nDeleteHost,"10.0.0.1-10.0.0.4"\n')
    assert sorted(s.netmap.export()["hosts"]) == ["10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8", "10.0.1.1"]
    assert "Failed to recognize IP address" in s.process('SetSource,Q\nSetOS,"10.0.0.5,nonsense","V","P","1"\n')


def test_a_mac_only_host_is_added_and_deleted_by_its_mac():
    s = session()
    s.process("SetSource,Q\nAddHost,,01:02:03:04:05:06\n")
    assert list(s.netmap.export()["hosts"]) == ["01:02:03:04:05:06"]
    s.process("SetSource,Q\nDeleteHost,,01:02:03:04:05:06\n")
    assert s.netmap.export()["hosts"] == {}


def test_delete_scan_result_takes_a_list_of_scanners():
    s = session()
    s.process("\n".join([ASR.format(ip="10.0.0.1", qid=1, port=80, proto="tcp"),
                         ASR.replace('"QualysGuard"', '"A"').format(ip="10.0.0.1", qid=2, port=80, proto="tcp"),
                         ASR.replace('"QualysGuard"', '"B"').format(ip="10.0.0.1", qid=3, port=80, proto="tcp"),
                         "ScanFlush"]))
    s.process('DeleteScanResult,10.0.0.1,"A,B"\nScanUpdate\n')
    assert results(s, "10.0.0.1") == [("1", 80, "tcp")]


def test_cve_prefix_is_stripped_as_the_server_does():
    s = session()
    s.process(ASR.format(ip="10.0.0.1", qid=1, port=80, proto="tcp") + "\nScanFlush")
    (result,) = s.netmap.export()["hosts"]["10.0.0.1"]["scan_results"]
    assert result["cve_ids"] == ["2020-1"] and result["bugtraq_ids"] == ["7"]


def test_host_commands_os_and_attributes():
    s = session()
    s.process('SetSource,Q\nAddHost,10.0.0.1,00:11:22:33:44:55\nSetOS,10.0.0.1,"Microsoft","Windows","10"\n'
              'AddHostAttribute,Owner,text\nSetAttributeValue,10.0.0.1,Owner,"Ops"\n')
    host = s.netmap.export()["hosts"]["10.0.0.1"]
    assert host["mac"] == "00:11:22:33:44:55" and host["os"] == {"vendor": "Microsoft", "product": "Windows", "version": "10"}
    assert host["attributes"] == {"Owner": "Ops"}
    s.process("SetSource,Q\nDeleteHost,10.0.0.1\n")
    assert s.netmap.export()["hosts"] == {}


# ---------------------------------------------------------------- the wire, with hand-packed frames
def raw_client(pki, port, host="127.0.0.1", pkcs12=None):
    from qualys_connector.hostinput.pkcs12 import client_context, load_identity
    from conftest import CLIENT_PASSWORD
    context = client_context(load_identity(pkcs12 or pki.client_pkcs12, CLIENT_PASSWORD))
    sock = socket.create_connection((host, port), timeout=10)
    return context.wrap_socket(sock)


def read_frame(conn):
    header = b""
    while len(header) < 8:
        chunk = conn.recv(8 - len(header))
        if not chunk:
            return None
        header += chunk
    kind, length = struct.unpack(">II", header)
    body = b""
    while len(body) < length:
        body += conn.recv(length - len(body))
    return kind, body


def test_handshake_then_data_and_reply(pki):
    with FMCEmulator(pki=pki, max_size=4096, accept_unknown_hosts=True) as fmc:
        with raw_client(pki, fmc.port) as conn:
            conn.sendall(struct.pack(">III", 2, 4, 1))
            assert read_frame(conn) == (1, struct.pack(">I", 4096))
            payload = b"SetSource,Q\nAddHost,192.0.2.7\n"
            conn.sendall(struct.pack(">II", 3, len(payload)) + payload)
            assert read_frame(conn) == (3, b"Done processing 1 commands.\n")
        assert fmc.messages == [payload]
        time.sleep(0.1)
        assert "192.0.2.7" in fmc.netmap.export()["hosts"]


def test_a_newer_client_version_is_refused_with_an_error_frame(pki):
    with FMCEmulator(pki=pki) as fmc, raw_client(pki, fmc.port) as conn:
        conn.sendall(struct.pack(">III", 2, 4, 2))
        kind, _ = read_frame(conn)
        assert kind == 4 and read_frame(conn) is None


def test_data_larger_than_max_size_is_refused(pki):
    with FMCEmulator(pki=pki, max_size=100) as fmc, raw_client(pki, fmc.port) as conn:
        conn.sendall(struct.pack(">III", 2, 4, 1))
        read_frame(conn)
        conn.sendall(struct.pack(">II", 3, 200) + b"#" * 200)
        assert read_frame(conn)[0] == 4


def test_client_certificates_of_another_ca_are_refused(pki):
    with FMCEmulator(pki=pki) as fmc:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with raw_client(pki, fmc.port, pkcs12=pki.untrusted_client_pkcs12) as conn:
                conn.sendall(struct.pack(">III", 2, 4, 1))
                if read_frame(conn) is None:
                    raise ConnectionError("closed")
        for _ in range(100):            # the server counts it right after the client sees the refusal
            if fmc.stats.handshake_failures:
                break
            time.sleep(0.02)
        assert fmc.stats.handshake_failures == 1


def test_serves_several_clients_at_once(pki):
    with FMCEmulator(pki=pki, accept_unknown_hosts=True) as fmc:
        conns = [raw_client(pki, fmc.port) for _ in range(3)]
        for conn in conns:
            conn.sendall(struct.pack(">III", 2, 4, 1))
            read_frame(conn)
        for i, conn in enumerate(conns):
            payload = f"SetSource,Q\nAddHost,192.0.2.{i}\n".encode()
            conn.sendall(struct.pack(">II", 3, len(payload)) + payload)
            assert read_frame(conn)[0] == 3
        for conn in conns:
            conn.close()
        assert fmc.stats.connections == 3


def test_cli_init_pki_serve_and_export(tmp_path):
    exe = [sys.executable, "-m", "qualys_connector.emulators.fmc.cli"]
    out = subprocess.run(exe + ["init-pki", str(tmp_path / "pki")], capture_output=True, text=True, check=True)
    assert "client.pkcs12" in out.stdout
    port_file, db = tmp_path / "port", tmp_path / "map.sqlite"
    server = subprocess.Popen(exe + ["serve", "--pki", str(tmp_path / "pki"), "--port", "0", "--port-file",
                                     str(port_file), "--db", str(db), "--accept-unknown-hosts"],
                              stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            if port_file.exists():
                break
            time.sleep(0.05)
        port = int(port_file.read_text())
        from qualys_connector.hostinput.pkcs12 import client_context, load_identity
        ctx = client_context(load_identity(str(tmp_path / "pki" / "client.pkcs12"), None))
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port))) as conn:
            conn.sendall(struct.pack(">III", 2, 4, 1))
            read_frame(conn)
            payload = b"SetSource,Q\nAddHost,198.51.100.1\n"
            conn.sendall(struct.pack(">II", 3, len(payload)) + payload)
            read_frame(conn)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=15)
    assert "network map: 1 hosts" in err
    exported = json.loads(subprocess.run(exe + ["export", "--db", str(db)], capture_output=True, text=True,
                                         check=True).stdout)
    assert list(exported["hosts"]) == ["198.51.100.1"]
