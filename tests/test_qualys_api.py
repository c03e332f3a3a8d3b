"""The Qualys API client against the emulator: lifecycle, limits, retries (with a fake sleep), assets."""
import socket
import tracemalloc

import httpx
import pytest

from qualys_connector.errors import QualysAuthError, QualysError, QualysReportError
from qualys_connector.emulators.qualys.server import QualysEmulator, TemplateSpec
from qualys_connector.qualys.api import QualysClient
from qualys_connector.qualys.responses import chunk_ips, collapse_ranges, parse_limits


class Clock:
    """Fake time: sleeping only moves the clock, and is recorded."""

    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self):
        return self.now


@pytest.fixture
def qualys():
    templates = {"1": TemplateSpec(hosts=30, vulns_per_host=4), "2": TemplateSpec(hosts=20_000, vulns_per_host=5)}
    with QualysEmulator(users={"u": "p"}, templates=templates) as emulator:
        yield emulator


def client(emulator, **kw):
    clock = Clock()
    kw.setdefault("poll_interval", 0.0)
    return QualysClient(emulator.url, "u", kw.pop("password", "p"), sleep=clock.sleep, clock=clock,
                        jitter=lambda: 1, **kw), clock


def test_launch_wait_fetch_delete(qualys, tmp_path):
    c, _ = client(qualys)
    with c:
        report_id = c.download_report("1", str(tmp_path / "r.xml"))
    assert (tmp_path / "r.xml").read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8" ?>')
    assert qualys.state.deleted_reports == [report_id]
    actions = [a for p, a, _ in qualys.state.request_log]
    assert actions[0] == "launch" and actions[-2:] == ["fetch", "delete"]


def test_every_call_is_a_post_with_x_requested_with_and_the_limits_are_read(qualys):
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, headers={"x-concurrencylimit-limit": "3", "X-RateLimit-Remaining": "200"},
                              content=b"<IP_LIST_OUTPUT><RESPONSE><IP_SET><IP>1.2.3.4</IP></IP_SET></RESPONSE></IP_LIST_OUTPUT>")
    c = QualysClient("https://qualysapi.example", "u", "p", transport=httpx.MockTransport(handler))
    assert c.list_ips() == ["1.2.3.4"]
    assert seen[0].method == "POST" and seen[0].headers["X-Requested-With"] == "qualys-connector"
    assert b"action=list" in seen[0].content and "action" not in str(seen[0].url)
    assert c.limits.concurrency_limit == 3 and c.limits.remaining == 200


def test_both_spellings_of_the_concurrency_headers():
    assert parse_limits(httpx.Headers({"X-Concurrency-Limit-Limit": "2"})).concurrency_limit == 2
    assert parse_limits(httpx.Headers({"x-concurrencylimit-limit": "5", "X-ConcurrencyLimit-Running": "1"})).concurrency_running == 1


def test_rate_limit_1965_waits_what_qualys_asks(qualys):
    qualys.inject("409-1965")
    c, clock = client(qualys)
    assert c.list_ips() == []
    assert clock.sleeps == [3]


def test_a_used_up_window_answers_1965_with_the_wait_in_the_header():
    with QualysEmulator(users={"u": "p"}, rate_limit=2, rate_window=30) as q:
        c, clock = client(q)
        c.list_ips()
        c.list_ips()
        assert c.limits.remaining == 0
        c.list_excluded_ips()                  # limits are counted per API endpoint
        with pytest.raises(QualysError) as info:
            client(q, max_wait=10)[0].list_ips()
        assert "CODE 1965" in str(info.value) and "0 minutes and 3" in str(info.value)
        assert info.value.status == 409


def test_a_used_up_window_is_waited_out_before_the_next_call_of_that_endpoint():
    empty = b"<IP_LIST_OUTPUT><RESPONSE/></IP_LIST_OUTPUT>"
    seen = []

    def handler(request):
        seen.append(request.url.path)
        return httpx.Response(200, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-ToWait-Sec": "40"},
                              content=empty)
    clock = Clock()
    c = QualysClient("https://qualysapi.example", "u", "p", sleep=clock.sleep, clock=clock, jitter=lambda: 1,
                     transport=httpx.MockTransport(handler))
    c.list_ips()
    c.list_excluded_ips()              # another endpoint: its own limits, no wait
    assert clock.sleeps == []
    c.list_ips()
    assert clock.sleeps == [41] and len(seen) == 3


