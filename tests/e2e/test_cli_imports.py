"""Commands load what they use: ``validate``, ``schema`` and ``--help`` import no SDK.

Each case runs ``python -m aftershock ...`` in a subprocess (through ``runpy``, so
the process is the real command) and writes ``sorted(sys.modules)`` to a file at
exit; the test then checks that no driver SDK and no runtime package is among them,
that the commands which never log do not set up logging (structlog, asyncio), and
that ``--help`` and ``--version`` do not even load the document model.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docker import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "experiments" / "toxiproxy-latency.yaml"

#: Packages the light commands must not import (a module or anything under it).
FORBIDDEN = (
    "docker",
    "kubernetes",
    "kopf",
    "kmock",
    "apscheduler",
    "prometheus_client",
    "httpx",
    "aftershock.drivers",
    "aftershock.runtime",
    "aftershock.operator",
    "aftershock.scheduling",
    "aftershock.engine",
    "aftershock.healer",
    # validate and schema print their results and never log; nothing of theirs is async.
    "structlog",
    "asyncio",
    "aftershock.observability",
    "aftershock.reporting",
    "aftershock.journal",
)

#: What listing the commands (``--help``, ``--version``) must not load either
#: (pydantic itself may load: typer converts a command's options through it).
MODEL = ("yaml", "aftershock.model", "aftershock.loading")

#: One short fault on the embedded proxy: a real run that needs no infrastructure.
EMBEDDED = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: embedded-run}}
spec:
  targets:
    front:
      toxiproxy: {{api: embedded, proxy: front, listen: "127.0.0.1:{listen}", upstream: "127.0.0.1:{upstream}"}}
  method:
    - {{name: slow, fault: toxiproxy.latency, target: front, with: {{latency: 10ms}}, for: 200ms}}
"""

#: Runs the command as ``python -m aftershock`` does; lists ``sys.modules`` at exit.
SCRIPT = """
import atexit, runpy, sys
out = sys.argv[1]
sys.argv = ["aftershock", *sys.argv[2:]]

def dump():
    with open(out, "w", encoding="utf-8") as f:
        f.write("\\n".join(sorted(sys.modules)))

atexit.register(dump)
runpy.run_module("aftershock", run_name="__main__", alter_sys=True)
"""


