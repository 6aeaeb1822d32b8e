"""``collectors.ingest_files``: one-off imports of plain and gzip files through the real parser and pipeline."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tailing_kit import SOURCE_ID, eve_line, make_env, stored_sequences, tail_source

from collectors.ingest_files import format_report, ingest_paths
from store.schema import feed_runs


def eve_lines(start: int, stop: int) -> str:
    return "".join(eve_line(n) + "\n" for n in range(start, stop))


@pytest.fixture
def env(tmp_path: Path):
    ctx, _ = make_env(tmp_path, tail_source("unused.json"))
    return ctx


def test_good_and_malformed_lines_are_counted_with_file_line_and_reason(env, tmp_path: Path) -> None:
    plain = tmp_path / "eve-2026-11-21.json"
    plain.write_text(eve_lines(0, 10) + "garbage line\n" + eve_lines(10, 20)
                     + '{"event_type":"alert"}\n' + '{"event_type":"stats","timestamp":"x"}\n' + "\n")
    packed = tmp_path / "eve-2026-11-20.json.gz"
    with gzip.open(packed, "wt") as handle:
        handle.write(eve_lines(20, 30) + '{"half": ' + "\n" + eve_line(30))   # last line without newline
    missing = tmp_path / "not-there.json"

    report = ingest_paths(env, "suricata-eve", [plain, missing, packed], sensor_id=SOURCE_ID)

    assert (report.accepted, report.rejected, report.duplicates) == (31, 3, 0)
    assert report.skipped == 2                      # the stats record and the blank line
    assert report.failed_files == 1 and report.exit_code == 1
    result = report.as_dict()
    assert result["reject_reasons"] == {"not a JSON object": 1, "missing timestamp": 1, "invalid JSON": 1}
    assert [(r["file"], r["line"], r["reason"].split(":")[0]) for r in result["rejects"]] == [
        (str(plain), 11, "not a JSON object"), (str(plain), 22, "missing timestamp"), (str(packed), 11, "invalid JSON"),
    ]
    files = {f["path"]: f for f in result["files"]}
    assert files[str(missing)]["error"] == "No such file or directory"
    assert (files[str(packed)]["lines"], files[str(packed)]["accepted"]) == (12, 11)
    json.dumps(result)                               # the --json output is plain JSON
    assert sorted(stored_sequences(env)) == list(range(31))
    text = format_report(report)
    assert f"{plain}:11: not a JSON object" in text and "ERROR No such file or directory" in text


def test_importing_the_same_file_twice_gives_duplicates(env, tmp_path: Path) -> None:
    path = tmp_path / "eve.json"
    path.write_text(eve_lines(0, 40))
    first = ingest_paths(env, "suricata-eve", [path], sensor_id=SOURCE_ID, batch_lines=7)
    second = ingest_paths(env, "suricata-eve", [str(path)], sensor_id=SOURCE_ID, batch_lines=7)
    assert (first.accepted, first.duplicates) == (40, 0)
    assert (second.accepted, second.duplicates, second.exit_code) == (0, 40, 0)
    assert sum(stored_sequences(env).values()) == 40
    with env.store.reader.connect() as conn:          # an import is not a feed run: freshness is untouched
        assert conn.execute(select(func.count()).select_from(feed_runs)).scalar_one() == 0


def test_a_folder_imports_its_files_and_overlong_lines_are_rejected(env, tmp_path: Path) -> None:
    folder = tmp_path / "stick"
    folder.mkdir()
    (folder / "a.json").write_text(eve_lines(0, 5))
    (folder / "b.json").write_text("{" + "x" * 5000 + "\n" + eve_lines(5, 8))
    report = ingest_paths(env, "suricata-eve", [folder], sensor_id=SOURCE_ID, max_line_bytes=1000)
    assert (report.accepted, report.rejected) == (8, 1)
    assert report.rejects[0]["file"].endswith("b.json") and report.rejects[0]["line"] == 1
    assert report.rejects[0]["reason"] == "line longer than 1000 bytes: skipped to its end"


def test_unknown_format_is_refused_before_reading(env, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown sensor format 'snort'.*suricata-eve"):
        ingest_paths(env, "snort", [tmp_path / "x"])
