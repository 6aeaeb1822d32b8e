"""GeoIP enrichment: special ranges by ``ipaddress``, the rest from the bundled geoip2fast database."""
from __future__ import annotations

import pytest

from pipeline.geoip import GeoIP, GeoInfo


@pytest.fixture(scope="module")
def geoip() -> GeoIP:
    return GeoIP(cache_size=1024)


@pytest.mark.parametrize(("ip", "scope"), [
    ("10.0.0.0", "private"), ("10.255.255.255", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"),
    ("192.168.1.1", "private"), ("fd12:3456::1", "private"),
    ("127.0.0.1", "loopback"), ("::1", "loopback"),
    ("169.254.10.1", "link-local"), ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"), ("ff02::1", "multicast"),
    ("100.64.0.0", "cgnat"), ("100.127.255.255", "cgnat"),
    ("192.0.2.0", "documentation"), ("192.0.2.255", "documentation"), ("198.51.100.7", "documentation"),
    ("203.0.113.255", "documentation"), ("2001:db8::", "documentation"),
    ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("255.255.255.255", "reserved"), ("240.0.0.1", "reserved"), ("198.18.0.1", "reserved"),
    ("::ffff:10.1.2.3", "private"),  # an IPv4-mapped address is judged as the IPv4 address it carries
    ("not-an-ip", "invalid"), ("300.1.1.1", "invalid"),
])
def test_special_ranges_have_a_scope_and_no_country(geoip, ip, scope):
    assert geoip.lookup(ip) == GeoInfo(scope)


@pytest.mark.parametrize(("ip", "country", "asn"), [
    ("8.8.8.8", "US", "GOOGLE"),
    ("2001:4860:4860::8888", "US", "GOOGLE"),
    ("::ffff:8.8.8.8", "US", "GOOGLE"),
    ("100.128.0.1", None, None),   # just past CGNAT: routable, so it is looked up (unassigned space: no country)
])
def test_public_addresses_get_country_and_asn_from_the_embedded_database(geoip, ip, country, asn):
    found = geoip.lookup(ip)
    assert found.scope == "global" and found.is_global
    if country is not None:
        assert (found.country, found.asn) == (country, asn)


def test_the_cgnat_boundary_is_exact(geoip):
    assert geoip.lookup("100.63.255.255").scope == "global"
    assert geoip.lookup("100.64.0.0").scope == "cgnat"
    assert geoip.lookup("100.128.0.0").scope == "global"


def test_lookups_are_cached_per_address():
    geoip = GeoIP(cache_size=4)
    geoip.lookup("1.1.1.1")
    geoip.lookup("1.1.1.1")
    info = geoip.lookup.cache_info()
    assert (info.hits, info.misses, info.maxsize) == (1, 1, 4)


def test_the_compact_database_answers_exactly_as_geoip2fast():
    """The collector holds geoip2fast's data as flat arrays (~20 MB instead of ~110 MB); same answers."""
    import ipaddress
    import random

    from geoip2fast import GeoIP2Fast

    from pipeline.geoip import GEOIP_DATA_FILE, CompactDatabase

    compact = CompactDatabase.from_child(GEOIP_DATA_FILE)
    reference = GeoIP2Fast(geoip2fast_data_file=GEOIP_DATA_FILE)
    rng = random.Random(11)
    addresses = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(20_000)]
    addresses += [str(ipaddress.IPv6Address((prefix << 112) | rng.getrandbits(112)))
                  for prefix in (0x2001, 0x2400, 0x2a00, 0x2c0f) for _ in range(2_000)]
    addresses += ["8.8.8.8", "1.1.1.1", "0.0.0.0", "255.255.255.255", "::", "::1", "::8.8.8.8",
                  "2001:4860:4860::8888", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "not-an-ip"]
    differ = []
    for ip in addresses:
        expected = reference.lookup(ip)
        got = compact.lookup(ip)
        if (expected.country_code, expected.asn_name or "", bool(expected.is_private)) != tuple(got):
            differ.append((ip, expected.country_code, expected.asn_name, got))
    assert differ == []
