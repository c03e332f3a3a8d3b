"""Qualys emulator → qualys-connector → FMC emulator: nothing lost, nothing extra (the central check)."""
from __future__ import annotations

from collections import Counter

import pytest

from conftest import CLIENT_PASSWORD, run_cli
from qualys_connector.emulators.fmc.server import FMCEmulator
from qualys_connector.emulators.proxy import AuthProxy
from qualys_connector.emulators.qualys.reportgen import expected_findings, expected_glossary
from qualys_connector.emulators.qualys.server import QualysEmulator, TemplateSpec
from qualys_connector.ipranges import IPRanges

HOSTS, VULNS = 400, 6
RANGES = "10.0.0.0/24, 10.0.1.0-10.0.1.99, 2001:db8::/112"
QUALYS_PASSWORD = "qualys-pw-e2e"


def write_config(tmp_path, url, **extra):
    keys = {"user_id": "api_user", "template_id": "424242", "url": url, "add_host": "y",
            "ip_ranges": RANGES, "poll_interval": 0.05, "max_wait": 60}
    keys.update(extra)
    path = tmp_path / "QualysGuard.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in keys.items()))
    path.chmod(0o600)
    return str(path)


def expected(hosts=HOSTS, vulns=VULNS, ranges=RANGES, types=("Vuln", "Practice")):
    ranges = IPRanges.parse(ranges)
    out = Counter()
    for ip, qid, port, proto, kind in expected_findings(hosts=hosts, vulns_per_host=vulns, types=types):
        if ip in ranges:
            if proto not in ("tcp", "udp"):
                port = proto = None
            out[(ip, qid, port, proto)] = 1   # the FMC sees icmp and host-level alike
    return out


def arrived(fmc):
    out = Counter()
    hosts = fmc.netmap.export()["hosts"]
    for ip, host in hosts.items():
        for r in host["scan_results"]:
            out[(ip, int(r["vuln_id"]), r["port"], r["proto"])] += 1
    return out, hosts


def env():
    return {"QC_PKCS12_PASSWORD": CLIENT_PASSWORD, "QC_QUALYS_PASSWORD": QUALYS_PASSWORD}


@pytest.fixture
def qualys():
    with QualysEmulator(users={"api_user": QUALYS_PASSWORD}, report_delay=0.2,
                        templates={"424242": TemplateSpec(hosts=HOSTS, vulns_per_host=VULNS)}) as emulator:
        yield emulator


def connector(tmp_path, pki, fmc, config, *more):
    return run_cli("-server=127.0.0.1", f"-port={fmc.port}", f"-pkcs12={pki.client_pkcs12}",
                   f"-plugininfo={config}", *more, env=env())


def test_every_finding_inside_ip_ranges_arrives_exactly_once_and_nothing_else(tmp_path, pki, qualys, lock_dir):
    with FMCEmulator(pki=pki, max_size=4096) as fmc:        # add_host y: unknown hosts are created
        result = connector(tmp_path, pki, fmc, write_config(tmp_path, qualys.url))
        assert result.returncode == 0, result.stderr
        got, hosts = arrived(fmc)
        assert fmc.stats.duplicate_results == 0 and fmc.stats.error_lines == 0
    want = expected()
    assert got == want
    assert any(":" in ip for ip, *_ in want) and len({ip for ip, *_ in want}) > 100
    glossary = expected_glossary(qids={q for _, q, _, _ in want})
    for ip, host in list(hosts.items())[:50]:
        for r in host["scan_results"]:
            g = glossary[int(r["vuln_id"])]
            assert r["name"] == g["title"] and r["desc"] == g["threat_text"]
            assert r["cve_ids"] == [c[4:] for c in g["cve_ids"]] and r["bugtraq_ids"] == list(g["bugtraq_ids"])
    assert "QualysGuard Report Processing Complete" in result.stderr
    assert qualys.state.deleted_reports, "the report is deleted from Qualys afterwards"


def test_without_add_host_the_fmc_keeps_only_hosts_it_knows(tmp_path, pki, qualys, lock_dir):
    want = expected()
    known = sorted({ip for ip, *_ in want})[:10]
    with FMCEmulator(pki=pki, known_hosts=known) as fmc:
        result = connector(tmp_path, pki, fmc, write_config(tmp_path, qualys.url, add_host="n"))
        assert result.returncode == 0, result.stderr
        got, hosts = arrived(fmc)
    assert set(hosts) == set(known)
    assert got == Counter({k: v for k, v in want.items() if k[0] in known})


def test_a_multi_domain_fmc_gets_the_leaf_domain_before_the_source(tmp_path, pki, qualys, lock_dir):
    with FMCEmulator(pki=pki, max_size=2048, leaf_domains=["Global\\Branch"]) as fmc:
        result = connector(tmp_path, pki, fmc, write_config(tmp_path, qualys.url, domain="Global\\Branch"))
        assert result.returncode == 0, result.stderr
        assert fmc.stats.data_messages > 5 and fmc.stats.error_lines == 0
        assert all(m.startswith(b"SetDomain,Global\\Branch\nSetSource,QualysGuard\n") for m in fmc.messages)
        got, _ = arrived(fmc)
    assert got == expected()


