"""Fault and action names exist once, in the catalogs; every entry has exactly one handler.

The catalogs (``aftershock.model.faults``, ``aftershock.model.actions``) name
each fault and action once, as a constant. Drivers bind a handler to each
constant of their target kind. These tests check both halves: no other module
spells a name out (an ``ast`` scan of the sources), and the drivers' bindings
cover the catalogs exactly.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import aftershock
from aftershock.drivers import standalone
from aftershock.drivers.bindings import Bindings, action_handlers, fault_handlers
from aftershock.drivers.docker import DockerDriver
from aftershock.drivers.kubernetes import KubernetesDriver
from aftershock.drivers.process import ProcessDriver
from aftershock.drivers.toxiproxy import ToxiproxyDriver
from aftershock.model import actions, faults
from aftershock.model.params import NoParams
from aftershock.model.targets import TargetKind

SRC = Path(aftershock.__file__).parent
CATALOGS = {SRC / "model" / "faults.py", SRC / "model" / "actions.py"}
NAMES = {f.name for f in faults.CATALOG} | {a.name for a in actions.CATALOG}
SCANNED = {name for name in NAMES if "." in name}
"""Every name with a dot: all of them but ``command``, which is also an ordinary word
(``ProcessTarget.command``, the ``command`` probe) and cannot be told apart by a scan."""
DRIVERS: tuple[Any, ...] = (ToxiproxyDriver, DockerDriver, ProcessDriver, KubernetesDriver)


def _literals() -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for path in sorted(SRC.rglob("*.py")):
        if path in CATALOGS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Constant) and node.value in SCANNED:
                found[(path.relative_to(SRC).as_posix(), node.value)] += 1
    return found


def test_no_fault_or_action_name_is_spelled_out_outside_the_catalogs() -> None:
    found = _literals()
    assert not found, (
        "use the catalog constant (aftershock.model.faults / .actions) instead of "
        f"the name: {sorted(found)}"
    )


def test_the_scan_sees_a_name_where_there_is_one(tmp_path: Path) -> None:
    tree = ast.parse('if fault == "docker.pause":\n    pass\n')
    assert [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)] == ["docker.pause"]
    assert "docker.pause" in SCANNED


# ---------------------------------------------------------------- one handler each


def _fault_bindings() -> list[tuple[str, TargetKind, Bindings[Any, Any]]]:
    return [(d.__name__, d.kind, d.faults) for d in DRIVERS]


def _action_bindings() -> list[tuple[str, TargetKind | None, Bindings[Any, Any]]]:
    bound: list[tuple[str, TargetKind | None, Bindings[Any, Any]]] = [
        (d.__name__, d.kind, d.actions) for d in DRIVERS
    ]
    return [*bound, ("standalone", None, standalone.ACTIONS)]


def test_every_fault_has_exactly_one_handler_in_one_driver_of_its_kind() -> None:
    owners: dict[str, list[str]] = {f.name: [] for f in faults.CATALOG}
    for driver, kind, bindings in _fault_bindings():
        assert bindings.kind is kind, driver
        for entry in bindings:
            assert entry in faults.CATALOG, f"{driver} binds {entry.name}, not a catalog entry"
            assert entry.kind is kind, f"{driver} ({kind}) handles {entry.name} ({entry.kind})"
            owners[entry.name].append(driver)
    assert {name: found for name, found in owners.items() if len(found) != 1} == {}


def test_every_action_has_exactly_one_handler_in_one_driver_of_its_kind() -> None:
    # wait.healthy is the healer's own: it waits on the healer's watched probes.
    owners: dict[str, list[str]] = {a.name: [] for a in actions.CATALOG}
    owners[actions.WAIT_HEALTHY.name].append("healer")
    for driver, kind, bindings in _action_bindings():
        assert bindings.kind is kind, driver
        for entry in bindings:
            assert entry in actions.CATALOG, f"{driver} binds {entry.name}, not a catalog entry"
            assert entry.kind is kind, f"{driver} ({kind}) handles {entry.name} ({entry.kind})"
            owners[entry.name].append(driver)
    assert {name: found for name, found in owners.items() if len(found) != 1} == {}


def test_standalone_handlers_are_offered_by_name() -> None:
    assert set(standalone.HANDLERS) == {actions.HTTP_CALL.name, actions.COMMAND.name}
    assert standalone.HANDLERS[actions.COMMAND.name] is standalone.run_command


def test_bindings_refuse_an_entry_of_another_kind_or_one_bound_twice() -> None:
    class Handler:
        def __init__(self, fault: faults.FaultType[Any]) -> None:
            self.fault = fault

    with pytest.raises(ValueError, match=r"docker\.kill applies to"):
        fault_handlers(TargetKind.PROCESS, Handler(faults.DOCKER_KILL))
    with pytest.raises(ValueError, match="bound twice"):
        fault_handlers(TargetKind.DOCKER, Handler(faults.DOCKER_KILL), Handler(faults.DOCKER_KILL))

    class Action:
        def __init__(self, action: actions.ActionType[Any]) -> None:
            self.action = action

    with pytest.raises(ValueError, match=r"http\.call applies to"):
        action_handlers(TargetKind.DOCKER, Action(actions.HTTP_CALL))


def test_a_handler_is_found_by_entry_and_by_name() -> None:
    bindings = DockerDriver.faults
    handler = bindings.get(faults.DOCKER_PAUSE)
    assert handler is not None
    assert bindings.named(faults.DOCKER_PAUSE.name) is handler
    assert bindings.named("docker.melt") is None
    assert bindings.get(faults.PROCESS_KILL) is None


def test_parse_gives_typed_parameters_and_refuses_another_model() -> None:
    params = faults.DOCKER_KILL.params.model_validate({"signal": "term"})
    assert faults.DOCKER_KILL.parse(params).signal == "SIGTERM"
    with pytest.raises(
        faults.ParamsMismatch, match=r"docker\.kill takes SignalParams, not NoParams"
    ):
        faults.DOCKER_KILL.parse(NoParams())
    with pytest.raises(faults.ParamsMismatch, match=r"k8s\.scale takes ScaleParams"):
        actions.K8S_SCALE.parse(NoParams())


def test_each_constant_is_its_catalog_entry() -> None:
    by_name = {f.name: f for f in faults.CATALOG}
    for attr in dir(faults):
        value = getattr(faults, attr)
        if isinstance(value, faults.FaultType):
            assert by_name[value.name] is value, attr
    assert len(faults.CATALOG) == len(by_name) == 20
    assert len({a.name for a in actions.CATALOG}) == len(actions.CATALOG) == 16
