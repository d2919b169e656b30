"""The root ``--log-level``/``--log-format`` options reach the commands that log, and only them.

Logging is set up when such a command runs (after its options are parsed), so
``run --help``, ``validate`` and ``schema`` leave structlog untouched.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from aftershock.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[3] / "experiments" / "toxiproxy-latency.yaml"


@pytest.fixture(autouse=True)
def unconfigured() -> Iterator[None]:
    """structlog is process-global: start and end every case with its defaults."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner with a private state directory and no allowlist from the caller."""
    monkeypatch.setenv("AFTERSHOCK_HOME", str(tmp_path / "home"))
    for name in ("CONTAINERS", "LABELS", "NAMESPACES", "TOXIPROXY"):
        monkeypatch.delenv(f"AFTERSHOCK_ALLOW_{name}", raising=False)
    monkeypatch.delenv("AFTERSHOCK_CONFIG", raising=False)
    return CliRunner()


def test_a_command_that_logs_gets_the_root_options(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--log-format", "json", "--log-level", "error", "lever", "status"])
    assert result.exit_code == 0, result.output
    assert structlog.is_configured()
    processors = structlog.get_config()["processors"]
    assert isinstance(processors[-1], structlog.processors.JSONRenderer)
    logger = structlog.get_config()["wrapper_class"]
    # Filtered levels share one no-op method: info and debug are off, error is on.
    assert logger.info.__name__ == logger.debug.__name__ != logger.error.__name__


def test_console_format_is_passed_through(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--log-format", "console", "lever", "status"])
    assert result.exit_code == 0, result.output
    assert isinstance(structlog.get_config()["processors"][-1], structlog.dev.ConsoleRenderer)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["run", "--help"], id="run-help"),
        pytest.param(["validate", str(EXAMPLE)], id="validate"),
        pytest.param(["schema"], id="schema"),
    ],
)
def test_listing_and_checking_leave_logging_alone(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(app, ["--log-format", "json", *args])
    assert result.exit_code == 0, result.output
    assert not structlog.is_configured()
