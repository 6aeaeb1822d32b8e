"""Indicator typing and normalisation: one key per real-world thing, clear reasons for junk."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.provisional import urls

from collectors.formats.common import canonical, classify, normalise


@pytest.mark.parametrize(("value", "expected"), [
    ("198.51.100.7", "ipv4"), ("2001:DB8::1", "ipv6"), ("203.0.113.0/24", "cidr"), ("2001:db8::/48", "cidr"),
    ("Evil.Example.COM", "domain"), ("http://evil.example/x", "url"), ("a" * 32, "md5"), ("b" * 40, "sha1"),
    ("c" * 64, "sha256"), ("abuse@evil.example", "email"), ("AS64500", "asn"),
    ("999.1.1.1", "ipv4"),  # classified by shape; canonical() then says what is wrong
    ("not an indicator", None), ("single-label", None), ("", None), ("12345", None),
])
def test_classify_by_shape(value: str, expected: str | None) -> None:
    assert classify(value) == expected


@pytest.mark.parametrize(("kind", "value", "expected"), [
    ("auto", " 198.51.100.7 ", ("ipv4", "198.51.100.7")),
    ("ipv6", "2001:0DB8:0000:0000:0000:0000:0000:0001", ("ipv6", "2001:db8::1")),
    ("ipv6", "::ffff:198.51.100.7", ("ipv4", "198.51.100.7")),
    ("cidr", "198.51.100.77/24", ("cidr", "198.51.100.0/24")),
    ("cidr", "198.51.100.77/32", ("ipv4", "198.51.100.77")),
    ("cidr", "2001:db8::1/128", ("ipv6", "2001:db8::1")),
    ("ip", "2001:db8::/32", ("cidr", "2001:db8::/32")),
    ("domain", "WWW.Example.ORG.", ("domain", "www.example.org")),
    ("domain", "bücher.example", ("domain", "xn--bcher-kva.example")),
    ("domain", "ＥＸＡＭＰＬＥ。ｃｏｍ", ("domain", "example.com")),  # full-width forms, UTS #46
    ("domain", "_srv.c2.example", ("domain", "_srv.c2.example")),
    ("url", "HTTP://Evil.Example:80", ("url", "http://evil.example/")),
    ("url", "https://evil.example:443/a/B?q=1#frag", ("url", "https://evil.example/a/B?q=1")),
    ("url", "http://evil.example:8080/p;x=1", ("url", "http://evil.example:8080/p;x=1")),
    ("url", "http://[2001:DB8::1]:8443/", ("url", "http://[2001:db8::1]:8443/")),
    ("url", "ftp://user:Pass@files.example:21/f", ("url", "ftp://user:Pass@files.example/f")),
    ("url", "http://bücher.example/ä", ("url", "http://xn--bcher-kva.example/ä")),
    ("md5", "D41D8CD98F00B204E9800998ECF8427E", ("md5", "d41d8cd98f00b204e9800998ecf8427e")),
    ("hash", "A" * 64, ("sha256", "a" * 64)),
    ("email", "Abuse@Evil.Example", ("email", "abuse@evil.example")),
    ("asn", "AS260", ("asn", "260")),
    ("asn", "AS1.10", ("asn", "65546")),
    ("ja3", "E7D705A3286E19EA42F587B344EE6865", ("ja3", "e7d705a3286e19ea42f587b344ee6865")),
])
def test_canonical_forms(kind: str, value: str, expected: tuple[str, str]) -> None:
    assert canonical(kind, value) == expected
    assert normalise(kind, value) == expected[1]


@pytest.mark.parametrize(("kind", "value", "reason"), [
    ("ipv4", "010.1.1.1", "leading zero"),
    ("ipv4", "256.1.1.1", "above 255"),
    ("ipv4", "1.2.3", "dotted-quad"),
    ("ipv6", "fe80::1%eth0", "zone"),
    ("cidr", "0.0.0.0/0", "broader than /8"),
    ("cidr", "2001::/8", "broader than /16"),
    ("cidr", "1.2.3.0/33", "not a network"),
    ("domain", "www..example.com", "empty label"),
    ("domain", "localhost", "two labels"),
    ("domain", "bad host.example", "letters, digits"),
    ("domain", "example.123", "all digits"),
    ("domain", "a" * 64 + ".example", "letters, digits"),
    ("url", "evil.example/path", "scheme"),
    ("url", "http://evil.example/a b", "whitespace"),
    ("url", "http://www..example.com/x", "empty label"),
    ("url", "http://evil.example:99999/", "port"),
    ("url", "http:///nohost", "no host"),
    ("md5", "xyz", "hexadecimal"),
    ("sha1", "a" * 39, "40 hex digits"),
    ("email", "no-at-sign.example", "exactly one '@'"),
    ("asn", "AS4294967296", "4294967295"),
    ("auto", "what is this", "cannot tell"),
    ("ipv5", "1.2.3.4", "unknown indicator type"),
    ("auto", "   ", "empty"),
])
def test_canonical_rejects_with_a_reason(kind: str, value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        canonical(kind, value)


KINDS = ["auto", "ip", "ipv4", "ipv6", "cidr", "domain", "url", "email", "asn", "md5", "sha1", "sha256", "hash", "ja3"]
values = st.one_of(
    st.ip_addresses().map(str),
    st.tuples(st.ip_addresses(v=4), st.integers(0, 40)).map(lambda t: f"{t[0]}/{t[1]}"),
    st.tuples(st.ip_addresses(v=6), st.integers(0, 130)).map(lambda t: f"{t[0]}/{t[1]}"),
    st.from_regex(r"[A-Za-z0-9_-]{1,12}(\.[A-Za-zäöü0-9-]{1,12}){1,3}\.?", fullmatch=True),
    urls(), st.emails(), st.from_regex(r"(AS|as)?[0-9]{1,11}(\.[0-9]{1,6})?", fullmatch=True),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=30, max_size=66),
    st.text(max_size=60),
)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(KINDS), value=values)
def test_normalise_is_idempotent_and_fails_only_with_value_error(kind: str, value: str) -> None:
    try:
        first = canonical(kind, value)
    except ValueError:
        return
    assert canonical(*first) == first
    assert normalise(first[0], normalise(kind, value)) == normalise(kind, value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_classify_never_raises(text: str) -> None:
    assert classify(text) in (None, "ipv4", "ipv6", "cidr", "domain", "url", "md5", "sha1", "sha256", "email", "asn")
