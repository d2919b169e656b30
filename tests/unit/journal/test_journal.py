"""The fault journal: durable ordered records, tolerant reading, outstanding faults."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aftershock.errors import JournalError
from aftershock.journal import (
    FaultJournal,
    JournalProblem,
    fault_key,
    outstanding,
    read_journal,
    runs,
    scan_journal,
)
from aftershock.journal.faults import RESOURCE_EVENTS
from aftershock.journal.resources import outstanding_resources
from aftershock.model.secrets import Secret
from aftershock.model.targets import TargetKind
from aftershock.ports import Handle
from aftershock.reporting import load_run, write_report

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


class StepClock:
    """A manual wall clock that moves one second per reading."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def handle(step: str, run_id: str = "run-a", resource: str = "pid:42") -> Handle:
    return Handle(
        run_id=run_id,
        step=step,
        kind=TargetKind.PROCESS,
        fault="process.stop",
        target="web",
        resources=(resource,),
        undo={"pid": 42, "starttime": 1234},
    )


def lines(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as other:  # a separate handle from the writer's
        return [json.loads(line) for line in other]


def test_records_are_written_in_order_with_seq(tmp_path: Path) -> None:
    clock = StepClock()
    journal = FaultJournal(tmp_path / "deep" / "journal", "run-a", clock=clock)
    h = handle("slow-db")
    deadline = T0 + timedelta(minutes=5)

    assert journal.intent(h, deadline) == 1
    assert lines(journal.path)[0]["event"] == "fault.intent"  # readable at once
    journal.applied(h.with_undo(extra=1))
    journal.note("run.finished", outcome="passed")
    journal.reverted(h.with_undo(extra=1))

    data = lines(journal.path)
    assert journal.path == tmp_path / "deep" / "journal" / "run-a.jsonl"
    assert [d["seq"] for d in data] == [1, 2, 3, 4]
    assert [d["event"] for d in data] == [
        "fault.intent",
        "fault.applied",
        "run.finished",
        "fault.reverted",
    ]
    assert data[0]["ts"] == "2026-03-02T03:00:01.000000+00:00"
    assert data[0]["deadline"] == "2026-03-02T03:05:00.000000+00:00"
    assert data[0]["key"] == "slow-db/pid:42" == fault_key(h)
    assert data[0]["run_id"] == "run-a"
    assert data[0]["handle"] == h.to_json()
    assert data[2]["outcome"] == "passed"
    assert "handle" not in data[2]

    records = read_journal(journal.path)
    assert [r.seq for r in records] == [1, 2, 3, 4]
    assert records[0].handle == h
    assert records[1].handle == h.with_undo(extra=1)
    assert records[2].fields == {"outcome": "passed"}


def test_every_record_is_fsynced_and_the_new_file_directory_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(str(Path(f"/proc/self/fd/{fd}").readlink()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    journal = FaultJournal(tmp_path, "run-a")
    journal.intent(handle("a"), T0)
    assert synced == [str(journal.path), str(tmp_path)]
    journal.applied(handle("a"))
    assert synced[2:] == [str(journal.path)]


def test_revert_failed_records_the_error(tmp_path: Path) -> None:
    journal = FaultJournal(tmp_path, "run-a")
    journal.revert_failed(handle("a"), "permission denied")
    (record,) = read_journal(journal.path)
    assert record.event == "fault.revert_failed"
    assert record.fields["error"] == "permission denied"


def test_secrets_never_reach_the_disk(tmp_path: Path) -> None:
    journal = FaultJournal(tmp_path, "run-a")
    journal.intent(handle("a").with_undo(token=Secret("hunter2")), T0)
    text = journal.path.read_text(encoding="utf-8")
    assert "hunter2" not in text
    assert '"token":"***"' in text


def test_bad_input_is_a_journal_error(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="invalid run id"):
        FaultJournal(tmp_path, "../escape")
    journal = FaultJournal(tmp_path, "run-a")
    with pytest.raises(JournalError, match="cannot journal"):
        journal.intent(handle("a").with_undo(bad=object()), T0)
    with pytest.raises(ValueError, match="reserved"):
        journal.note("fault.reverted")
    with pytest.raises(ValueError, match="seq, ts are reserved"):
        journal.note("run.started", ts="forged", seq=0)
    assert not journal.path.exists()
    blocked = tmp_path / "file"
    blocked.write_text("not a directory", encoding="utf-8")
    with pytest.raises(JournalError, match="cannot write"):
        FaultJournal(blocked / "journal", "run-a").intent(handle("a"), T0)


def test_writers_on_many_threads_never_interleave(tmp_path: Path) -> None:
    journal = FaultJournal(tmp_path, "run-a")
    big = "x" * 20_000  # larger than a pipe buffer, so a torn interleaving would show
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: journal.note("tick", i=i, pad=big), range(200)))
    journal.close()  # notes are written by the journal's writer thread
    data = lines(journal.path)
    assert sorted(int(str(d["seq"])) for d in data) == list(range(1, 201))
    assert sorted(int(str(d["i"])) for d in data) == list(range(200))


async def test_coroutines_share_one_journal(tmp_path: Path) -> None:
    journal = FaultJournal(tmp_path, "run-a")

    async def write(i: int) -> int:
        await asyncio.sleep(0)
        return await asyncio.to_thread(journal.note, "tick", i=i)

    seqs = await asyncio.gather(*(write(i) for i in range(50)))
    assert sorted(seqs) == list(range(1, 51))


def test_torn_last_line_is_skipped_reported_and_fenced_off(tmp_path: Path) -> None:
    journal = FaultJournal(tmp_path, "run-a")
    journal.intent(handle("a"), T0)
    journal.applied(handle("a"))
    with journal.path.open("ab") as file:
        file.write(b'{"ts": "2026-03-02T03:00:09+00:00", "seq": 3, "event": "fault.rev')

    problems: list[JournalProblem] = []
    records = read_journal(journal.path, problems)
    assert [r.seq for r in records] == [1, 2]
    (problem,) = problems
    assert (problem.file, problem.line) == (journal.path, 3)
    assert "torn last line" in problem.message
    assert str(problem).startswith(f"{journal.path}:3: ")

    # A new writer for the run (e.g. after a restart) continues the numbering and
    # starts a fresh line, so the torn fragment never swallows a good record.
    again = FaultJournal(tmp_path, "run-a")
    assert again.reverted(handle("a")) == 3
    scan = scan_journal(journal.path)
    assert [(r.line, r.event) for r in scan.records] == [
        (1, "fault.intent"),
        (2, "fault.applied"),
        (4, "fault.reverted"),
    ]
    assert [(p.line, "garbage" in p.message) for p in scan.problems] == [(3, True)]
    assert outstanding(tmp_path) == []


def test_garbage_lines_are_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "run-g.jsonl"
    good = FaultJournal(tmp_path, "run-g")
    good.intent(handle("a", "run-g"), T0)
    bad_handle = json.dumps(
        {
            "ts": "2026-03-02T03:00:00+00:00",
            "seq": 9,
            "event": "fault.intent",
            "run_id": "run-g",
            "key": "b/x",
            "handle": {"run_id": "run-g", "step": "b", "kind": "mainframe"},
        }
    )
    garbage = [
        "this is not json",
        "[1, 2, 3]",
        '{"seq": 2}',
        '{"ts": "yesterday", "seq": 3, "event": "x", "run_id": "run-g"}',
        '{"ts": "2026-03-02T03:00:00", "seq": true, "event": "x", "run_id": "run-g"}',
        bad_handle,
        "",
    ]
    with path.open("ab") as file:
        file.write("\n".join(garbage).encode() + b"\n")
        file.write(b'{"ts": "\xff\xfe"}\n')  # not UTF-8
    good.applied(handle("a", "run-g"))

    problems: list[JournalProblem] = []
    records = read_journal(path, problems)
    assert [r.event for r in records] == ["fault.intent", "fault.applied"]
    assert [p.line for p in problems] == [2, 3, 4, 5, 6, 7, 9]
    assert all(p.file == path and "garbage skipped" in p.message for p in problems)
    assert "missing field 'event'" in problems[2].message

    found = outstanding(tmp_path)
    assert [(o.key, o.state) for o in found] == [("a/pid:42", "applied")]


def test_outstanding_over_several_runs(tmp_path: Path) -> None:
    clock = StepClock()
    a = FaultJournal(tmp_path, "run-a", clock=clock)
    b = FaultJournal(tmp_path, "run-b", clock=clock)
    deadline = T0 + timedelta(minutes=1)

    a.intent(handle("only-intent"), deadline)
    b.intent(handle("other-run", "run-b"), deadline)
    b.applied(handle("other-run", "run-b").with_undo(new_pid=7))
    a.intent(handle("applied"), deadline)
    a.applied(handle("applied").with_undo(new_pid=43))
    a.intent(handle("reverted"), deadline)
    a.applied(handle("reverted"))
    a.reverted(handle("reverted"))
    a.intent(handle("failed"), deadline)
    a.applied(handle("failed"))
    a.revert_failed(handle("failed"), "EPERM")
    a.intent(handle("again"), deadline)
    a.reverted(handle("again"))
    a.intent(handle("again"), deadline)  # the same key opened a second time

    found = outstanding(tmp_path)
    assert [(o.run_id, o.key.split("/")[0], o.state) for o in found] == [
        ("run-a", "only-intent", "intent"),
        ("run-b", "other-run", "applied"),
        ("run-a", "applied", "applied"),
        ("run-a", "failed", "revert_failed"),
        ("run-a", "again", "intent"),
    ]
    by_step = {o.handle.step: o for o in found}
    assert by_step["only-intent"].handle == handle("only-intent")
    assert by_step["applied"].handle.undo["new_pid"] == 43  # the applied handle wins
    assert by_step["other-run"].handle.undo["new_pid"] == 7
    assert by_step["failed"].error == "EPERM"
    assert by_step["only-intent"].deadline == deadline
    assert by_step["only-intent"].since == T0 + timedelta(seconds=1)
    assert by_step["only-intent"].line == 1
    assert by_step["only-intent"].file == a.path


def test_runs_summary_and_unreadable_files(tmp_path: Path) -> None:
    clock = StepClock()
    a = FaultJournal(tmp_path, "run-a", clock=clock)
    a.note("run.started", experiment="checkout")
    a.intent(handle("x"), T0)
    a.applied(handle("x"))
    a.reverted(handle("x"))
    b = FaultJournal(tmp_path, "run-b", clock=clock)
    b.intent(handle("y", "run-b"), T0)
    (tmp_path / "run-c.jsonl").mkdir()  # cannot be read as a file
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")

    problems: list[JournalProblem] = []
    summary = runs(tmp_path, problems)
    assert [s.run_id for s in summary] == ["run-a", "run-b", "run-c"]
    first, second, third = summary
    assert (first.records, first.faults, first.reverted, first.outstanding) == (4, 1, 1, 0)
    assert first.events["run.started"] == 1
    assert first.started == T0 + timedelta(seconds=1)
    assert first.last == T0 + timedelta(seconds=4)
    assert (second.faults, second.outstanding) == (1, 1)
    assert (third.records, third.problems, third.started) == (0, 1, None)
    assert [(p.file.name, p.line) for p in problems] == [("run-c.jsonl", 0)]

    assert [o.run_id for o in outstanding(tmp_path)] == ["run-b"]
    assert outstanding(tmp_path / "missing") == []
    with pytest.raises(JournalError, match="cannot read"):
        read_journal(tmp_path / "run-c.jsonl")


_CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from aftershock.journal import FaultJournal
    from aftershock.model.targets import TargetKind
    from aftershock.ports import Handle

    handle = Handle(run_id="crash", step="kill-api", kind=TargetKind.PROCESS,
                    fault="process.kill", target="api", resources=("pid:4242",),
                    undo={"pid": 4242, "starttime": 99})
    FaultJournal(Path(sys.argv[1]), "crash").intent(handle, datetime.now(UTC))
    os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no buffers flushed by Python
    """
)


def test_intent_survives_a_sigkill_right_after_it_returns(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _CRASH_SCRIPT, str(tmp_path)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    (left,) = outstanding(tmp_path)
    assert (left.run_id, left.key, left.state) == ("crash", "kill-api/pid:4242", "intent")
    assert left.handle.undo == {"pid": 4242, "starttime": 99}


# ---------------------------------------------------------------- resources a run creates


def proxy_handle(run_id: str = "run-a", name: str = "made") -> Handle:
    return Handle(
        run_id=run_id,
        step="provision",
        kind=TargetKind.TOXIPROXY,
        fault="toxiproxy.proxy",
        target="db",
        resources=(f"http://127.0.0.1:8474/proxies/{name}",),
        undo={"api": "http://127.0.0.1:8474", "proxy": name, "upstream": "127.0.0.1:9"},
    )


def test_resource_records_and_what_stays_outstanding(tmp_path: Path) -> None:
    clock = StepClock()
    a = FaultJournal(tmp_path, "run-a", clock=clock)
    b = FaultJournal(tmp_path, "run-b", clock=clock)
    created = proxy_handle(name="created").with_undo(created_listen="127.0.0.1:40001")

    a.resource_intent(proxy_handle(name="intent-only"))
    a.resource_intent(proxy_handle(name="created"))
    a.resource_created(created)
    a.resource_intent(proxy_handle(name="released"))
    a.resource_created(proxy_handle(name="released"))
    a.resource_released(proxy_handle(name="released"), "deleted")
    a.resource_intent(proxy_handle(name="failed"))
    a.resource_created(proxy_handle(name="failed").with_undo(created_listen="x:1"))
    a.resource_release_failed(proxy_handle(name="failed"), "503 busy")
    b.resource_intent(proxy_handle("run-b", "existed"))
    b.resource_released(proxy_handle("run-b", "existed"), "not ours")

    records = lines(a.path)
    assert [r["event"] for r in records[:3]] == [
        "resource.intent",
        "resource.intent",
        "resource.created",
    ]
    assert records[2]["resource"] == "provision/http://127.0.0.1:8474/proxies/created"
    assert records[2]["resource_handle"] == created.to_json()
    assert records[5]["outcome"] == "deleted"

    found = outstanding_resources(tmp_path)
    assert [(r.run_id, r.handle.undo["proxy"], r.state, r.created) for r in found] == [
        ("run-a", "intent-only", "intent", False),
        ("run-a", "created", "created", True),
        ("run-a", "failed", "release_failed", True),
    ]
    assert found[1].handle == created  # the created record's handle wins
    assert found[2].handle.undo["created_listen"] == "x:1"  # kept through the failure
    assert found[2].error == "503 busy"
    assert (found[0].file, found[0].line) == (a.path, 1)
    # Not faults: the fault readers see nothing outstanding, and count no faults.
    assert outstanding(tmp_path) == []
    assert [(s.faults, s.outstanding) for s in runs(tmp_path)] == [(0, 0), (0, 0)]
    assert outstanding_resources(tmp_path / "missing") == []


def test_notes_cannot_forge_resource_records(tmp_path: Path) -> None:
    journal = FaultJournal(tmp_path, "run-a")
    for kind in RESOURCE_EVENTS:
        with pytest.raises(ValueError, match="reserved"):
            journal.note(kind, resource="x")
    assert not journal.path.exists()


def test_garbled_resource_records_are_skipped(tmp_path: Path) -> None:
    journal = FaultJournal(tmp_path, "run-a", clock=StepClock())
    journal.resource_intent(proxy_handle(name="good"))
    journal.note("resource.other", resource="r", resource_handle=proxy_handle().to_json())
    with journal.path.open("a", encoding="utf-8") as raw:
        bad = {"ts": T0.isoformat(), "run_id": "run-a", "resource": "k"}
        raw.write(json.dumps({**bad, "seq": 9, "event": "resource.intent"}) + "\n")
        handle_json = {"resource_handle": {"run_id": "run-a"}}
        raw.write(json.dumps({**bad, "seq": 10, "event": "resource.intent", **handle_json}) + "\n")
    problems: list[JournalProblem] = []
    assert [r.handle.undo["proxy"] for r in outstanding_resources(tmp_path, problems)] == ["good"]
    assert problems == []


_OLD_JOURNAL = """\
{"ts":"2026-03-02T03:00:01.000000+00:00","seq":1,"event":"run.started","run_id":"old","experiment":"x","started_at":"2026-03-02T03:00:01+00:00","probes":[]}
{"ts":"2026-03-02T03:00:02.000000+00:00","seq":2,"event":"fault.intent","run_id":"old","key":"slow/http://127.0.0.1:8474/proxies/db/toxics/aftershock-old-slow","handle":{"run_id":"old","step":"slow","kind":"toxiproxy","fault":"toxiproxy.latency","target":"db","resources":["http://127.0.0.1:8474/proxies/db/toxics/aftershock-old-slow"],"undo":{"api":"http://127.0.0.1:8474","proxy":"db","toxic":"aftershock-old-slow","created_proxy":false,"listen":null,"upstream":null}},"deadline":"2026-03-02T03:01:02+00:00"}
{"ts":"2026-03-02T03:00:03.000000+00:00","seq":3,"event":"fault.applied","run_id":"old","key":"slow/http://127.0.0.1:8474/proxies/db/toxics/aftershock-old-slow","handle":{"run_id":"old","step":"slow","kind":"toxiproxy","fault":"toxiproxy.latency","target":"db","resources":["http://127.0.0.1:8474/proxies/db/toxics/aftershock-old-slow"],"undo":{"api":"http://127.0.0.1:8474","proxy":"db","toxic":"aftershock-old-slow","created_proxy":false,"listen":null,"upstream":null}}}
"""  # journal lines as an earlier aftershock wrote them


def test_old_journals_without_resource_records_still_read(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    path.write_text(_OLD_JOURNAL, encoding="utf-8")
    problems: list[JournalProblem] = []
    assert outstanding_resources(tmp_path, problems) == []
    assert problems == []
    (fault,) = outstanding(tmp_path)
    assert (fault.run_id, fault.state, fault.handle.undo["created_proxy"]) == (
        "old",
        "applied",
        False,
    )
    view = load_run(path)
    assert [row.record.step for row in view.faults] == ["slow"]
    assert view.problems == ()
    # And a journal that has them: the report shows the faults, not the provisioning.
    new = FaultJournal(tmp_path, "old")
    new.resource_intent(proxy_handle("old"))
    new.resource_created(proxy_handle("old"))
    view = load_run(path)
    assert [row.record.step for row in view.faults] == ["slow"]
    assert view.problems == ()
    assert write_report(view, tmp_path / "report")["html"].stat().st_size > 0
