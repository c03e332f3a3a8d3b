"""The central check over time: after every run the FMC's network map equals Qualys's truth.

The Qualys emulator serves a report that changes from run to run (hosts remediated, hosts gone,
findings replaced, findings Fixed, ip_ranges narrowed, an empty report); qualys-connector delivers
each to the FMC emulator over TLS, and ``fmc-emulator export`` of the WHOLE map is compared with
the truth computed independently of the connector (reportgen's ``expected_findings``): every current
finding inside ``ip_ranges`` exactly once, nothing outside, nothing remediated, no other scanner.
"""
from __future__ import annotations

import io
import ipaddress
import json
import re
import subprocess
import sys
from collections import Counter

import pytest

from conftest import CLIENT_PASSWORD, run_cli
from qualys_connector.emulators.fmc.server import FMCEmulator
from qualys_connector.emulators.qualys.reportgen import expected_findings, generate_report
from qualys_connector.emulators.qualys.server import QualysEmulator, TemplateSpec
from qualys_connector.ipranges import IPRanges

TEMPLATE, VULNS = "424242", 6
WIDE = "10.0.0.0/25, 10.0.0.160-10.0.0.255, 2001:db8::/112"    # 10.0.0.128-159 always outside
NARROW = "10.0.0.0/25, 2001:db8::/112"
QUALYS_PASSWORD = "qualys-pw-mirror"


def listed(hosts: int) -> list[str]:
    """The FMC address of every host of a generated report (reportgen: every tenth host IPv6 only)."""
    return [str(ipaddress.IPv6Address(0x20010DB8 << 96 | (i + 1))) if i % 10 == 9
            else str(ipaddress.IPv4Address(int(ipaddress.IPv4Address("10.0.0.0")) + i + 1)) for i in range(hosts)]


def truth(hosts: int, seed: int, ranges: str, fixed: dict | None = None) -> Counter:
    """What the FMC must hold: (ip, qid, port, protocol) of every current Vuln/Practice finding in range.

    ``fixed`` maps an IP to the QIDs the report marks Fixed there (None: all of them)."""
    inside, fixed = IPRanges.parse(ranges), fixed or {}
    out = Counter()
    for ip, qid, port, proto, kind in expected_findings(hosts=hosts, vulns_per_host=VULNS, seed=seed):
        if kind not in ("Vuln", "Practice") or ip not in inside:
            continue
        if ip in fixed and (fixed[ip] is None or qid in fixed[ip]):
            continue
        if proto not in ("tcp", "udp"):
            port = proto = None                 # the FMC sees icmp and host-level alike
        out[(ip, qid, port, proto)] = 1
    return out


def report_with_fixed(path, hosts: int, seed: int, fixed: dict) -> str:
    """The generated report with the findings of ``fixed`` turned VULN_STATUS Fixed, as a saved file."""
    buffer = io.BytesIO()
    generate_report(buffer, hosts=hosts, vulns_per_host=VULNS, seed=seed)
    head, *blocks = buffer.getvalue().decode().split("<HOST>\n")
    out = [head]
    for block in blocks:
        ip = re.search(r'<IP network_id="0"(?: v6="([^"]+)")?>([^<]+)</IP>', block)
        ip = ip.group(1) or ip.group(2)
        if ip in fixed:
            vulns = block.split("<VULN_INFO>\n")
            for k, vuln in enumerate(vulns[1:], 1):
                qid = int(re.search(r"<QID[^>]*>(\d+)</QID>", vuln).group(1))
                if fixed[ip] is None or qid in fixed[ip]:
                    vulns[k] = vuln.replace("<VULN_STATUS>Active</VULN_STATUS>", "<VULN_STATUS>Fixed</VULN_STATUS>")
            block = "<VULN_INFO>\n".join(vulns)
        out.append(block)
    path.write_text("<HOST>\n".join(out))
    return str(path)


def whole_map(db: str) -> Counter:
    """Every scan result in the map (``fmc-emulator export``), whatever its scanner."""
    out = subprocess.run([sys.executable, "-m", "qualys_connector.emulators.fmc.cli", "export", "--db", db],
                         capture_output=True, text=True, check=True).stdout
    got = Counter()
    for ip, host in json.loads(out)["hosts"].items():
        for r in host["scan_results"]:
            assert r["scanner"] == "QualysGuard", r
            got[(ip, int(r["vuln_id"]), r["port"], r["proto"])] += 1
    return got


