"""Host List Detection pages parsed from hand-written XML: hosts, detections, paging, broken and hostile pages."""
from __future__ import annotations

import pytest

from qualys_connector.errors import QualysError, ReportFormatError
from qualys_connector.qualys.detections import (Detection, DetectionPage, DetectionPull, Host, detection_form,
                                                report_type)

PAGE = b"""<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE HOST_LIST_VM_DETECTION_OUTPUT SYSTEM "https://qualysapi.qualys.com/api/5.0/fo/asset/host/vm/detection/host_list_vm_detection_output.dtd">
<HOST_LIST_VM_DETECTION_OUTPUT>
  <RESPONSE>
    <DATETIME>2026-03-04T05:06:07Z</DATETIME>
    <HOST_LIST>
      <HOST>
        <ID>101</ID>
        <IP>10.0.0.1</IP>
        <TRACKING_METHOD>IP</TRACKING_METHOD>
        <OS><![CDATA[Linux 4.x]]></OS>
        <DNS><![CDATA[web1.example.net]]></DNS>
        <LAST_SCAN_DATETIME>2026-03-01T00:00:00Z</LAST_SCAN_DATETIME>
        <DETECTION_LIST>
          <DETECTION>
            <QID>38170</QID><TYPE>Confirmed</TYPE><SEVERITY>4</SEVERITY><PORT>443</PORT><PROTOCOL>tcp</PROTOCOL>
            <SSL>1</SSL><RESULTS><![CDATA[TLSv1.0 is enabled]]></RESULTS><STATUS>Active</STATUS>
            <FIRST_FOUND_DATETIME>2026-01-01T00:00:00Z</FIRST_FOUND_DATETIME>
            <LAST_FOUND_DATETIME>2026-03-01T00:00:00Z</LAST_FOUND_DATETIME><TIMES_FOUND>5</TIMES_FOUND>
            <IS_IGNORED>0</IS_IGNORED><IS_DISABLED>0</IS_DISABLED>
            <LAST_PROCESSED_DATETIME>2026-03-01T00:10:00Z</LAST_PROCESSED_DATETIME>
          </DETECTION>
          <DETECTION>
            <QID>105936</QID><TYPE>Potential</TYPE><SEVERITY>2</SEVERITY><SSL>0</SSL><STATUS>Fixed</STATUS>
            <FIRST_FOUND_DATETIME>2026-01-01T00:00:00Z</FIRST_FOUND_DATETIME>
            <LAST_FOUND_DATETIME>2026-02-01T00:00:00Z</LAST_FOUND_DATETIME><TIMES_FOUND>2</TIMES_FOUND>
            <IS_IGNORED>0</IS_IGNORED><IS_DISABLED>0</IS_DISABLED>
            <LAST_PROCESSED_DATETIME>2026-03-01T00:10:00Z</LAST_PROCESSED_DATETIME>
          </DETECTION>
        </DETECTION_LIST>
      </HOST>
      <HOST>
        <ID>102</ID>
        <IPV6>2001:db8::7</IPV6>
        <TRACKING_METHOD>IP</TRACKING_METHOD>
        <OS><![CDATA[Windows Server 2019]]></OS>
        <DNS><![CDATA[]]></DNS>
        <DETECTION_LIST>
          <DETECTION>
            <QID>6</QID><TYPE>Info</TYPE><SEVERITY>1</SEVERITY><PORT>53</PORT><PROTOCOL>udp</PROTOCOL>
            <SSL>0</SSL><STATUS>New</STATUS>
          </DETECTION>
        </DETECTION_LIST>
      </HOST>
    </HOST_LIST>
    WARNING_HERE
  </RESPONSE>
</HOST_LIST_VM_DETECTION_OUTPUT>
"""
WARNING = (b"<WARNING><CODE>1980</CODE><TEXT>2 record limit exceeded. Use URL to get next batch of results.</TEXT>"
           b"<URL><![CDATA[https://qualysapi.qualys.com/api/5.0/fo/asset/host/vm/detection/?action=list"
           b"&truncation_limit=2&id_min=103]]></URL></WARNING>")


def page(tmp_path, warning=b"", body=None, name="page.xml"):
    path = tmp_path / name
    path.write_bytes(body if body is not None else PAGE.replace(b"WARNING_HERE", warning))
    return str(path)


