"""ATT&CK for ICS techniques: the catalogue incidents cite."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from collectors.formats import attack
from collectors.formats.attack import iter_attack_techniques
from store.records import Technique
from collectors.formats.common import FormatError, outcome, tally


def technique(number: int, **extra: Any) -> dict[str, Any]:
    return {"type": "attack-pattern", "spec_version": "2.1", "id": f"attack-pattern--00000000-0000-4000-8000-{number:012d}",
            "name": f"Technique {number}",
            "external_references": [{"source_name": "other", "external_id": "X1"},
                                    {"source_name": "mitre-ics-attack", "external_id": f"T08{number:02d}",
                                     "url": f"https://attack.mitre.org/techniques/T08{number:02d}"}],
            "kill_chain_phases": [{"kill_chain_name": "mitre-ics-attack", "phase_name": "inhibit-response-function"},
                                  {"kill_chain_name": "lockheed", "phase_name": "delivery"}], **extra}


def run(objects: list[Any], **options: Any) -> list[Any]:
    payload = io.BytesIO(json.dumps({"type": "bundle", "objects": objects}).encode())
    return list(attack.parse(payload, None, attack.Options(**options)))  # type: ignore[arg-type]


def test_techniques_with_id_tactics_and_url() -> None:
    [record] = run([technique(16)])
    assert record == Technique(id="T0816", name="Technique 16", tactics=("inhibit-response-function",),
                               url="https://attack.mitre.org/techniques/T0816",
                               stix_id="attack-pattern--00000000-0000-4000-8000-000000000016")


def test_revoked_deprecated_others_and_broken_objects() -> None:
    objects = [technique(1, revoked=True), technique(2, x_mitre_deprecated=True),
               {"type": "x-mitre-tactic", "id": "x-mitre-tactic--1"}, {"type": "attack-pattern", "id": "attack-pattern--x"}]
    assert [outcome(r) for r in run(objects)] == ["skipped", "skipped", "skipped", "rejected"]
    kept = run(objects, include_revoked=True, include_deprecated=True)
    assert [(r.id, r.revoked, r.deprecated) for r in kept if isinstance(r, Technique)] == [
        ("T0801", True, False), ("T0802", False, True)]


def test_the_ics_attack_bundle(shared_fixtures: Path) -> None:
    path = shared_fixtures / "stix" / "mitre-ics-attack-subset.json"
    with path.open("rb") as payload:
        techniques = list(iter_attack_techniques(payload))
    assert len(techniques) == 12  # 13 attack-patterns, one of them deprecated (T0850)
    by_id = {t.id: t for t in techniques}
    assert "T0850" not in by_id
    assert by_id["T0836"].name == "Modify Parameter" and by_id["T0836"].tactics == ("impair-process-control",)
    with path.open("rb") as payload:
        counts = tally(attack.parse(payload, None, attack.Options()))  # type: ignore[arg-type]
    assert counts["technique"] == 12 and counts["skipped"] == 110 and counts["rejected"] == 0


def test_not_json_fails_the_run() -> None:
    with pytest.raises(FormatError):
        list(attack.parse(io.BytesIO(b"[{"), None, attack.Options()))  # type: ignore[arg-type]
