"""ip_ranges: which hosts go to the FMC (README "QualysGuard.yaml")."""
import ipaddress
import random

import pytest

from qualys_connector.ipranges import IPRanges


def test_the_perl_guide_example():
    r = IPRanges.parse("192.168.1.234-192.168.2.2, 192.168.1.245")
    assert "192.168.1.234" in r and "192.168.2.0" in r and "192.168.2.2" in r and "192.168.1.245" in r
    assert "192.168.2.3" not in r and "192.168.1.233" not in r
    assert not r.everything


def test_single_addresses_and_whitespace_around_the_dash():
    r = IPRanges.parse(" 10.0.0.1 - 10.0.0.9 ,10.0.0.20,  ")
    assert all(f"10.0.0.{i}" in r for i in range(1, 10)) and "10.0.0.20" in r
    assert "10.0.0.0" not in r and "10.0.0.10" not in r and "10.0.0.21" not in r


def test_cidr_blocks():
    r = IPRanges.parse("10.0.0.0/8, 172.16.5.7/30")   # host bits set: the whole block
    assert "10.0.0.0" in r and "10.255.255.255" in r and "11.0.0.0" not in r and "9.255.255.255" not in r
    assert "172.16.5.4" in r and "172.16.5.7" in r and "172.16.5.8" not in r


def test_ipv6_in_every_syntax():
    r = IPRanges.parse("2001:db8::/64, fd00::1 - fd00::5, 2001:DB8:FFFF::1")
    assert "2001:db8::abcd" in r and "2001:db8:0:0:ffff:ffff:ffff:ffff" in r and "2001:db8:0:1::" not in r
    assert "fd00::3" in r and "fd00::6" not in r and "fd00::" not in r
    assert "2001:db8:ffff::1" in r and "2001:db8:ffff::2" not in r


def test_a_yaml_list_may_hold_comma_lists_too():
    r = IPRanges.parse([" 10.0.0.0/8 ", "2001:db8::/64, 192.0.2.1", None])
    assert "10.1.1.1" in r and "2001:db8::1" in r and "192.0.2.1" in r and "192.0.2.2" not in r


@pytest.mark.parametrize("spec", [None, "", "  ", "none", "None", "NONE", " , ", [], ["  "]])
def test_empty_means_everything(spec):
    r = IPRanges.parse(spec)
    assert r.everything and "1.2.3.4" in r and "::1" in r and "2001:db8::1" in r
    assert str(r) == "all addresses"


@pytest.mark.parametrize("spec,needles", [
    ("10.0.0.1, banana", ["'banana'", "not an IPv4 or IPv6 address"]),
    ("10.0.0.9-10.0.0.1", ["'10.0.0.9-10.0.0.1'", "reversed"]),
    ("10.0.0.1-::1", ["'10.0.0.1-::1'", "mixes IPv4 and IPv6"]),
    ("10.0.0.0/33", ["'10.0.0.0/33'", "not a CIDR block"]),
    ("10.0.0.1-10.0.0.x", ["'10.0.0.1-10.0.0.x'", "'10.0.0.x' is not"]),
    ("10.0.0.1-", ["'10.0.0.1-'"]),
    ("10.1", ["'10.1'"]),                       # no inet_aton shorthand
    ("256.0.0.1", ["'256.0.0.1'"]),
    ("2001:db8::g", ["'2001:db8::g'"]),
    ("1.2.3.4 5.6.7.8", ["'1.2.3.4 5.6.7.8'"]),  # a forgotten comma
])
def test_bad_entries_are_quoted_with_the_reason(spec, needles):
    with pytest.raises(ValueError) as info:
        IPRanges.parse(spec)
    for needle in needles:
        assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_families_do_not_leak_into_each_other():
    r = IPRanges.parse("0.0.0.0/0")
    assert "8.8.8.8" in r and "::1" not in r and "::ffff:8.8.8.8" not in r and "not-an-ip" not in r
    r6 = IPRanges.parse("::/0")
    assert "::1" in r6 and "8.8.8.8" not in r6


def test_text_forms():
    r = IPRanges.parse(" 10.0.0.1 - 10.0.0.9 ,2001:db8::/64")
    assert str(r) == "10.0.0.1 - 10.0.0.9, 2001:db8::/64" and "10.0.0.1" in repr(r)


def test_membership_agrees_with_a_naive_check_on_overlapping_entries():
    rng = random.Random(5)
    entries, naive = [], []
    for _ in range(200):
        a = rng.randrange(0, 1 << 16)
        b = a + rng.randrange(0, 300)
        entries.append(f"10.0.{a >> 8}.{a & 255}-{ipaddress.IPv4Address((10 << 24) + b)}")
        naive.append(((10 << 24) + a, (10 << 24) + b))
    r = IPRanges.parse(", ".join(entries))
    for _ in range(3000):
        value = (10 << 24) + rng.randrange(0, (1 << 16) + 400)
        expected = any(lo <= value <= hi for lo, hi in naive)
        assert (str(ipaddress.IPv4Address(value)) in r) == expected