def test_a_page_yields_typed_hosts_and_detections(tmp_path):
    reader = DetectionPage(page(tmp_path))
    hosts = list(reader)
    assert hosts[0] == Host(101, "10.0.0.1", "Linux 4.x", "web1.example.net", (
        Detection(38170, "Confirmed", 4, 443, "tcp", "Active"),
        Detection(105936, "Potential", 2, None, None, "Fixed")))
    assert reader.datetime == "2026-03-04T05:06:07Z"
    assert reader.next_id_min is None and reader.next_url is None


def test_an_ipv6_only_host_is_known_by_its_ipv6(tmp_path):
    host = list(DetectionPage(page(tmp_path)))[1]
    assert (host.id, host.ip, host.dns) == (102, "2001:db8::7", "")
    assert host.detections == (Detection(6, "Info", 1, 53, "udp", "New"),)


def test_a_detection_without_port_is_host_level_and_fixed_status_is_kept(tmp_path):
    fixed = list(DetectionPage(page(tmp_path)))[0].detections[1]
    assert (fixed.port, fixed.protocol, fixed.status) == (None, None, "Fixed")


def test_a_truncated_page_names_the_next_id_min(tmp_path):
    reader = DetectionPage(page(tmp_path, WARNING))
    assert [h.id for h in reader] == [101, 102]
    assert reader.next_id_min == 103
    assert "id_min=103" in reader.next_url


def test_a_1980_warning_without_id_min_is_an_error(tmp_path):
    broken = WARNING.replace(b"&id_min=103", b"")
    with pytest.raises(ReportFormatError, match="no id_min"):
        list(DetectionPage(page(tmp_path, broken)))


def test_an_empty_page_has_no_hosts_but_a_datetime(tmp_path):
    body = (b'<?xml version="1.0"?><HOST_LIST_VM_DETECTION_OUTPUT><RESPONSE><DATETIME>2026-01-01T00:00:00Z'
            b"</DATETIME></RESPONSE></HOST_LIST_VM_DETECTION_OUTPUT>")
    reader = DetectionPage(page(tmp_path, body=body))
    assert list(reader) == [] and reader.datetime == "2026-01-01T00:00:00Z"


@pytest.mark.parametrize("cut", [300, 900, 1500, 2000, -60, -10])
def test_a_cut_off_page_is_an_error_before_any_host(tmp_path, cut):
    data = PAGE.replace(b"WARNING_HERE", b"")
    yielded = []
    with pytest.raises(ReportFormatError, match="detection page is not complete"):
        yielded.extend(DetectionPage(page(tmp_path, body=data[:cut])))
    assert yielded == []


def test_a_page_damaged_inside_is_still_an_error(tmp_path):
    data = PAGE.replace(b"WARNING_HERE", b"").replace(b"</DNS>", b"</DNZ>", 1)
    with pytest.raises(ReportFormatError, match="detection page is not complete, well-formed XML at line"):
        list(DetectionPage(page(tmp_path, body=data)))


def test_a_comment_after_the_root_is_allowed(tmp_path):
    data = PAGE.replace(b"WARNING_HERE", b"") + b"<!-- CONFIDENTIAL AND PROPRIETARY INFORMATION. //-->\n"
    assert [h.id for h in DetectionPage(page(tmp_path, body=data))] == [101, 102]


def test_a_page_declaring_entities_is_refused_before_any_host(tmp_path):
    hostile = PAGE.replace(b"WARNING_HERE", b"").replace(
        b'host_list_vm_detection_output.dtd">',
        b'host_list_vm_detection_output.dtd" [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>')
    hostile = hostile.replace(b"web1.example.net", b"&b;")
    yielded = []
    with pytest.raises(ReportFormatError, match="declares XML entities"):
        yielded.extend(DetectionPage(page(tmp_path, body=hostile)))
    assert yielded == []


def test_an_error_envelope_is_a_qualys_error(tmp_path):
    body = (b'<?xml version="1.0"?><SIMPLE_RETURN><RESPONSE><DATETIME>2026-01-01T00:00:00Z</DATETIME>'
            b"<CODE>1905</CODE><TEXT>parameter ips has invalid value: x</TEXT></RESPONSE></SIMPLE_RETURN>")
    with pytest.raises(QualysError, match="1905") as info:
        list(DetectionPage(page(tmp_path, body=body)))
    assert info.value.code == "1905"


def test_another_document_is_refused(tmp_path):
    with pytest.raises(ReportFormatError, match="not <HOST_LIST_VM_DETECTION_OUTPUT>"):
        list(DetectionPage(page(tmp_path, body=b"<ASSET_DATA_REPORT/>")))


