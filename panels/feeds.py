"""The feeds page (/feeds): every source, whether it is healthy, and if not, why in plain words.

One row per configured source, broken ones first: state chip and age, name/provider/format,
schedule, the last run (outcome, time, counts parsed/rejected/new/updated/expired), the last
error translated into plain words (the collector's own text kept below it), flags, rejected
samples (expandable), documentation link and terms. Refreshes on the shell's interval.
"""
from __future__ import annotations

import re
from datetime import timedelta, tzinfo
from typing import Any

import dash
import pandas as pd
from dash import Input, Output, html

from panels import context
from panels import ids as shared
from panels.components import asof_label, fmt_time, state_chip, tz_label
from settings.loader import Config
from store import queries
from store.freshness import STATE_RANK, STATES, human_age


class ids:  # noqa: N801
    ROOT = "feeds-root"
    SUMMARY = "feeds-summary"
    TABLE = "feeds-table"
    ASOF = "feeds-asof"


HTTP_WORDS = {
    400: "the provider rejected the request (HTTP 400): check the URL and its parameters",
    401: "access denied (HTTP 401): the API key or password is missing or wrong",
    403: "access forbidden (HTTP 403): the key lacks rights, or the provider blocks this address",
    404: "not found (HTTP 404): the URL may have moved; check the provider's documentation",
    410: "gone (HTTP 410): the provider has retired this feed",
    429: "rate-limited by the provider (HTTP 429): fetch less often",
}
PATTERNS = (
    (r"timed? ?out|timeout", "the provider did not answer in time (timeout)"),
    (r"name resolution|getaddrinfo|nodename|resolve host|Name or service not known",
     "the host name could not be resolved: no network, no DNS, or a wrong host"),
    (r"connection refused", "the connection was refused: the server is down or the port is wrong"),
    (r"certificate|ssl|tls", "the secure connection failed (TLS certificate problem)"),
    (r"no such file|not found.*path|does not exist", "the file or folder does not exist"),
    (r"permission denied", "permission denied reading the file or folder"),
    (r"too large|max_bytes|exceeds", "the download was larger than the configured limit"),
    (r"ENV:|environment variable", "a secret it needs is not set in the environment"),
    (r"json|parse|decode|invalid", "the data could not be read in the expected format"),
)


def plain_error(error: str | None, http_status: int | None = None) -> str:
    """The collector's error in words an administrator can act on ("" when there is none)."""
    if not error and not (http_status and http_status >= 400):
        return ""
    if http_status in HTTP_WORDS:
        return HTTP_WORDS[http_status]
    if http_status and http_status >= 500:
        return f"the provider's server failed (HTTP {http_status}); usually temporary"
    for pattern, words in PATTERNS:
        if re.search(pattern, error or "", re.IGNORECASE):
            return words
    return (error or "").splitlines()[0][:200]


