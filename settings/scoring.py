"""``config/scoring.yaml``: the weights of the explainable 0-100 event score and the level thresholds.

The score is a sum of NAMED contributions (after Malcolm's ``severity_tags``), capped at 100:

``sensor_severity``   the sensor's own severity, by level
``indicator_hit``     a matched threat indicator, × best confidence / 100
``ot_target``         the protected side of the flow is in an OT zone
``ics_control``       an ICS write / program / stop / restart function (``ics_control_patterns``)
``it_to_ot``          source in an IT zone or outside the inventory, destination in an OT zone
``asset_criticality`` the criticality (1-5) of the asset hit; ``site_criticality`` when no asset is known
``known_exploited``   the asset's vendor/product has a known-exploited vulnerability (CISA KEV)

``levels`` maps the total to the five levels: the highest threshold the score reaches wins.
"""
from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from settings.base import StrictModel

LEVEL_NAMES = ("critical", "high", "medium", "low", "info")


class SensorSeverityWeights(StrictModel):
    critical: int = Field(default=40, ge=0, le=100)
    high: int = Field(default=30, ge=0, le=100)
    medium: int = Field(default=20, ge=0, le=100)
    low: int = Field(default=10, ge=0, le=100)
    info: int = Field(default=0, ge=0, le=100)


def _criticality_table(table: dict[int, int]) -> dict[int, int]:
    for level, points in table.items():
        if not 1 <= level <= 5:
            raise ValueError(f"criticality {level} is outside 1-5")
        if not 0 <= points <= 100:
            raise ValueError(f"points {points} for criticality {level} are outside 0-100")
    return table


class Weights(StrictModel):
    sensor_severity: SensorSeverityWeights = SensorSeverityWeights()
    indicator_hit: int = Field(default=40, ge=0, le=100, description="× best confidence / 100")
    ot_target: int = Field(default=15, ge=0, le=100)
    ics_control: int = Field(default=20, ge=0, le=100)
    it_to_ot: int = Field(default=15, ge=0, le=100)
    asset_criticality: dict[int, int] = {1: 0, 2: 2, 3: 5, 4: 8, 5: 10}
    site_criticality: dict[int, int] = {1: 0, 2: 1, 3: 3, 4: 4, 5: 5}
    known_exploited: int = Field(default=15, ge=0, le=100)

    _tables = field_validator("asset_criticality", "site_criticality")(_criticality_table)


class Levels(StrictModel):
    """Lowest score of each level; ``info`` is everything below ``low``."""

    critical: int = Field(default=80, ge=0, le=100)
    high: int = Field(default=60, ge=0, le=100)
    medium: int = Field(default=40, ge=0, le=100)
    low: int = Field(default=20, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> "Levels":
        if not self.critical >= self.high >= self.medium >= self.low:
            raise ValueError("thresholds must not increase from critical down to low")
        return self


class IncidentPolicy(StrictModel):
    """Which events open or join incidents. The rest are stored, counted and searchable, no more."""

    kinds: list[str] = ["alert", "anomaly", "drop", "notice", "intel"]
    min_level: str = "medium"
    on_indicator_hit: bool = True

    @field_validator("min_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in LEVEL_NAMES:
            raise ValueError(f"unknown level {value!r}; choose from {list(LEVEL_NAMES)}")
        return value


DEFAULT_ICS_CONTROL_PATTERNS = [
    r"write", r"operate", r"restart", r"stop", r"start", r"program", r"download", r"upload",
    r"firmware", r"reset", r"delete", r"initiali[sz]e", r"activate_config", r"save_config",
    r"set_attribute", r"umas", r"diagnostics", r"freeze_clear", r"plc_control",
]


class ScoringConfig(StrictModel):
    weights: Weights = Weights()
    levels: Levels = Levels()
    indicator_default_confidence: int = Field(
        default=50, ge=0, le=100, description="used when no feed gave the indicator a confidence"
    )
    ics_control_patterns: list[str] = Field(
        default=DEFAULT_ICS_CONTROL_PATTERNS,
        description="regular expressions (case-insensitive) over the event's ics_function",
    )
    incidents: IncidentPolicy = IncidentPolicy()

    @field_validator("ics_control_patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        import re

        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return patterns
