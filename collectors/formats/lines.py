"""Plain lists, one indicator a line (``format: lines``).

The shape of most free block lists. Spamhaus DROP (``;`` comments, an SBL id after the value)::

    ; Spamhaus DROP List 2015/09/14 - (c) 2015 The Spamhaus Project
    1.4.0.0/17 ; SBL256893

Spamhaus ASN-DROP (``AS260 ; AE | XCONNECT24 - Xconnect24 Inc., US``), Emerging Threats
``compromised-ips.txt``, Feodo and blocklist.de (one bare IP a line), OpenPhish (one URL a line).
With ``delimiter``, ``netmask_column`` and ``header`` it also reads the DShield block list, whose
``#`` header says "Columns (tab delimited): (1) start of netblock (2) end of netblock (3) subnet
(/24 for class C) (4) number of targets scanned (5) name of Network (6) Country (7) contact email"::

    Start	End	Netblock	Attacks	Name	Country	email
    43.229.53.0	43.229.53.255	24	788	Japan Inet	JP	admin@v6nic.net     -> cidr 43.229.53.0/24

Rules:

* A line whose first non-blank text starts with a comment prefix is a comment; so is the text
  after a prefix that follows whitespace (``value ; comment``). A prefix glued to the value is
  part of it, so URLs keep their ``#fragment`` and ``;params``.
* The trailing comment becomes the description (the SBL id, the ASN-DROP network name), unless
  ``mapping.description`` names a column.
* Columns are split on ``delimiter`` (``None``: runs of whitespace) and numbered from 0. The
  value is column ``value_column``; with ``netmask_column`` it becomes ``value/mask`` (prefix
  length or dotted mask). Mapping keys may name columns by number, ``comment`` for the trailing
  comment and ``line`` for the whole line; ``mapping.value`` is not used (``value_column`` is).
* The indicator type is ``mapping.type`` (``auto`` by default: detected per value).
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import BinaryIO

from pydantic import Field

from collectors.formats.common import FormatError, build_indicator, iter_lines
from settings.base import StrictModel
from settings.sources import SourceConfig
from store.records import Indicator, Rejected

FORMAT = "lines"
KIND = "indicators"


class Options(StrictModel):
    comment_prefixes: list[str] = Field(default=["#", ";"], description="a line starting with one of these is a comment")
    inline_comments: bool = Field(default=True, description="text after whitespace + a comment prefix is a comment")
    delimiter: str | None = Field(default=None, min_length=1, description="column separator; none: runs of whitespace")
    value_column: int = Field(default=0, ge=0, description="column holding the value, from 0")
    netmask_column: int | None = Field(default=None, ge=0, description="column holding a prefix length or mask")
    header: bool = Field(default=False, description="the first non-comment line names the columns: skip it")


def parse(payload: BinaryIO, source: SourceConfig, options: Options) -> Iterator[Indicator | Rejected]:
    if source.mapping.value is not None:
        raise FormatError("the lines format reads the value from options.value_column; remove mapping.value")
    prefixes = [p for p in options.comment_prefixes if p]
    inline = re.compile(r"\s(?:" + "|".join(map(re.escape, prefixes)) + ")") if prefixes and options.inline_comments else None
    header_pending = options.header
    for lineno, line in iter_lines(payload, "a list of indicators"):
        if isinstance(line, Rejected):
            yield line
            continue
        data = line.strip()
        if not data or data.startswith(tuple(prefixes)):
            continue
        comment = None
        if inline and (cut := inline.search(data)):
            data, comment = data[:cut.start()].strip(), data[cut.end():].strip() or None
        if header_pending:
            header_pending = False
            continue
        yield _indicator(data, comment, line, f"line {lineno}", source, options)


def _indicator(data: str, comment: str | None, line: str, location: str,
               source: SourceConfig, options: Options) -> Indicator | Rejected:
    columns = [c.strip() for c in (data.split(options.delimiter) if options.delimiter else data.split())]

    def get(field: str) -> str | None:
        if field == "comment":
            return comment
        if field == "line":
            return data
        if field.isascii() and field.isdigit() and int(field) < len(columns):
            return columns[int(field)] or None
        return None

    value = get(str(options.value_column))
    if value is None:
        return Rejected(f"no value in column {options.value_column}", location, line)
    if options.netmask_column is not None:
        mask = get(str(options.netmask_column))
        if mask is None:
            return Rejected(f"no netmask in column {options.netmask_column}", location, line)
        if "." in mask:
            try:  # a dotted mask such as 255.255.255.0
                mask = str(ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen)
            except ValueError:
                return Rejected(f"bad netmask {mask[:40]!r}", location, line)
        value = f"{value}/{mask}"
    return build_indicator(get, source, location=location, raw=line, value=value, description=comment)