def test_without_a_domain_a_multi_domain_fmc_refuses_and_the_exit_code_says_so(tmp_path, pki, qualys, lock_dir):
    with FMCEmulator(pki=pki, leaf_domains=["Global\\Branch"]) as fmc:
        result = connector(tmp_path, pki, fmc, write_config(tmp_path, qualys.url))
        assert fmc.netmap.export()["hosts"] == {}
    assert result.returncode == 2
    assert "not a leaf domain" in result.stderr and "replies_with_errors=" in result.stderr


def test_through_an_authenticating_proxy(tmp_path, pki, qualys, lock_dir):
    with AuthProxy(username="zaphod", password="t0w3L") as proxy, FMCEmulator(pki=pki) as fmc:
        config = write_config(tmp_path, qualys.url, proxy=proxy.url, proxy_username="zaphod", proxy_password="t0w3L")
        result = connector(tmp_path, pki, fmc, config)
        assert result.returncode == 0, result.stderr
        assert arrived(fmc)[0] == expected()
        assert proxy.relayed >= 4 and proxy.refused == 0
        bad = write_config(tmp_path, qualys.url, proxy=proxy.url, proxy_username="zaphod", proxy_password="wrong")
        result = connector(tmp_path, pki, fmc, bad)
    assert result.returncode == 1 and "proxy" in result.stderr and "wrong" not in result.stderr


def test_over_https_with_ca_bundle_and_through_a_connect_tunnel(tmp_path, pki, lock_dir):
    templates = {"424242": TemplateSpec(hosts=50, vulns_per_host=3)}
    with QualysEmulator(users={"api_user": QUALYS_PASSWORD}, templates=templates, tls_dir=str(tmp_path / "tls")) as q, \
            AuthProxy(username="u", password="p") as proxy, FMCEmulator(pki=pki) as fmc:
        url = q.url.replace("127.0.0.1", "localhost")
        result = connector(tmp_path, pki, fmc, write_config(tmp_path, url, ca_bundle=q.ca_cert, ip_ranges="",
                                                           proxy=proxy.url, proxy_username="u", proxy_password="p"))
        assert result.returncode == 0, result.stderr
        assert arrived(fmc)[0] == expected(50, 3, "")
        assert proxy.relayed >= 1
        result = connector(tmp_path, pki, fmc, write_config(tmp_path, url))
    assert result.returncode == 2 and "could not be verified" in result.stderr and "ca_bundle" in result.stderr


@pytest.mark.parametrize("fault,code,needles", [
    ("errors", 2, ["state Errors"]),
    ("canceled", 2, ["state Canceled"]),
    ("simple-return", 2, ["CODE 999"]),
    ("truncated", 2, ["not complete, well-formed XML"]),
])
def test_report_faults_send_nothing(tmp_path, pki, qualys, lock_dir, fault, code, needles):
    qualys.inject(fault, template_id="424242")
    with FMCEmulator(pki=pki) as fmc:
        result = connector(tmp_path, pki, fmc, write_config(tmp_path, qualys.url))
        assert fmc.stats.data_messages == 0 and fmc.stats.connections == 0
    assert result.returncode == code, result.stderr
    for needle in needles:
        assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_a_wrong_password_is_one_line_and_exit_1(tmp_path, pki, qualys, lock_dir):
    with FMCEmulator(pki=pki) as fmc:
        result = run_cli("-server=127.0.0.1", f"-port={fmc.port}", f"-pkcs12={pki.client_pkcs12}",
                         f"-plugininfo={write_config(tmp_path, qualys.url)}",
                         env={"QC_PKCS12_PASSWORD": CLIENT_PASSWORD, "QC_QUALYS_PASSWORD": "nope-wrong"})
    assert result.returncode == 1
    assert "CODE 2000: Bad Login/Password" in result.stderr and "nope-wrong" not in result.stderr


def test_a_bad_template_id_says_so(tmp_path, pki, qualys, lock_dir):
    with FMCEmulator(pki=pki) as fmc:
        result = connector(tmp_path, pki, fmc, write_config(tmp_path, qualys.url, template_id="111"))
    assert result.returncode == 1 and "CODE 999" in result.stderr and "check template_id" in result.stderr


@pytest.mark.parametrize("case", ["csvfile-is-a-directory", "csvfile-directory-missing", "keep_report-is-a-directory",
                                  "keep_report-directory-missing"])
def test_an_output_path_that_cannot_work_is_refused_before_qualys_is_asked(tmp_path, pki, qualys, lock_dir, case):
    (tmp_path / "adir").mkdir()
    more, extra = [], {}
    if case.startswith("csvfile"):
        more = [f"-c={tmp_path / 'adir'}" if case.endswith("directory") else f"-c={tmp_path / 'no' / 'Out.csv'}"]
    else:
        extra = {"keep_report": str(tmp_path / "adir") if case.endswith("directory") else str(tmp_path / "no" / "r.xml")}
    result = run_cli(f"-plugininfo={write_config(tmp_path, qualys.url, **extra)}", *(more or ["-c=Out.csv"]),
                     env=env(), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert ("is a directory" if case.endswith("directory") else "does not exist") in result.stderr
    assert "Traceback" not in result.stderr and qualys.state.request_log == []