def test_429_waits_retry_after():
    answers = [httpx.Response(429, headers={"Retry-After": "7"}, content=b"slow down"),
               httpx.Response(200, content=b"<IP_LIST_OUTPUT><RESPONSE/></IP_LIST_OUTPUT>")]
    clock = Clock()
    c = QualysClient("https://qualysapi.example", "u", "p", sleep=clock.sleep, clock=clock, jitter=lambda: 1,
                     transport=httpx.MockTransport(lambda request: answers.pop(0)))
    assert c.list_ips() == [] and clock.sleeps == [8]


def test_too_many_concurrent_logins_is_retried_not_an_auth_failure():
    body = (b"<SIMPLE_RETURN><RESPONSE><CODE>2014</CODE><TEXT>Too many concurrent logins</TEXT></RESPONSE>"
            b"</SIMPLE_RETURN>")
    answers = [httpx.Response(409, content=body), httpx.Response(200, content=b"<IP_LIST_OUTPUT><RESPONSE/></IP_LIST_OUTPUT>")]
    clock = Clock()
    c = QualysClient("https://qualysapi.example", "u", "p", sleep=clock.sleep, clock=clock,
                     transport=httpx.MockTransport(lambda request: answers.pop(0)))
    assert c.list_ips() == [] and clock.sleeps == [15]


def test_the_report_slot_message_is_retried_even_with_a_code():
    body = (b"<SIMPLE_RETURN><RESPONSE><CODE>1999</CODE><TEXT>Max number of allowed reports already running. "
            b"Please try again later.</TEXT></RESPONSE></SIMPLE_RETURN>")
    launched = b"<SIMPLE_RETURN><RESPONSE><TEXT>New report launched</TEXT><ITEM_LIST><ITEM><KEY>ID</KEY><VALUE>7</VALUE></ITEM></ITEM_LIST></RESPONSE></SIMPLE_RETURN>"
    answers = [httpx.Response(200, content=body), httpx.Response(200, content=launched)]
    clock = Clock()
    c = QualysClient("https://qualysapi.example", "u", "p", sleep=clock.sleep, clock=clock,
                     transport=httpx.MockTransport(lambda request: answers.pop(0)))
    assert c.launch_report("1") == "7" and clock.sleeps == [30]


@pytest.mark.parametrize("body", [b"<html>login page</html>", b"not xml at all", b""])
def test_an_answer_that_is_not_qualys_xml_is_a_qualys_error(body):
    c = QualysClient("https://qualysapi.example", "u", "p",
                     transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body)))
    for call in (c.list_ips, c.list_excluded_ips, lambda: c.add_ips(["10.0.0.1"]), lambda: c.launch_report("1"),
                 lambda: c.report_status("1")):
        with pytest.raises(QualysError) as info:
            call()
        assert "Qualys sent an unexpected answer to" in str(info.value)


def test_rate_limit_longer_than_max_wait_fails_with_the_wait(qualys):
    qualys.inject("409-1965")
    c, _ = client(qualys, max_wait=1)
    with pytest.raises(QualysError) as info:
        c.list_ips()
    assert "CODE 1965" in str(info.value) and "wait 2 s" in str(info.value)


def test_concurrency_1960_backs_off_and_gives_up_eventually(qualys):
    for _ in range(2):
        qualys.inject("409-1960")
    c, clock = client(qualys)
    c.list_ips()
    assert clock.sleeps == [15, 30]
    for _ in range(10):
        qualys.inject("409-1960")
    with pytest.raises(QualysError) as info:
        client(qualys)[0].list_ips()
    assert "CODE 1960" in str(info.value)


def test_503_and_busy_report_slots_are_retried(qualys, tmp_path):
    qualys.inject("503")
    qualys.inject("busy")
    c, clock = client(qualys)
    c.download_report("1", str(tmp_path / "r.xml"))
    assert clock.sleeps[:2] == [10, 30]


