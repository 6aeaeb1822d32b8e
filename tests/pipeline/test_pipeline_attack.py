"""ATT&CK for ICS tagging from the shipped ``config/attack_ics_map.yaml``; names from the store first."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from pipeline_testkit import REPO, event_at

from pipeline.attack import AttackMapConfig, AttackTagger, load_map, technique_names
from settings.loader import validate
from store.writes import upsert_techniques


@pytest.fixture(scope="module")
def tagger() -> AttackTagger:
    config, problems = load_map(REPO / "config")
    assert problems == []
    return AttackTagger(config)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"kind": "modbus", "ics_function": "write_single_coil"}, ("T0836", "T1692")),
    ({"kind": "modbus", "ics_function": "read_holding_registers"}, ()),
    ({"kind": "dnp3", "ics_function": "cold_restart"}, ("T0816",)),
    ({"kind": "dnp3", "ics_function": "direct_operate"}, ("T1692",)),
    ({"kind": "dnp3", "ics_function": "stop_appl"}, ("T0858", "T0881")),
    ({"kind": "alert", "signature": "ET SCAN Suspicious inbound to Modbus port 502"}, ("T0846", "T0888")),
    ({"kind": "alert", "signature": "ET EXPLOIT Fortinet FortiOS Auth Bypass (CVE-2022-40684)"}, ("T0819", "T0866")),
    ({"kind": "alert", "signature": "ET SCAN Potential SSH Brute Force"}, ("T0846", "T0859", "T0886")),
    ({"kind": "alert", "signature": "ET CNC Feodo Tracker Reported CnC Server group 1"}, ("T0869", "T0885")),
    ({"kind": "alert", "signature": "Siemens S7 CPU STOP command"}, ("T0858", "T0881")),
    ({"kind": "alert", "signature": "GPL CHAT IRC message", "category": "Misc activity"}, ()),
])
def test_events_get_the_techniques_of_every_matching_rule(tagger, fields, expected):
    assert tagger.techniques(event_at(0, **fields)) == expected


def test_every_technique_the_rules_name_has_a_fallback_name():
    config, _ = load_map(REPO / "config")
    named = {t for rule in config.rules for t in rule.techniques}
    assert named <= set(config.techniques)


def test_bad_rules_are_rejected_with_the_field_named():
    _, problems = validate(AttackMapConfig, {"rules": [{"when": {"signtaure": "x"}, "techniques": ["T0846"]}]}, "m")
    assert problems and "signtaure" in problems[0].message
    _, problems = validate(AttackMapConfig, {"rules": [{"when": {"signature": "("}, "techniques": ["T0846"]}]}, "m")
    assert problems and "regular expression" in problems[0].message
    _, problems = validate(AttackMapConfig, {"rules": [{"when": {"signature": "x"}, "techniques": ["0846"]}]}, "m")
    assert problems and "technique ids" in problems[0].message


@dataclass
class Technique:
    id: str
    name: str
    tactics: tuple[str, ...] = ()
    url: str | None = None


def test_names_come_from_the_collected_feed_before_the_map(store):
    with store.writer.begin() as conn:
        upsert_techniques(conn, "mitre-ics", [Technique("T0846", "Remote System Discovery (from MITRE)")])
    with store.reader.connect() as conn:
        names = technique_names(conn, ["T0846", "T0816", "T9999"], {"T0816": "Device Restart/Shutdown"})
    assert names == {"T0846": "Remote System Discovery (from MITRE)", "T0816": "Device Restart/Shutdown",
                     "T9999": "T9999"}
