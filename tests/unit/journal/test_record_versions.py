"""Journal records carry a schema version; readers and reports take old (unversioned) ones too."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aftershock.journal.faults import FaultJournal
from aftershock.journal.reading import JOURNAL_VERSION, read_journal, runs, scan_journal
from aftershock.model.targets import TargetKind
from aftershock.ports import Handle
from aftershock.reporting import load_run, render_html, render_junit, render_markdown

REAL_RUN = Path(__file__).parents[1] / "reporting" / "data" / "real_run.jsonl"
"""A whole run's journal, written by ``aftershock run`` before records carried a version."""


def _handle() -> Handle:
    return Handle(
        run_id="r1",
        step="slow",
        kind=TargetKind.PROCESS,
        fault="process.stop",
        target="web",
        resources=("pid:42",),
        undo={"v": 1, "pid": 42, "starttime": 1234},
    )


def test_every_record_written_carries_the_version(tmp_path: Path) -> None:
    with FaultJournal(tmp_path, "r1") as journal:
        journal.note("run.started", experiment="x")
        journal.intent(_handle(), datetime(2030, 1, 1, tzinfo=UTC))
        journal.applied(_handle())
        journal.note("sample", probe="web", ok=True)
        journal.resource_intent(_handle())
    lines = [json.loads(line) for line in journal.path.read_text().splitlines()]
    assert [line["v"] for line in lines] == [JOURNAL_VERSION] * 5
    assert all(r.version == JOURNAL_VERSION for r in read_journal(journal.path))
    assert "v" not in read_journal(journal.path)[0].fields  # the version is not a note field


def test_a_note_cannot_forge_the_version(tmp_path: Path) -> None:
    with FaultJournal(tmp_path, "r1") as journal, pytest.raises(ValueError, match="reserved"):
        journal.note("custom", v=3)


def test_old_records_read_as_version_1_and_bad_versions_are_garbage(tmp_path: Path) -> None:
    base = {"ts": "2030-01-01T00:00:00+00:00", "event": "phase", "run_id": "r1"}
    lines = [
        {**base, "seq": 1},
        {**base, "seq": 2, "v": 2},
        {**base, "seq": 3, "v": 7},  # a newer writer: read, and marked as such
        {**base, "seq": 4, "v": "2"},
        {**base, "seq": 5, "v": True},
        {**base, "seq": 6, "v": 0},
    ]
    path = tmp_path / "r1.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    scan = scan_journal(path)
    assert [(r.seq, r.version) for r in scan.records] == [(1, 1), (2, 2), (3, 7)]
    assert [p.line for p in scan.problems] == [4, 5, 6]
    assert all("version" in p.message for p in scan.problems)


def test_a_report_of_an_old_journal_is_the_report_of_the_same_records_versioned(
    tmp_path: Path,
) -> None:
    versioned = tmp_path / "new" / REAL_RUN.name
    versioned.parent.mkdir()
    lines = REAL_RUN.read_text(encoding="utf-8").splitlines()
    assert not any('"v":' in line for line in lines)
    versioned.write_text(
        "".join(json.dumps({"v": JOURNAL_VERSION, **json.loads(line)}) + "\n" for line in lines),
        encoding="utf-8",
    )
    old_view, new_view = load_run(REAL_RUN), load_run(versioned)
    assert old_view.problems == new_view.problems == ()
    assert render_markdown(old_view) == render_markdown(new_view)
    assert render_junit(old_view) == render_junit(new_view)
    # The page names its journal file, the one difference.
    old_html = render_html(old_view).replace(str(REAL_RUN), "JOURNAL")
    assert old_html == render_html(new_view).replace(str(versioned), "JOURNAL")
    [old_run] = runs(REAL_RUN.parent)
    [new_run] = runs(versioned.parent)
    assert (old_run.records, old_run.events) == (new_run.records, new_run.events)
