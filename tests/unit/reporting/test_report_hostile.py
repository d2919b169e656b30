"""Reports of hostile journals: non-finite numbers, garbage files and torn lines.

The journal in ``data/real_run.jsonl`` was written by a real ``aftershock run``
(a supervised ``http.server`` behind the embedded proxy: latency, then a kill).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from aftershock.model.results import RunStatus
from aftershock.reporting import (
    CRASHED_REASON,
    NotAJournal,
    load_run,
    render_html,
    render_junit,
    render_markdown,
)

REAL = Path(__file__).parent / "data" / "real_run.jsonl"
_SVG = re.compile(r"<svg.*?</svg>", re.S)
_ATTR = re.compile(r'\s[a-z-]+="([^"]*)"')


def real_records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in REAL.read_text(encoding="utf-8").splitlines()]


def write(path: Path, records: list[dict[str, Any]], tail: str = "") -> Path:
    lines = [json.dumps(r) for r in records]  # allow_nan: json.dumps writes NaN as is
    path.write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")
    return path


def svg_numbers_are_finite(page: str) -> bool:
    for svg in _SVG.findall(page):
        for value in _ATTR.findall(svg):
            if re.search(r"(?i)\b(nan|inf|infinity)\b", value):
                return False
    return True


def first_sample(records: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in records if r["event"] == "sample")


def test_the_real_journal_renders_without_problems() -> None:
    view = load_run(REAL)
    assert view.finished
    assert view.result.status is RunStatus.PASSED
    assert view.problems == ()
    assert len(view.samples["web"]) == 26
    assert svg_numbers_are_finite(render_html(view))


@pytest.mark.parametrize(
    ("raw", "kind"),
    [("1e999", "infinity"), ("NaN", "NaN"), ("-Infinity", "infinity"), ("1" + "0" * 400, "big")],
)
def test_a_sample_with_an_unusable_time_is_skipped_and_counted(
    tmp_path: Path, raw: str, kind: str
) -> None:
    # Before: 1e999 raised OverflowError in the SVG, NaN an IndexError.
    records = real_records()
    sample = first_sample(records)
    text = REAL.read_text(encoding="utf-8")
    line = json.dumps(sample, separators=(",", ":"), ensure_ascii=False)
    assert line in text
    bad = line.replace(f'"t":{json.dumps(sample["t"])}', f'"t":{raw}')
    assert bad != line
    path = tmp_path / "run.jsonl"
    path.write_text(text.replace(line, bad), encoding="utf-8")

    view = load_run(path)
    assert view.finished  # the verdict still stands
    assert len(view.samples["web"]) == 25
    assert [p for p in view.problems if "1 sample record(s) skipped" in p], view.problems
    page = render_html(view)
    assert svg_numbers_are_finite(page)
    assert "sample record(s) skipped" in page
    assert "sample record(s) skipped" in render_markdown(view)


def test_non_finite_numbers_anywhere_in_a_note_skip_it(tmp_path: Path) -> None:
    records = real_records()
    window = next(r for r in records if r["event"] == "window")
    window["end_t"] = float("inf")
    phase = next(r for r in records if r["event"] == "phase")
    phase["extra"] = {"deep": [float("nan")]}  # a field no renderer reads
    view = load_run(write(tmp_path / "run.jsonl", records))
    assert any("window record(s) skipped (NaN or infinity)" in p for p in view.problems)
    assert any("phase record(s) skipped (NaN or infinity)" in p for p in view.problems)
    assert svg_numbers_are_finite(render_html(view))


def test_a_verdict_with_nan_or_naive_times_is_set_aside(tmp_path: Path) -> None:
    records = real_records()
    finished = records[-1]
    assert finished["event"] == "run.finished"
    # Validation is lax: "NaN" strings become float NaN, naive times pass.
    finished["result"]["recovery_seconds"] = "NaN"
    view = load_run(write(tmp_path / "nan.jsonl", records))
    assert not view.finished
    assert view.result.status is RunStatus.INTERRUPTED
    assert any("run.finished result unreadable: the number nan" in p for p in view.problems)
    assert view.result.recovery_seconds == pytest.approx(0.080054678)
    render_html(view), render_markdown(view), render_junit(view)

    finished["result"]["recovery_seconds"] = 1.0
    finished["result"]["finished_at"] = "2026-12-03T23:32:18"
    view = load_run(write(tmp_path / "naive.jsonl", records))
    assert not view.finished
    assert any("has no time zone" in p for p in view.problems)
    render_html(view), render_markdown(view), render_junit(view)


def test_a_time_that_leaves_the_calendar_in_utc_is_garbage(tmp_path: Path) -> None:
    records = real_records()
    records[3]["ts"] = "0001-01-01T00:00:00+05:00"  # before year 1 in UTC
    records[4]["ts"] = "9999-12-31T23:59:59-05:00"  # after year 9999 in UTC
    view = load_run(write(tmp_path / "run.jsonl", records))
    assert sum("out of range in UTC" in p for p in view.problems) == 2
    render_html(view), render_markdown(view), render_junit(view)


def test_a_torn_last_line_after_a_crash_still_renders(tmp_path: Path) -> None:
    text = REAL.read_text(encoding="utf-8")
    cut = text.index('"event":"run.finished"') + 40  # the crash cut the verdict short
    path = tmp_path / "torn.jsonl"
    path.write_text(text[:cut], encoding="utf-8")
    view = load_run(path)
    assert not view.finished
    assert view.result.reason == CRASHED_REASON
    assert view.result.experiment == "fuzz-seed"
    assert len(view.problems) == 1
    assert "torn last line" in view.problems[0]
    assert "torn last line" in render_markdown(view)
    assert svg_numbers_are_finite(render_html(view))


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (bytes(range(256)) * 4, "no line is a journal record (line 1: Expecting value"),
        (b'{"name": "left-pad", "version": "1.3.0"}\n', "missing field 'seq'"),
        (b"[1, 2, 3]\n[4]\n", "a JSON list, not an object"),
        (b'{"ts": "2026-01-01T00:00:00Z", "seq": "1", "event": "x", "run_id": "r"}\n', "seq"),
        (b"", "the file is empty"),
        (b"\n\n  \n", "the file is empty"),
    ],
)
def test_a_file_without_one_journal_record_is_not_a_journal(
    tmp_path: Path, content: bytes, why: str
) -> None:
    # Before: rendered as "INTERRUPTED (unknown experiment)" with an invented start time.
    path = tmp_path / "thing.jsonl"
    path.write_bytes(content)
    with pytest.raises(NotAJournal) as caught:
        load_run(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not an aftershock journal: ")
    assert why in message
    assert "\n" not in message


def test_one_good_record_among_garbage_is_still_a_journal(tmp_path: Path) -> None:
    started = real_records()[0]
    path = tmp_path / "mostly-garbage.jsonl"
    path.write_bytes(b"\x00\xff garbage\n" + json.dumps(started).encode() + b"\nmore garbage\n")
    view = load_run(path)
    assert view.result.experiment == "fuzz-seed"
    assert view.result.started_at.isoformat().startswith("2026-12-03T23:32:12")
    assert len([p for p in view.problems if "garbage" in p]) == 2
