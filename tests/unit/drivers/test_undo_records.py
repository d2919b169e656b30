"""Typed undo records: written and read back unchanged; records written before versions read as v1.

The unversioned records below are what each driver wrote into ``Handle.undo``
before the records were typed (the journals of that time hold exactly these).
"""

from __future__ import annotations

from typing import Any

import pytest

from aftershock.drivers.docker.undo import Chosen, DockerUndo
from aftershock.drivers.docker.undo import undo_of as docker_undo
from aftershock.drivers.kubernetes.undo import (
    KubernetesUndo,
    NodeMark,
    OwnerReady,
    PodRef,
    WorkloadRef,
)
from aftershock.drivers.kubernetes.undo import undo_of as kubernetes_undo
from aftershock.drivers.process.undo import ProcessUndo
from aftershock.drivers.process.undo import undo_of as process_undo
from aftershock.drivers.toxiproxy.undo import ToxicPlan, ToxiproxyUndo
from aftershock.drivers.toxiproxy.undo import undo_of as toxiproxy_undo
from aftershock.drivers.toxiproxy.undo import with_undo as toxiproxy_with
from aftershock.drivers.undo import Fields, MalformedUndo
from aftershock.errors import FaultInjectionFailed, RevertFailed
from aftershock.model.targets import TargetKind
from aftershock.ports import Handle