def human_span(span: timedelta) -> str:
    """A configured period in its natural unit: ``5 s``, ``15 min``, ``6 h``, ``1 d 12 h``."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    if seconds >= 86400:
        return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def schedule_text(every: timedelta | None, cron: str | None) -> str:
    if every is not None:
        return f"every {human_span(every)}"
    return f"cron {cron}" if cron else "—"


def _num(v: Any) -> str:
    return "—" if v is None or pd.isna(v) else f"{int(v):,}"


def render_summary(df: pd.DataFrame) -> list[Any]:
    enabled = df[df["enabled"]]
    counts = enabled["state"].value_counts()
    chips: list[Any] = [state_chip(state, f"{int(counts.get(state, 0))} {state}") for state in STATES]
    disabled = int((~df["enabled"]).sum())
    if disabled:
        chips.append(html.Span(f"{disabled} disabled", className="wf-muted"))
    return chips


def render_rows(df: pd.DataFrame, config: Config, tz: tzinfo, now_ms: int) -> list[Any]:
    """One ``<tr>`` per source, enabled and broken first (``queries.feeds_overview`` columns)."""
    ordered = df.assign(rank=df["state"].map(STATE_RANK).fillna(9), off=~df["enabled"]) \
        .sort_values(["off", "rank", "name"])
    rows = []
    for r in ordered.itertuples():
        source = config.source(r.id)
        age = "never" if pd.isna(r.age_s) else f"{human_age(int(r.age_s * 1000))} ago"
        badges = [html.Span("DEMO", className="wf-demo-chip") if r.demo else None,
                  html.Span("disabled", className="wf-off-chip") if not r.enabled else None]
        outcome = r.run_outcome if isinstance(r.run_outcome, str) and r.run_outcome else "no run yet"
        finished = r.run_finished if not pd.isna(r.run_finished) else r.last_attempt
        last_run = [html.Div([html.Span(outcome, className=f"wf-outcome wf-outcome-{outcome.replace(' ', '-')}"),
                              f" {fmt_time(finished, tz)}" if not pd.isna(finished) else ""]),
                    html.Div(f"HTTP {int(r.http_status)}", className="wf-muted") if not pd.isna(r.http_status) else None,
                    html.Div(f"running since {fmt_time(r.running_since, tz, date=False, seconds=True)}",
                             className="wf-muted") if not pd.isna(r.running_since) else None]
        counts = html.Div([
            html.Span([html.B(_num(r.parsed)), " parsed"]), html.Span([html.B(_num(r.rejected)), " rejected"]),
            html.Span([html.B(_num(r.new)), " new"]), html.Span([html.B(_num(r.updated)), " updated"]),
            html.Span([html.B(_num(r.expired)), " expired"]),
        ], className="wf-counts") if not pd.isna(r.run_id) else html.Span("—", className="wf-muted")
        error = r.run_error or r.last_error
        status = None if pd.isna(r.http_status) else int(r.http_status)
        words = plain_error(error if r.run_outcome == "failed" or r.state == "failed" else None, status
                            if r.run_outcome == "failed" else None)
        samples = r.rejected_samples if isinstance(r.rejected_samples, list) else []
        problems = [
            html.Div(words, className="wf-error-plain") if words else None,
            html.Div(error, className="wf-error-raw") if words and error and error != words else None,
            *[html.Div(f"⚑ {flag}", className="wf-flag") for flag in (r.flags or [])],
            html.Details([html.Summary(f"{len(samples)} rejected sample{'s' if len(samples) != 1 else ''}"),
                          html.Pre("\n\n".join(_sample(s) for s in samples), className="wf-raw wf-samples")])
            if samples else None,
        ]
        if not any(problems):
            problems = [html.Span("none", className="wf-muted")]
        about = [
            html.A("documentation", href=source.documentation, target="_blank", rel="noopener noreferrer")
            if source and source.documentation else html.Span("no documentation link", className="wf-muted"),
            html.Div(f"terms: {_short(source.terms)}" if source else "", className="wf-terms",
                     title=source.terms if source else None),
            html.Div(f"TLP:{source.tlp.upper()} · confidence {source.confidence}" if source else "", className="wf-muted"),
        ]
        rows.append(html.Tr([
            html.Td([state_chip(r.state), html.Div(age, className="wf-src-age"),
                     html.Div(r.reason, className="wf-muted wf-reason")], className="wf-col-state"),
            html.Td([html.Div([html.B(r.name), *badges]), html.Code(r.id), html.Div(r.provider, className="wf-muted"),
                     html.Div(f"{r.kind} · {r.format}", className="wf-muted")]),
            html.Td([html.Div(schedule_text(source.schedule.every, source.schedule.cron) if source else "—"),
                     html.Div(f"expected every {human_span(timedelta(seconds=r.cadence_s))}", className="wf-muted")]),
            html.Td(last_run),
            html.Td(counts),
            html.Td(problems, className="wf-col-problems"),
            html.Td(about),
        ], className=f"wf-feed-row wf-feed-{r.state}" + ("" if r.enabled else " wf-feed-off"),
            id={"type": "feeds-row", "source": r.id}))
    return rows


def _short(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _sample(sample: Any) -> str:
    if isinstance(sample, dict):
        head = " · ".join(str(sample[k]) for k in ("reason", "location") if sample.get(k))
        return f"{head}\n  {sample.get('sample', '')}".rstrip()
    return str(sample)


HEAD = ("State", "Source", "Schedule", "Last run", "Records (last run)", "Problems", "About")


def frame(out: dict[str, Any], tz: tzinfo) -> html.Div:
    return html.Div(
        [
            html.Div([html.H2("Feeds and sensors", className="wf-page-title"),
                      html.Div(out.get(ids.SUMMARY), id=ids.SUMMARY, className="wf-feed-summary"),
                      html.Span(f"times in {tz_label(tz)}", className="wf-card-sub"),
                      html.Span(out.get(ids.ASOF), id=ids.ASOF, className="wf-page-asof")],
                     className="wf-page-head"),
            html.Table([html.Thead(html.Tr([html.Th(h) for h in HEAD])),
                        html.Tbody(out.get(ids.TABLE), id=ids.TABLE)], className="table wf-table wf-feeds-table"),
        ],
        id=ids.ROOT, className="wf-page wf-feeds",
    )


def render(ctx: context.AppContext, now_ms: int) -> dict[str, Any]:
    df = queries.feeds_overview(ctx.store, ctx.config, now_ms)
    limit = int(ctx.config.settings.no_data_banner_after.total_seconds() * 1000)
    if df.empty:
        table: list[Any] = [html.Tr(html.Td("No source is configured: add one YAML file per source under "
                                            "config/feeds/.", colSpan=len(HEAD), className="wf-empty-nodata"))]
    else:
        table = render_rows(df, ctx.config, ctx.tz, now_ms)
    return {ids.SUMMARY: render_summary(df), ids.TABLE: table,
            ids.ASOF: asof_label(now_ms, now_ms, ctx.tz, limit, prefix="checked")}


def layout(**_kwargs: Any) -> html.Div:
    ctx = context.current()
    return frame(render(ctx, ctx.now_ms()), ctx.tz)


def skeleton() -> html.Div:
    from datetime import timezone

    return frame({}, timezone.utc)


@dash.callback(Output(ids.SUMMARY, "children"), Output(ids.TABLE, "children"), Output(ids.ASOF, "children"),
               Input(shared.REFRESH, "n_intervals"), prevent_initial_call=True)
def update_feeds(_n: int | None) -> tuple[Any, Any, Any]:
    ctx = context.current()
    out = render(ctx, ctx.now_ms())
    return out[ids.SUMMARY], out[ids.TABLE], out[ids.ASOF]
