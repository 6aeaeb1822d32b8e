"""Exposure findings are recomputed by a periodic job and right after a KEV/CSAF feed run."""
from __future__ import annotations

from datetime import datetime, timezone

from exposure_testkit import KEV_ID, NOW, inventory, open_findings, source

from collectors import scheduler
from collectors.runner import CollectContext
from settings.app_settings import AppSettings
from settings.loader import Config
from store import queries


def context(store, tmp_path, sources) -> CollectContext:
    config = Config(folder=tmp_path, settings=AppSettings(), inventory=inventory(), sources=sources)
    return CollectContext(store, config, tmp_path / "data",
                          clock=lambda: datetime.fromtimestamp(NOW / 1000, timezone.utc))


def test_the_scheduler_has_the_periodic_job(store, tmp_path) -> None:
    built = scheduler.build_scheduler(context(store, tmp_path, []))
    job = built.get_job("recompute-exposures")
    assert job is not None and job.trigger.interval.total_seconds() == 600
    assert built.get_job("expire-indicators") is not None  # the existing jobs stay


def test_a_kev_run_recomputes_findings_at_once(store, tmp_path, shared_fixtures) -> None:
    kev = source(KEV_ID, "kev", str(shared_fixtures / "kev" / "known_exploited_vulnerabilities.json"))
    ctx = context(store, tmp_path, [kev])
    scheduler.run_scheduled(ctx, kev)
    assert {k[1] for k in open_findings(store)} == {"CVE-2016-8562", "CVE-2025-5777", "CVE-2025-6543"}
    assert queries.exposure_summary(store).computed_at_ms == NOW


def test_other_formats_do_not_recompute(store, tmp_path, shared_fixtures) -> None:
    lines = source("ips", "lines", str(tmp_path / "ips.txt"))
    (tmp_path / "ips.txt").write_text("203.0.113.9\n")
    scheduler.run_scheduled(context(store, tmp_path, [lines]), lines)
    assert queries.exposure_summary(store).computed_at_ms is None
    assert scheduler.recompute_exposures_job(context(store, tmp_path, [lines])).new == 0
    assert queries.exposure_summary(store).computed_at_ms == NOW
