"""The source model: one YAML file under ``config/feeds/`` declares one source.

A source is a *transport* (``source.type``: http, taxii, misp, csaf, file, directory, tail) plus a
*format* (``format``: a module under ``collectors/formats`` for threat-intel or advisories, or
under ``collectors/sensors`` for sensor logs) plus a *mapping* from the format's fields to the
record schema. The format's own knobs go under ``options`` and are validated by that module's
``Options`` model when the configuration is loaded.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from settings.base import ByteSize, Duration, StrictModel

SECRET_REFERENCE = re.compile(r"\$\{ENV:([A-Za-z_][A-Za-z0-9_]*)\}")
TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")


def _secret_reference(value: str) -> str:
    """Secrets live in the environment, never in a config file that gets copied and shared."""
    if not SECRET_REFERENCE.fullmatch(value.strip()):
        raise ValueError("secrets must be written as ${ENV:NAME}, never inline")
    return value.strip()


SecretRef = Annotated[str, AfterValidator(_secret_reference)]


class BasicAuth(StrictModel):
    type: Literal["basic"]
    username: str
    password: SecretRef


class BearerAuth(StrictModel):
    type: Literal["bearer"]
    token: SecretRef


class HeaderAuth(StrictModel):
    """An API key sent in a header of the provider's choosing (e.g. ``Auth-Key`` for abuse.ch)."""

    type: Literal["header"]
    header: str
    value: SecretRef


Auth = Annotated[BasicAuth | BearerAuth | HeaderAuth, Field(discriminator="type")]


class HttpSource(StrictModel):
    """Fetch one URL over HTTP(S) with conditional GET, retries and hard size caps."""

    type: Literal["http"]
    url: str
    headers: dict[str, str] = {}
    auth: Auth | None = None
    proxy: str | None = None
    connect_timeout: Duration = timedelta(seconds=10)
    timeout: Duration = timedelta(seconds=60)
    max_bytes: ByteSize = 64 * 1024**2
    max_decompressed_bytes: ByteSize = 512 * 1024**2
    decompression: Literal["auto", "none", "gzip", "zip"] = "auto"
    verify_tls: bool = True
    retries: int = Field(default=3, ge=0, le=10)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (use type: file for local files)")
        return url


class TaxiiSource(StrictModel):
    """A TAXII 2.1 collection, read incrementally with ``added_after`` and paging."""

    type: Literal["taxii"]
    url: str = Field(description="the collection URL, ending in /collections/<id>/")
    auth: Auth | None = None
    proxy: str | None = None
    timeout: Duration = timedelta(seconds=60)
    page_size: int = Field(default=500, ge=1, le=10000)
    initial_lookback: Duration = timedelta(days=30)
    verify_tls: bool = True


class MispSource(StrictModel):
    """A MISP feed: ``manifest.json`` plus one JSON file per event, read incrementally by timestamp.

    ``initial_lookback`` and ``max_events`` bound a first run against a big feed (CIRCL OSINT lists
    years of events; MISP #5649): events older than the lookback are never fetched unless they
    change, and a run fetches at most ``max_events`` (the newest), leaving the rest for the next.
    """

    type: Literal["misp"]
    url: str = Field(description="base URL of the feed (http(s):// or file://)")
    headers: dict[str, str] = {}
    auth: Auth | None = None
    proxy: str | None = None
    timeout: Duration = timedelta(seconds=60)
    max_bytes: ByteSize = 64 * 1024**2
    initial_lookback: Duration | None = None
    max_events: int | None = Field(default=None, ge=1)
    verify_tls: bool = True


