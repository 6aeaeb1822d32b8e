"""The ``lines`` format over small lists written here (the real feeds are in the conformance suite)."""
from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from collectors.formats import lines
from collectors.formats.common import FormatError, outcome, tally
from settings.sources import SourceConfig
from store.records import Indicator, Rejected


def source(**overrides: Any) -> SourceConfig:
    data = {"id": "test.lines", "name": "test", "source": {"type": "file", "path": "/dev/null"},
            "schedule": {"every": "1h"}, "format": "lines", "filters": {"exclude_private": False}, **overrides}
    return SourceConfig.model_validate(data)


def run(text: str | bytes, src: SourceConfig | None = None, **options: Any) -> list[Any]:
    payload = text.encode() if isinstance(text, str) else text
    return list(lines.parse(io.BytesIO(payload), src or source(), lines.Options(**options)))


def test_comments_blank_lines_and_trailing_comments() -> None:
    records = run(
        "# a block list written for this test\n"
        "; another comment style\n"
        "\n"
        "   \n"
        "198.51.100.1\n"
        "  203.0.113.0/24 ; SBL000001\n"
        "192.0.2.7 # seen scanning\n"
        "evil.example\t# tab before the comment\n"
    )
    assert [(r.type, r.value, r.description) for r in records] == [
        ("ipv4", "198.51.100.1", None),
        ("cidr", "203.0.113.0/24", "SBL000001"),
        ("ipv4", "192.0.2.7", "seen scanning"),
        ("domain", "evil.example", "tab before the comment"),
    ]
    assert [r.raw for r in records][1] == "  203.0.113.0/24 ; SBL000001"


def test_a_comment_sign_glued_to_a_url_is_part_of_the_url() -> None:
    records = run("http://evil.example/a;jsessionid=1\nhttp://evil.example/b#frag ; comment\n")
    assert [r.value for r in records] == ["http://evil.example/a;jsessionid=1", "http://evil.example/b"]
    assert records[1].description == "comment"


def test_asn_drop_style() -> None:
    records = run("; ASN-DROP style\nAS64500 ; XX | Example Hosting Ltd\nAS64511 ; | Other\n")
    assert [(r.type, r.value, r.description) for r in records] == [
        ("asn", "64500", "XX | Example Hosting Ltd"), ("asn", "64511", "| Other")]


def test_dshield_style_columns_with_header_and_netmask() -> None:
    text = ("#  Columns (tab delimited): start, end, netblock, attacks, name, country, email\n"
            "Start\tEnd\tNetblock\tAttacks\tName\tCountry\temail\n"
            "198.51.100.0\t198.51.100.255\t24\t788\tExample Net\tXX\tabuse@example.net\n"
            "203.0.113.0\t203.0.113.255\t255.255.255.0\t12\t\t\t\n")
    src = source(mapping={"description": "4", "tags_field": "5"})
    records = run(text, src, delimiter="\t", netmask_column=2, header=True)
    assert [(r.type, r.value, r.description, r.tags) for r in records] == [
        ("cidr", "198.51.100.0/24", "Example Net", ("XX",)), ("cidr", "203.0.113.0/24", None, ())]


def test_value_column_and_whitespace_columns() -> None:
    records = run("12 198.51.100.3 extra\n13\n", value_column=1)
    assert isinstance(records[0], Indicator) and records[0].value == "198.51.100.3"
    assert records[1] == Rejected("no value in column 1", "line 2", "13")


def test_unusable_lines_are_rejected_with_their_line_number() -> None:
    records = run("198.51.100.1\nnot an indicator at all\n010.0.0.1\n\xff\xfe\n198.51.100.2\n".encode("latin-1"))
    assert [outcome(r) for r in records] == ["indicator", "rejected", "rejected", "rejected", "indicator"]
    assert [r.location for r in records if isinstance(r, Rejected)] == ["line 2", "line 3", "line 4"]
    assert records[2].reason.startswith("bad ipv4: leading zero")


def test_a_bad_netmask_is_rejected() -> None:
    records = run("198.51.100.0\t255.0.255.0\n198.51.100.0\tabc\n", delimiter="\t", netmask_column=1)
    assert [outcome(r) for r in records] == ["rejected", "rejected"]


def test_private_addresses_are_filtered_by_default() -> None:
    records = run("10.0.0.1\n8.8.8.8\n", source(filters={}))
    assert tally(records)["filtered"] == 1 and tally(records)["indicator"] == 1


def test_the_feed_type_can_be_fixed() -> None:
    records = run("evil.example\n198.51.100.1\n", source(mapping={"type": "domain"}))
    assert outcome(records[0]) == "indicator" and outcome(records[1]) == "rejected"


@pytest.mark.parametrize("page", [b"<!DOCTYPE html>\n<html><body>Login</body></html>\n", b"\n\n<html>\n"])
def test_an_html_page_instead_of_a_list_fails_the_run(page: bytes) -> None:
    with pytest.raises(FormatError, match="got an HTML page"):
        run(page)


def test_mapping_value_is_refused_because_value_column_decides() -> None:
    with pytest.raises(FormatError, match="value_column"):
        run("198.51.100.1\n", source(mapping={"value": "0"}))


def test_the_spamhaus_merged_notice_gives_no_records() -> None:
    # edrop.txt after 2024-04-10: HTTP 200, only comments. Zero records, which the run's health flags.
    assert run("; Spamhaus EDROP List\n; This list has been merged into DROP\n") == []


line_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["# comment", "; comment", "", "198.51.100.4", "evil.example ; note", "AS1", "1.2.3.4/99"]),
    st.ip_addresses().map(str),
)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(line_text, max_size=12), delimiter=st.sampled_from([None, "\t", ","]),
       netmask=st.sampled_from([None, 1]), header=st.booleans())
def test_any_text_gives_one_outcome_per_data_line_and_never_crashes(
        rows: list[str], delimiter: str | None, netmask: int | None, header: bool) -> None:
    text = "\n".join(r.replace("\n", " ").replace("\r", " ") for r in rows)
    try:
        records = run(text, source(filters={}), delimiter=delimiter, netmask_column=netmask, header=header)
    except FormatError:
        return
    physical = text.split("\n")
    data_lines = [n for n, line in enumerate(physical, start=1)
                  if line.strip() and not line.strip().startswith(("#", ";"))]
    if header and data_lines:
        data_lines = data_lines[1:]
    assert len(records) == len(data_lines)  # nothing dropped, nothing doubled
    for record, number in zip(records, data_lines):
        if isinstance(record, Rejected):
            assert record.location == f"line {number}"
        else:
            assert record.raw == physical[number - 1]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_nothing_but_format_error(payload: bytes) -> None:
    try:
        records = run(payload)
    except FormatError:
        return
    assert all(isinstance(r, (Indicator, Rejected)) for r in records)
