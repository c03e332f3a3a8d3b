"""Broken, foreign and hostile report files: always one clear error, never a yielded host, no spool left."""
from __future__ import annotations

import glob
import os
import re
import tempfile
from pathlib import Path

import pytest

from qualys_connector.errors import (InputFileError, QualysError, QualysReportError, ReportFormatError)
from qualys_connector.report import open_report

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "sample_asset_data_report.xml"
ODD = DATA / "report_odd.xml"


@pytest.fixture
def spool_dir(tmp_path):
    """A private spool directory, so 'nothing left behind' can be checked without races."""
    path = tmp_path / "spool"
    path.mkdir()
    return path


def attempt(path, spool_dir, **kw):
    """Open and read the report; returns what was yielded before the error (must be nothing)."""
    yielded, included = [], []

    def include(ip):
        included.append(ip)
        return True

    try:
        with open_report(str(path), include=include, spool_dir=str(spool_dir), **kw) as report:
            yielded.extend(report.hosts())
    finally:
        assert os.listdir(spool_dir) == [], "the spool file was left behind"
    return yielded


# ---------------------------------------------------------------- truncated downloads
def cut_points(data: bytes) -> list[int]:
    end = data.rindex(b"</ASSET_DATA_REPORT>") + len(b"</ASSET_DATA_REPORT>")
    points = set(range(1, end, 97))
    # The dangerous places: right after a complete host, glossary entry or section.
    for tag in (b"</HOST>", b"</VULN_DETAILS>", b"</HOST_LIST>", b"</GLOSSARY>", b"</VULN_INFO>",
                b"</APPENDICES>", b"<![CDATA["):
        points.update(m.end() for m in re.finditer(re.escape(tag), data))
    points.update(range(end - len(b"</ASSET_DATA_REPORT>"), end))   # inside the closing tag
    points.add(end + 5)                                            # inside the trailing comment
    return sorted(p for p in points if p < len(data))


@pytest.mark.parametrize("fixture", [SAMPLE, ODD])
def test_a_report_cut_anywhere_is_an_error_and_yields_nothing(tmp_path, spool_dir, fixture):
    data = fixture.read_bytes()
    path = tmp_path / "cut.xml"
    points = cut_points(data)
    assert len(points) > 100
    for cut in points:
        path.write_bytes(data[:cut])
        with pytest.raises(ReportFormatError) as info:
            assert attempt(path, spool_dir) == []
        message = str(info.value)
        assert "run again" in message and "\n" not in message, (cut, message)


def test_the_error_names_the_line(tmp_path, spool_dir):
    data = SAMPLE.read_bytes()
    path = tmp_path / "cut.xml"
    path.write_bytes(data[:data.index(b"</HOST_LIST>")])
    with pytest.raises(ReportFormatError) as info:
        attempt(path, spool_dir)
    assert re.search(r"at line \d+", str(info.value))


def test_a_complete_report_without_its_trailing_comment_is_fine(tmp_path, spool_dir):
    data = SAMPLE.read_bytes()
    path = tmp_path / "no_comment.xml"
    path.write_bytes(data[:data.rindex(b"</ASSET_DATA_REPORT>") + len(b"</ASSET_DATA_REPORT>")] + b"\n")
    assert len(attempt(path, spool_dir)) == 3


@pytest.mark.parametrize("content", [
    b"",
    b"   \n",
    b"<html><body>502 Bad Gateway</body></html>",                  # a proxy's page: XML, wrong root
    b"<html><body>502 Bad Gateway<br></body></html>",              # ... or not even XML
    b"not xml at all",
    b"\x1f\x8b\x08\x00compressed",
])
def test_files_that_are_no_report(tmp_path, spool_dir, content):
    path = tmp_path / "x.xml"
    path.write_bytes(content)
    with pytest.raises(ReportFormatError) as info:
        attempt(path, spool_dir)
    assert "\n" not in str(info.value)


def test_trailing_garbage_after_the_root_is_an_error(tmp_path, spool_dir):
    path = tmp_path / "garbage.xml"
    path.write_bytes(SAMPLE.read_bytes() + b"<ASSET_DATA_REPORT>")
    with pytest.raises(ReportFormatError):
        attempt(path, spool_dir)


def test_a_missing_file_is_an_input_error(tmp_path, spool_dir):
    with pytest.raises(InputFileError) as info:
        attempt(tmp_path / "nope.xml", spool_dir)
    assert "nope.xml" in str(info.value)


# ---------------------------------------------------------------- Qualys errors
def test_a_simple_return_carries_qualys_code_and_text(spool_dir):
    with pytest.raises(QualysError) as info:
        attempt(DATA / "simple_return.xml", spool_dir)
    assert info.value.code == "1965"
    assert info.value.text == "This API cannot be run again for another 23 seconds."
    assert "1965" in str(info.value)


def test_an_error_inside_the_report_is_a_report_error(spool_dir):
    with pytest.raises(QualysReportError) as info:
        attempt(DATA / "report_error.xml", spool_dir)
    assert info.value.code == "999" and "template no longer exists" in info.value.text


