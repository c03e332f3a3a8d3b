"""DetectionSource (README "Pulling detections instead of reports"): detection pages + KnowledgeBase
read like a report, from hand-written XML served by a fake ``post``."""
from __future__ import annotations

import pytest

from qualys_connector.errors import ReportFormatError
from qualys_connector.ipranges import IPRanges
from qualys_connector.qualys.detections import DETECTION_PATH, detection_form
from qualys_connector.qualys.detectionsource import DetectionSource, qualys_ips
from qualys_connector.qualys.knowledgebase import KB_PATH, KnowledgeBase, KnowledgeBaseCache
from qualys_connector.records import Finding


def det(qid, kind="Confirmed", sev=3, port=None, proto=None, status="Active"):
    parts = [f"<QID>{qid}</QID><TYPE>{kind}</TYPE><SEVERITY>{sev}</SEVERITY>"]
    if port is not None:
        parts.append(f"<PORT>{port}</PORT>")
    if proto:
        parts.append(f"<PROTOCOL>{proto}</PROTOCOL>")
    parts.append(f"<STATUS>{status}</STATUS>")
    return "<DETECTION>" + "".join(parts) + "</DETECTION>"


def host(hid, ip, *dets, os="Linux 3.x", v6=False):
    address = f"<IPV6>{ip}</IPV6>" if v6 is True else f"<IP>{ip}</IP>" + (f"<IPV6>{v6}</IPV6>" if v6 else "")
    return (f"<HOST><ID>{hid}</ID>{address}<OS><![CDATA[{os}]]></OS><DNS>h{hid}</DNS>"
            f"<DETECTION_LIST>{''.join(dets)}</DETECTION_LIST></HOST>")


def page(hosts, next_id=None, end=True):
    warning = (f"<WARNING><CODE>1980</CODE><TEXT>more</TEXT><URL><![CDATA[https://q/api/5.0/fo/asset/host/vm/"
               f"detection/?action=list&id_min={next_id}]]></URL></WARNING>") if next_id else ""
    body = (f'<?xml version="1.0" encoding="UTF-8" ?><HOST_LIST_VM_DETECTION_OUTPUT><RESPONSE>'
            f"<DATETIME>2026-01-02T03:04:05Z</DATETIME><HOST_LIST>{''.join(hosts)}</HOST_LIST>{warning}"
            f"</RESPONSE></HOST_LIST_VM_DETECTION_OUTPUT>")
    return body if end else body[:-40]


KB = ('<?xml version="1.0" ?><KNOWLEDGE_BASE_VULN_LIST_OUTPUT><RESPONSE><VULN_LIST>'
      '<VULN><QID>1</QID><TITLE><![CDATA[Old &amp; <b>bad</b> SSH]]></TITLE>'
      '<DIAGNOSIS><![CDATA[<P>The server&nbsp;answers\n  weakly.</P>]]></DIAGNOSIS>'
      '<CVE_LIST><CVE><ID>CVE-2020-1</ID></CVE><CVE><ID> </ID></CVE></CVE_LIST>'
      '<BUGTRAQ_LIST><BUGTRAQ><ID>77</ID></BUGTRAQ></BUGTRAQ_LIST></VULN>'
      '<VULN><QID>2</QID><TITLE></TITLE></VULN>'
      '</VULN_LIST></RESPONSE></KNOWLEDGE_BASE_VULN_LIST_OUTPUT>')


class FakeQualys:
    def __init__(self, pages, kb=KB):
        self.pages, self.kb, self.forms = list(pages), kb, []

    def post(self, path, form, dest):
        self.forms.append((path, dict(form)))
        body = self.pages.pop(0) if path == DETECTION_PATH else self.kb
        with open(dest, "w") as fh:
            fh.write(body)


def source(fake, tmp_path, **kw):
    kb = KnowledgeBase(fake.post, KnowledgeBaseCache(str(tmp_path / "kb.sqlite")), tmpdir=str(tmp_path))
    return DetectionSource(fake.post, kb, detection_form(truncation_limit=2), tmpdir=str(tmp_path), **kw)


