"""ATT&CK for ICS tagging: technique ids for an event, from ``config/attack_ics_map.yaml``.

A rule names event fields (``kind``, ``app_proto``, ``signature``, ``category``, ``ics_function``)
with a regular expression each, searched case-insensitively; all of a rule's fields must match and
every matching rule adds its techniques. Events repeat the same few signatures, so results are
memoised by the fields the rules read.

Technique names for display come from the store's ``attack_techniques`` table (filled by the MITRE
ATT&CK for ICS collector) and fall back to the names in the map file (``technique_names``).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from pydantic import Field, field_validator
from sqlalchemy import Connection, select

from settings.base import StrictModel
from settings.loader import ConfigProblem, read_yaml, validate
from store.records import Event
from store.schema import techniques as techniques_table

MAP_FILE = "attack_ics_map.yaml"
MATCHED_FIELDS = ("kind", "app_proto", "signature", "category", "ics_function")
MEMO_SIZE = 16384
_TECHNIQUE_ID = re.compile(r"^T\d{4}(\.\d{3})?$")


class Rule(StrictModel):
    when: dict[str, str] = Field(min_length=1)
    techniques: list[str] = Field(min_length=1)

    @field_validator("when")
    @classmethod
    def _fields(cls, when: dict[str, str]) -> dict[str, str]:
        for key, pattern in when.items():
            if key not in MATCHED_FIELDS:
                raise ValueError(f"unknown field {key!r}; choose from {list(MATCHED_FIELDS)}")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{key}: {pattern!r} is not a regular expression: {exc}") from None
        return when

    @field_validator("techniques")
    @classmethod
    def _ids(cls, ids: list[str]) -> list[str]:
        bad = [t for t in ids if not _TECHNIQUE_ID.match(t)]
        if bad:
            raise ValueError(f"not ATT&CK technique ids: {bad}")
        return ids


class AttackMapConfig(StrictModel):
    techniques: dict[str, str] = {}
    rules: list[Rule] = []


def load_map(folder: Path) -> tuple[AttackMapConfig, list[ConfigProblem]]:
    """Read and validate the map from a config folder; a missing file is an empty map."""
    path = Path(folder) / MAP_FILE
    if not path.exists():
        return AttackMapConfig(), []
    data, problems = read_yaml(path, str(path))
    if problems:
        return AttackMapConfig(), problems
    loaded, problems = validate(AttackMapConfig, data, str(path))
    return (loaded or AttackMapConfig()), problems


class AttackTagger:
    """Compiled rules; ``techniques(event)`` returns sorted technique ids."""

    def __init__(self, config: AttackMapConfig) -> None:
        self.names = dict(config.techniques)
        self._rules = [
            (tuple((MATCHED_FIELDS.index(k), re.compile(p, re.IGNORECASE)) for k, p in rule.when.items()),
             tuple(rule.techniques))
            for rule in config.rules
        ]
        self._memo: dict[tuple[str | None, ...], tuple[str, ...]] = {}

    def techniques(self, event: Event) -> tuple[str, ...]:
        key = (event.kind, event.app_proto, event.signature, event.category, event.ics_function)
        found = self._memo.get(key)
        if found is not None:
            return found
        ids: set[str] = set()
        for conditions, technique_ids in self._rules:
            if all(key[i] is not None and pattern.search(key[i]) for i, pattern in conditions):
                ids.update(technique_ids)
        result = tuple(sorted(ids))
        if len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
        self._memo[key] = result
        return result


def technique_names(conn: Connection, ids: Iterable[str], fallback: dict[str, str]) -> dict[str, str]:
    """Display names for technique ids: the collected MITRE data first, then the map file, else the id."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    stored = {
        row.id: row.name
        for row in conn.execute(select(techniques_table.c.id, techniques_table.c.name)
                                .where(techniques_table.c.id.in_(wanted)))
    }
    return {t: stored.get(t) or fallback.get(t) or t for t in wanted}
