"""Version comparison for exposure matching: messy ICS versions, advisory ranges, the verdict."""
from __future__ import annotations

import pytest

from pipeline.versions import (
    AFFECTED, BASIS_ADVISORY_UNREADABLE, BASIS_ALL, BASIS_ASSET_UNREADABLE, BASIS_IN_RANGE, BASIS_NO_ADVISORY_VERSIONS,
    BASIS_NO_ASSET_VERSION, BASIS_OUTSIDE, NOT_AFFECTED, UNKNOWN, check_version, parse_spec, parse_version,
)


def cmp(a: str, b: str) -> int:
    va, vb = parse_version(a), parse_version(b)
    assert va is not None and vb is not None, (a, b)
    return va.compare(vb)


@pytest.mark.parametrize("lower, higher", [
    ("2.9.1", "2.9.2"), ("2.9", "2.9.2"), ("2.9", "2.10"),
    ("V2.9.2", "v3.0"), ("33.011", "33.012"), ("33.9", "33.011"),
    ("2018", "2018 SP3"), ("2018 SP2", "2018 SP3"), ("2018 SP3", "2020"), ("2020 R1", "2020 R2"),
    ("13.1-49.15", "13.1-51.15"), ("13.1", "13.1-49.15"), ("13.1-49.15", "14.1-4.42"),
    ("3.0rc1", "3.0"), ("3.0a1", "3.0b1"), ("3.0b2", "3.0rc1"), ("3.0", "3.0.1"),
    ("Firmware V2.1", "2.2"), ("version 4.5", "4.6"), ("7.0.12", "7.2.0"),
])
def test_versions_order_part_by_part(lower: str, higher: str) -> None:
    assert cmp(lower, higher) == -1 and cmp(higher, lower) == 1


@pytest.mark.parametrize("a, b", [("2.9", "2.9.0"), ("V2.9.0", "2.9"), ("v3.00.2", "3.0.2"), ("2.9.2", "V2.9.2"),
                                  ("4.8 ", "4.8.0.0")])
def test_equal_versions(a: str, b: str) -> None:
    assert cmp(a, b) == 0


@pytest.mark.parametrize("text", ["", "   ", "d78dda6", "Intel Core i5 Intel Core i7 | Intel XEON", "7e3f1a2b9",
                                  "latest", "n/a", "abc 1.0", "1.0 firmwarebuildxyz"])
def test_what_is_not_a_version(text: str) -> None:
    assert parse_version(text) is None


