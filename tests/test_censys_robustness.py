"""censys-qualys against a hostile Censys: every cycle ends, with one clear line and exit 2 (README "censys-qualys")."""
from __future__ import annotations

import json
import os

import httpx
import pytest

from qualys_connector.censys import settings as settings_module
from qualys_connector.censys.api import CensysClient, Page
from qualys_connector.censys.events import MAX_EVENT_ID, LogbookEvent, problem
from qualys_connector.censys.position import Position
from qualys_connector.censys.sync import DEFAULT_MAX_PAGES, batches
from qualys_connector.emulators.censys.server import CensysEmulator
from qualys_connector.emulators.qualys.server import QualysEmulator
from qualys_connector.errors import CensysError, ConfigError

from test_censys import KEY, QPW, host, once, write_settings


def assert_one_clear_line(result, code, *needles):
    """Exit ``code``; the line before the summary is the error, and nothing looks like a crash."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert "ERROR" in lines[-2] and all(n in lines[-2] for n in needles), lines[-2]
    assert "Summary:" in lines[-1] and lines[-1].endswith("result=failed"), lines[-1]
    return lines


# ---------------------------------------------------------------- the pieces, without a network
def test_an_event_needs_to_be_an_object_with_an_id_in_range():
    assert problem({"id": 1}) is None and problem({"id": MAX_EVENT_ID}) is None and problem({"id": "42"}) is None
    assert problem(["HOST"]) == "it is a list, not a JSON object"
    assert problem("198.51.100.1") == "it is a string, not a JSON object"
    assert problem({"type": "HOST"}) == "it has no id"
    assert problem({"id": 10**30}) == f"its id {10**30} is outside 0-{MAX_EVENT_ID}"
    assert problem({"id": MAX_EVENT_ID + 1}) and problem({"id": -1})
    assert "not a whole number" in problem({"id": True}) and "not a whole number" in problem({"id": 4.5})
    assert "bits" in problem({"id": 10**5000})          # too long to print: its size instead
    assert LogbookEvent.parse({"id": 10**30, "type": "HOST"}).id is None


def test_fields_nested_deep_are_no_value_not_a_crash():
    deep = json.loads('{"id": 1, "type": ' + "[" * 900 + "]" * 900 + ', "entity": {"ipAddress": '
                      + "[" * 900 + "]" * 900 + "}}")
    assert LogbookEvent.parse(deep) == LogbookEvent(1, "", "", None) and problem(deep) is None
    assert problem({"id": json.loads("[" * 900 + "]" * 900)}) == "its id (a list) is not a whole number"


class FakeCensys:
    """Pages as given: (ids, nextCursor, endOfEvents); the cursor request answers "c0"."""

    def __init__(self, pages):
        self.pages, self.asked = list(pages), []

    def cursor(self, start, types):
        return "c0"

    def page(self, cursor):
        self.asked.append(cursor)
        ids, next_cursor, end = self.pages.pop(0) if self.pages else ([], None, True)
        events = [LogbookEvent(i, "HOST", "ASSOCIATE", None) for i in ids]
        return Page(events, next_cursor, end)


def read_all(fake, start=1, size=2, max_pages=DEFAULT_MAX_PAGES):
    handed = []
    with pytest.raises(CensysError) as caught:
        for batch in batches(fake, start, size, max_pages):
            handed.append([e.id for e in batch])
    return handed, caught.value


def test_a_repeated_cursor_stops_the_cycle_before_the_unfinished_batch():
    fake = FakeCensys([([1, 2, 3], "c1", False), ([4], "c2", False), ([5], "c1", False)])
    handed, error = read_all(fake)
    assert handed == [[1, 2], [3, 4]]            # [5] is dropped: the position stays after event 4
    assert "going round in circles" in error.message and "page 3" in error.message
    assert fake.asked == ["c0", "c1", "c2"]
    assert "the position is kept" in error.hint
    handed, error = read_all(FakeCensys([([1], "c0", False)]))    # the very first cursor again
    assert handed == [] and "going round in circles" in error.message


def test_ids_that_do_not_go_up_stop_the_cycle():
    handed, error = read_all(FakeCensys([([1, 2], "c1", False), ([1, 2], "c2", False)]))
    assert handed == [[1, 2]] and "not advancing" in error.message and "event 1 after event 2" in error.message
    handed, error = read_all(FakeCensys([([5, 5], "c1", True)]), start=5)
    assert handed == [] and "event 5 after event 5" in error.message
    handed, error = read_all(FakeCensys([([3], "c1", True)]), start=7)
    assert "event 3 after the start at event 7" in error.message


def test_a_cycle_reads_at_most_max_pages_pages():
    endless = FakeCensys(([[i], f"c{i}", False] for i in range(1, 100)))
    handed, error = read_all(endless, size=1, max_pages=5)
    assert handed == [[1], [2], [3], [4], [5]] and len(endless.asked) == 5
    assert "5 Censys logbook pages" in error.message and "run.maxPages" in error.message
    assert "raise run.maxPages" in error.hint
    done = FakeCensys([([1], "c1", False), ([2], "c2", True)])
    assert [[e.id for e in b] for b in batches(done, 1, 1, max_pages=2)] == [[1], [2]]


def test_max_pages_and_id_from_in_the_settings(tmp_path):
    path = write_settings(tmp_path, "http://127.0.0.1:1/api", "http://127.0.0.1:2")
    assert settings_module.load(path).max_pages == DEFAULT_MAX_PAGES == 10_000
    assert settings_module.load(write_settings(tmp_path, "https://c/api", "https://q", maxPages=50)).max_pages == 50
    with pytest.raises(ConfigError) as caught:
        settings_module.load(write_settings(tmp_path, "https://c/api", "https://q", maxPages=0))
    assert "maxPages" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        settings_module.load(write_settings(tmp_path, "https://c/api", "https://q", idFrom=10**30))
    assert "idFrom" in str(caught.value) and "largest logbook event id" in str(caught.value)


def test_a_saved_position_out_of_range_is_refused(tmp_path):
    (tmp_path / "censys-qualys.position.json").write_text(json.dumps({"next_id": 10**30}))
    with pytest.raises(ConfigError):
        Position(str(tmp_path)).load()
    (tmp_path / "censys-qualys.position.json").write_text(json.dumps({"next_id": True}))
    with pytest.raises(ConfigError):
        Position(str(tmp_path)).load()


@pytest.mark.parametrize("body,needle", [
    ({"events": [], "nextCursor": {"start": 1}}, "malformed nextCursor"),
    ({"events": [], "nextCursor": "x" * 9000}, "malformed nextCursor"),
    ({"events": [], "nextCursor": "caf\u00e9"}, "malformed nextCursor"),
    ({"events": [], "endOfEvents": "no"}, "endOfEvents is not true or false"),
    ({"events": [{"id": 1}, 7]}, "event 2 of 2 on the page: it is a number, not a JSON object"),
])
def test_malformed_pages_are_a_censys_error(body, needle):
    with CensysClient("k", "https://censys.example/api",
                      transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body))) as client:
        with pytest.raises(CensysError) as caught:
            client.page("c")
    assert needle in caught.value.message


def test_odd_error_bodies_do_not_crash_the_client():
    answers = {"list": {"errorCode": [10001], "error": {"nested": True}},
               "lines": {"errorCode": 10008, "error": "bad\nrequest\n" + "x" * 500}}
    for name, body in answers.items():
        with CensysClient("k", "https://censys.example/api", transport=httpx.MockTransport(
                lambda r: httpx.Response(400, json=body))) as client:
            with pytest.raises(CensysError) as caught:
                client.page("c")
        assert "HTTP 400" in caught.value.message and "\n" not in caught.value.message
        assert len(caught.value.message) < 300, name


# ---------------------------------------------------------------- end to end: a hostile emulator, the command
@pytest.fixture
def qualys():
    with QualysEmulator(users={"u": QPW}) as emulator:
        yield emulator


@pytest.mark.parametrize("mode,needle,pages", [("repeat-cursor", "going round in circles", 1),
                                               ("stuck-ids", "not advancing", 2)])
def test_a_logbook_going_round_in_circles_ends_the_cycle_with_exit_2(tmp_path, qualys, mode, needle, pages):
    with CensysEmulator(api_key=KEY, page_size=3, mode=mode) as censys:
        censys.append([host(f"203.0.113.{i}", "ASSOCIATE") for i in range(1, 6)])
        settings = write_settings(tmp_path, censys.url, qualys.url, batchSize=2)
        result = once(settings)
        assert_one_clear_line(result, 2, needle, "the position is kept")
        assert censys.pages == pages                 # noticed at once, not after 750 pages
        # batch [1, 2] was accepted; [3] was still being filled: the position stays after event 2
        assert Position(str(tmp_path)).load() == 3
        assert qualys.state.asset_ips == {"203.0.113.1", "203.0.113.2"}
        assert "added=2" in result.stderr.splitlines()[-1] and "next_id=3" in result.stderr.splitlines()[-1]
        again = once(settings)                       # the lock was released: exit 2 again, not 75
        assert again.returncode == 2 and needle in again.stderr
        assert Position(str(tmp_path)).load() == 5   # events 3-4 were a good batch; then the same again


def test_a_logbook_without_end_stops_at_max_pages_and_the_next_cycle_carries_on(tmp_path, qualys):
    with CensysEmulator(api_key=KEY, page_size=3, mode="endless") as censys:
        censys.append([host("203.0.113.1", "ASSOCIATE")])
        settings = write_settings(tmp_path, censys.url, qualys.url, batchSize=3, maxPages=4)
        result = once(settings)
        assert_one_clear_line(result, 2, "4 Censys logbook pages", "run.maxPages")
        assert censys.pages == 4
        first = Position(str(tmp_path)).load()
        assert first > 12 and "203.0.113.1" in qualys.state.asset_ips     # 4 pages of events were handled
        assert once(settings).returncode == 2 and Position(str(tmp_path)).load() > first


@pytest.mark.parametrize("fault,needle", [
    ("not-objects", "event 1 of 3 on the page: it is a list, not a JSON object"),
    ("deep-json", "not a JSON object (or JSON nested too deeply)"),
    ("huge-id", f"its id {10**30} is outside 0-{MAX_EVENT_ID}"),
])
def test_hostile_answers_are_one_clear_line_and_exit_2(tmp_path, qualys, fault, needle):
    with CensysEmulator(api_key=KEY, page_size=3) as censys:
        censys.append([host("203.0.113.1", "ASSOCIATE")])
        settings = write_settings(tmp_path, censys.url, qualys.url)
        censys.inject(fault)
        result = once(settings)
        assert_one_clear_line(result, 2, needle)
        assert not os.path.exists(Position(str(tmp_path)).path) and qualys.state.asset_ips == set()
        assert once(settings).returncode == 0 and Position(str(tmp_path)).load() == 2   # the fault has passed


@pytest.mark.parametrize("operation, counted, excluded_list", [("ASSOCIATE", "added", False),
                                                                ("DISASSOCIATE", "excluded", True)])
def test_added_and_excluded_count_each_ip_once_however_many_batches_send_it(tmp_path, qualys, operation, counted,
                                                                            excluded_list):
    with CensysEmulator(api_key=KEY, page_size=3) as censys:
        censys.append([host(f"203.0.113.{n}", operation) for n in (1, 2, 1, 2, 1, 3)])
        result = once(write_settings(tmp_path, censys.url, qualys.url, batchSize=2))
    assert result.returncode == 0, result.stderr
    calls = [p for path, a, p in qualys.state.request_log if a == "add" and ("excluded_ip" in path) == excluded_list]
    assert len(calls) == 3                           # each batch sent its IPs, as before
    assert f" {counted}=3 " in result.stderr.splitlines()[-1]


def test_the_emulator_command_offers_the_hostile_modes():
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "qualys_connector.emulators.censys.cli", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert "--fault [repeat-cursor|stuck-ids|endless]" in result.stdout
    with pytest.raises(ValueError):
        CensysEmulator(mode="sometimes")
