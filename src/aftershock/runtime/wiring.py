"""Shared wiring: drivers for a set of targets, targets merged across documents."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aftershock.errors import ConfigError
from aftershock.model.targets import ProcessTarget, TargetKind, TargetSpec
from aftershock.settings import Settings

__all__ = ["build_drivers", "merged_targets"]


def build_drivers(
    settings: Settings, targets: Mapping[str, TargetSpec], *, log_dir: Path | None = None
) -> dict[TargetKind, Any]:
    """One driver per target kind in use (all of them when ``targets`` is empty).

    Each driver is imported here, when its kind is in use: the Docker and Kubernetes
    SDKs take a large part of a second to import.
    """
    kinds = {t.kind for t in targets.values()} or set(TargetKind)
    drivers: dict[TargetKind, Any] = {}
    if TargetKind.TOXIPROXY in kinds:
        from aftershock.drivers.toxiproxy import ToxiproxyDriver

        drivers[TargetKind.TOXIPROXY] = ToxiproxyDriver(settings.allow)
    if TargetKind.DOCKER in kinds:
        from aftershock.drivers.docker import DockerDriver

        drivers[TargetKind.DOCKER] = DockerDriver(settings.allow)
    if TargetKind.KUBERNETES in kinds:
        from aftershock.drivers.kubernetes import KubernetesDriver

        drivers[TargetKind.KUBERNETES] = KubernetesDriver(settings.allow)
    if TargetKind.PROCESS in kinds:
        from aftershock.drivers.process import ProcessDriver

        processes = {
            n: t.process for n, t in targets.items() if isinstance(t.process, ProcessTarget)
        }
        drivers[TargetKind.PROCESS] = ProcessDriver(processes, log_dir=log_dir)
    return drivers


def merged_targets(*groups: Mapping[str, TargetSpec]) -> dict[str, TargetSpec]:
    """Targets of several documents by name; the same name must mean the same target."""
    merged: dict[str, TargetSpec] = {}
    for group in groups:
        for name, target in group.items():
            if name in merged and merged[name] != target:
                msg = f"target {name!r} is declared differently in two documents"
                raise ConfigError(msg)
            merged[name] = target
    return merged
