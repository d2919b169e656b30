"""``validate`` tunes the garbage collector while it reads, and puts it back."""

import gc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aftershock.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[3] / "experiments" / "toxiproxy-latency.yaml"


def test_collector_settings_are_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AFTERSHOCK_CONFIG", raising=False)
    threshold = gc.get_threshold()
    frozen = gc.get_freeze_count()
    result = CliRunner().invoke(app, ["validate", "--no-allowlist", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == frozen
    assert gc.isenabled()


def test_restored_after_invalid_input_too(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Experiment\nspec: [\n", encoding="utf-8")
    threshold = gc.get_threshold()
    result = CliRunner().invoke(app, ["validate", "--no-allowlist", str(bad)])
    assert result.exit_code == 2, result.output
    assert gc.get_threshold() == threshold


def test_a_heap_frozen_by_someone_else_stays_frozen() -> None:
    gc.freeze()
    try:
        result = CliRunner().invoke(app, ["validate", "--no-allowlist", str(EXAMPLE)])
        assert result.exit_code == 0, result.output
        assert gc.get_freeze_count() > 0  # the command did not unfreeze it
    finally:
        gc.unfreeze()
