"""Fetching politely: one request at a time per host, a minimum gap between them, bounded backoff.

Providers lock out clients that poll too hard (dan.me.uk allows one fetch per 30 minutes, MWDB and
Hybrid Analysis ban on floods: OpenCTI connectors #1555, #1154). Feed schedules give the per-feed
floor (``schedule.min_interval``); this module adds the per-host rules that hold across feeds,
because several feeds often share one host (abuse.ch, lists.blocklist.de, a MISP server):

* ``host_slot(url)`` lets one request at a time reach a host, at least ``min_spacing`` seconds
  after the previous one to that host ended (process-local: a lock and a timestamp per host);
* ``Backoff`` decides how long to wait before a retry: exponential, never shorter than the
  server's ``Retry-After``, and never more in total than ``max_total_wait`` for one fetch, so a
  rate-limited feed gives up and is tried again at its next scheduled run instead of blocking.

All waiting goes through ``pacing().sleep`` and all timing through ``pacing().clock``, so tests
swap them with ``configure`` and never sleep for real.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

DEFAULT_MIN_SPACING = 1.0        # seconds between the end of one request and the start of the next, per host
DEFAULT_MAX_TOTAL_WAIT = 120.0   # seconds of retry waits one fetch may spend before giving up
DEFAULT_BACKOFF_BASE = 2.0       # first retry waits this long, then 2x, 4x ...
DEFAULT_BACKOFF_MAX = 60.0       # one backoff step never exceeds this (a longer Retry-After still wins)


@dataclass(frozen=True)
class Pacing:
    min_spacing: float = DEFAULT_MIN_SPACING
    per_host: dict[str, float] = field(default_factory=dict)
    max_total_wait: float = DEFAULT_MAX_TOTAL_WAIT
    backoff_base: float = DEFAULT_BACKOFF_BASE
    backoff_max: float = DEFAULT_BACKOFF_MAX
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def spacing_for(self, host: str) -> float:
        return self.per_host.get(host, self.min_spacing)


_pacing = Pacing()
_hosts: dict[str, "_HostState"] = {}
_hosts_lock = threading.Lock()


@dataclass
class _HostState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_done: float | None = None


def pacing() -> Pacing:
    return _pacing


def configure(**changes: object) -> Pacing:
    """Change the process-wide pacing (e.g. ``min_spacing=5``); returns the previous one to restore."""
    global _pacing
    previous = _pacing
    _pacing = replace(_pacing, **changes)  # type: ignore[arg-type]
    return previous


def restore(previous: Pacing) -> None:
    global _pacing
    _pacing = previous


def host_key(url: str) -> str:
    """``host[:port]`` in lower case: the unit a provider rate-limits."""
    parts = urlsplit(url)
    return (parts.netloc.rsplit("@", 1)[-1] or parts.path).lower()


@contextmanager
def host_slot(url: str) -> Iterator[None]:
    """Hold the host's slot for one request, after waiting out its minimum spacing."""
    host = host_key(url)
    with _hosts_lock:
        state = _hosts.setdefault(host, _HostState())
    with state.lock:
        current = _pacing
        if state.last_done is not None:
            wait = state.last_done + current.spacing_for(host) - current.clock()
            if wait > 0:
                current.sleep(wait)
        try:
            yield
        finally:
            state.last_done = _pacing.clock()


def forget_hosts() -> None:
    """Drop the per-host timestamps (tests, or a process that changes its pacing)."""
    with _hosts_lock:
        _hosts.clear()


class Backoff:
    """The retry budget of one fetch: how many tries are left and how long it may still wait."""

    def __init__(self, retries: int, current: Pacing | None = None):
        self.pacing = current or _pacing
        self.retries_left = retries
        self.attempts = 0
        self.waited = 0.0
        self.refused_wait: float | None = None

    def next_wait(self, retry_after: float | None = None) -> float | None:
        """Seconds to wait before the next try, or ``None`` when the fetch should give up now.

        ``retry_after`` is the server's own request; it is always honoured, and when honouring it
        would take the fetch past ``max_total_wait`` the fetch gives up rather than hammer early.
        """
        self.attempts += 1
        if self.retries_left <= 0:
            return None
        step = min(self.pacing.backoff_base * 2 ** (self.attempts - 1), self.pacing.backoff_max)
        wait = max(step, retry_after or 0.0)
        if self.waited + wait > self.pacing.max_total_wait:
            self.refused_wait = wait
            return None
        self.retries_left -= 1
        self.waited += wait
        return wait

    def wait(self, seconds: float) -> None:
        self.pacing.sleep(seconds)
