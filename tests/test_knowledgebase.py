"""KnowledgeBase answers parsed from hand-written XML, the SQLite cache, and lookups that ask only for unknown QIDs."""
from __future__ import annotations

import sqlite3

import pytest

from qualys_connector.errors import ReportFormatError
from qualys_connector.qualys.knowledgebase import KnowledgeBase, KnowledgeBaseCache, Vuln, parse_kb

ANSWER = b"""<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE KNOWLEDGE_BASE_VULN_LIST_OUTPUT SYSTEM "https://qualysapi.qualys.com/api/2.0/fo/knowledge_base/vuln/knowledge_base_vuln_list_output.dtd">
<KNOWLEDGE_BASE_VULN_LIST_OUTPUT>
  <RESPONSE>
    <DATETIME>2026-03-04T05:06:07Z</DATETIME>
    <VULN_LIST>
      <VULN>
        <QID>38170</QID><VULN_TYPE>Vulnerability</VULN_TYPE><SEVERITY_LEVEL>4</SEVERITY_LEVEL>
        <TITLE><![CDATA[SSL Certificate - Signature Verification Failed]]></TITLE>
        <CATEGORY>General remote services</CATEGORY>
        <LAST_SERVICE_MODIFICATION_DATETIME>2025-11-02T10:00:00Z</LAST_SERVICE_MODIFICATION_DATETIME>
        <BUGTRAQ_LIST><BUGTRAQ><ID><![CDATA[12345]]></ID><URL><![CDATA[http://www.securityfocus.com/bid/12345]]></URL></BUGTRAQ></BUGTRAQ_LIST>
        <PATCHABLE>0</PATCHABLE>
        <DIAGNOSIS><![CDATA[The certificate could not be verified.]]></DIAGNOSIS>
        <CVE_LIST>
          <CVE><ID><![CDATA[CVE-2024-0001]]></ID><URL><![CDATA[https://cve.mitre.org/x]]></URL></CVE>
          <CVE><ID><![CDATA[]]></ID><URL><![CDATA[]]></URL></CVE>
          <CVE><ID><![CDATA[CVE-2024-0002]]></ID><URL><![CDATA[https://cve.mitre.org/y]]></URL></CVE>
        </CVE_LIST>
      </VULN>
      <VULN>
        <QID>6</QID><VULN_TYPE>Information Gathered</VULN_TYPE><SEVERITY_LEVEL>1</SEVERITY_LEVEL>
        <TITLE><![CDATA[]]></TITLE><CATEGORY>Information gathering</CATEGORY>
        <LAST_SERVICE_MODIFICATION_DATETIME>2025-12-24T00:00:00Z</LAST_SERVICE_MODIFICATION_DATETIME>
        <PATCHABLE>0</PATCHABLE>
      </VULN>
    </VULN_LIST>
  </RESPONSE>
</KNOWLEDGE_BASE_VULN_LIST_OUTPUT>
"""
CERT = Vuln(38170, "SSL Certificate - Signature Verification Failed", "The certificate could not be verified.",
            ("CVE-2024-0001", "CVE-2024-0002"), ("12345",), "2025-11-02T10:00:00Z")


def answer(tmp_path, body=ANSWER):
    path = tmp_path / "kb.xml"
    path.write_bytes(body)
    return str(path)


def test_a_vuln_gives_title_diagnosis_and_non_empty_cve_and_bugtraq_ids(tmp_path):
    assert list(parse_kb(answer(tmp_path)))[0] == CERT


def test_an_empty_title_becomes_qid_n_and_missing_lists_are_empty(tmp_path):
    assert list(parse_kb(answer(tmp_path)))[1] == Vuln(6, "QID 6", "", (), (), "2025-12-24T00:00:00Z")


def test_a_cut_off_or_hostile_answer_is_refused(tmp_path):
    with pytest.raises(ReportFormatError, match="KnowledgeBase answer is not complete"):
        list(parse_kb(answer(tmp_path, ANSWER[:-40])))
    hostile = ANSWER.replace(b'output.dtd">', b'output.dtd" [<!ENTITY x SYSTEM "file:///etc/passwd">]>')
    with pytest.raises(ReportFormatError, match="declares XML entities"):
        list(parse_kb(answer(tmp_path, hostile.replace(b"could not be verified", b"&x;"))))


