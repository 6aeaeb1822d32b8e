"""MITRE ATT&CK for ICS techniques from the ATT&CK STIX 2.1 bundle (``format: attack-ics``).

Not indicators: the technique catalogue that incidents cite (``T0855 Unauthorized Command
Message``) and the wall groups by tactic. A technique in ``ics-attack.json`` is an
``attack-pattern`` object::

    {"type": "attack-pattern", "id": "attack-pattern--097924ce-...", "name": "Modify Parameter",
     "external_references": [{"source_name": "mitre-attack", "external_id": "T0836",
                              "url": "https://attack.mitre.org/techniques/T0836"}],
     "kill_chain_phases": [{"kill_chain_name": "mitre-ics-attack", "phase_name": "impair-process-control"}],
     "revoked": false, "x_mitre_deprecated": false}

Rules: the technique id and url come from the ``mitre-*`` external reference whose id starts
with ``T``; tactics are the ``phase_name`` of ``mitre-*`` kill-chain phases (the tactic short
names, e.g. ``inhibit-response-function``). Revoked and deprecated techniques are skipped unless
the options ask for them. Every other object is skipped; an attack-pattern without a technique
id is rejected. The bundle is read whole, as in ``stix21``.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from pydantic import Field

from collectors.formats.common import skipped
from collectors.formats.stix21 import load_objects
from settings.base import StrictModel
from settings.sources import SourceConfig
from store.records import Rejected, Technique

FORMAT = "attack-ics"
KIND = "techniques"


class Options(StrictModel):
    include_deprecated: bool = Field(default=False, description="also yield techniques MITRE deprecated")
    include_revoked: bool = Field(default=False, description="also yield techniques MITRE revoked")


def parse(payload: BinaryIO, source: SourceConfig, options: Options) -> Iterator[Technique | Rejected]:
    for number, obj in enumerate(load_objects(payload), start=1):
        if not isinstance(obj, dict):
            yield Rejected("not a STIX object", f"object {number}", str(obj))
            continue
        location = f"object {obj.get('id', number)}"
        raw = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        if obj.get("type") != "attack-pattern":
            yield skipped(f"{obj.get('type')} is not a technique", location, raw)
        elif obj.get("revoked") is True and not options.include_revoked:
            yield skipped("technique revoked by MITRE", location, raw)
        elif obj.get("x_mitre_deprecated") is True and not options.include_deprecated:
            yield skipped("technique deprecated by MITRE", location, raw)
        else:
            yield _technique(obj, location, raw)


def iter_attack_techniques(payload: BinaryIO) -> Iterator[Technique]:
    """The current (not revoked, not deprecated) techniques of an ATT&CK bundle."""
    for record in parse(payload, None, Options()):  # type: ignore[arg-type] - parse does not read the source
        if isinstance(record, Technique):
            yield record


def _technique(obj: dict[str, Any], location: str, raw: str) -> Technique | Rejected:
    reference = next((r for r in obj.get("external_references") or [] if isinstance(r, dict)
                      and str(r.get("source_name", "")).startswith("mitre")
                      and str(r.get("external_id", "")).startswith("T")), None)
    name = obj.get("name")
    if reference is None or not isinstance(name, str) or not isinstance(obj.get("id"), str):
        return Rejected("attack-pattern without a MITRE technique id or name", location, raw)
    tactics = tuple(dict.fromkeys(
        str(p["phase_name"]) for p in obj.get("kill_chain_phases") or []
        if isinstance(p, dict) and str(p.get("kill_chain_name", "")).startswith("mitre") and p.get("phase_name")))
    return Technique(id=str(reference["external_id"]), name=name, tactics=tactics, url=reference.get("url"),
                     stix_id=obj["id"], deprecated=obj.get("x_mitre_deprecated") is True,
                     revoked=obj.get("revoked") is True)