@pytest.mark.parametrize("spec, inside, outside", [
    ("<=2.9.1", ["2.9.1", "2.9.0", "V2.0", "1"], ["2.9.2", "3.0"]),
    ("<3.0", ["2.9.9", "3.0rc1"], ["3.0", "3.0.0", "3.1"]),
    (">=2.0", ["2.0", "2.9"], ["1.9.9"]),
    ("vers:generic/>=1.0|<2.1", ["1.0", "2.0.9"], ["0.9", "2.1", "3.0"]),
    ("vers:all/<V4.9.0", ["V4.8.1", "4.8.9"], ["4.9.0", "V5.0"]),
    ("vers:generic/<1.0|>=2.0|<2.5|>=3.0", ["0.5", "2.2", "3.1"], ["1.5", "2.5", "2.9"]),
    ("vers:generic/1.2|1.4", ["1.2", "1.4.0"], ["1.3"]),
    ("vers:generic/>=1.0|!=1.5|<2.0", ["1.4"], ["1.5", "2.0"]),
    (">=1.0, <2.1", ["1.0", "2.0"], ["2.1"]),
    (">= 1.0 < 2.1", ["1.5"], ["0.9", "2.2"]),
    ("V2.9 and prior", ["2.9", "2.9.2", "V1.0"], ["3.0", "2.10"]),
    ("Versions 6.5 and earlier", ["6.5", "6.0"], ["6.6"]),
    ("prior to 3.0", ["2.9.9"], ["3.0"]),
    ("All versions prior to V3.0", ["2.0"], ["3.0"]),
    ("3.0 and later", ["3.0", "4"], ["2.9"]),
    ("from 3.0", ["3.0"], ["2.9"]),
    ("later than 3.0", ["3.0.1"], ["3.0"]),
    ("1.0 to 2.1", ["1.0", "2.1", "2.1.5"], ["2.2"]),
    ("between 1.0 and 2.1", ["1.5"], ["2.2"]),
    ("13.1 - 13.2", ["13.1-49.15"], ["14.1"]),
    ("4.8.2", ["4.8.2", "4.8.2.1"], ["4.8.3", "4.8"]),
    ("v3.00.2", ["3.0.2"], ["3.0.3"]),
    ("7.x", ["7.0", "7.3.2"], ["8.0", "6.9"]),
    ("2018 SP2 and prior", ["2018", "2018 SP1", "2018 SP2"], ["2018 SP3", "2020"]),
    ("4.8.2, 4.8.3", ["4.8.3"], ["4.8.4"]),
])
def test_advisory_ranges(spec: str, inside: list[str], outside: list[str]) -> None:
    parsed = parse_spec(spec)
    assert parsed.kind not in ("unreadable", "all"), parsed
    for version in inside:
        assert parsed.contains(parse_version(version)) is True, (spec, version)
    for version in outside:
        assert parsed.contains(parse_version(version)) is False, (spec, version)


@pytest.mark.parametrize("spec", ["All versions", "all versions", "vers:all/*", "*", "All", "vers:generic/*"])
def test_all_versions(spec: str) -> None:
    assert parse_spec(spec).kind == "all"


@pytest.mark.parametrize("spec", ["<=d78dda6", "Intel Core i5 Intel Core i7 | Intel XEON", "see vendor advisory", ""])
def test_unreadable_ranges_are_never_compared(spec: str) -> None:
    parsed = parse_spec(spec)
    assert parsed.kind == "unreadable" and parsed.contains(parse_version("1.0")) is None


def verdict(asset_version: str | None, versions: list[str]) -> tuple[str, str]:
    check = check_version(asset_version, versions)
    return check.match, check.basis


def test_verdicts_and_their_reasons() -> None:
    assert verdict("V4.8.1", ["vers:all/<V4.9.0"]) == (AFFECTED, BASIS_IN_RANGE)
    assert verdict("4.9.0", ["vers:all/<V4.9.0"]) == (NOT_AFFECTED, BASIS_OUTSIDE)
    assert verdict(None, ["vers:all/<V4.9.0"]) == (UNKNOWN, BASIS_NO_ASSET_VERSION)
    assert verdict("  ", ["<3.0"]) == (UNKNOWN, BASIS_NO_ASSET_VERSION)
    assert verdict("7.0.12", []) == (UNKNOWN, BASIS_NO_ADVISORY_VERSIONS)  # every KEV entry
    assert verdict(None, ["All versions"]) == (AFFECTED, BASIS_ALL)  # whatever the asset runs
    assert verdict("d78dda7", ["<=d78dda6"]) == (UNKNOWN, BASIS_ASSET_UNREADABLE)
    assert verdict("1.0", ["<=d78dda6"]) == (UNKNOWN, BASIS_ADVISORY_UNREADABLE)
    # one readable range that includes the asset is enough; one that excludes it is not, next to an unreadable one
    assert check_version("1.0", ["<=d78dda6", "<2.0"]).match == AFFECTED
    assert check_version("3.0", ["<=d78dda6", "<2.0"]).match == UNKNOWN
    assert check_version("4.8.4", ["4.8.2", "4.8.3"]).match == NOT_AFFECTED
    check = check_version("2.9.2", ["<=2.9.1"])
    assert check.note == "2.9.2 is outside <=2.9.1"
    assert "version not confirmed" in check_version(None, ["<3.0"]).note