def imported_by(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``aftershock *args``; its result and the modules it had imported at exit."""
    listing = tmp_path / "modules.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFTERSHOCK_ALLOW")}
    env["AFTERSHOCK_HOME"] = str(tmp_path / "home")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(listing), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    return result, listing.read_text(encoding="utf-8").splitlines()


def forbidden(modules: list[str], packages: tuple[str, ...] = FORBIDDEN) -> list[str]:
    """The modules in ``modules`` that are, or live under, one of ``packages``."""
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in packages)]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("validate", str(EXAMPLE)), id="validate"),
        pytest.param(
            ("validate", "-o", "json", "--no-allowlist", str(EXAMPLE)), id="validate-json"
        ),
        pytest.param(("validate", str(ROOT / "experiments")), id="validate-dir"),
        pytest.param(("validate", "--help"), id="validate-help"),
        pytest.param(("schema",), id="schema"),
        pytest.param(("schema", "--crd"), id="schema-crd"),
        pytest.param(("schema", "--help"), id="schema-help"),
        pytest.param(("--help",), id="help"),
        pytest.param(("--version",), id="version"),
    ],
)
def test_light_commands_import_no_sdk(tmp_path: Path, args: tuple[str, ...]) -> None:
    result, modules = imported_by(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert "aftershock.cli.main" in modules  # the listing is of the real command
    assert forbidden(modules) == []


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("--help",), id="help"),
        pytest.param(("--version",), id="version"),
        pytest.param(("validate", "--help"), id="validate-help"),
        pytest.param(("run", "--help"), id="run-help"),
        pytest.param(("heal", "--help"), id="heal-help"),
        pytest.param(("import", "chaostoolkit", "--help"), id="import-help"),
    ],
)
def test_help_loads_no_model(tmp_path: Path, args: tuple[str, ...]) -> None:
    """Listing commands and options builds no document model and loads no YAML parser."""
    result, modules = imported_by(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert "aftershock.cli.main" in modules
    assert forbidden(modules, FORBIDDEN + MODEL) == []


#: The one validator of both document kinds, the model's costliest build.
DOCUMENT_MODEL = ("aftershock.model.documents",)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("lever", "status"), id="lever-status"),
        pytest.param(("history",), id="history"),
    ],
)
def test_commands_that_read_no_document_build_no_document_model(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """Logging redacts secrets (``aftershock.model.secrets``) without the document validator.

    (The journal and the ledger still load the model classes their records use.)
    """
    result, modules = imported_by(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert "aftershock.model.secrets" in modules  # the listing is not vacuous
    assert forbidden(modules, DOCUMENT_MODEL) == []


def test_the_check_sees_the_model_and_logging(tmp_path: Path) -> None:
    """The listing is not vacuous: validate loads the model; a logging command, structlog."""
    _, modules = imported_by(tmp_path, "validate", str(EXAMPLE))
    assert "aftershock.model" in modules
    assert "yaml" in modules
    result, modules = imported_by(tmp_path, "lever", "status")
    assert result.returncode == 0, result.stderr
    assert "structlog" in modules


@pytest.mark.parametrize("option", ["--out", "--docs"])
def test_schema_writing_files_imports_no_sdk(tmp_path: Path, option: str) -> None:
    extra = ("--crd",) if option == "--out" else ()
    result, modules = imported_by(tmp_path, "schema", *extra, option, str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert any((tmp_path / "out").iterdir())
    assert forbidden(modules) == []


def test_invalid_document_imports_no_sdk(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: aftershock.dev/v1\nkind: Experiment\nspec: {}\n", encoding="utf-8")
    result, modules = imported_by(tmp_path, "validate", str(bad))
    assert result.returncode == 2, result.stderr
    assert forbidden(modules) == []


def test_every_command_keeps_its_options_in_help(tmp_path: Path) -> None:
    """The commands stay registered with their signatures: ``run --help`` lists its options."""
    result, modules = imported_by(tmp_path, "run", "--help")
    assert result.returncode == 0, result.stderr
    assert "--dry-run" in result.stdout
    assert forbidden(modules) == []


def test_history_help_names_the_page_reporting_writes() -> None:
    """``history`` names the trends page without importing the reports; the names agree."""
    from aftershock.cli import history
    from aftershock.reporting import TRENDS_FILE

    assert history.TRENDS_FILE == TRENDS_FILE


def test_the_check_sees_a_heavy_command(tmp_path: Path) -> None:
    """The listing is not vacuous: a command that runs experiments does load the runtime."""
    result, modules = imported_by(tmp_path, "run", "--dry-run", str(EXAMPLE))
    assert "aftershock.runtime" in modules, result.stderr


def test_a_run_loads_only_the_drivers_and_healer_it_uses(tmp_path: Path) -> None:
    """A run on the embedded proxy with no HealingPolicy imports no Docker or Kubernetes SDK,
    no healer and no metrics; the drivers it uses are loaded."""
    experiment = tmp_path / "embedded.yaml"
    experiment.write_text(EMBEDDED.format(listen=free_port(), upstream=free_port()))
    result, modules = imported_by(tmp_path, "run", str(experiment))
    assert result.returncode == 0, result.stderr
    assert "aftershock.drivers.toxiproxy" in modules
    unused = (
        "docker",
        "kubernetes",
        "aftershock.drivers.docker",
        "aftershock.drivers.kubernetes",
        "aftershock.runtime.healerhost",
        "aftershock.healer",
        "prometheus_client",
    )
    assert forbidden(modules, unused) == []


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("validate", str(EXAMPLE)), id="validate"),
        pytest.param(("validate", "-o", "json", str(EXAMPLE)), id="validate-json"),
    ],
)
def test_validate_prints_without_rich(tmp_path: Path, args: tuple[str, ...]) -> None:
    """validate's output is lines (click's echo); rich is a tenth of its start-up."""
    result, modules = imported_by(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stderr or '"valid": true' in result.stdout
    assert forbidden(modules, ("rich",)) == []