@pytest.mark.parametrize("fault,error,needle", [
    ("errors", QualysReportError, "state Errors"), ("canceled", QualysReportError, "state Canceled"),
    ("simple-return", QualysError, "CODE 999"),
])
def test_report_faults(qualys, tmp_path, fault, error, needle):
    qualys.inject(fault, template_id="1")
    c, _ = client(qualys)
    with pytest.raises(error) as info:
        c.download_report("1", str(tmp_path / "r.xml"))
    assert needle in str(info.value)
    assert len(qualys.state.deleted_reports) == 1, "deleted even after a failure"


def test_waiting_longer_than_max_wait_gives_up(tmp_path):
    with QualysEmulator(users={"u": "p"}, templates={"1": TemplateSpec(hosts=1, delay=3600)}) as q:
        c, clock = client(q, max_wait=100, poll_interval=30)
        with pytest.raises(QualysReportError) as info:
            c.download_report("1", str(tmp_path / "r.xml"))
    assert "after 120 s" in str(info.value) and "max_wait" in str(info.value)
    assert [a for _, a, _ in q.state.request_log][-2:] == ["cancel", "delete"]


def test_bad_login_and_unknown_template(qualys):
    with pytest.raises(QualysAuthError) as info:
        client(qualys, password="wrong")[0].list_ips()
    assert info.value.code == "2000" and "wrong" not in str(info.value)
    with pytest.raises(QualysReportError) as info:
        client(qualys)[0].launch_report("31337")
    assert info.value.code == "999" and "Tried to launch invalid report" in str(info.value)


def test_unreachable_qualys_names_the_url():
    with socket.socket() as probe:          # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    c = QualysClient(f"http://127.0.0.1:{port}", "u", "p", timeout=5)
    with pytest.raises(QualysError) as info:
        c.list_ips()
    assert f"cannot connect to Qualys at http://127.0.0.1:{port}" in str(info.value)


def test_a_large_report_is_streamed_to_disk_not_held_in_memory(qualys, tmp_path):
    c, _ = client(qualys)
    report_id = c.launch_report("2")
    tracemalloc.start()
    c.fetch_report(report_id, str(tmp_path / "big.xml"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = (tmp_path / "big.xml").stat().st_size
    assert size > 40_000_000 and peak < size / 4   # the emulator thread is traced too


def test_asset_and_excluded_ip_lists(qualys):
    c, _ = client(qualys)
    c.add_ips(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.7"])
    assert c.list_ips() == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.7"]
    assert qualys.state.request_log[-2][2]["enable_vm"] == "1"
    c.add_excluded_ips(["10.0.0.9", "10.0.0.10"], "censys-qualys event 5")
    assert c.list_excluded_ips() == ["10.0.0.9", "10.0.0.10"]
    c.remove_excluded_ips(["10.0.0.9"], "re-associated")
    assert c.list_excluded_ips() == ["10.0.0.10"]
    with pytest.raises(QualysError) as info:
        c.add_excluded_ips(["2001:db8::1"], "x")
    assert "CODE 1905" in str(info.value)


def test_ranges_are_collapsed_and_chunked():
    assert collapse_ranges(["10.0.0.3", "10.0.0.1", "10.0.0.2", "10.0.0.9", "2001:db8::1"]) == [
        "10.0.0.1-10.0.0.3", "10.0.0.9", "2001:db8::1"]
    chunks = chunk_ips([f"10.0.{i // 256}.{i % 256}" for i in range(0, 5000, 2)], max_chars=1000)
    assert all(len(",".join(c)) <= 1000 for c in chunks) and sum(map(len, chunks)) == 2500


def test_a_connection_dropped_during_the_download_is_a_clear_error(qualys, tmp_path):
    qualys.inject("dropped", template_id="1")
    c, _ = client(qualys)
    with pytest.raises(QualysError) as info:
        c.download_report("1", str(tmp_path / "r.xml"))
    assert "connection to Qualys broke during downloading report" in str(info.value)
    assert qualys.state.deleted_reports
