"""The QualysGuard plugin's output, line by line (README "What the QualysGuard plugin sends")."""
import os

from conftest import run_cli

DATA = os.path.join(os.path.dirname(__file__), "data")


def config(tmp_path, **keys):
    keys.setdefault("report_file", os.path.join(DATA, "sample_asset_data_report.xml"))
    path = tmp_path / "QualysGuard.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in keys.items()))
    path.chmod(0o600)
    return str(path)


def dry_run(tmp_path, **keys):
    out = tmp_path / "Out.csv"
    result = run_cli(f"-c={out}", f"-pl={config(tmp_path, **keys)}")
    assert result.returncode == 0, result.stderr
    return out.read_text().splitlines(), result


def test_the_sample_report_becomes_exactly_these_lines(tmp_path, lock_dir):
    lines, result = dry_run(tmp_path, add_host="y", set_os="y")
    expected = open(os.path.join(DATA, "sample_expected.csv")).read().splitlines()
    for number, (got, want) in enumerate(zip(lines, expected), 1):
        assert got == want, f"line {number}"
    assert len(lines) == len(expected)
    assert "QualysGuard Report Processing Complete" in result.stderr


def test_defaults_send_no_addhost_no_setos_and_end_with_scanflush(tmp_path, lock_dir):
    lines, _ = dry_run(tmp_path)
    assert lines[0] == "SetSource,QualysGuard" and lines[-1] == "ScanFlush"
    assert not [l for l in lines if l.startswith(("AddHost", "SetOS"))]
    assert len([l for l in lines if l.startswith("AddScanResult")]) == 6


def test_ip_ranges_domain_names_types_and_severity(tmp_path, lock_dir):
    lines, _ = dry_run(tmp_path, ip_ranges="10.20.30.0/24", domain="Global\\Leaf", scanner_name="QG",
                       source_name="Qualys", vuln_types="Vuln, Ig", min_severity=1)
    assert lines[:2] == ["SetDomain,Global\\Leaf", "SetSource,Qualys"]   # the leaf domain first
    results = [l for l in lines if l.startswith("AddScanResult")]
    assert all(l.split(",")[1].startswith("10.20.30.") and l.split(",")[2] == '"QG"' for l in results)
    qids = [int(l.split(",")[3]) for l in results]
    assert qids == [6, 82003, 38601, 45038, 121695]        # Practice 370876 left out, Ig in


def test_text_is_folded_to_ascii_unless_ascii_only_is_off(tmp_path, lock_dir):
    text = open(os.path.join(DATA, "sample_asset_data_report.xml"), encoding="utf-8").read()
    fancy = tmp_path / "fancy.xml"
    fancy.write_text(text.replace("use of weak RC4(Arcfour) cipher", "use of weak RC4 \u2014 \u201cArcfour\u201d r\u00e9sum\u00e9 \u2713", 1),
                     encoding="utf-8")
    lines, _ = dry_run(tmp_path, report_file=str(fancy))
    (line,) = [l for l in lines if ",38601," in l]
    assert '"SSL/TLS use of weak RC4 - ""Arcfour"" resume"' in line and line.isascii()
    lines, _ = dry_run(tmp_path, report_file=str(fancy), ascii_only="n")
    (line,) = [l for l in lines if ",38601," in l]
    assert '"SSL/TLS use of weak RC4 \u2014 \u201cArcfour\u201d r\u00e9sum\u00e9 \u2713"' in line


def test_set_os_reaches_hosts_without_findings_to_send(tmp_path, lock_dir):
    lines, _ = dry_run(tmp_path, set_os="y", vuln_types="Vuln", min_severity=5)
    assert [l.split(",")[1] for l in lines if l.startswith("SetOS")] == [
        "10.20.30.41", "10.20.30.57", "2001:db8:85a3::8a2e:370:84"]
    assert not [l for l in lines if l.startswith("AddScanResult")]


def sample_variant(tmp_path, old, new):
    text = open(os.path.join(DATA, "sample_asset_data_report.xml"), encoding="utf-8").read()
    assert old in text
    path = tmp_path / "variant.xml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return str(path)


