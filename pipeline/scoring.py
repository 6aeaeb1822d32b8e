"""The explainable 0-100 event score: named contributions with weights from ``config/scoring.yaml``.

``Scorer.score`` adds one ``Contribution`` per reason (zero-point reasons are left out), caps the
total at 100 and maps it to a level with the configured thresholds. Each event stores its
contributions as ``score_explain``: a JSON list of ``{name, points, why}``, the incident page's
answer to "why is this critical?". Contribution names are fixed (``CONTRIBUTIONS``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.assets import Location
from pipeline.indicators import IndicatorMatch
from settings.loader import ConfigProblem, read_yaml, validate
from settings.scoring import ScoringConfig
from store.records import Severity

SCORING_FILE = "scoring.yaml"
MAX_SCORE = 100
CONTRIBUTIONS = (
    "sensor_severity", "indicator_hit", "ot_target", "ics_control", "it_to_ot",
    "asset_criticality", "site_criticality", "known_exploited",
)


@dataclass(frozen=True, slots=True)
class Contribution:
    name: str
    points: int
    why: str

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "points": self.points, "why": self.why}


@dataclass(frozen=True, slots=True)
class Score:
    points: int
    level: Severity
    contributions: tuple[Contribution, ...]

    def explain(self) -> list[dict[str, object]]:
        return [c.as_dict() for c in self.contributions]


def load_scoring(folder: Path) -> tuple[ScoringConfig, list[ConfigProblem]]:
    """Read ``scoring.yaml`` from a config folder; a missing file gives the defaults."""
    path = Path(folder) / SCORING_FILE
    if not path.exists():
        return ScoringConfig(), []
    data, problems = read_yaml(path, str(path))
    if problems:
        return ScoringConfig(), problems
    loaded, problems = validate(ScoringConfig, data, str(path))
    return (loaded or ScoringConfig()), problems


class Scorer:
    """Weights and thresholds resolved once; ``score`` is a pure function of its arguments."""

    def __init__(self, config: ScoringConfig) -> None:
        self.config = config
        weights = config.weights
        self._sensor = {
            Severity.CRITICAL: weights.sensor_severity.critical, Severity.HIGH: weights.sensor_severity.high,
            Severity.MEDIUM: weights.sensor_severity.medium, Severity.LOW: weights.sensor_severity.low,
            Severity.INFO: weights.sensor_severity.info,
        }
        self._thresholds = (
            (config.levels.critical, Severity.CRITICAL), (config.levels.high, Severity.HIGH),
            (config.levels.medium, Severity.MEDIUM), (config.levels.low, Severity.LOW),
        )
        self._control = re.compile("|".join(f"(?:{p})" for p in config.ics_control_patterns) or "(?!)", re.IGNORECASE)
        self._control_memo: dict[str, bool] = {}

    def level(self, points: int) -> Severity:
        for threshold, level in self._thresholds:
            if points >= threshold:
                return level
        return Severity.INFO

    def is_ics_control(self, function: str | None) -> bool:
        if not function:
            return False
        known = self._control_memo.get(function)
        if known is None:
            known = self._control_memo[function] = bool(self._control.search(function))
        return known

    def score(
        self,
        *,
        sensor_severity: Severity | None,
        match: IndicatorMatch | None,
        target: Location,
        src: Location,
        src_ip: str | None,
        target_is_dst: bool,
        ics_function: str | None,
        known_exploited: tuple[str, ...] = (),
    ) -> Score:
        """Score one event.

        ``target`` is the protected side (the destination when it is ours, else the source);
        ``src`` is where the source sits in the inventory (``OUTSIDE`` when nowhere).
        """
        weights = self.config.weights
        parts: list[Contribution] = []
        if sensor_severity is not None:
            points = self._sensor[sensor_severity]
            if points:
                parts.append(Contribution("sensor_severity", points, f"sensor severity {sensor_severity.label}"))
        if match is not None:
            default = self.config.indicator_default_confidence
            confidence = match.best_confidence(default)
            points = round(weights.indicator_hit * confidence / 100)
            if points:
                field, hit = match.best(default)
                feeds = ", ".join(match.feeds)
                more = f" (+{len(match.ids) - 1} more)" if len(match.ids) > 1 else ""
                parts.append(Contribution(
                    "indicator_hit", points,
                    f"{field} matches {hit.type} {hit.value} from {feeds}, confidence {confidence}{more}"))
        kind = target.zone_kind
        if kind == "OT" and weights.ot_target:
            parts.append(Contribution("ot_target", weights.ot_target,
                                      f"target in OT zone {target.zone_name} of {target.site}"))
        if weights.ics_control and self.is_ics_control(ics_function):
            parts.append(Contribution("ics_control", weights.ics_control, f"ICS control function {ics_function}"))
        if target_is_dst and kind == "OT" and weights.it_to_ot and src.zone_kind in (None, "IT"):
            origin = (f"IT zone {src.zone_name} of {src.site}" if src.zone_kind == "IT"
                      else f"{src_ip or 'an unknown source'} outside the inventory")
            parts.append(Contribution("it_to_ot", weights.it_to_ot,
                                      f"from {origin} into OT zone {target.zone_name}"))
        asset = target.asset
        if asset is not None and asset.criticality is not None:
            points = weights.asset_criticality.get(asset.criticality, 0)
            if points:
                parts.append(Contribution("asset_criticality", points,
                                          f"asset {asset.asset_id} criticality {asset.criticality}"))
        elif target.zone is not None:
            criticality = target.zone.site_criticality
            points = weights.site_criticality.get(criticality, 0)
            if points:
                parts.append(Contribution("site_criticality", points,
                                          f"site {target.zone.site} criticality {criticality}"))
        if known_exploited and weights.known_exploited and asset is not None:
            shown = ", ".join(known_exploited[:3]) + (" …" if len(known_exploited) > 3 else "")
            parts.append(Contribution("known_exploited", weights.known_exploited,
                                      f"{asset.vendor} {asset.product} has known-exploited {shown}"))
        total = min(MAX_SCORE, sum(p.points for p in parts))
        return Score(total, self.level(total), tuple(parts))
