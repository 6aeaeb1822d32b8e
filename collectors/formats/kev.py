"""CISA Known Exploited Vulnerabilities catalogue, JSON or CSV (``format: kev``).

``known_exploited_vulnerabilities.json``::

    {"title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2025.08.25",
     "dateReleased": "2025-08-25T17:04:19.9796Z", "count": 47,
     "vulnerabilities": [{"cveID": "CVE-2025-48384", "vendorProject": "Git", "product": "Git",
        "vulnerabilityName": "Git Link Following Vulnerability", "dateAdded": "2025-08-25",
        "shortDescription": "...", "requiredAction": "...", "dueDate": "2025-09-15",
        "knownRansomwareCampaignUse": "Unknown", "notes": "...", "cwes": ["CWE-59", "CWE-436"]}]}

``known_exploited_vulnerabilities.csv`` has the same fields as columns
(``cveID,vendorProject,product,vulnerabilityName,dateAdded,shortDescription,requiredAction,
dueDate,knownRansomwareCampaignUse,notes,cwes``).

Rules: one ``Advisory`` per entry with ``advisory_id`` and ``cve`` = ``cveID``, ``vendor`` =
``vendorProject``, ``title`` = ``vulnerabilityName``, ``published`` = ``dateAdded`` (midnight
UTC), ``known_exploited=True``; the due date, required action, ransomware use and notes stay in
``raw`` (the ``Advisory`` record has no columns for them yet). ``variant`` picks JSON or CSV
(``auto``: by the first character). An entry without a well-formed CVE id, or with a bad date,
is rejected. A catalogue that is not JSON, lacks ``vulnerabilities``, or a CSV header without
the columns above fails the run. The JSON catalogue (about 1.5 MB whole) is read with
``json.load``; the CSV streams.
"""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, BinaryIO, Literal

from pydantic import Field

from collectors.formats.common import FormatError, check_start, peek_head
from settings.base import StrictModel
from settings.sources import SourceConfig
from store.records import Advisory, Rejected

FORMAT = "kev"
KIND = "advisories"

COLUMNS = ("cveID", "vendorProject", "product", "vulnerabilityName", "dateAdded")
CVE_ID = re.compile(r"CVE-\d{4}-\d{4,}", re.ASCII)


class Options(StrictModel):
    variant: Literal["auto", "json", "csv"] = Field(default="auto", description="JSON catalogue, CSV twin, or detect")


def parse(payload: BinaryIO, source: SourceConfig, options: Options) -> Iterator[Advisory | Rejected]:
    head, reader = peek_head(payload, 64)
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    check_start(head, "the KEV catalogue")
    variant = options.variant if options.variant != "auto" else ("json" if head[:1] in (b"{", b"[") else "csv")
    entries = _json_entries(reader) if variant == "json" else _csv_entries(reader)
    for location, entry, raw in entries:
        yield _advisory(entry, raw, location, source)


def _json_entries(reader: BinaryIO) -> Iterator[tuple[str, Any, str]]:
    try:
        catalogue = json.load(reader)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"the KEV catalogue is not valid JSON: {exc}") from None
    entries = catalogue.get("vulnerabilities") if isinstance(catalogue, dict) else None
    if not isinstance(entries, list):
        raise FormatError("the KEV catalogue has no 'vulnerabilities' array")
    for number, entry in enumerate(entries, start=1):
        yield f"vulnerability {number}", entry, json.dumps(entry, separators=(",", ":"), ensure_ascii=False)


def _csv_entries(reader: BinaryIO) -> Iterator[tuple[str, Any, str]]:
    # Decoded line by line (not a TextIOWrapper, which would close the caller's stream when dropped).
    text = (line.decode("utf-8", "replace").removeprefix("\ufeff") for line in reader)
    rows = csv.reader(text)
    header = next(rows, None)
    missing = [c for c in COLUMNS if c not in (header or [])]
    if missing:
        raise FormatError(f"the KEV CSV header lacks column(s) {', '.join(missing)}")
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            yield f"line {rows.line_num}", None, f"not a CSV row: {exc}"
            continue
        if row:
            entry = dict(zip(header, row)) if len(row) == len(header) else None
            raw = json.dumps(entry, separators=(",", ":"), ensure_ascii=False) if entry else ",".join(row)
            yield f"line {rows.line_num}", entry, raw


def _advisory(entry: Any, raw: str, location: str, source: SourceConfig) -> Advisory | Rejected:
    if not isinstance(entry, dict):
        return Rejected("not a KEV entry (wrong number of fields, or not an object)", location, raw)
    cve = str(entry.get("cveID") or "").strip()
    if not CVE_ID.fullmatch(cve):
        return Rejected(f"cveID {cve[:30]!r} is not a CVE id", location, raw)
    added = str(entry.get("dateAdded") or "").strip()
    try:
        published = datetime.strptime(added, "%Y-%m-%d").replace(tzinfo=timezone.utc) if added else None
    except ValueError:
        return Rejected(f"dateAdded {added[:30]!r} is not YYYY-MM-DD", location, raw)
    return Advisory(
        advisory_id=cve, source=source.id, cve=cve, vendor=_text(entry.get("vendorProject")),
        product=_text(entry.get("product")), title=_text(entry.get("vulnerabilityName")) or cve, raw=raw,
        published=published, known_exploited=True,
    )


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
