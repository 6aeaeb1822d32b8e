"""Scoring: named contributions, thresholds, the cap, the shipped weights and config validation."""
from __future__ import annotations

import yaml
from pipeline_testkit import ASSETS_YAML, REPO

from pipeline.assets import OUTSIDE, AssetIndex
from pipeline.indicators import Hit, IndicatorMatch
from pipeline.scoring import CONTRIBUTIONS, Scorer, load_scoring
from settings.inventory import Inventory
from settings.loader import validate
from settings.scoring import ScoringConfig
from store.records import Severity

ASSETS = AssetIndex(Inventory.model_validate(yaml.safe_load(ASSETS_YAML)))
SCORER = Scorer(ScoringConfig())


def score(**overrides):
    arguments = dict(sensor_severity=None, match=None, target=OUTSIDE, src=OUTSIDE, src_ip="203.0.113.9",
                     target_is_dst=True, ics_function=None)
    arguments.update(overrides)
    return SCORER.score(**arguments)


def test_the_shipped_scoring_file_is_valid_and_equals_the_documented_defaults():
    loaded, problems = load_scoring(REPO / "config")
    assert problems == [] and loaded == ScoringConfig()


def test_thresholds_map_scores_to_the_five_levels():
    assert [SCORER.level(p) for p in (0, 19, 20, 39, 40, 59, 60, 79, 80, 100)] == [
        Severity.INFO, Severity.INFO, Severity.LOW, Severity.LOW, Severity.MEDIUM, Severity.MEDIUM,
        Severity.HIGH, Severity.HIGH, Severity.CRITICAL, Severity.CRITICAL]


def test_nothing_known_scores_zero_info_with_no_contributions():
    result = score()
    assert (result.points, result.level, result.contributions) == (0, Severity.INFO, ())


def test_everything_at_once_is_capped_at_100_and_names_each_reason():
    hit = Hit(7, "ipv4", "203.0.113.9", 100, ("feed-a",))
    result = score(sensor_severity=Severity.CRITICAL, match=IndicatorMatch((("src_ip", hit),)),
                   target=ASSETS.locate("10.2.0.10"), src=ASSETS.locate("10.1.0.30"),
                   ics_function="write_single_coil", known_exploited=("CVE-2019-10929",))
    assert result.points == 100 and result.level == Severity.CRITICAL
    assert [c.name for c in result.contributions] == [
        "sensor_severity", "indicator_hit", "ot_target", "ics_control", "it_to_ot", "asset_criticality",
        "known_exploited"]
    assert sum(c.points for c in result.contributions) == 40 + 40 + 15 + 20 + 15 + 10 + 15
    assert set(c.name for c in result.contributions) <= set(CONTRIBUTIONS)


def test_indicator_points_scale_with_confidence_and_default_when_unknown():
    unknown = Hit(1, "domain", "evil.example", None, ("feed-a",))
    result = score(match=IndicatorMatch((("domain", unknown),)))
    assert [(c.name, c.points) for c in result.contributions] == [("indicator_hit", 20)]  # 40 × 50 %
    assert "confidence 50" in result.contributions[0].why


def test_it_to_ot_needs_an_it_or_outside_source_and_an_ot_destination():
    plc = ASSETS.locate("10.2.0.10")
    names = lambda r: [c.name for c in r.contributions]  # noqa: E731
    assert "it_to_ot" in names(score(target=plc, src=OUTSIDE))
    assert "it_to_ot" in names(score(target=plc, src=ASSETS.locate("10.1.6.1")))           # IT zone
    assert "it_to_ot" not in names(score(target=plc, src=ASSETS.locate("10.2.0.11")))      # OT → OT
    assert "it_to_ot" not in names(score(target=plc, src=ASSETS.locate("192.0.2.3")))      # DMZ → OT
    assert "it_to_ot" not in names(score(target=plc, src=OUTSIDE, target_is_dst=False))   # our PLC talking out


def test_site_criticality_stands_in_when_no_asset_is_known():
    result = score(target=ASSETS.locate("10.3.0.7"))
    assert [(c.name, c.points, c.why) for c in result.contributions] == [
        ("site_criticality", 3, "site water-b criticality 3")]


def test_ics_control_patterns_recognise_control_but_not_reads():
    assert all(SCORER.is_ics_control(f) for f in ("write_single_coil", "cold_restart", "stop_appl", "direct_operate",
                                                   "set_attribute_single", "schneider_umas", "program_download"))
    assert not any(SCORER.is_ics_control(f) for f in ("read_coils", "read_holding_registers", "confirm", None, ""))


def test_bad_scoring_config_is_rejected():
    _, problems = validate(ScoringConfig, {"levels": {"critical": 50, "high": 60}}, "scoring.yaml")
    assert problems and "thresholds" in problems[0].message
    _, problems = validate(ScoringConfig, {"weights": {"ot_targett": 5}}, "scoring.yaml")
    assert problems and problems[0].field == "weights.ot_targett"
    _, problems = validate(ScoringConfig, {"weights": {"asset_criticality": {7: 5}}}, "scoring.yaml")
    assert problems and "outside 1-5" in problems[0].message
    _, problems = validate(ScoringConfig, {"incidents": {"min_level": "severe"}}, "scoring.yaml")
    assert problems and "unknown level" in problems[0].message


def test_custom_weights_and_incident_policy_take_effect(tmp_path, store):
    from pipeline_testkit import event_at, ingest, write_config

    from pipeline.ingest import EventPipeline

    config = write_config(tmp_path / "cfg", scoring_yaml="weights: {ot_target: 50}\nincidents: {kinds: [], min_level: high}\n")
    pipeline = EventPipeline(config, store)
    flow = event_at(0, kind="flow", src_ip="10.2.0.11", dst_ip="10.2.0.10")     # OT 50 + asset 10 = 60 → high
    quiet = event_at(1, kind="alert", src_ip="10.2.0.11", dst_ip="10.3.0.7", signature="x")  # 3 → info, not a kind
    result = ingest(pipeline, store, [flow, quiet])
    assert (result.accepted, result.incidents_new) == (2, 1)
