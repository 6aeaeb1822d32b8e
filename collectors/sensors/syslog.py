"""Syslog lines, RFC 3164 (BSD) and RFC 5424, including ``@cee:`` JSON payloads.

One line is one message: an envelope (read by ``syslog_header``: PRI, timestamp, hostname, app or
tag, pid, RFC 5424 MSGID and structured data) and a free-text MSG. Examples::

    <34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8
    <165>1 2003-10-11T22:14:15.003Z host evntslog - ID47 [exampleSDID@32473 iut="3"] An event
    <134>1 2018-03-24T08:59:37-07:00 PC-helen EvntSLog - - - @cee: {"msg": "...", "id": "7036"}

Fields:

* ``ts``              the header timestamp; RFC 3164 times are read in ``Options.timezone`` and given
                      the year nearest to now (or ``Options.year``). A message whose header has no
                      time (RFC 5424 nil ``-``, or a bare ``<PRI>``) gets the time it was read, and
                      ``extra.time_source`` says ``received`` so nobody mistakes it for the sender's.
* ``signature``       APP-NAME / TAG; with no tag, a Cisco message id (``%FTD-4-419002``) when the
                      message starts with one.
* ``signature_id``    RFC 5424 MSGID, else an event id from the ``@cee`` payload (Windows ``id``).
* ``sensor_severity`` from the PRI severity: emerg/alert → critical, crit/err → high,
                      warning → medium, notice → low, info/debug → info; no PRI, no severity.
* ``src_ip`` …        from the ``@cee`` payload when it names them (``CEE_FIELDS``).
* ``extra``           ``format`` (rfc5424, rfc3164, pri-only), ``pri``, ``facility``, ``severity``,
                      ``host``, ``host_ip``, ``app``, ``pid``, ``msgid``, ``version``,
                      ``structured_data`` ({SD-ID: {name: value}}), ``message``, ``cee`` (the JSON
                      object), ``cee_error``, ``time_source``.

Lines that are not syslog (no ``<PRI>`` and no timestamp), a PRI out of range, an impossible date or
broken RFC 5424 structured data are rejected with the reason; blank lines are skipped.
"""
from __future__ import annotations

import json
import re
from typing import Any

from collectors.sensors.syslog_header import (
    LineParserBase,
    Clock,
    EnvelopeOptions,
    MalformedSyslog,
    decode_rsyslog_escapes,
    ip_or_none,
    parse_envelope,
    port_or_none,
    protocol_or_none,
)
from store.records import Event, Rejected

FORMAT = "syslog"
KIND = "syslog"
CEE_COOKIE = "@cee:"
CISCO_MESSAGE_ID = re.compile(r"%[A-Z][A-Z0-9_]*-\d-[A-Z0-9_]+(?=:|\s|$)")
# Names seen for each field in CEE/lumberjack payloads, Windows event forwarders and rsyslog's
# mmjsonparse output; matched case-insensitively, first present wins.
CEE_FIELDS: dict[str, tuple[str, ...]] = {
    "src_ip": ("src_ip", "srcip", "src_ipv4", "src_ipv6", "src", "source_ip", "sourceip", "ipaddress",
               "sourceaddress", "client_ip", "clientip"),
    "dst_ip": ("dst_ip", "dstip", "dst_ipv4", "dst_ipv6", "dst", "dest_ip", "destip", "destination_ip",
               "destinationaddress", "destaddress"),
    "src_port": ("src_port", "srcport", "spt", "source_port", "sourceport", "ipport", "client_port"),
    "dst_port": ("dst_port", "dstport", "dpt", "dest_port", "destport", "destination_port", "destinationport"),
    "proto": ("proto", "protocol", "transport"),
    "action": ("action",),
    "signature_id": ("event_id", "eventid", "id"),
}


class Options(EnvelopeOptions):
    """``options:`` of a ``syslog`` source."""

    parse_cee: bool = True
    """Parse an ``@cee:`` JSON payload into ``extra.cee`` and pick flow fields from it."""


def make_parser(sensor: str, options: Options | None = None, *, clock: Clock | None = None) -> SyslogLineParser:
    return SyslogLineParser(sensor, options or Options(), clock)


class SyslogLineParser(LineParserBase):
    """Stateless: one line, one message."""

    def __call__(self, line: str) -> Event | Rejected | None:
        if not line.strip():
            return None
        try:
            # A CRLF file leaves "\r" on every line; raw keeps it, the fields do not.
            header = parse_envelope(line.rstrip("\r"), self.times)
        except MalformedSyslog as error:
            return Rejected(reason=str(error), sample=line)

        # rsyslog pads MSG with the space its RFC 3164 input had after the colon; raw keeps it.
        message = header.message.lstrip(" ")
        if self.options.decode_rsyslog_escapes:
            message = decode_rsyslog_escapes(message)
        extra = header.describe()
        extra.pop("time", None)  # it is the event's ts
        extra["message"] = message
        extra["time_source"] = "header" if header.timestamp else "received"

        cee = self._cee(message, extra) if self.options.parse_cee else None
        picked = _pick_cee_fields(cee) if cee else {}
        signature = header.app
        if signature is None:
            cisco = CISCO_MESSAGE_ID.match(message)
            signature = cisco[0] if cisco else None
        signature_id = header.msgid or picked.get("signature_id")

        return Event(
            ts=header.timestamp or self.times.now(),
            sensor=self.sensor,
            kind=KIND,
            raw=line,
            src_ip=picked.get("src_ip"),
            src_port=picked.get("src_port"),
            dst_ip=picked.get("dst_ip"),
            dst_port=picked.get("dst_port"),
            proto=picked.get("proto"),
            signature_id=signature_id,
            signature=signature,
            sensor_severity=header.severity,
            action=picked.get("action"),
            extra=extra,
        )

    @staticmethod
    def _cee(message: str, extra: dict[str, Any]) -> dict[str, Any] | None:
        body = message.lstrip(" ")
        if not body.startswith(CEE_COOKIE):
            return None
        try:
            payload = json.loads(body[len(CEE_COOKIE):])
        except (ValueError, RecursionError) as error:
            # The envelope is good and says who and when, so the event stays; the payload is flagged.
            extra["cee_error"] = f"@cee payload is not JSON: {error}"
            return None
        if not isinstance(payload, dict):
            extra["cee_error"] = f"@cee payload is a JSON {type(payload).__name__}, not an object"
            return None
        extra["cee"] = payload
        if isinstance(payload.get("msg"), str):
            extra["message"] = payload["msg"]
        return payload


def _text_or_none(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    return text if text and text != "-" else None


CEE_NORMALISERS = {"src_ip": ip_or_none, "dst_ip": ip_or_none, "src_port": port_or_none, "dst_port": port_or_none,
                   "proto": protocol_or_none, "action": _text_or_none, "signature_id": _text_or_none}


def _pick_cee_fields(cee: dict[str, Any]) -> dict[str, Any]:
    """First candidate name whose value is usable for each field (a hostname under ``src`` is skipped)."""
    by_lower_name = {key.lower(): value for key, value in cee.items()}
    picked: dict[str, Any] = {}
    for field_name, candidates in CEE_FIELDS.items():
        normalise = CEE_NORMALISERS[field_name]
        for candidate in candidates:
            value = normalise(by_lower_name.get(candidate))
            if value is not None:
                picked[field_name] = value
                break
    return picked
