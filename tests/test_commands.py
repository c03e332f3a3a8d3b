"""The host input command language, as the FMC reads it (docs/host-input.md §1)."""
import csv
import io

import pytest

from qualys_connector.hostinput import builders, codec as c, fitting, replies
from qualys_connector.text import ascii_text, clean_text


def test_scan_result_line_matches_the_design_contract():
    cmd = builders.add_scan_result("10.0.0.1", "QualysGuard", 38601, 443, "tcp", "SSL/TLS use of weak RC4",
                            "RC4 is weak", ["CVE-2013-2566", "CVE-2015-2808"], ["58796"])
    assert c.encode(cmd) == ('AddScanResult,10.0.0.1,"QualysGuard",38601,443,tcp,'
                             '"SSL/TLS use of weak RC4","RC4 is weak",'
                             '"cve_ids: CVE-2013-2566 CVE-2015-2808","bugtraq_ids: 58796"')


def test_host_level_finding_has_empty_port_and_protocol_and_bare_headers():
    cmd = builders.add_scan_result("10.0.0.1", "QualysGuard", 6, None, None, "DNS Host Name", "", [], [])
    assert c.encode(cmd) == 'AddScanResult,10.0.0.1,"QualysGuard",6,,,"DNS Host Name","","cve_ids:","bugtraq_ids:"'


def test_quotes_and_commas_survive_a_round_trip():
    cmd = builders.add_scan_result("2001:db8::1", "Q", 1, 80, "tcp", 'say "hi", then, bye', "a,b", [], [])
    line = c.encode(cmd)
    assert c.decode(line) == cmd


def test_encoding_agrees_with_an_independent_csv_reader():
    cmd = builders.add_scan_result("10.0.0.2", "QualysGuard", 99, 53, "udp", 'Weird "title", with commas',
                            "  leading spaces kept ", ["CVE-1"], [])
    fields = next(csv.reader(io.StringIO(c.encode(cmd))))
    assert fields[0] == "AddScanResult"
    assert tuple(fields[1:]) == cmd.args


def test_server_style_whitespace_around_separators_is_trimmed():
    assert c.decode(' AddHost , 192.0.2.1 , "00:11:22:33:44:55" ') == c.Command(
        "AddHost", ("192.0.2.1", "00:11:22:33:44:55"))


def test_comments_and_blank_lines_are_not_commands():
    assert c.decode("# a comment") is None
    assert c.decode("   ") is None
    assert c.decode("  # indented comment") is None


def test_setmap_prefix_applies_to_one_line():
    cmd = c.decode("SetMap:MyMap,SetOS,1.2.3.4,Microsoft,Windows,10")
    assert cmd.map_name == "MyMap" and cmd.name == "SetOS"
    assert cmd.arg("version_str") == "10"
    assert c.decode(c.encode(cmd)) == cmd


def test_every_command_of_the_reference_table_round_trips():
    for name, fields in c.FIELDS.items():
        cmd = c.Command(name, tuple(f"v{i}" for i in range(len(fields))))
        assert c.decode(c.encode(cmd)) == cmd, name


def test_ascii_text_keeps_the_meaning_of_typographic_text():
    assert ascii_text("Microsoft\u2019s \u201cCaf\u00e9\u201d \u2014 r\u00e9sum\u00e9\u2026 \u00ae") == 'Microsoft\'s "Cafe" - resume... (R)'
    assert ascii_text("plain\n text ") == "plain text"
    assert ascii_text("\u65e5\u672c OS \u2713") == "OS"


def test_newlines_are_refused_and_clean_text_removes_them():
    with pytest.raises(c.CommandSyntaxError):
        c.encode(c.Command("SetSource", ("a\nb",)))
    assert clean_text("a\n\tb   c\r\n") == "a b c"


def test_unbalanced_quotes_are_a_syntax_error():
    with pytest.raises(c.CommandSyntaxError):
        c.decode('AddHost,"1.2.3.4')


def test_id_lists_need_their_header_and_lose_the_cve_prefix():
    assert c.parse_id_list(c.CVE_HEADER, "cve_ids: CVE-2017-0144 2017-0145") == ["2017-0144", "2017-0145"]
    assert c.parse_id_list(c.BUGTRAQ_HEADER, "bugtraq_ids:") == []
    with pytest.raises(c.CommandSyntaxError):
        c.parse_id_list(c.CVE_HEADER, "CVE-2017-0144")


def test_fit_shortens_description_first_then_title():
    cmd = builders.add_scan_result("10.0.0.1", "QualysGuard", 1, 80, "tcp", "T" * 100, "D" * 1000, [], [])
    fitted, shortened = fitting.fit(cmd, 300)
    assert shortened and len(c.encode_line(fitted)) <= 300
    assert fitted.arg("name") == "T" * 100 and fitted.arg("desc").endswith("...")
    fitted, _ = fitting.fit(cmd, 120)
    assert len(c.encode_line(fitted)) <= 120 and fitted.arg("desc") == ""


def test_fit_counts_doubled_quotes_and_multibyte_characters():
    cmd = builders.add_scan_result("10.0.0.1", "Q", 1, None, None, "t", '"é"' * 200, [], [])
    fitted, _ = fitting.fit(cmd, 200)
    assert len(c.encode_line(fitted)) <= 200


def test_replies_are_error_lines_then_done():
    text = replies.format_reply(["Wrong protocol icmp [HostInput.pm,120]"], 7)
    reply = replies.parse_reply(text)
    assert reply.errors == ("Wrong protocol icmp [HostInput.pm,120]",) and reply.processed == 7
    assert not reply.ok
    assert replies.parse_reply("Done processing 3 commands.\n").ok


def test_fit_line_is_the_encoded_fit_and_leaves_short_lines_and_other_commands_alone():
    cmd = builders.add_scan_result("10.0.0.1", "Q", 1, 80, "tcp", 'T "q"' * 40, 'D "é"' * 300, ["CVE-1"], [])
    for limit in (150, 300, 900, 5000):
        line, shortened = fitting.fit_line(cmd, limit)
        fitted, expected = fitting.fit(cmd, limit)
        assert (line, shortened) == (c.encode_line(fitted), expected)
        assert len(line) <= limit
    host = builders.add_host("10.0.0.1")
    assert fitting.fit_line(host, 5) == (c.encode_line(host), False)
