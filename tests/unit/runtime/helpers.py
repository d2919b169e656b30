"""Shared builders for the runtime tests: the operator's state over a recording Kubernetes API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aftershock.operator.handlers import OperatorState
from aftershock.operator.kube import KubeNotFound
from aftershock.operator.metrics import OperatorMetrics
from aftershock.settings import Settings


class RecordingKube:
    """What ``OperatorState`` calls on the Kubernetes API, kept in lists."""

    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.events: list[tuple[str, str, str]] = []

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        self.statuses.append(dict(status))

    def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        """No object is stored here: the healing state starts empty."""
        raise KubeNotFound(f"{plural}/{name}")

    def update_status(self, plural: str, namespace: str, name: str, change: Any) -> None:
        """Nothing to update (see ``get_object``)."""

    async def post_event(
        self, regarding: Mapping[str, Any], *, type_: str, reason: str, note: str, **_: Any
    ) -> None:
        self.events.append((type_, reason, note))


def operator(home_settings: Settings) -> tuple[OperatorState, RecordingKube]:
    """An ``OperatorState`` in namespace ``chaos`` that leads, and the API calls it makes."""
    kube = RecordingKube()
    state = OperatorState(
        kube=kube,  # a stand-in for KubeAccess: the two calls the handlers make
        settings=home_settings,
        namespace="chaos",
        identity="test",
        metrics=OperatorMetrics(),
        is_leader=lambda: True,
    )
    return state, kube
