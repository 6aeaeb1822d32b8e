"""JSON records: an array of objects, records under a path, or JSON lines (``format: json``).

Feodo Tracker ``ipblocklist.json`` (an array; ``hostname`` may be ``null``, ``first_seen`` may be
missing)::

    [{"ip_address": "51.178.161.32", "port": 4643, "status": "online", "hostname": "srv-web...",
      "as_number": 16276, "as_name": "OVH", "country": "FR", "first_seen": "2021-01-17 07:44:46",
      "last_online": "2022-11-15", "malware": "Dridex"}, ...]

Spamhaus ``drop_v4.json`` (JSON lines, closed by a metadata object that is not a record)::

    {"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"}
    {"type":"metadata","timestamp":...,"records":1406,...}        <- skip_if: {type: metadata}

Rules:

* The shape is found from the first line unless ``lines`` says: a first line that is a whole
  JSON object means JSON lines; otherwise the payload is one document. ``records_path`` (a
  dotted path) says where the array sits in a document; an array document is the records; an
  object document is one record.
* Mapping keys are dotted paths into each record (``a.b``, ``list.0.c``); ``mapping.value`` is
  required.
* A record matching every ``skip_if`` path/value pair is skipped, not rejected.
* **A document that does not parse (cut short, not JSON) fails the run** (``FormatError``): one
  document has no "rest" to keep. In JSON lines a broken line is one ``Rejected`` with its line
  number and the others load.
* A document is read whole (bounded by the transport's ``max_bytes``); JSON lines stream. Prefer
  the JSON-lines variant of a feed when it is large.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from pydantic import Field

from collectors.formats.common import (
    MAX_LINE_BYTES, FormatError, build_indicator, check_start, dotted, iter_lines, peek_head, skipped,
)
from settings.base import StrictModel
from settings.sources import SourceConfig
from store.records import Indicator, Rejected

FORMAT = "json"
KIND = "indicators"


class Options(StrictModel):
    records_path: str | None = Field(default=None, description="dotted path to the array of records in a document")
    lines: bool | None = Field(default=None, description="JSON lines (true), one document (false), or detect")
    skip_if: dict[str, Any] = Field(default={}, description="skip records whose paths hold all these values")


def parse(payload: BinaryIO, source: SourceConfig, options: Options) -> Iterator[Indicator | Rejected]:
    if not source.mapping.value:
        raise FormatError("the json format needs mapping.value (the path of the indicator in each record)")
    head, reader = peek_head(payload, MAX_LINE_BYTES)
    check_start(head, "JSON")
    if options.lines if options.lines is not None else (options.records_path is None and _first_line_is_object(head)):
        yield from _json_lines(reader, source, options)
    else:
        yield from _document(reader.read(), source, options)


def _first_line_is_object(head: bytes) -> bool:
    first = next((line for line in head.removeprefix(b"\xef\xbb\xbf").splitlines() if line.strip()), b"")
    try:
        return isinstance(json.loads(first), dict)
    except (ValueError, RecursionError):
        return False


def _json_lines(reader: BinaryIO, source: SourceConfig, options: Options) -> Iterator[Indicator | Rejected]:
    for lineno, line in iter_lines(reader, "JSON lines"):
        if isinstance(line, Rejected):
            yield line
        elif line.strip():
            try:
                record = json.loads(line)
            except (ValueError, RecursionError) as exc:
                yield Rejected(f"not valid JSON: {getattr(exc, 'msg', exc)}", f"line {lineno}", line)
                continue
            yield _record(record, line, f"line {lineno}", source, options)


def _document(data: bytes, source: SourceConfig, options: Options) -> Iterator[Indicator | Rejected]:
    data = data.removeprefix(b"\xef\xbb\xbf")
    if not data.strip():
        raise FormatError("the payload is empty; expected a JSON document")
    try:
        document = json.loads(data)
    except json.JSONDecodeError as exc:
        raise FormatError(f"payload is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                          "a download cut short looks like this") from None
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"payload is not valid JSON: {exc}") from None
    records = dotted(document, options.records_path) if options.records_path else document
    if options.records_path and not isinstance(records, list):
        raise FormatError(f"no array at records_path {options.records_path!r}")
    for number, record in enumerate(records if isinstance(records, list) else [records], start=1):
        yield _record(record, json.dumps(record, separators=(",", ":"), ensure_ascii=False), f"record {number}", source, options)


def _record(record: Any, raw: str, location: str, source: SourceConfig, options: Options) -> Indicator | Rejected:
    if not isinstance(record, dict):
        return Rejected(f"record is a JSON {type(record).__name__}, not an object", location, raw)
    if options.skip_if and all(dotted(record, path) == value for path, value in options.skip_if.items()):
        return skipped("matches skip_if", location, raw)
    return build_indicator(lambda field: dotted(record, field), source, location=location, raw=raw)