def test_pages_become_report_hosts_with_kb_titles(tmp_path):
    fake = FakeQualys([
        page([host(11, "10.0.0.1", det(1, port=22, proto="TCP"), det(1, port=22, proto="tcp"), det(3, "Potential")),
              host(12, "2001:db8::1", det(2, "Info"), v6=True)], next_id=13),
        page([host(13, "10.0.0.3", det(1, status="Fixed"), det(2, sev=1), det(3, port=0, proto="icmp"))])])
    with source(fake, tmp_path, vuln_types=("Vuln", "Practice"), min_severity=2) as src:
        hosts = list(src.hosts())
        assert [(h.ip, h.os, h.findings) for h in hosts] == [
            ("10.0.0.1", "Linux 3.x", [Finding(1, "Vuln", 22, "tcp"), Finding(3, "Practice")]),
            ("2001:db8::1", "Linux 3.x", []),                      # Info (Ig) filtered by vuln_types
            ("10.0.0.3", "Linux 3.x", [Finding(3, "Vuln", 0, "icmp")])]
        one = src.vuln(1)
        assert (one.title, one.threat, one.cve_ids, one.bugtraq_ids) == (
            "Old & bad SSH", "The server answers weakly.", ("CVE-2020-1",), ("77",))
        assert src.vuln(3).title == "QID 3" and src.vuln(3).cve_ids == ()   # unknown to the KB: still sent
        s = src.stats
        assert (s.pages, s.hosts_total, s.hosts_kept, s.fixed_dropped, s.duplicates_dropped,
                s.findings_filtered_type, s.findings_filtered_severity, s.qids, s.qids_without_kb) == \
               (2, 3, 3, 1, 1, 1, 1, 2, 1)
        assert src.datetime == "2026-01-02T03:04:05Z"
    kb_forms = [f for p, f in fake.forms if p == KB_PATH]
    assert [f["ids"] for f in kb_forms] == ["1,3"]
    assert fake.forms[1][1]["id_min"] == "13"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb.sqlite"]       # spool and pages removed


def test_ip_ranges_are_checked_locally_and_hosts_with_only_fixed_detections_are_left_out(tmp_path):
    fake = FakeQualys([page([host(1, "10.0.0.1", det(5)), host(2, "192.0.2.1", det(5)), host(5, "0.0.0.7", det(5),
                                                                                       v6="2001:db8::7"),
                             host(3, "10.0.0.3", det(5, status="Fixed")), host(4, "not-an-ip", det(5))])])
    with source(fake, tmp_path, include=IPRanges.parse("10.0.0.0/24, 2001:db8::/64").__contains__) as src:
        assert [h.ip for h in src.hosts()] == ["10.0.0.1", "2001:db8::7"]   # a mapped host by its IPv6
        s = src.stats
        assert (s.hosts_outside_ranges, s.hosts_only_fixed, s.hosts_bad_address) == (1, 1, 1)


@pytest.mark.parametrize("bad", [page([host(1, "10.0.0.1", det(5))], end=False), ""])
def test_a_cut_off_or_empty_page_fails_before_any_host(tmp_path, bad):
    fake = FakeQualys([page([host(1, "10.0.0.1", det(5))], next_id=2), bad])
    with pytest.raises(ReportFormatError, match="detection page"):
        source(fake, tmp_path).__enter__()
    assert [p for p, _ in fake.forms] == [DETECTION_PATH, DETECTION_PATH]      # the KB was never asked
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb.sqlite"]


def test_ips_sent_to_qualys():
    assert qualys_ips(IPRanges.parse("")) is None
    assert qualys_ips(IPRanges.parse("10.0.0.0/24, 10.0.1.1-10.0.1.9")) == "10.0.0.0/24,10.0.1.1-10.0.1.9"
    assert qualys_ips(IPRanges.parse("10.0.0.0/24, 2001:db8::/64")) is None   # Qualys's ips would drop IPv6


def test_a_dry_run_cache_reads_but_never_writes(tmp_path):
    path = str(tmp_path / "kb.sqlite")
    fake = FakeQualys([])
    with KnowledgeBaseCache(path, write=False) as cache:
        KnowledgeBase(fake.post, cache, tmpdir=str(tmp_path)).lookup([1])
        assert 1 in cache.get_many([1])
    assert not (tmp_path / "kb.sqlite").exists()
    with KnowledgeBaseCache(path) as cache:
        KnowledgeBase(fake.post, cache, tmpdir=str(tmp_path)).lookup([1])
    fake.kb = KB.replace("<QID>2</QID>", "<QID>4</QID>")
    with KnowledgeBaseCache(path, write=False) as cache:
        kb = KnowledgeBase(fake.post, cache, tmpdir=str(tmp_path))
        assert kb.lookup([1, 4])[4].title == "QID 4" and kb.calls == 1
        assert fake.forms[-1][1]["ids"] == "4"                                  # only the unknown QID asked for
    with KnowledgeBaseCache(path) as cache:
        assert sorted(cache.get_many([1, 2, 4])) == [1, 2]                      # the dry run added nothing