def test_the_cache_gives_back_what_was_put_and_the_newest_modification(tmp_path):
    path = str(tmp_path / "kb.sqlite")
    with KnowledgeBaseCache(path) as cache:
        assert cache.newest_modified() is None
        cache.put_many(parse_kb(answer(tmp_path)))
    with KnowledgeBaseCache(path) as cache:          # survives a reopen
        assert cache.get_many([38170, 6, 999]) == {38170: CERT, 6: Vuln(6, "QID 6", "", (), (), "2025-12-24T00:00:00Z")}
        assert cache.newest_modified() == "2025-12-24T00:00:00Z"
        assert len(cache) == 2


def test_a_failed_put_leaves_the_cache_as_it_was(tmp_path):
    with KnowledgeBaseCache(str(tmp_path / "kb.sqlite")) as cache:
        cache.put_many([CERT])

        def rows():
            yield Vuln(1, "one", "", (), ())
            yield Vuln(2, None, "", (), ())   # NOT NULL title: the whole batch must be rolled back
        with pytest.raises(sqlite3.IntegrityError):
            cache.put_many(rows())
        assert sorted(cache.get_many([1, 2, 38170])) == [38170]


def kb_server(tmp_path, known):
    """A fake post answering the KB call from ``known`` (qid -> title), recording every form."""
    calls = []

    def post(path, form, dest):
        calls.append(dict(form))
        ids = [int(q) for q in form.get("ids", "").split(",") if q] or sorted(known)
        vulns = "".join(f"<VULN><QID>{q}</QID><TITLE>{known[q]}</TITLE><LAST_SERVICE_MODIFICATION_DATETIME>"
                        f"2025-01-01T00:00:{q % 60:02d}Z</LAST_SERVICE_MODIFICATION_DATETIME></VULN>"
                        for q in ids if q in known)
        with open(dest, "w") as fh:
            fh.write(f"<KNOWLEDGE_BASE_VULN_LIST_OUTPUT><RESPONSE><DATETIME>2026-01-01T00:00:00Z</DATETIME>"
                     f"<VULN_LIST>{vulns}</VULN_LIST></RESPONSE></KNOWLEDGE_BASE_VULN_LIST_OUTPUT>")
    return post, calls


def test_lookups_batch_500_and_the_second_run_asks_only_for_unknown_qids(tmp_path):
    known = {q: f"title {q}" for q in range(1, 1201)}
    post, calls = kb_server(tmp_path, known)
    path = str(tmp_path / "kb.sqlite")
    with KnowledgeBaseCache(path) as cache:
        got = KnowledgeBase(post, cache, tmpdir=str(tmp_path)).lookup(range(1, 1101))
    assert len(got) == 1100 and got[777].title == "title 777"
    assert [len(c["ids"].split(",")) for c in calls] == [500, 500, 100]
    assert all(c["action"] == "list" and c["details"] == "All" for c in calls)
    calls.clear()
    with KnowledgeBaseCache(path) as cache:          # the next run
        kb = KnowledgeBase(post, cache, tmpdir=str(tmp_path))
        got = kb.lookup([5, 1100, 1150, 1199])
    assert calls == [{"action": "list", "details": "All", "ids": "1150,1199"}]
    assert sorted(got) == [5, 1100, 1150, 1199] and kb.calls == 1
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".xml"] == []


def test_a_refresh_asks_for_what_changed_since_the_newest_cached(tmp_path):
    post, calls = kb_server(tmp_path, {1: "one", 2: "two"})
    with KnowledgeBaseCache(str(tmp_path / "kb.sqlite")) as cache:
        kb = KnowledgeBase(post, cache, tmpdir=str(tmp_path))
        assert kb.refresh() == 0 and calls == []     # nothing cached: nothing to refresh
        kb.lookup([1, 2])
        calls.clear()
        assert kb.refresh() == 2
    assert calls == [{"action": "list", "details": "All", "last_modified_after": "2025-01-01T00:00:02Z"}]