RECORDS: list[Any] = [
    ToxiproxyUndo(
        api="http://127.0.0.1:8474",
        proxy="db",
        embedded=True,
        listen="127.0.0.1:0",
        upstream="127.0.0.1:5432",
        created_proxy=None,
        toxic=ToxicPlan(
            name="aftershock-r1-slow",
            type="latency",
            stream="upstream",
            toxicity=0.5,
            attributes={"latency": 300, "jitter": 50},
        ),
    ),
    ToxiproxyUndo(api="http://127.0.0.1:8474", proxy="db", was_enabled=False),
    DockerUndo(
        host="unix:///run/docker.sock",
        containers=(Chosen(id="a" * 64, name="api-1", state="running"),),
        refused=("api-9",),
        signal="SIGTERM",
        applied=("a" * 64,),
    ),
    ProcessUndo(pid=42, starttime=1234, signal="SIGSTOP", command=("sleep", "9"), env_keys=("K",)),
    KubernetesUndo(
        server="https://127.0.0.1:6443",
        namespace="shop",
        grace=0,
        pods=(PodRef(name="web-1", uid="u1", owner="Deployment/web"), PodRef(name="x", uid="u2")),
        owners=(OwnerReady(kind="Deployment", name="web", ready=3),),
        orphans=("x",),
        deleted=("web-1",),
    ),
    KubernetesUndo(
        namespace="shop",
        replicas=0,
        workloads=(WorkloadRef(kind="Deployment", name="web", previous=2),),
    ),
    KubernetesUndo(nodes=(NodeMark(name="n1", was_unschedulable=True),), cordoned=()),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_a_record_reads_back_as_written(record: Any) -> None:
    data = record.to_json()
    assert data["v"] == 1
    assert type(record).from_json(data) == record


def _handle(undo: dict[str, Any], fault: str = "toxiproxy.latency") -> Handle:
    return Handle(
        run_id="r1",
        step="slow",
        kind=TargetKind.TOXIPROXY,
        fault=fault,
        target="db",
        resources=("x",),
        undo=undo,
    )


def test_unversioned_toxiproxy_records_of_every_shape_read_as_version_1() -> None:
    fault = {
        "api": "http://127.0.0.1:8474",
        "embedded": False,
        "proxy": "db",
        "toxic": "aftershock-r1-slow",
        "created_proxy": False,
        "fault": "toxiproxy.latency",
        "listen": None,
        "upstream": None,
        "was_enabled": True,
        "attributes": {"latency": 300, "jitter": 0},
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
    }
    undo = toxiproxy_undo(_handle(fault), RevertFailed)
    assert undo.v == 1
    assert undo.toxic == ToxicPlan(
        name="aftershock-r1-slow",
        type="latency",
        stream="downstream",
        toxicity=1.0,
        attributes={"latency": 300, "jitter": 0},
    )
    down = {**fault, "toxic": None, "was_enabled": False, "created_proxy": None}
    assert toxiproxy_undo(_handle(down), RevertFailed).created_proxy is None
    # A provisioned proxy's record had four keys: created_proxy absent means False.
    provisioned = {"api": "http://a", "proxy": "p", "upstream": "127.0.0.1:9", "listen": None}
    assert toxiproxy_undo(_handle(provisioned), RevertFailed).created_proxy is False
    confirmed = {**provisioned, "created_listen": "127.0.0.1:4001", "created_upstream": "x:1"}
    assert toxiproxy_undo(_handle(confirmed), RevertFailed).created_listen == "127.0.0.1:4001"


def test_unversioned_records_of_the_other_drivers_read_as_version_1() -> None:
    docker = {
        "host": "unix:///run/docker.sock",
        "containers": [{"id": "c1", "name": "api-1", "state": "running"}],
        "names": ["api-1"],
        "refused": [],
        "own": [],
        "grace": 1,
        "applied": ["c1"],
    }
    undo = docker_undo(_handle(docker, "docker.stop"), RevertFailed)
    assert (undo.v, undo.grace, undo.signal, undo.applied) == (1, 1, None, ("c1",))
    process = {
        "pid": 42,
        "starttime": 1234,
        "signal": "SIGKILL",
        "grace": None,
        "command": ["python", "-m", "http.server"],
        "cwd": None,
        "env_keys": ["TOKEN"],
    }
    assert process_undo(_handle(process, "process.kill"), RevertFailed).pid == 42
    kube = {
        "server": "https://127.0.0.1:6443",
        "namespace": "shop",
        "own": [],
        "restartedAt": "2026-01-01T00:00:00+00:00",
        "workloads": [{"kind": "Deployment", "name": "web"}],
    }
    undo_k = kubernetes_undo(_handle(kube, "k8s.rolloutRestart"), RevertFailed)
    assert undo_k.restarted_at == "2026-01-01T00:00:00+00:00"
    assert undo_k.workloads == (WorkloadRef(kind="Deployment", name="web"),)


def test_a_record_from_a_newer_aftershock_is_refused_naming_its_version() -> None:
    data = {**RECORDS[1].to_json(), "v": 2}
    with pytest.raises(RevertFailed, match=r"db: the undo record of .* version 2; .* up to 1"):
        toxiproxy_undo(_handle(data), RevertFailed)


def test_a_malformed_field_is_named() -> None:
    data = RECORDS[4].to_json()
    data["pods"][1]["uid"] = 7
    with pytest.raises(FaultInjectionFailed, match=r"undo\.pods\[1\]\.uid is not a string"):
        kubernetes_undo(_handle(data, "k8s.deletePod"), FaultInjectionFailed)
    with pytest.raises(MalformedUndo, match="has no 'api'"):
        ToxiproxyUndo.from_json({"proxy": "db"})
    with pytest.raises(MalformedUndo, match=r"undo\.pid is not an integer"):
        ProcessUndo.from_json({"pid": True})


def test_write_then_read_through_the_pair() -> None:
    handle = toxiproxy_with(_handle({}), RECORDS[0])
    assert handle.undo["toxic"] == "aftershock-r1-slow"
    assert toxiproxy_undo(handle, RevertFailed) == RECORDS[0]


def test_fields_reads_strictly() -> None:
    f = Fields({"n": 1, "b": True, "x": 1.5, "s": "a", "l": ["a"], "none": None})
    assert (f.integer("n"), f.flag("b"), f.number("x"), f.text("s")) == (1, True, 1.5, "a")
    assert f.texts("l") == ("a",)
    assert f.optional_text("none") is None
    assert f.integer("missing", 3) == 3
    with pytest.raises(MalformedUndo, match=r"undo\.b is not an integer"):
        f.integer("b")  # a boolean is no integer in JSON
    with pytest.raises(MalformedUndo, match="not an object"):
        Fields([1, 2])