def test_a_protocol_without_a_usable_port_becomes_a_host_level_finding(tmp_path, lock_dir):
    for port in ("", "<PORT>0</PORT>", "<PORT>tcp/443</PORT>", "<PORT>70000</PORT>"):
        report = sample_variant(tmp_path, "<PORT>443</PORT>", port)
        lines, _ = dry_run(tmp_path, report_file=report)
        (line,) = [l for l in lines if ",38601," in l]
        assert ',38601,,,"' in line, (port, line)


def test_an_ipv6_zone_id_is_dropped(tmp_path, lock_dir):
    report = sample_variant(tmp_path, 'v6="2001:db8:85a3::8a2e:370:84"', 'v6="fe80::84%eth0"')
    lines, _ = dry_run(tmp_path, report_file=report)
    assert any(l.startswith('AddScanResult,fe80::84,') for l in lines) and "%" not in "".join(lines)


def test_a_truncated_saved_report_writes_nothing(tmp_path, lock_dir):
    data = open(os.path.join(DATA, "sample_asset_data_report.xml"), "rb").read()
    cut = tmp_path / "cut.xml"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "Out.csv"
    result = run_cli(f"-c={out}", f"-pl={config(tmp_path, report_file=str(cut))}")
    assert result.returncode == 2 and "not complete, well-formed XML" in result.stderr
    assert not out.exists() and "Traceback" not in result.stderr


def test_an_overlong_description_is_shortened_to_fit_and_said_at_debug_level(tmp_path, lock_dir):
    text = open(os.path.join(DATA, "sample_asset_data_report.xml")).read()
    big = tmp_path / "big.xml"
    big.write_text(text.replace("The service still negotiates RC4 cipher suites.", "RC4 is weak. " * 8000, 1))
    out = tmp_path / "Out.csv"
    result = run_cli(f"-c={out}", f"-pl={config(tmp_path, report_file=str(big))}", "-le=3")
    assert result.returncode == 0, result.stderr
    (line,) = [l for l in out.read_text().splitlines() if ",38601," in l]
    assert len(line.encode()) + 1 <= 65536 and '..."' in line
    assert "shortened the line for 10.20.30.41 QID 38601" in result.stderr


def test_lines_are_shortened_to_the_max_size_the_fmc_announces_not_to_a_guess(tmp_path, pki, lock_dir):
    from conftest import CLIENT_PASSWORD
    from qualys_connector.emulators.fmc.server import FMCEmulator
    report = sample_variant(tmp_path, "The service still negotiates RC4 cipher suites.", "RC4 is weak. " * 8000)
    cfg = config(tmp_path, report_file=report, add_host="y")
    for max_size, shortened in ((200_000, False), (4096, True)):
        with FMCEmulator(pki=pki, max_size=max_size) as fmc:
            result = run_cli("-se=127.0.0.1", f"-po={fmc.port}", f"-pk={pki.client_pkcs12}", f"-pl={cfg}",
                             env={"QC_PKCS12_PASSWORD": CLIENT_PASSWORD})
            assert result.returncode == 0, result.stderr
            (desc,) = [r["desc"] for r in fmc.netmap.export()["hosts"]["10.20.30.41"]["scan_results"]
                       if r["vuln_id"] == "38601"]
        assert desc.endswith("...") == shortened and (len(desc) < 4096 if shortened else len(desc) > 100_000)


def test_a_dry_run_file_can_be_sent_later_with_the_csv_plugin(tmp_path, pki, lock_dir):
    from conftest import CLIENT_PASSWORD
    from qualys_connector.emulators.fmc.server import FMCEmulator
    report = sample_variant(tmp_path, "The service still negotiates RC4 cipher suites.", "RC4 is weak. " * 8000)
    out = tmp_path / "Out.csv"
    assert run_cli(f"-c={out}", f"-pl={config(tmp_path, report_file=report, add_host='y', domain='Global')}").returncode == 0
    with FMCEmulator(pki=pki) as fmc:              # MAX_SIZE 65536: the longest line plus its headers fits
        result = run_cli("-se=127.0.0.1", f"-po={fmc.port}", f"-pk={pki.client_pkcs12}", f"-pl={out}", "csv",
                         env={"QC_PKCS12_PASSWORD": CLIENT_PASSWORD})
    assert result.returncode == 0, result.stderr


