"""The ``ScheduleStorage`` contract, against the operator's store in Experiment status.

The same tests as ``tests/unit/scheduling/test_store.py`` (imported, so one
contract is checked everywhere), with the storage over the real API server and
the ServiceAccount's token: each "storage" is a client of its own, as a second
leader's would be, and every record is the ``status.schedule`` of the
Experiment ``job``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiException

from aftershock.operator.kube import KubeAccess
from aftershock.operator.schedulestore import KubeScheduleStore
from tests.e2e.operator.helpers import GROUP, NAMESPACE, VERSION
from tests.e2e.operator.test_operator import experiment
from tests.unit.scheduling.test_store import (
    Factory,
    test_finish_sets_the_status_of_one_fire,
    test_racing_writers_move_the_anchor_once,
    test_record_fails_on_another_schedule_or_a_missing_record,
    test_record_moves_the_anchor_only_from_the_expected_one,
    test_record_with_no_expected_anchor_only_creates,
    test_save_job_keeps_a_record_of_the_same_schedule,
)

__all__ = [
    "test_finish_sets_the_status_of_one_fire",
    "test_racing_writers_move_the_anchor_once",
    "test_record_fails_on_another_schedule_or_a_missing_record",
    "test_record_moves_the_anchor_only_from_the_expected_one",
    "test_record_with_no_expected_anchor_only_creates",
    "test_save_job_keeps_a_record_of_the_same_schedule",
]


@pytest.fixture
def storages(clean_namespace: None, admin: Any, sa_kubeconfig: Path) -> Iterator[Factory]:
    """A new API client per call, over one Experiment ``job`` in the operator's namespace."""
    custom = kubernetes.client.CustomObjectsApi(admin)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "experiments", experiment("job")
    )
    clients: list[KubeAccess] = []

    def open_storage() -> KubeScheduleStore:
        kube = KubeAccess(sa_kubeconfig)
        clients.append(kube)
        return KubeScheduleStore(kube, NAMESPACE)

    try:
        yield open_storage
    finally:
        for kube in clients:
            kube.close()
        with contextlib.suppress(ApiException):
            custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "experiments", "job")
