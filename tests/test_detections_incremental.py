"""Incremental detection pulls, piece by piece (README "Pulling detections instead of reports"):
the overlap before the watermark, a changes-only clearing and its record, Fixed-only hosts
yielded to be cleared, and the KnowledgeBase cache written only when the delivery is committed."""
from __future__ import annotations

import io
import os
import sqlite3

import pytest

from qualys_connector.argv import normalize
from qualys_connector.cli import COMMON_OPTIONS
from qualys_connector.clearing import open_clearing
from qualys_connector.deliveryrecord import ClearScope, DeliveryRecord, MaxClear, Target
from qualys_connector.errors import StateFileError
from qualys_connector.qualys.detections import processed_after
from qualys_connector.qualys.knowledgebase import KnowledgeBase, KnowledgeBaseCache, Vuln
from qualys_connector.runinfo import Summary
from test_detectionsource import FakeQualys, det, host, page, source

SCOPE = ClearScope(domain=None, source_name="QualysGuard", scanner_name="QG", job="detections")


def test_processed_after_is_the_watermark_less_five_minutes_in_qualys_format():
    assert processed_after("2026-01-02T03:04:05Z") == "2026-01-02T02:59:05Z"
    assert processed_after("2026-01-01T00:02:00+00:00") == "2025-12-31T23:57:00Z"
    assert processed_after("2026-01-02T03:04:05") == "2026-01-02T02:59:05Z"      # no zone: UTC
    with pytest.raises(ValueError):
        processed_after("yesterday")


def delivered(tmp_path, hosts, watermark="2026-01-01T00:00:00Z", scope=SCOPE):
    """A record as a first, full pull leaves it."""
    c = open_clearing(tmp_path, "fmc", 8307, scope)
    for ip in hosts:
        c.sent(ip)
    c.write(io.BytesIO(), Summary())
    c.watermark = watermark
    c.commit()
    c.close()


def record_of(tmp_path, scope=SCOPE):
    target = Target("fmc", 8307, scope.domain, scope.source_name, scope.scanner_name, scope.job)
    with DeliveryRecord.open(tmp_path, target) as record:
        return sorted(record.previous_hosts()), record.watermark


