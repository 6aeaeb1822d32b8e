"""Small builders shared by the pages: chips, "as of" labels, empty states, time formatting.

Severity and source-state chips use the same words and CSS classes everywhere
(``theme.severity_class``/``theme.state_class``), so a colour always means the same thing.
Times are UTC inside; these helpers convert them to the display time zone for display only
and say which zone it is.
"""
from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import html

from panels import theme
from store.freshness import human_age

TimeLike = int | float | datetime | pd.Timestamp | None


# --- time --------------------------------------------------------------------------------------

def to_datetime(value: TimeLike) -> datetime | None:
    """Epoch ms, ``datetime`` or ``Timestamp`` → aware UTC ``datetime``; ``None``/NaT → ``None``."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.to_pydatetime()
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(float(value) / 1000, tz=timezone.utc)


def utc_offset(tz: tzinfo, at: datetime | None = None) -> str:
    """``UTC+07:00`` style offset of ``tz`` at ``at`` (default: now)."""
    at = at or datetime.now(timezone.utc)
    offset = at.astimezone(tz).utcoffset()
    total = int(offset.total_seconds()) if offset else 0
    sign = "+" if total >= 0 else "-"
    hours, minutes = divmod(abs(total) // 60, 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}"


def tz_label(tz: tzinfo, at: datetime | None = None) -> str:
    """``Asia/Bangkok (UTC+07:00)``; plain ``UTC`` for UTC."""
    name = getattr(tz, "key", None) or str(tz)
    if name in ("UTC", "Etc/UTC"):
        return "UTC"
    return f"{name} ({utc_offset(tz, at)})"


def fmt_time(value: TimeLike, tz: tzinfo, *, date: bool = True, seconds: bool = False) -> str:
    """A UTC time in the display zone: ``2026-11-22 14:03`` (``—`` when missing)."""
    moment = to_datetime(value)
    if moment is None:
        return "—"
    local = moment.astimezone(tz)
    pattern = ("%Y-%m-%d " if date else "") + ("%H:%M:%S" if seconds else "%H:%M")
    return local.strftime(pattern)


def fmt_count(n: int | float | None) -> str:
    return "—" if n is None else f"{int(n):,}"


# --- chips -------------------------------------------------------------------------------------

def severity_chip(level: str, extra_class: str = "", **kwargs: Any) -> html.Span:
    css = theme.severity_class(level or "unknown") + (f" {extra_class}" if extra_class else "")
    return html.Span(level or "none", className=css, **kwargs)


def state_chip(state: str, text: str | None = None, **kwargs: Any) -> html.Span:
    return html.Span(text if text is not None else state, className=theme.state_class(state), **kwargs)


def status_chip(status: str) -> html.Span:
    words = status.replace("_", " ") if status else "—"
    return html.Span(words, className=f"wf-status wf-status-{status or 'unknown'}")


def demo_badge(**kwargs: Any) -> html.Span:
    return html.Span("DEMO DATA", className="wf-demo-badge", title="Synthetic demo data: not real attacks", **kwargs)


# --- as of ---------------------------------------------------------------------------------------

def asof_label(as_of: TimeLike, now_ms: int, tz: tzinfo, stale_after_ms: int, *,
               prefix: str = "as of", id: str | None = None) -> html.Span:
    """``as of 14:03:05 · 12 s ago``; outlined ``late``/filled ``stale`` once older than
    ``stale_after_ms`` (and four times that). ``no data yet`` when there is nothing."""
    kwargs = {"id": id} if id else {}
    moment = to_datetime(as_of)
    if moment is None:
        return html.Span(f"{prefix}: no data yet", className="wf-asof wf-asof-stale", **kwargs)
    age = max(0, now_ms - int(moment.timestamp() * 1000))
    css = "wf-asof"
    if age > 4 * stale_after_ms:
        css += " wf-asof-stale"
    elif age > stale_after_ms:
        css += " wf-asof-late"
    same_day = moment.astimezone(tz).date() == datetime.fromtimestamp(now_ms / 1000, tz).date()
    text = f"{prefix} {fmt_time(moment, tz, date=not same_day, seconds=True)} · {human_age(age)} ago"
    return html.Span(text, className=css, title=moment.isoformat(), **kwargs)


def card_header(title: str, *extra: Any, asof: Any = None) -> html.Div:
    return html.Div([html.H2(title, className="wf-card-title"), *extra, asof], className="wf-card-header")


def empty_state(message: str, *, nodata: bool = False, **kwargs: Any) -> html.Div:
    """"No events" (calm, thin border) versus "no data" (hatched, orange): never the same look."""
    return html.Div(message, className="wf-empty-nodata" if nodata else "wf-empty-noevents", **kwargs)


# --- figures -------------------------------------------------------------------------------------

def empty_annotation(message: str, *, nodata: bool = False) -> dict[str, Any]:
    """A layout annotation writing an empty-state message across the middle of a figure:
    calm grey for "no events", a loud orange box for "no data"."""
    color = theme.STATE_COLORS["stale"] if nodata else theme.MUTED
    return {
        "text": message, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5, "showarrow": False,
        "font": {"size": 26 if nodata else 22, "color": color}, "bgcolor": "rgba(10,13,18,0.78)",
        "bordercolor": color, "borderwidth": 2 if nodata else 0, "borderpad": 12,
    }


def template() -> dict[str, Any]:
    """The watchfloor template as plain data, embedded in figures built without validation
    (plotly.js applies ``layout.template`` itself; a template *name* only means something in Python)."""
    return {"layout": theme.template_layout(), "data": theme.template_data()}


def figure_spec(data: list[dict[str, Any]], layout: dict[str, Any], *, empty: str | None = None,
                nodata: bool = False) -> dict[str, Any]:
    """A figure as plain ``{"data", "layout"}`` with the watchfloor template embedded; ``empty``
    writes an empty-state message (recorded in ``layout.meta``)."""
    layout = {"template": template(), **layout}
    if empty:
        layout["annotations"] = [*layout.get("annotations", []), empty_annotation(empty, nodata=nodata)]
        layout["meta"] = {"empty": "nodata" if nodata else "noevents", "message": empty}
    return {"data": data, "layout": layout}


def as_figure(spec: dict[str, Any]) -> go.Figure:
    """``go.Figure`` of a spec, skipping plotly's per-property validation (~20 ms a figure; the
    tests validate the same specs once). The wall's callback sends specs as they are: Dash
    serialises a dict exactly like the figure, without the figure's deep copies."""
    return go.Figure(data=spec["data"], layout=spec["layout"], _validate=False)
