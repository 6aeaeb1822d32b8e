"""How layouts and callbacks reach the store, the configuration and the clock.

``app.py`` (the composition root) builds one ``AppContext`` and puts it at
``flask.current_app.config["WATCHFLOOR"]``; panels read it through ``current()`` while a request
is being served. Nothing here opens a store or reads configuration by itself, so panel modules
import cleanly in unit tests, which either push a Flask app context holding a test
``AppContext`` or call the panel's plain functions with explicit arguments.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import flask

from settings.loader import Config
from store.db import Store, now_ms, to_ms

CONFIG_KEY = "WATCHFLOOR"
DEFAULT_ACTOR = "duty-officer"


@dataclass
class AppContext:
    """What every page needs: the store, the loaded configuration, the data folder, and a clock.

    ``clock()`` returns the current time as epoch milliseconds (UTC) or as an aware ``datetime``
    (``runtime.Runtime.clock``); tests inject a fixed one. Pages only ever call ``now_ms()``.
    """

    store: Store
    config: Config
    data_dir: Path
    clock: Callable[[], int | datetime] = field(default=now_ms)

    def now_ms(self) -> int:
        value = self.clock()
        return to_ms(value) if isinstance(value, datetime) else int(value)

    @property
    def tz(self) -> ZoneInfo:
        """The display time zone (``settings.display_timezone``); times are UTC everywhere else."""
        return ZoneInfo(self.config.settings.display_timezone)


def current() -> AppContext:
    """The ``AppContext`` of the running app; a clear error outside a request or app context."""
    try:
        ctx = flask.current_app.config[CONFIG_KEY]
    except RuntimeError:
        raise RuntimeError("panels.context.current() needs a Flask app context (app.py sets "
                           f"server.config[{CONFIG_KEY!r}] = AppContext(...))") from None
    except KeyError:
        raise RuntimeError(f"app.py must set server.config[{CONFIG_KEY!r}] = AppContext(...)") from None
    if not isinstance(ctx, AppContext):
        raise TypeError(f"server.config[{CONFIG_KEY!r}] holds {type(ctx).__name__}, not an AppContext")
    return ctx


def maybe_current() -> AppContext | None:
    """The ``AppContext`` when one is reachable, else ``None`` (Dash calls ``app.layout`` once at
    assignment, before the app serves anything and outside any app context)."""
    if not flask.has_app_context():
        return None
    ctx = flask.current_app.config.get(CONFIG_KEY)
    return ctx if isinstance(ctx, AppContext) else None


def current_actor() -> str:
    """Who is acting, for the audit log: the authenticated user when the server knows one
    (``REMOTE_USER`` from a proxy or WSGI auth, HTTP basic auth), else ``duty-officer``."""
    if not flask.has_request_context():
        return DEFAULT_ACTOR
    request = flask.request
    user = request.environ.get("REMOTE_USER") or (request.authorization.username if request.authorization else None)
    return str(user)[:128] if user else DEFAULT_ACTOR
