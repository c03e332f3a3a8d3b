"""Censys logbook events are parsed once into typed values; Qualys's excluded list is kept locally."""
import ipaddress

import httpx

from qualys_connector.censys.api import CensysClient
from qualys_connector.censys.events import LogbookEvent
from qualys_connector.censys.excluded import ExcludedList
from qualys_connector.ipranges import IPRanges


def test_an_event_is_parsed_into_typed_fields():
    event = LogbookEvent.parse({"id": "42", "type": "HOST", "operation": "associate",
                                "entity": {"ipAddress": " 10.0.0.1 "}})
    assert event == LogbookEvent(42, "HOST", "ASSOCIATE", ipaddress.IPv4Address("10.0.0.1"))
    v6 = LogbookEvent.parse({"id": 7, "type": "HOST", "operation": "DISASSOCIATE",
                             "entity": {"ipAddress": "2001:DB8::7"}})
    assert v6.ip == ipaddress.IPv6Address("2001:db8::7") and v6.ip.version == 6


def test_malformed_events_become_empty_fields_not_exceptions():
    assert LogbookEvent.parse("junk") == LogbookEvent(None, "", "", None)
    assert LogbookEvent.parse({"id": "x", "entity": {"ipAddress": "not-an-ip"}}) == LogbookEvent(None, "", "", None)
    assert LogbookEvent.parse({"id": 3, "type": "HOST", "entity": None}).ip is None


def test_the_client_hands_out_typed_events_and_waits_at_least_a_second_on_a_negative_retry_after():
    answers = iter([httpx.Response(429, headers={"Retry-After": "-5"}, json={}),
                    httpx.Response(200, json={"events": [{"id": 5, "type": "HOST", "operation": "ASSOCIATE",
                                                          "entity": {"ipAddress": "192.0.2.9"}}],
                                              "endOfEvents": True})])
    waits = []
    with CensysClient("k", "https://censys.example/api", sleep=waits.append,
                      transport=httpx.MockTransport(lambda request: next(answers))) as client:
        page = client.page("c")
    assert waits == [1.0]
    assert page.events == [LogbookEvent(5, "HOST", "ASSOCIATE", ipaddress.ip_address("192.0.2.9"))]


def test_an_empty_listing_holds_nothing_while_an_empty_setting_means_everything():
    assert ipaddress.ip_address("10.0.0.1") not in IPRanges.listing([])
    assert "10.0.0.1" not in IPRanges.listing([]) and not IPRanges.listing([]).everything
    assert "10.0.0.1" in IPRanges.parse([]) and IPRanges.parse("").everything


def test_the_excluded_list_applies_our_own_adds_and_removes():
    excluded = ExcludedList(["10.0.0.1-10.0.0.5", "192.0.2.0/30"])
    ip = ipaddress.ip_address
    assert ip("10.0.0.3") in excluded and ip("192.0.2.2") in excluded and ip("10.0.0.9") not in excluded
    excluded.remove([ip("10.0.0.3")])
    excluded.add([ip("10.0.0.9")])
    assert ip("10.0.0.3") not in excluded and ip("10.0.0.4") in excluded and ip("10.0.0.9") in excluded
    excluded.add([ip("10.0.0.3")])
    assert ip("10.0.0.3") in excluded
    assert ip("10.0.0.1") not in ExcludedList([]), "an empty list from Qualys excludes nothing"
