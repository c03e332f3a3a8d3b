"""ip_ranges: which hosts go to the FMC (DESIGN.md §3)."""
import pytest

from qualys_connector.ipranges import IPRanges


def test_the_perl_guide_example():
    r = IPRanges.parse("192.168.1.234-192.168.2.2, 192.168.1.245")
    assert "192.168.1.234" in r and "192.168.2.0" in r and "192.168.2.2" in r
    assert "192.168.2.3" not in r and "192.168.1.233" not in r


def test_cidr_ipv6_whitespace_and_lists():
    r = IPRanges.parse([" 10.0.0.0/8 ", "2001:db8::/64", "fd00::1 - fd00::5"])
    assert "10.255.255.255" in r and "11.0.0.0" not in r
    assert "2001:db8::abcd" in r and "2001:db8:0:1::" not in r
    assert "fd00::3" in r and "fd00::6" not in r


@pytest.mark.parametrize("spec", [None, "", "none", " , "])
def test_empty_means_everything(spec):
    r = IPRanges.parse(spec)
    assert r.everything and "1.2.3.4" in r and "::1" in r


@pytest.mark.parametrize("spec,needle", [
    ("10.0.0.1, banana", "'banana'"), ("10.0.0.9-10.0.0.1", "reversed"), ("10.0.0.1-::1", "mixes"),
    ("10.0.0.0/33", "'10.0.0.0/33'"),
])
def test_bad_entries_are_named(spec, needle):
    with pytest.raises(ValueError) as info:
        IPRanges.parse(spec)
    assert needle in str(info.value)


def test_families_do_not_leak_into_each_other():
    r = IPRanges.parse("0.0.0.0/0")
    assert "8.8.8.8" in r and "::1" not in r and "not-an-ip" not in r