def test_a_changes_only_run_clears_only_the_hosts_it_lists_without_findings_and_keeps_the_rest(tmp_path):
    delivered(tmp_path, ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"])
    c = open_clearing(tmp_path, "fmc", 8307, SCOPE)
    assert c.previous_watermark == "2026-01-01T00:00:00Z"
    c.changes_only()
    c.sent("10.0.0.2")                  # changed, still has findings
    c.absent("10.0.0.3")                # every detection Fixed now
    c.sent("10.0.0.9")                  # a new host
    out, summary = io.BytesIO(), Summary()
    plan = c.write(out, summary)
    # 10.0.0.1 and 10.0.0.4 were not listed: unchanged, not missing
    assert out.getvalue().decode().splitlines() == ['DeleteScanResult,10.0.0.3,"QG"', "ScanUpdate"]
    assert (plan.cleared, plan.counted, plan.base, plan.held) == (1, 1, 4, False)
    c.watermark = "2026-01-02T00:00:00Z"
    c.commit()
    c.close()
    assert record_of(tmp_path) == (["10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.9"], "2026-01-02T00:00:00Z")


def test_the_valve_of_a_changes_only_run_counts_cleared_hosts_against_the_record_and_keeps_the_watermark(tmp_path):
    delivered(tmp_path, ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"])
    scope = ClearScope(domain=None, source_name="QualysGuard", scanner_name="QG", job="detections",
                       max_clear=MaxClear(25))
    c = open_clearing(tmp_path, "fmc", 8307, scope)
    c.changes_only()
    c.absent("10.0.0.1")
    c.absent("10.0.0.2")                # 2 of 4 > 25%: nothing is cleared
    c.sent("10.0.0.3")
    out = io.BytesIO()
    plan = c.write(out, Summary())
    assert plan.held and (plan.counted, plan.base) == (2, 4) and out.getvalue() == b""
    c.watermark = "2026-01-02T00:00:00Z"
    c.commit()
    c.close()
    # the held hosts stay in the record, and the watermark stays, so the next run sees them again
    assert record_of(tmp_path) == (["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"], "2026-01-01T00:00:00Z")


def test_a_held_full_pull_leaves_no_watermark_so_the_next_run_pulls_everything(tmp_path):
    delivered(tmp_path, ["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    c = open_clearing(tmp_path, "fmc", 8307, SCOPE)
    c.sent("10.0.0.1")                  # a full pull: 2 of 3 missing, more than 50%
    plan = c.write(io.BytesIO(), Summary())
    assert plan.held
    c.watermark = "2026-01-02T00:00:00Z"
    c.commit()
    c.close()
    assert record_of(tmp_path) == (["10.0.0.1", "10.0.0.2", "10.0.0.3"], None)


def test_a_dry_run_without_server_has_no_watermark_to_start_from(tmp_path):
    delivered(tmp_path, ["10.0.0.1"])
    c = open_clearing(tmp_path, None, 8307, SCOPE)
    assert c.previous_watermark is None
    c.close()


def test_an_incremental_source_yields_a_host_with_only_fixed_detections_without_findings(tmp_path):
    fake = FakeQualys([page([host(1, "10.0.0.1", det(1)), host(3, "10.0.0.3", det(1, status="Fixed"))])])
    with source(fake, tmp_path, fixed_hosts=True) as src:
        assert [(h.ip, [f.qid for f in h.findings]) for h in src.hosts()] == [("10.0.0.1", [1]), ("10.0.0.3", [])]
        assert (src.stats.hosts_only_fixed, src.stats.hosts_kept) == (1, 2)


V1, V2 = Vuln(1, "one", "d1", ("CVE-1",), ()), Vuln(2, "two", "d2", (), ("7",), "2026-01-01T00:00:00Z")


def test_a_deferred_cache_writes_nothing_until_commit_then_everything_in_one_go(tmp_path):
    path = str(tmp_path / "kb.sqlite")
    cache = KnowledgeBaseCache(path, defer=True)
    cache.put_many([V1, V2])
    assert cache.get_many([1, 2]) == {1: V1, 2: V2} and cache.pending == 2
    assert cache.newest_modified() == "2026-01-01T00:00:00Z"
    cache.close()
    assert not os.path.exists(path)                         # a failed run ends here: nothing written
    assert cache.commit() == 2                              # after the FMC acknowledged
    assert os.stat(path).st_mode & 0o777 == 0o600
    with KnowledgeBaseCache(path, defer=True) as again:
        assert again.get_many([1, 2]) == {1: V1, 2: V2} and again.pending == 0
        again.put_many([Vuln(3, "three", "", (), ())])
        before = open(path, "rb").read()
    assert open(path, "rb").read() == before                # read-only until commit
    assert again.commit() == 1
    with KnowledgeBaseCache(path) as cache:
        assert len(cache) == 3


def test_a_dry_run_cache_cannot_commit_and_a_commit_that_cannot_write_is_a_state_error(tmp_path):
    with KnowledgeBaseCache(str(tmp_path / "kb.sqlite"), write=False) as cache:
        cache.put_many([V1])
        with pytest.raises(RuntimeError):
            cache.commit()
    cache = KnowledgeBaseCache(str(tmp_path / "missing" / "kb.sqlite"), defer=True)
    cache.put_many([V1])
    with pytest.raises(StateFileError, match="cannot write the KnowledgeBase cache"):
        cache.commit()
    cache.close()


def test_the_knowledgebase_fills_a_deferred_cache_and_asks_only_for_what_neither_file_nor_run_knows(tmp_path):
    path = str(tmp_path / "kb.sqlite")
    fake = FakeQualys([])
    with KnowledgeBaseCache(path, defer=True) as cache:
        kb = KnowledgeBase(fake.post, cache, tmpdir=str(tmp_path))
        kb.lookup([1, 2])
        kb.lookup([1, 2])
        assert kb.calls == 1
    assert not os.path.exists(path)
    cache.commit()
    assert sqlite3.connect(path).execute("SELECT qid FROM vuln ORDER BY qid").fetchall() == [(1,), (2,)]


def test_resync_is_a_newer_option_reached_by_re_while_r_stays_runondc():
    assert normalize(["-re"], COMMON_OPTIONS) == ["--resync"]
    assert normalize(["-resync"], COMMON_OPTIONS) == ["--resync"]
    assert normalize(["-r=n"], COMMON_OPTIONS) == ["--runondc=n"]