class CsafSource(StrictModel):
    """A CSAF 2.0 provider's distribution folder: ``changes.csv`` plus one JSON file per advisory.

    Read incrementally: each run lists the changes since the cursor and fetches at most
    ``max_advisories_per_run`` advisories (the newest first), each checked against its ``.sha512``
    when the provider publishes one.
    """

    type: Literal["csaf"]
    url: str = Field(description="the folder holding changes.csv, e.g. https://provider.example/csaf/white/")
    listing_prefix: str = Field(
        default="",
        description="a leading path the listings write before each advisory path that the folder URL already "
                    "holds (CISA's listings: csaf_files/OT/white/); stripped before the path is joined to url")
    headers: dict[str, str] = {}
    auth: Auth | None = None
    proxy: str | None = None
    timeout: Duration = timedelta(seconds=60)
    max_bytes: ByteSize = 16 * 1024**2
    max_advisories_per_run: int = Field(default=200, ge=1, le=10000)
    initial_lookback: Duration | None = timedelta(days=365)
    verify_checksums: bool = True
    verify_tls: bool = True

    @field_validator("url")
    @classmethod
    def _http_folder(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url if url.endswith("/") else url + "/"

    @field_validator("listing_prefix")
    @classmethod
    def _relative_prefix(cls, prefix: str) -> str:
        prefix = prefix.strip().strip("/")
        if "://" in prefix or "\\" in prefix or ".." in prefix.split("/"):
            raise ValueError("must be a plain relative path such as csaf_files/OT/white/")
        return prefix + "/" if prefix else ""


class FileSource(StrictModel):
    """A local file read whole on every run: a feed that air-gapped sites receive by hand."""

    type: Literal["file"]
    path: str
    max_bytes: ByteSize = 512 * 1024**2


class DirectorySource(StrictModel):
    """A drop folder: every file copied in is ingested once, then recorded as done."""

    type: Literal["directory"]
    path: str
    pattern: str = "*"
    max_line_bytes: ByteSize = 1024**2


class TailSource(StrictModel):
    """A growing log file (path or glob) followed across rotation, with its offset saved."""

    type: Literal["tail"]
    path: str
    start_at: Literal["beginning", "end"] = "beginning"
    batch_lines: int = Field(default=5000, ge=1)
    batch_bytes: ByteSize = 4 * 1024**2
    read_rotated_gz: bool = True
    max_line_bytes: ByteSize = 1024**2


SourceTransport = Annotated[
    HttpSource | TaxiiSource | MispSource | CsafSource | FileSource | DirectorySource | TailSource,
    Field(discriminator="type"),
]


class Schedule(StrictModel):
    every: Duration | None = None
    cron: str | None = None
    jitter: Duration = timedelta(0)
    min_interval: Duration = timedelta(seconds=1)

    @model_validator(mode="after")
    def _one_trigger(self) -> "Schedule":
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of 'every' or 'cron'")
        if self.every is not None and self.every < self.min_interval:
            raise ValueError(
                f"'every' ({self.every}) is shorter than 'min_interval' ({self.min_interval}), "
                "the provider's floor"
            )
        return self


class TimeField(StrictModel):
    """A timestamp column or path: ``format`` is a strptime pattern, ``epoch``, ``epoch_ms`` or ``iso``."""

    field: str
    format: str = "iso"
    tz: str = "UTC"


class Mapping(StrictModel):
    """Where the record fields come from: column names (CSV), dotted paths (JSON) or nothing (lines).

    ``type`` is a fixed indicator type or ``auto`` (detected from the value); ``type_field`` with
    ``type_map`` reads the type from the data (e.g. MISP or ThreatFox ``ioc_type``).
    """

    value: str | None = None
    type: str = "auto"
    type_field: str | None = None
    type_map: dict[str, str] = {}
    first_seen: TimeField | None = None
    last_seen: TimeField | None = None
    tags: list[str] = []
    tags_field: str | None = None
    malware: str | None = None
    port: str | None = None
    description: str | None = None
    confidence: str | None = None


class Filters(StrictModel):
    types: list[str] | None = None
    exclude_private: bool = True
    min_confidence: int = Field(default=0, ge=0, le=100)


class Lifecycle(StrictModel):
    ttl: Duration | None = timedelta(days=30)
    on_absent: Literal["expire", "keep"] = "keep"


class Health(StrictModel):
    """When a source counts as late/stale, and when a run looks suspicious."""

    max_age: Duration | None = None
    stale_after: Duration | None = None
    min_records: int = Field(default=0, ge=0)
    max_drop_pct: float = Field(default=90, ge=0, le=100)


class SourceConfig(StrictModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    name: str
    provider: str = "local"
    enabled: bool = True
    demo: bool = False
    documentation: str | None = None
    terms: str = "unknown"
    tlp: Literal["clear", "green", "amber", "amber+strict", "red"] = "clear"
    confidence: int = Field(default=50, ge=0, le=100)
    source: SourceTransport
    schedule: Schedule
    format: str
    options: dict[str, Any] = {}
    mapping: Mapping = Mapping()
    filters: Filters = Filters()
    lifecycle: Lifecycle = Lifecycle()
    health: Health = Health()
    detect: bool = True

    @property
    def cadence(self) -> timedelta:
        """How often data is expected: the schedule, or the declared ``max_age`` when it is longer."""
        expected = self.schedule.every or timedelta(hours=1)
        return max(expected, self.health.max_age or timedelta(0))

    def secret_names(self) -> set[str]:
        """Environment variables this source reads its secrets from."""
        return set(SECRET_REFERENCE.findall(self.model_dump_json()))