def test_a_line_that_cannot_be_shortened_enough_is_written_with_a_warning(tmp_path, lock_dir):
    cves = "".join(f"<CVE_ID><ID><![CDATA[CVE-2020-{i:05d}]]></ID><URL><![CDATA[https://x/{i}]]></URL></CVE_ID>"
                   for i in range(5000))
    text = open(os.path.join(DATA, "sample_asset_data_report.xml"), encoding="utf-8").read()
    start = text.index("<VULN_DETAILS id=\"qid_38601\">")
    list_start = text.index("<CVE_ID_LIST>", start)
    list_end = text.index("</CVE_ID_LIST>", list_start)
    report = tmp_path / "many_cves.xml"
    report.write_text(text[:list_start] + "<CVE_ID_LIST>" + cves + text[list_end:], encoding="utf-8")
    lines, result = dry_run(tmp_path, report_file=str(report))
    assert "10.20.30.41 QID 38601 is" in result.stderr and "will refuse it" in result.stderr
    assert len([l for l in lines if ",38601," in l]) == 1



def test_an_icmp_twin_of_a_host_level_finding_is_sent_and_counted_once(tmp_path, lock_dir):
    # The FMC cannot tell an icmp result from a host-level one of the same QID: one line, one count.
    twin = ('<VULN_INFO>\n          <QID id="qid_82003">82003</QID>\n          <TYPE>Vuln</TYPE>\n'
            '          <PROTOCOL>icmp</PROTOCOL>\n        </VULN_INFO>\n        <VULN_INFO>\n'
            '          <QID id="qid_82003">82003</QID>')
    report = sample_variant(tmp_path, '<VULN_INFO>\n          <QID id="qid_82003">82003</QID>', twin)
    plain, _ = dry_run(tmp_path)
    lines, result = dry_run(tmp_path, report_file=report)
    (line,) = [l for l in lines if ",82003," in l]
    assert ',82003,,,"ICMP Timestamp Request"' in line
    assert lines == plain
    counts = result.stderr.splitlines()[-1].split("Summary: ")[1].split(" elapsed=")[0]
    plain_counts = dry_run(tmp_path)[1].stderr.splitlines()[-1].split("Summary: ")[1].split(" elapsed=")[0]
    assert counts == plain_counts and "findings=" in counts


def test_a_result_line_is_shortened_exactly_when_its_bytes_exceed_the_room_left_by_the_header_lines():
    """The writer measures lines from cached sizes in bytes: a multi-byte scanner name and
    description must count as bytes, so a line of exactly the room is kept and one byte more is cut."""
    import io
    import logging
    from types import SimpleNamespace
    from input_plugins.qualysguard import write_commands
    from qualys_connector import hostinput
    from qualys_connector.records import Finding, Host, Vuln

    max_size = 1000
    cfg = SimpleNamespace(domain=None, source_name="QG", scanner_name="Scänner", ascii_only=False,
                          add_host=True, set_os=False)
    room = max_size - len(b"SetSource,QG\n")
    finding = Finding(qid=7, type="Vuln", port=443, protocol="tcp")

    def written(desc):
        vuln = Vuln(qid=7, title="T", threat=desc)
        report = SimpleNamespace(hosts=lambda: iter([Host(ip="10.0.0.1", findings=[finding])]),
                                 vuln=lambda qid: vuln, stats=SimpleNamespace(hosts_kept=1))
        job = SimpleNamespace(out=io.BytesIO(), summary=SimpleNamespace(commands=0, hosts=0, findings=0),
                              max_size=max_size, log=logging.getLogger("test"), clearing=None,
                              progress=SimpleNamespace(phase=lambda *a, **k: None, update=lambda **k: None),
                              check_stop=lambda: None)
        write_commands(report, cfg, job)
        lines = job.out.getvalue().splitlines(keepends=True)
        assert lines[:2] == [b"SetSource,QG\n", b"AddHost,10.0.0.1\n"] and lines[-1] == b"ScanFlush\n"
        (line,) = lines[2:-1]
        return line

    def full(desc):
        return hostinput.encode_line(hostinput.add_scan_result("10.0.0.1", "Scänner", 7, 443, "tcp", "T", desc, [], []))

    base = len(full(""))
    exact = "é" * ((room - base) // 2) + "x" * ((room - base) % 2)      # two bytes a character
    assert len(full(exact)) == room and len(exact) < room - base
    assert written(exact) == full(exact)                                # fits: as it is
    longer = written(exact + "x")
    assert len(longer) <= room and longer.endswith(b'...","cve_ids:","bugtraq_ids:"\n')
