"""``aftershock recover`` reverts what a journal written before records were versioned left behind.

``data/old_journal.jsonl`` was written by aftershock as of commit 194f345
(records without ``v``, untyped undo records) for a run that died with faults
applied: a latency toxic and a disabled proxy (applied), a proxy the fault's
inject created with its toxic (intent only: the run died before journaling the
answer), a proxy the run provisioned for itself (resource intent and created),
a killed process, and one fault the run reverted itself. Its server and the
provisioned proxy's address are those of that run; the test serves the same
proxies from a fresh embedded server and puts its address in their place, and
changes nothing else in the file.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aftershock.drivers.toxiproxy.client import ToxiproxyClient
from aftershock.journal.reading import JOURNAL_VERSION, outstanding, read_journal
from aftershock.journal.resources import outstanding_resources
from aftershock.proxy.server import EmbeddedToxiproxy
from aftershock.reporting import load_run, render_markdown

OLD = Path(__file__).parent / "data" / "old_journal.jsonl"
RUN = "20250601T120000Z-0a1d5e"
OLD_API = "http://127.0.0.1:36431"
OLD_SIDE = "127.0.0.1:36241"
"""Where the old run's server answered, and where its provisioned proxy listened."""
UPSTREAM = "127.0.0.1:9"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def server() -> AsyncIterator[EmbeddedToxiproxy]:
    async with EmbeddedToxiproxy(host="127.0.0.1", port=0) as srv:
        yield srv


async def _aftershock(home: Path, *args: str) -> tuple[int, str]:
    env = {**os.environ, "AFTERSHOCK_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "400"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aftershock",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=45)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def _the_old_runs_world(client: ToxiproxyClient) -> str:
    """The proxies and toxics as the old run left them; returns the provisioned proxy's address."""
    await client.create_proxy("db", UPSTREAM)
    await client.create_toxic(
        "db",
        "latency",
        name=f"aftershock-{RUN}-slow",
        stream="upstream",
        attributes={"latency": 300, "jitter": 50},
    )
    await client.create_toxic("db", "latency", name="users-own", attributes={"latency": 7})
    await client.create_proxy("cache", UPSTREAM, enabled=False)
    await client.create_proxy("made", UPSTREAM)
    await client.create_toxic(
        "made", "latency", name=f"aftershock-{RUN}-made-slow", attributes={"latency": 100}
    )
    await client.create_proxy("user", UPSTREAM)
    return (await client.create_proxy("side", UPSTREAM)).listen


async def test_recover_reverts_an_old_journal_against_a_live_server(
    tmp_path: Path, server: EmbeddedToxiproxy
) -> None:
    api = server.api_url.rstrip("/")
    async with ToxiproxyClient(api) as client:
        side = await _the_old_runs_world(client)
        user_before = await client.get_proxy("user")
        old = OLD.read_bytes().replace(OLD_API.encode(), api.encode())
        old = old.replace(OLD_SIDE.encode(), side.encode())
        journal = tmp_path / "journal" / f"{RUN}.jsonl"
        journal.parent.mkdir(parents=True)
        journal.write_bytes(old)
        assert {r.version for r in read_journal(journal)} == {1}
        assert len(outstanding(tmp_path / "journal")) == 4

        code, out = await _aftershock(tmp_path, "recover")

        assert code == 0, out
        for step in ("slow", "outage", "kill-worker", "made-slow"):
            assert f"reverted {RUN} {step}/" in out, out
        assert "proxy 'side' that the run created deleted" in out, out
        assert "brief/" not in out  # reverted by the run itself
        proxies = await client.proxies()
        assert [t.name for t in proxies["db"].toxics] == ["users-own"]
        assert proxies["cache"].enabled
        assert "made" not in proxies  # it matched what the intent asked for, and only ours
        assert "side" not in proxies
        assert proxies["user"] == user_before

    # The old lines are untouched; what recover wrote after them carries the version.
    written = journal.read_bytes()
    assert written.startswith(old)
    added = [json.loads(line) for line in written[len(old) :].splitlines()]
    assert [r["event"] for r in added] == ["fault.reverted"] * 4 + ["resource.released"]
    assert {r["v"] for r in added} == {JOURNAL_VERSION}
    assert {r.version for r in read_journal(journal)} == {1, JOURNAL_VERSION}
    assert outstanding(tmp_path / "journal") == []
    assert outstanding_resources(tmp_path / "journal") == []

    # The report reads the mixed file; a second recover finds nothing to do.
    view = load_run(journal)
    assert {f.record.step for f in view.faults} >= {"slow", "outage", "made-slow", "kill-worker"}
    assert not [f.record.step for f in view.faults if f.still_applied]
    assert "old-format" in render_markdown(view)
    code, out = await _aftershock(tmp_path, "recover")
    assert (code, out.strip()) == (0, "nothing to recover")