def test_the_detection_type_maps_to_the_report_type():
    assert [report_type(t) for t in ("Confirmed", "Potential", "Info")] == ["Vuln", "Practice", "Ig"]
    with pytest.raises(ReportFormatError, match="unknown detection TYPE 'Bogus'"):
        report_type("Bogus")


def test_the_first_form_asks_for_fixed_only_when_told():
    assert detection_form() == {"action": "list", "truncation_limit": "1000", "show_results": "0",
                                "status": "New,Active,Re-Opened"}
    form = detection_form(truncation_limit=50, processed_after="2026-01-01T00:00:00Z", ips="10.0.0.1",
                          statuses="New,Active,Re-Opened,Fixed")
    assert form["vm_processed_after"] == "2026-01-01T00:00:00Z" and form["status"].endswith("Fixed")


def test_the_pager_follows_id_min_to_the_last_page_and_leaves_no_file(tmp_path):
    first = PAGE.replace(b"WARNING_HERE", WARNING)
    last = (b'<?xml version="1.0"?><HOST_LIST_VM_DETECTION_OUTPUT><RESPONSE><DATETIME>2026-03-04T05:06:09Z'
            b"</DATETIME><HOST_LIST><HOST><ID>103</ID><IP>10.0.0.3</IP><DETECTION_LIST><DETECTION><QID>1</QID>"
            b"<TYPE>Confirmed</TYPE><STATUS>New</STATUS></DETECTION></DETECTION_LIST></HOST></HOST_LIST>"
            b"</RESPONSE></HOST_LIST_VM_DETECTION_OUTPUT>")
    calls = []

    def post(path, form, dest):
        calls.append((path, dict(form)))
        with open(dest, "wb") as fh:
            fh.write(first if "id_min" not in form else last)

    spool = tmp_path / "spool"
    spool.mkdir()
    pull = DetectionPull(post, detection_form(truncation_limit=2), tmpdir=str(spool))
    assert [h.id for h in pull] == [101, 102, 103]
    assert [c[1].get("id_min") for c in calls] == [None, "103"]
    assert calls[0][0] == "/api/5.0/fo/asset/host/vm/detection/"
    assert pull.pages == 2 and pull.datetime == "2026-03-04T05:06:07Z"
    assert list(spool.iterdir()) == []


def test_a_pager_that_would_go_round_in_circles_stops(tmp_path):
    looping = PAGE.replace(b"WARNING_HERE", WARNING)

    def post(path, form, dest):
        with open(dest, "wb") as fh:
            fh.write(looping)

    with pytest.raises(ReportFormatError, match="does not move past 103"):
        list(DetectionPull(post, detection_form(), tmpdir=str(tmp_path)))


def write_big_page(path, hosts):
    """A page of ``hosts`` hosts, written in pieces (never whole in memory)."""
    with open(path, "w") as fh:
        fh.write('<?xml version="1.0"?><HOST_LIST_VM_DETECTION_OUTPUT><RESPONSE><DATETIME>2026-01-01T00:00:00Z'
                 "</DATETIME><HOST_LIST>")
        for n in range(hosts):
            fh.write(f"<HOST><ID>{n + 1}</ID><IP>10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}</IP><OS>Linux</OS>"
                     f"<DNS>h{n}.example.net</DNS><DETECTION_LIST>"
                     f"<DETECTION><QID>{n % 97}</QID><TYPE>Confirmed</TYPE><SEVERITY>3</SEVERITY><PORT>443</PORT>"
                     f"<PROTOCOL>tcp</PROTOCOL><RESULTS><![CDATA[{'x' * 200}]]></RESULTS><STATUS>Active</STATUS>"
                     f"</DETECTION><DETECTION><QID>6</QID><TYPE>Info</TYPE><STATUS>New</STATUS></DETECTION>"
                     f"</DETECTION_LIST></HOST>")
        fh.write("</HOST_LIST></RESPONSE></HOST_LIST_VM_DETECTION_OUTPUT>")


def traced_peak(path):
    import tracemalloc
    tracemalloc.start()
    try:
        count = sum(len(h.detections) for h in DetectionPage(str(path)))
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_as_the_number_of_hosts_grows(tmp_path):
    write_big_page(tmp_path / "small.xml", 300)
    write_big_page(tmp_path / "big.xml", 3_000)
    small_count, small_peak = traced_peak(tmp_path / "small.xml")
    big_count, big_peak = traced_peak(tmp_path / "big.xml")
    assert (small_count, big_count) == (600, 6_000)
    assert big_peak < 2 * small_peak + 200_000, (small_peak, big_peak)
