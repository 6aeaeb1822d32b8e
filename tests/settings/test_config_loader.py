"""Configuration loading: every problem names its file and field, broken sources are left out."""
from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from settings.base import parse_duration, parse_size
from settings.loader import load_config

ROOT = Path(__file__).resolve().parents[2]

GOOD_FEED = """\
id: local-list
name: A local list
source: {type: file, path: lists/ips.txt}
schedule: {every: 1h}
format: lines
"""


def make_config(tmp_path: Path, feeds: dict[str, str], settings: str = "", assets: str = "") -> Path:
    folder = tmp_path / "config"
    (folder / "feeds").mkdir(parents=True)
    (folder / "settings.yaml").write_text(settings)
    (folder / "assets.yaml").write_text(assets)
    for name, text in feeds.items():
        (folder / "feeds" / name).write_text(text)
    return folder


def test_shipped_configuration_is_valid() -> None:
    config = load_config(ROOT / "config")
    assert config.problems == []
    assert len(config.inventory.sites) >= 10
    assert {site.sector for site in config.inventory.sites} >= {"energy", "water", "transport", "telecom", "health", "finance"}
    assert config.demo_enabled


def test_unknown_key_is_named_with_file_and_field(tmp_path: Path) -> None:
    folder = make_config(tmp_path, {"bad.yaml": GOOD_FEED + "schedul: {every: 1h}\n"})
    config = load_config(folder)
    assert config.sources == []
    [problem] = config.problems
    assert problem.file.endswith("feeds/bad.yaml")
    assert problem.field == "schedul"
    assert "unknown key" in problem.message


def test_broken_source_does_not_hide_the_good_ones(tmp_path: Path) -> None:
    broken = GOOD_FEED.replace("local-list", "other").replace("every: 1h", "every: soon")
    folder = make_config(tmp_path, {"good.yaml": GOOD_FEED, "broken.yaml": broken})
    config = load_config(folder)
    assert [s.id for s in config.sources] == ["local-list"]
    [problem] = config.problems
    assert problem.file.endswith("broken.yaml") and problem.field == "schedule.every"
    assert "not a duration" in problem.message


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    folder = make_config(tmp_path, {"syntax.yaml": "id: x\nname: [unclosed\n"})
    [problem] = load_config(folder).problems
    assert problem.file.endswith("syntax.yaml")
    assert problem.field.startswith("line ")
    assert "invalid YAML" in problem.message


def test_inline_secret_is_refused(tmp_path: Path) -> None:
    feed = GOOD_FEED.replace("source: {type: file, path: lists/ips.txt}",
                             "source: {type: http, url: 'https://example.org/x', auth: {type: bearer, token: hunter2}}")
    [problem] = load_config(make_config(tmp_path, {"secret.yaml": feed})).problems
    assert problem.field == "source.http.auth.bearer.token"
    assert "${ENV:NAME}" in problem.message


def test_unknown_format_lists_the_known_ones(tmp_path: Path) -> None:
    [problem] = load_config(make_config(tmp_path, {"f.yaml": GOOD_FEED.replace("format: lines", "format: xml")})).problems
    assert problem.field == "format"
    assert "unknown format 'xml'" in problem.message and "suricata-eve" in problem.message


def test_interval_below_provider_floor_is_refused(tmp_path: Path) -> None:
    feed = GOOD_FEED.replace("{every: 1h}", "{every: 1m, min_interval: 5m}")
    [problem] = load_config(make_config(tmp_path, {"f.yaml": feed})).problems
    assert problem.field == "schedule" and "min_interval" in problem.message


def test_duplicate_ids_and_bad_inventory(tmp_path: Path) -> None:
    assets = """\
sites:
  - {id: s1, name: S1, sector: energy, lat: 13.7, lon: 100.5, criticality: 9,
     zones: [{name: it, kind: IT, networks: [10.0.0.0/8]}]}
  - {id: s2, name: S2, sector: water, lat: 13.7, lon: 100.5, criticality: 3,
     zones: [{name: ot, kind: OT, networks: [not-a-net]}]}
"""
    config = load_config(make_config(tmp_path, {"a.yaml": GOOD_FEED, "b.yaml": GOOD_FEED}, assets=assets))
    messages = {(Path(p.file).name, p.field): p.message for p in config.problems}
    assert "already used" in messages[("b.yaml", "id")]
    assert "less than or equal to 5" in messages[("assets.yaml", "sites[0].criticality")]
    assert "not a network" in messages[("assets.yaml", "sites[1].zones[0].networks[0]")]


def test_durations_and_sizes() -> None:
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration(90) == timedelta(seconds=90)
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_size("50MB") == 50_000_000
    assert parse_size("1GiB") == 1024**3
    with pytest.raises(ValueError):
        parse_duration("often")


def test_check_config_command_prints_file_field_message(tmp_path: Path) -> None:
    folder = make_config(tmp_path, {"bad.yaml": GOOD_FEED.replace("format: lines", "format: lines\ntlp: purple")})
    result = subprocess.run([sys.executable, "app.py", "check-config", "--config", str(folder)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"{folder / 'feeds' / 'bad.yaml'}: tlp: " in result.stdout

    ok = subprocess.run([sys.executable, "app.py", "check-config", "--config", str(ROOT / "config")],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK" in ok.stdout


def test_scoring_and_attack_map_files_are_checked_too(tmp_path: Path) -> None:
    folder = make_config(tmp_path, {"a.yaml": GOOD_FEED})
    (folder / "scoring.yaml").write_text("weights_typo: 1\n")
    (folder / "attack_ics_map.yaml").write_text("- not a mapping\n")
    files = {Path(p.file).name for p in load_config(folder).problems}
    assert files == {"scoring.yaml", "attack_ics_map.yaml"}


def test_a_bad_city_database_path_is_reported(tmp_path: Path) -> None:
    folder = make_config(tmp_path, {"a.yaml": GOOD_FEED}, settings="geoip_city_database: missing/GeoLite2-City.mmdb\n")
    [problem] = load_config(folder).problems
    assert problem.file.endswith("settings.yaml") and problem.field == "geoip_city_database"
    assert "GeoLite2-City.mmdb" in problem.message and "no such file" in problem.message
