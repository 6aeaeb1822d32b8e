"""Delimited tables with or without a header (``format: csv``).

abuse.ch Feodo Tracker (2021 onwards: quoted header line, ``#`` banner and footer)::

    "first_seen_utc","dst_ip","dst_port","c2_status","last_online","malware"
    "2023-05-23 17:51:44","192.9.135.73","1194","online","2024-04-01","Pikabot"
    # END 28 entries

Older abuse.ch lists put the header in the last comment before the data
(``header_in_comment: true``), e.g. SSLBL ``# DstIP,DstPort`` (whose rows carry a third column)
and URLhaus ``# Dateadded (UTC),URL,URL_status,Threat,Host,IPaddress,ASnumber,Country``.

Rules:

* Lines starting with a comment prefix and blank lines are not rows. Each line is one row:
  a quoted field cannot span lines (a stray quote then spoils only its own line).
* The header is the first row (``header``, the default), the last comment line before the data
  that splits into two or more fields (``header_in_comment``), or ``columns`` for files with
  none. Mapping keys name columns by header name (exact, else case-insensitive) or by number
  from 0; a file without header takes numbers only.
* **A mapped column missing from the header fails the run** (``FormatError`` naming the
  columns): the provider changed the format (IntelMQ PR #1741), and guessing would load junk.
* A row with fewer fields than the header is rejected (a cut line); extra fields are kept and
  reachable by number (SSLBL's third column).
* ``mapping.value`` defaults to the first column.
"""
from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from pydantic import Field

from collectors.formats.common import FormatError, build_indicator, iter_lines, mapping_fields
from settings.base import StrictModel
from settings.sources import SourceConfig
from store.records import Indicator, Rejected

FORMAT = "csv"
KIND = "indicators"


class Options(StrictModel):
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quotechar: str = Field(default='"', min_length=1, max_length=1)
    comment_prefixes: list[str] = Field(default=["#"], description="lines starting with these are not rows")
    header: bool | None = Field(default=None, description="first row is the header; default: yes unless "
                                                          "header_in_comment or columns is given")
    header_in_comment: bool = Field(default=False, description="the header is the last comment line before the data")
    columns: list[str] | None = Field(default=None, description="column names for a file without header")
    skip_initial_space: bool = Field(default=True, description="ignore spaces after a delimiter")


def parse(payload: BinaryIO, source: SourceConfig, options: Options) -> Iterator[Indicator | Rejected]:
    prefixes = tuple(p for p in options.comment_prefixes if p)
    header_row = options.header if options.header is not None else not (options.header_in_comment or options.columns)
    header: list[str] | None = list(options.columns) if options.columns else None
    lookup: Callable[[list[str], str], Any] | None = None if header_row or options.header_in_comment else _resolver(header, source)
    comment_header: list[str] | None = None
    for lineno, line in iter_lines(payload, "CSV"):
        if isinstance(line, Rejected):
            yield line
            continue
        location = f"line {lineno}"
        stripped = line.strip()
        if not stripped:
            continue
        if prefixes and stripped.startswith(prefixes):
            if options.header_in_comment and lookup is None:
                fields = _comment_fields(stripped.lstrip("".join(prefixes)).strip(), options)
                if sum(1 for f in fields if f.strip()) >= 2:
                    comment_header = fields
            continue
        try:
            row = _split(line, options)
        except csv.Error as exc:
            yield Rejected(f"not a CSV row: {exc}", location, line)
            continue
        if lookup is None:
            if header_row:
                header = list(options.columns) if options.columns else row
                lookup = _resolver(header, source)
                continue
            if comment_header is None:
                raise FormatError("header_in_comment is set but no comment line before the data looks like a header")
            header, lookup = comment_header, _resolver(comment_header, source)
        if header is not None and len(row) < len(header):
            yield Rejected(f"row has {len(row)} fields, the header names {len(header)}", location, line)
            continue
        value = None if source.mapping.value else lookup(row, "0")  # no mapping.value: the first column
        yield build_indicator(lambda field, row=row: lookup(row, field), source, location=location, raw=line, value=value)


def _split(line: str, options: Options) -> list[str]:
    reader = csv.reader([line], delimiter=options.delimiter, quotechar=options.quotechar,
                        skipinitialspace=options.skip_initial_space, strict=True)
    return next(reader, [])


def _comment_fields(text: str, options: Options) -> list[str]:
    try:
        return _split(text, options)
    except csv.Error:
        return []  # a banner line with odd quotes is just not the header


def _resolver(header: list[str] | None, source: SourceConfig) -> Callable[[list[str], str], Any]:
    """Turn every mapped field into a column number once, failing the run if one is missing."""
    names = [h.strip() for h in header] if header is not None else []
    exact = {name: i for i, name in reversed(list(enumerate(names)))}
    folded = {name.casefold(): i for i, name in reversed(list(enumerate(names)))}
    positions: dict[str, int] = {}
    missing: list[str] = []
    for field in mapping_fields(source.mapping):
        if field in exact:
            positions[field] = exact[field]
        elif field.casefold() in folded:
            positions[field] = folded[field.casefold()]
        elif field.isascii() and field.isdigit():
            positions[field] = int(field)
        else:
            missing.append(field)
    if missing:
        if header is None:
            raise FormatError(f"the CSV has no header, so mapped fields must be column numbers: {', '.join(missing)}")
        raise FormatError(f"the CSV header lacks mapped column(s) {', '.join(missing)}; "
                          f"header is: {', '.join(names)[:300]}")

    def lookup(row: list[str], field: str) -> str | None:
        position = positions.get(field)
        if position is None and field.isascii() and field.isdigit():
            position = int(field)
        if position is None or position >= len(row):
            return None
        return row[position].strip() or None

    return lookup