def test_an_error_after_some_hosts_still_yields_nothing(tmp_path, spool_dir):
    text = SAMPLE.read_text().replace("</HOST_LIST>", "</HOST_LIST><ERROR number='5'>failed late</ERROR>")
    path = tmp_path / "late.xml"
    path.write_text(text)
    with pytest.raises(QualysReportError):
        attempt(path, spool_dir)


# ---------------------------------------------------------------- hostile XML
def xxe_report(tmp_path, declaration: str, encoding: str = "utf-8") -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    declaration = declaration.replace("SECRET", secret.as_uri())
    text = (f'<?xml version="1.0" encoding="{encoding.upper()}"?>\n'
            f"<!DOCTYPE ASSET_DATA_REPORT [{declaration}]>\n"
            "<ASSET_DATA_REPORT><HOST_LIST><HOST><IP>10.0.0.1</IP><OPERATING_SYSTEM>&x;</OPERATING_SYSTEM>"
            "</HOST></HOST_LIST><GLOSSARY><VULN_DETAILS_LIST><VULN_DETAILS id=\"qid_1\"><QID>1</QID>"
            "<TITLE>&x;</TITLE></VULN_DETAILS></VULN_DETAILS_LIST></GLOSSARY></ASSET_DATA_REPORT>\n")
    path = tmp_path / "xxe.xml"
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("declaration,encoding", [
    ('<!ENTITY x SYSTEM "SECRET">', "utf-8"),
    ('<!ENTITY x SYSTEM "SECRET">', "utf-16"),        # a byte search for "<!ENTITY" would miss this
    ('<!ENTITY % p SYSTEM "SECRET"> %p; <!ENTITY x "y">', "utf-8"),
    ('<!ENTITY x "harmless looking">', "utf-8"),
])
def test_entity_declarations_are_refused_and_files_never_read(tmp_path, spool_dir, declaration, encoding):
    path = xxe_report(tmp_path, declaration, encoding)
    with pytest.raises(ReportFormatError) as info:
        attempt(path, spool_dir)
    assert "entities" in str(info.value) and "TOP-SECRET" not in str(info.value)


def test_the_parser_itself_never_expands_external_entities(tmp_path):
    """Belt and braces: even past the DOCTYPE check, the pass's parser leaves &x; unexpanded."""
    from lxml import etree
    from qualys_connector.report.xmlguard import PARSER_OPTIONS
    path = xxe_report(tmp_path, '<!ENTITY x SYSTEM "SECRET">')
    texts = [elem.text or "" for _, elem in etree.iterparse(str(path), events=("end",), **PARSER_OPTIONS)]
    assert not any("TOP-SECRET" in t for t in texts)


def test_billion_laughs_fails_fast(spool_dir):
    # No timing assertion: an expanded bomb would need gigabytes and never get here.
    with pytest.raises(ReportFormatError) as info:
        attempt(DATA / "billion_laughs.xml", spool_dir)
    assert "entities" in str(info.value) and "lol" not in str(info.value)


# ---------------------------------------------------------------- the spool never outlives the report
def test_spool_is_removed_after_close(spool_dir):
    with open_report(str(SAMPLE), spool_dir=str(spool_dir)) as report:
        assert os.path.exists(report.spool_path)
        next(report.hosts())
    assert os.listdir(spool_dir) == []


def test_spool_goes_to_the_system_temp_dir_by_default_and_is_removed():
    pattern = os.path.join(tempfile.gettempdir(), "qc-report-hosts-*")
    with open_report(str(SAMPLE)) as report:
        path = report.spool_path
        assert path in glob.glob(pattern) and os.stat(path).st_mode & 0o077 == 0   # private
    assert not os.path.exists(path)


def test_spool_is_removed_when_reading_stops_early_by_an_exception(spool_dir):
    with pytest.raises(RuntimeError):
        with open_report(str(SAMPLE), spool_dir=str(spool_dir)) as report:
            for _ in report.hosts():
                raise RuntimeError("the FMC went away")
    assert os.listdir(spool_dir) == []


@pytest.mark.parametrize("where", ["include", "progress"])
def test_spool_is_removed_when_a_callback_aborts_the_parse(tmp_path, spool_dir, where):
    class Stop(BaseException):    # like the lead's SIGTERM handling: not an Exception
        pass

    def boom(_):
        raise Stop()

    path = tmp_path / "many.xml"
    path.write_text("<ASSET_DATA_REPORT><HOST_LIST>" + "".join(
        f"<HOST><IP>10.0.{i >> 8}.{i & 255}</IP></HOST>" for i in range(10_001)) + "</HOST_LIST></ASSET_DATA_REPORT>")
    kwargs = {"include": boom} if where == "include" else {"progress": boom}
    with pytest.raises(Stop):
        open_report(str(path), spool_dir=str(spool_dir), **kwargs)
    assert os.listdir(spool_dir) == []
