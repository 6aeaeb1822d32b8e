"""Indicator matching against a real store: every type, subdomains, URLs, expiry, refresh."""
from __future__ import annotations

from pipeline_testkit import NOW_MS, event_at

from pipeline.indicators import IndicatorMatcher
from store.records import Indicator
from store.writes import expire_absent, upsert_indicators

SHA256 = "a" * 64
MD5 = "b" * 32
JA3 = "e7d705a3286e19ea42f587b344ee6865"


def upsert(store, feed, records, *, now=NOW_MS, detect=True, run_id=1):
    with store.writer.begin() as conn:
        return upsert_indicators(conn, feed, records, run_id=run_id, now=now, ttl_ms=None, detect=detect)


def matcher_for(store, now=NOW_MS) -> IndicatorMatcher:
    matcher = IndicatorMatcher(check_every_ms=10_000)
    with store.reader.connect() as conn:
        matcher.refresh(conn, now)
    return matcher


def matched(matcher, **fields) -> list[tuple[str, str, str]]:
    found = matcher.match(event_at(0, **fields))
    return sorted((field, hit.type, hit.value) for field, hit in found.hits) if found else []


def test_every_indicator_type_matches_its_event_field(store):
    upsert(store, "feed-a", [
        Indicator("ipv4", "185.220.101.1", "feed-a", confidence=80),
        Indicator("ipv6", "2a03:b0c0:2:d0::bd3:4001", "feed-a"),
        Indicator("cidr", "45.33.32.0/24", "feed-a"),
        Indicator("cidr", "2a01:4f8::/32", "feed-a"),
        Indicator("domain", "evil.example", "feed-a"),
        Indicator("url", "http://bad.example/payload.exe", "feed-a"),
        Indicator("sha256", SHA256, "feed-a"),
        Indicator("md5", MD5, "feed-a"),
        Indicator("ja3", JA3, "feed-a"),
    ])
    m = matcher_for(store)
    assert matched(m, src_ip="185.220.101.1") == [("src_ip", "ipv4", "185.220.101.1")]
    assert matched(m, dst_ip="2a03:b0c0:2:d0::bd3:4001") == [("dst_ip", "ipv6", "2a03:b0c0:2:d0::bd3:4001")]
    assert matched(m, src_ip="45.33.32.0") == [("src_ip", "cidr", "45.33.32.0/24")]
    assert matched(m, src_ip="45.33.32.255") == [("src_ip", "cidr", "45.33.32.0/24")]
    assert matched(m, src_ip="45.33.33.0") == []
    assert matched(m, dst_ip="2a01:4f8:1c1c::1") == [("dst_ip", "cidr", "2a01:4f8::/32")]
    assert matched(m, domain="evil.example") == [("domain", "domain", "evil.example")]
    assert matched(m, url="http://bad.example/payload.exe") == [("url", "url", "http://bad.example/payload.exe")]
    assert matched(m, file_hash=SHA256.upper()) == [("file_hash", "sha256", SHA256)]
    assert matched(m, file_hash=MD5) == [("file_hash", "md5", MD5)]
    assert matched(m, ja3=JA3) == [("ja3", "ja3", JA3)]
    assert matched(m, ja3=MD5) == []          # a JA3 is not a file hash, even at the same length
    assert matched(m, src_ip="10.0.0.1", dst_ip="8.8.8.8", domain="example.org") == []


def test_a_listed_domain_covers_its_subdomains_only(store):
    upsert(store, "feed-a", [Indicator("domain", "evil.example", "feed-a")])
    m = matcher_for(store)
    assert matched(m, domain="a.b.evil.example") == [("domain", "domain", "evil.example")]
    assert matched(m, domain="EVIL.example.") == [("domain", "domain", "evil.example")]
    assert matched(m, domain="notevil.example") == []
    assert matched(m, domain="example") == []


def test_sensor_urls_without_scheme_and_with_default_ports_match(store):
    upsert(store, "feed-a", [Indicator("url", "http://bad.example/dl?id=7", "feed-a"),
                             Indicator("url", "https://x.example/", "feed-a")])
    m = matcher_for(store)
    assert matched(m, url="bad.example/dl?id=7")            # Suricata writes host + path
    assert matched(m, url="HTTP://BAD.example:80/dl?id=7")
    assert matched(m, url="https://x.example")
    assert not matched(m, url="bad.example/dl?id=8")


def test_ipv4_mapped_addresses_and_overlapping_blocks(store):
    upsert(store, "feed-a", [Indicator("cidr", "45.33.0.0/16", "feed-a"), Indicator("cidr", "45.33.32.0/24", "feed-a"),
                             Indicator("ipv4", "45.33.32.156", "feed-a")])
    m = matcher_for(store)
    assert [v for _, _, v in matched(m, src_ip="45.33.32.156")] == ["45.33.0.0/16", "45.33.32.0/24", "45.33.32.156"]
    assert [v for _, _, v in matched(m, src_ip="::ffff:45.33.1.1")] == ["45.33.0.0/16"]


def test_best_confidence_and_feeds_across_sightings(store):
    upsert(store, "feed-a", [Indicator("ipv4", "185.220.101.1", "feed-a", confidence=40)])
    upsert(store, "feed-b", [Indicator("ipv4", "185.220.101.1", "feed-b", confidence=95)])
    upsert(store, "feed-c", [Indicator("ipv4", "185.220.101.1", "feed-c")])
    found = matcher_for(store).match(event_at(0, src_ip="185.220.101.1"))
    assert found is not None
    assert found.best_confidence(default=50) == 95 and found.feeds == ["feed-a", "feed-b", "feed-c"]
    assert len(found.ids) == 1


def test_expired_context_only_and_not_matchable_indicators_do_not_match(store):
    upsert(store, "context", [Indicator("ipv4", "1.2.3.4", "context")], detect=False)
    upsert(store, "stix", [Indicator("domain", "complex.example", "stix", matchable=False)])
    upsert(store, "snapshot", [Indicator("ipv4", "5.6.7.8", "snapshot")], run_id=1)
    with store.writer.begin() as conn:
        expire_absent(conn, "snapshot", run_id=2, now=NOW_MS)
    m = matcher_for(store)
    assert matched(m, src_ip="1.2.3.4") == []
    assert matched(m, domain="complex.example") == []
    assert matched(m, src_ip="5.6.7.8") == []
    assert m.index.size == 0


def test_refresh_rebuilds_only_when_due_and_changed(store):
    m = matcher_for(store)                      # built at NOW_MS from an empty store
    upsert(store, "feed-a", [Indicator("ipv4", "9.9.9.9", "feed-a")], now=NOW_MS + 1)
    with store.reader.connect() as conn:
        assert m.refresh(conn, NOW_MS + 5_000) is False       # not due yet: still the old index
        assert matched(m, src_ip="9.9.9.9") == []
        assert m.refresh(conn, NOW_MS + 10_000) is True        # due and changed
        assert matched(m, src_ip="9.9.9.9")
        assert m.refresh(conn, NOW_MS + 20_000) is False       # due, unchanged: no rebuild
    upsert(store, "feed-a", [Indicator("ipv4", "9.9.9.9", "feed-a", revoked=True)], now=NOW_MS + 25_000)
    with store.reader.connect() as conn:
        assert m.refresh(conn, NOW_MS + 30_000) is True        # a revocation is a change
    assert matched(m, src_ip="9.9.9.9") == []
