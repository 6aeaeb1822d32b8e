"""``config/settings.yaml``: the store, the display and the freshness limits of the whole floor."""
from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from settings.base import Duration, StrictModel


class DemoSettings(StrictModel):
    """The bundled demo: a writer of realistic Suricata alerts that the real tailer reads."""

    events_per_minute: int = Field(default=90, ge=1, le=60000)
    backfill: Duration = timedelta(hours=24)
    seed: int | None = None


class IncidentRules(StrictModel):
    """How events group into incidents."""

    group_by: list[str] = ["signature", "src_ip", "site"]
    window: Duration = timedelta(hours=1)
    reopen_resolved: bool = True

    @field_validator("group_by")
    @classmethod
    def _known_keys(cls, keys: list[str]) -> list[str]:
        allowed = {"signature", "signature_id", "src_ip", "dst_ip", "site", "sector", "sensor",
                   "src_country", "category", "asset"}
        unknown = [k for k in keys if k not in allowed]
        if unknown:
            raise ValueError(f"unknown group-by key(s) {unknown}; choose from {sorted(allowed)}")
        if not keys:
            raise ValueError("give at least one group-by key")
        return keys


class AppSettings(StrictModel):
    title: str = "watchfloor"
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is SQLite at <data>/watchfloor.db"
    )
    display_timezone: str = "UTC"
    refresh_interval: Duration = timedelta(seconds=10)
    no_data_banner_after: Duration = timedelta(minutes=15)
    late_factor: float = Field(default=1.5, ge=1.0, description="late after cadence × this")
    stale_factor: float = Field(default=4.0, ge=1.0, description="stale after cadence × this")
    demo: DemoSettings = DemoSettings()
    incidents: IncidentRules = IncidentRules()
    geoip_city_database: str | None = None

    @field_validator("display_timezone")
    @classmethod
    def _real_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (use an IANA name like Asia/Bangkok)") from None
        return name
