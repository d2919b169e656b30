"""The reference docs: generated from the model, checked in, every example valid.

``docs/reference`` must be exactly what ``aftershock schema --docs`` writes
now; a model change without regenerating fails here with the command to run.
Every YAML block of the pages is a whole document that the real loader accepts.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aftershock.cli.main import app
from aftershock.loading import load_text
from aftershock.model import actions, faults
from aftershock.model.params import LatencyParams
from aftershock.model.reference import reference_docs
from aftershock.model.targets import TargetKind

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs" / "reference"
STALE = "docs/reference is stale: run `aftershock schema --docs docs/reference`"
_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def stale_pages(pages: dict[str, str], directory: Path) -> list[str]:
    """What differs between ``pages`` and the Markdown files in ``directory``, one line each."""
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in directory.glob("*.md")}
    problems = [f"{name}: missing" for name in pages if name not in on_disk]
    problems += [f"{name}: not generated any more" for name in on_disk if name not in pages]
    for name, text in pages.items():
        if name in on_disk and on_disk[name] != text:
            diff = difflib.unified_diff(
                on_disk[name].splitlines(),
                text.splitlines(),
                "checked in",
                "generated",
                n=0,
                lineterm="",
            )
            problems.append(f"{name} differs:\n" + "\n".join(list(diff)[:12]))
    return problems


def _examples(pages: dict[str, str]) -> list[tuple[str, str]]:
    return [
        (f"{name}#{i}", match.group(1))
        for name, text in pages.items()
        for i, match in enumerate(_BLOCK.finditer(text))
    ]


PAGES = reference_docs()
EXAMPLES = _examples(PAGES)


def test_the_checked_in_docs_are_what_the_cli_generates(tmp_path: Path) -> None:
    out = tmp_path / "reference"
    result = CliRunner().invoke(app, ["schema", "--docs", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(Path(line).name for line in result.output.split()) == sorted(PAGES)
    generated = {p.name: p.read_text(encoding="utf-8") for p in out.glob("*.md")}
    assert generated == PAGES
    problems = stale_pages(generated, DOCS)
    assert not problems, STALE + "\n" + "\n".join(problems)


def test_a_changed_field_makes_the_docs_stale() -> None:
    class ChangedLatency(LatencyParams):
        """Delay each chunk by latency +/- jitter."""

        burst: int = 3

    changed = faults.FaultType(
        "toxiproxy.latency",
        TargetKind.TOXIPROXY,
        ChangedLatency,
        faults.TOXIPROXY_LATENCY.summary,
        params_required=True,
    )
    catalog = tuple(changed if f.name == changed.name else f for f in faults.CATALOG)
    problems = stale_pages(reference_docs(faults=catalog), DOCS)
    assert len(problems) == 1
    assert problems[0].startswith("faults.md differs:")
    assert "+| `burst` | integer | `3` |" in problems[0]


def test_generation_is_deterministic() -> None:
    assert reference_docs() == PAGES


@pytest.mark.parametrize(("where", "text"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_every_example_is_a_valid_document(where: str, text: str) -> None:
    documents, problems = load_text(text, where, env={})
    assert [str(p) for p in problems] == []
    assert len(documents) == 1


def test_every_fault_action_target_and_probe_has_an_example() -> None:
    blocks = {where.split("#")[0]: [] for where, _ in EXAMPLES}
    for where, text in EXAMPLES:
        blocks[where.split("#")[0]].append(text)
    for fault in faults.CATALOG:
        assert any(f"fault: {fault.name}," in t for t in blocks["faults.md"]), fault.name
    for action in actions.CATALOG:
        assert any(f"action: {action.name}" in t for t in blocks["actions.md"]), action.name
    for kind in TargetKind:
        assert any(
            f"{{{kind.value}: " in t or f"  {kind.value}:\n" in t for t in blocks["targets.md"]
        )
    for kind in ("http", "tcp", "command", "prometheus"):
        assert any(f"{{{kind}: " in t or f"  {kind}:\n" in t for t in blocks["probes.md"]), kind
    assert len(blocks["faults.md"]) == len(faults.CATALOG)
    assert len(blocks["actions.md"]) == len(actions.CATALOG)


def test_a_catalog_entry_without_an_example_is_refused() -> None:
    extra = faults.FaultType("toxiproxy.jitter", TargetKind.TOXIPROXY, LatencyParams, "New.")
    with pytest.raises(LookupError, match=r"fault 'toxiproxy\.jitter' has no example"):
        reference_docs(faults=(*faults.CATALOG, extra))


def test_fields_are_written_as_users_write_them() -> None:
    faults_page, probes_page = PAGES["faults.md"], PAGES["probes.md"]
    # aliases: with, for, camelCase
    assert "| `for` | [duration](index.md#duration) | — |" in faults_page
    assert "| `with` | the fault's parameters (below) |" in faults_page
    assert "| `exitCode` | integer | `0` |" in probes_page
    assert "| `unhealthyAfter` | integer | `3` | ≥ 1, ≤ 1000 | Consecutive failures. |" in (
        probes_page
    )
    # defaults serialized as a document writes them; limits from the schema
    assert "| `timeout` | [duration](index.md#duration) | `1s` |" in probes_page
    assert "| `toxicity` | number | `1.0` | ≥ 0, ≤ 1 |" in faults_page
    assert "| `averageSize` | integer | **required** | ≥ 1, ≤ 1000000000 |" in faults_page
    assert r"matches `^(embedded\|https?://\S+)$`" in PAGES["targets.md"]
    assert (
        "| `objective` | [percentage](index.md#percentage) | **required** |"
        in (PAGES["experiment.md"])
    )
    # text fields take a secret; plain strings do not claim to
    secret = "(may hold `${secret:NAME}`)"
    assert f"| `url` | [URL](index.md#url) {secret} | **required** |" in probes_page
    assert f"| `headers` | map: string → [text](index.md#text) {secret} |" in probes_page
    assert "| `query` | string | **required** | at least 1 character |" in probes_page


def test_schema_docs_refuses_other_outputs_and_unwritable_places(tmp_path: Path) -> None:
    runner = CliRunner()
    both = runner.invoke(app, ["schema", "--crd", "--docs", str(tmp_path / "d")])
    assert both.exit_code == 2
    assert "--docs" in both.output
    a_file = tmp_path / "file"
    a_file.write_text("")
    refused = runner.invoke(app, ["schema", "--docs", str(a_file)])
    assert refused.exit_code == 2
    assert "exists and is not a directory" in refused.output