@pytest.fixture
def qualys():
    with QualysEmulator(users={"api_user": QUALYS_PASSWORD}, report_delay=0.05) as emulator:
        yield emulator


def run(tmp_path, qualys, fmc, pkcs12, spec: TemplateSpec, ranges: str, **keys):
    qualys.templates[TEMPLATE] = spec
    config = {"user_id": "api_user", "template_id": TEMPLATE, "url": qualys.url, "add_host": "y",
              "ip_ranges": f'"{ranges}"', "poll_interval": 0.05, "max_wait": 60, **keys}
    path = tmp_path / "QualysGuard.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in config.items()))
    path.chmod(0o600)
    return run_cli("-server=127.0.0.1", f"-port={fmc.port}", f"-pkcs12={pkcs12}", f"-plugininfo={path}",
                   f"-statedir={tmp_path / 'state'}",
                   env={"QC_PKCS12_PASSWORD": CLIENT_PASSWORD, "QC_QUALYS_PASSWORD": QUALYS_PASSWORD})


def cleared(result) -> int:
    return int(re.search(r"cleared=(\d+)", result.stderr.splitlines()[-1]).group(1))


def expected_cleared(previous: Counter, now: Counter, hosts: int, ranges: str) -> int:
    """Hosts listed in range without a finding to send, plus hosts delivered last time that are no
    longer listed in range."""
    inside = IPRanges.parse(ranges)
    in_range = {ip for ip in listed(hosts) if ip in inside}
    delivered_before, delivered_now = {k[0] for k in previous}, {k[0] for k in now}
    return len((in_range - delivered_now) | (delivered_before - in_range))


def test_the_whole_map_equals_qualys_truth_after_every_run_of_a_changing_report(tmp_path, pki, qualys, lock_dir):
    db = str(tmp_path / "netmap.sqlite")
    with FMCEmulator(pki=pki, db=db, max_size=4096) as fmc:
        steps = []

        def step(name, spec, hosts, seed, ranges, want_exit=0, fixed=None, **keys):
            previous = steps[-1] if steps else Counter()
            result = run(tmp_path, qualys, fmc, pki.client_pkcs12, spec, ranges, **keys)
            assert result.returncode == want_exit, f"{name}: {result.stderr}"
            want = truth(hosts, seed, ranges, fixed) if want_exit == 0 else previous
            got = whole_map(db)
            assert got == want, f"{name}: extra {sorted(got - want)[:5]}, missing {sorted(want - got)[:5]}"
            if want_exit == 0:
                assert cleared(result) == expected_cleared(previous, want, hosts, ranges), name
            steps.append(want)
            return result

        # 1. The first delivery: 200 hosts, some outside ip_ranges, some with only Ig findings.
        step("first", TemplateSpec(hosts=200, vulns_per_host=VULNS, seed=1), 200, 1, WIDE)
        assert len({k[0] for k in steps[-1]}) > 120 and any(":" in k[0] for k in steps[-1])
        # 2. Twenty hosts gone, every other host's findings new (hosts left with only Ig are cleared).
        step("changed", TemplateSpec(hosts=180, vulns_per_host=VULNS, seed=2), 180, 2, WIDE)
        # 3. A saved report from Qualys: every ninth host remediated (all Fixed), one finding Fixed on others.
        base = truth(180, 2, WIDE)
        by_host = {}
        for ip, qid, *_ in sorted(base):
            by_host.setdefault(ip, []).append(qid)
        fixed = {ip: (None if n % 9 == 0 else {qids[0]}) for n, (ip, qids) in enumerate(by_host.items()) if n % 3 == 0}
        saved = report_with_fixed(tmp_path / "fixed.xml", 180, 2, fixed)
        step("fixed", TemplateSpec(path=saved), 180, 2, WIDE, fixed=fixed)
        # 4. ip_ranges narrowed: the hosts now outside are cleared like hosts that left.
        step("narrowed", TemplateSpec(path=saved), 180, 2, NARROW, fixed=fixed)
        # 5. An empty report: the valve holds, the map stays as it was, exit 2.
        held = step("empty", TemplateSpec(hosts=0), 0, 2, NARROW, want_exit=2)
        assert "max_clear" in held.stderr and "cleared=0" in held.stderr
        # 6. A much smaller scope, let through on purpose: the map is exactly the new truth.
        step("rescoped", TemplateSpec(hosts=40, vulns_per_host=VULNS, seed=3), 40, 3, NARROW, max_clear="100%")
        assert fmc.stats.error_lines == 0
