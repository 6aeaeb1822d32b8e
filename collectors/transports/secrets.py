"""Secrets for transports: ``${ENV:NAME}`` references resolved at fetch time, and redaction.

Source files only ever hold references (``settings.sources.SECRET_REFERENCE``); the value is read
from the environment when a fetch starts, so rotating a key needs no config change and the value
never sits in a file that gets copied, diffed or attached to a ticket. Every value resolved here
is remembered (process-local) so ``redact`` can blank it out of any error text or log line, in
the forms it can appear in on the wire: verbatim, URL-encoded, and inside a Basic-auth header.
"""
from __future__ import annotations

import base64
import os
import re
import threading
from collections.abc import Mapping
from urllib.parse import quote, quote_plus

from collectors.transports import FetchError
from settings.sources import SECRET_REFERENCE

MASK = "***"
# Shorter values would mangle ordinary words when blanked; a real key or password is longer.
MIN_REDACT_LENGTH = 4
# Query parameters and header-like phrases whose values are credentials whatever their source.
SENSITIVE_PARAMS = re.compile(
    r"(?i)([?&;](?:api[_-]?key|apikey|auth[_-]?key|key|token|access[_-]?token|secret|password|passwd|pwd|sig|signature)=)[^&#\s'\"()<>\[\]]+"
)
URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s:]+:[^/@\s]+@")
AUTH_HEADER = re.compile(r"(?i)\b(authorization|proxy-authorization|auth-key|x-api-key|x-otx-api-key)(\s*[:=]\s*)(?:(basic|bearer|token)\s+)?[^\s,;'\"(){}<>]+")

_known: set[str] = set()
_lock = threading.Lock()


class MissingSecret(FetchError):
    """A referenced environment variable is not set; the message names the variable only."""


def _remember(value: str) -> None:
    forms = {value, quote(value, safe=""), quote_plus(value)}
    with _lock:
        _known.update(f for f in forms if len(f) >= MIN_REDACT_LENGTH)


def remember_basic(username: str, password: str) -> None:
    """A Basic-auth header carries ``base64(user:password)``; an echoed header must not leak it."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    _remember(token)


def resolve(text: str | None, where: str = "source") -> str | None:
    """Replace every ``${ENV:NAME}`` in ``text`` with the variable's value.

    A missing variable is a ``FetchError`` naming the variable and where it is used, never a value.
    """
    if text is None:
        return None

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        value = os.environ.get(name)
        if value is None or value == "":
            raise MissingSecret(
                f"secret not available: environment variable {name} is not set "
                f"(referenced as ${{ENV:{name}}} in {where}); set it for the collector process"
            )
        _remember(value)
        return value

    return SECRET_REFERENCE.sub(substitute, text)


def resolve_mapping(values: Mapping[str, str], where: str) -> dict[str, str]:
    return {key: resolve(value, f"{where}.{key}") or "" for key, value in values.items()}


def redact(text: str | None) -> str:
    """Blank every resolved secret value, URL credentials and credential-looking parameters."""
    if not text:
        return text or ""
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    # Longest first, so a value that contains another is blanked whole.
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    text = URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = SENSITIVE_PARAMS.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{(m.group(3) + ' ') if m.group(3) else ''}{MASK}", text)
    return text
