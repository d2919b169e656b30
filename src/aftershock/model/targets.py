"""Targets: what a fault or a healing action acts on, one spec for every backend."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, StrictInt, model_validator

from aftershock.model.base import Spec
from aftershock.model.secrets import Text

__all__ = [
    "DockerTarget",
    "HostPort",
    "KubernetesTarget",
    "ProcessTarget",
    "TargetKind",
    "TargetSpec",
    "ToxiproxyTarget",
]


class TargetKind(StrEnum):
    """The backend family of a target; fault and action names start with it."""

    TOXIPROXY = "toxiproxy"
    DOCKER = "docker"
    KUBERNETES = "kubernetes"
    PROCESS = "process"

    @property
    def prefix(self) -> str:
        """The fault/action name prefix (``k8s`` for Kubernetes)."""
        return "k8s" if self is TargetKind.KUBERNETES else self.value


_HOSTPORT_RE = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):([0-9]{1,5})$", re.ASCII)


def _check_hostport(value: str) -> str:
    match = _HOSTPORT_RE.fullmatch(value)
    if match is None or int(match.group(2)) > 65535:
        msg = f"invalid address {value!r}; expected host:port, e.g. 127.0.0.1:5432"
        raise ValueError(msg)
    return value


HostPort = Annotated[str, AfterValidator(_check_hostport)]
"""``host:port``; port 0 asks for an ephemeral port where that makes sense."""


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        msg = f"invalid regular expression {value!r}: {exc}"
        raise ValueError(msg) from None
    return value


Regex = Annotated[str, AfterValidator(_check_regex)]
"""A Python regular expression, checked at load time."""

_PICK_RE = re.compile(r"^([0-9]+)%$", re.ASCII)


def _check_pick(value: int | str) -> int | str:
    if isinstance(value, int):
        if value < 1:
            msg = "pick must be at least 1"
            raise ValueError(msg)
        return value
    match = _PICK_RE.fullmatch(value)
    if match is None or not 0 < int(match.group(1)) <= 100:
        msg = f"invalid pick {value!r}; expected a count (1) or a share (1%..100%)"
        raise ValueError(msg)
    return value


Pick = Annotated[StrictInt | str, AfterValidator(_check_pick)]
_MODE_RE = re.compile(r"^(one|all|fixed:[1-9][0-9]*|percent:(100|[1-9][0-9]?))$", re.ASCII)


def _check_mode(value: str) -> str:
    if not _MODE_RE.fullmatch(value):
        msg = f"invalid mode {value!r}; expected one, all, fixed:N or percent:P (1..100)"
        raise ValueError(msg)
    return value


class ToxiproxyTarget(Spec):
    """A proxy on a Toxiproxy server (or on the embedded one with ``api: embedded``)."""

    api: str = Field(
        default="http://127.0.0.1:8474",
        description="Toxiproxy API URL, or 'embedded' to run the built-in server in-process.",
        pattern=r"^(embedded|https?://\S+)$",
    )
    proxy: str = Field(min_length=1, description="Proxy name on that server.")
    listen: HostPort | None = Field(
        default=None, description="Create the proxy listening here if it does not exist."
    )
    upstream: HostPort | None = Field(
        default=None, description="Upstream of a proxy created by aftershock."
    )

    @model_validator(mode="after")
    def _listen_needs_upstream(self) -> Self:
        if self.listen is not None and self.upstream is None:
            msg = "listen is set but upstream is missing: a created proxy needs both"
            raise ValueError(msg)
        return self


class DockerTarget(Spec):
    """Containers on a Docker daemon, selected by name, label or name pattern."""

    host: str | None = Field(
        default=None, description="Docker daemon URL; default from DOCKER_HOST."
    )
    names: list[str] = Field(default_factory=list, description="Exact container names.")
    labels: dict[str, str] = Field(default_factory=dict, description="All must match.")
    pattern: Regex | None = Field(default=None, description="Regex on the container name.")
    pick: Pick | None = Field(
        default=None, description="How many of the matches to act on: N or N%; default all."
    )

    @model_validator(mode="after")
    def _needs_selector(self) -> Self:
        if not (self.names or self.labels or self.pattern):
            msg = "a docker target needs at least one of names, labels or pattern"
            raise ValueError(msg)
        return self


class KubernetesTarget(Spec):
    """Pods, workloads or nodes in a Kubernetes cluster."""

    namespace: str = Field(default="default", min_length=1)
    selector: str | None = Field(default=None, description="Label selector, e.g. app=checkout.")
    kind: Literal["Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "Pod", "Node"] | None = (
        None
    )
    name: str | None = Field(default=None, description="Name of the object of `kind`.")
    mode: Annotated[str, AfterValidator(_check_mode)] = Field(
        default="one", description="one, all, fixed:N or percent:P of the selected pods."
    )

    @model_validator(mode="after")
    def _needs_selector(self) -> Self:
        if self.selector is None and self.name is None:
            msg = "a kubernetes target needs a selector or a kind and name"
            raise ValueError(msg)
        if self.name is not None and self.kind is None:
            msg = "name is set but kind is missing"
            raise ValueError(msg)
        return self


class ProcessTarget(Spec):
    """A local process that aftershock starts and supervises (argv, never a shell)."""

    command: list[str] = Field(min_length=1, description="argv; the first item is the program.")
    cwd: str | None = None
    env: dict[str, Text] = Field(default_factory=dict)
    ready: HostPort | None = Field(
        default=None, description="Wait until this address accepts connections after a start."
    )


class TargetSpec(Spec):
    """Exactly one of the target kinds."""

    toxiproxy: ToxiproxyTarget | None = None
    docker: DockerTarget | None = None
    kubernetes: KubernetesTarget | None = None
    process: ProcessTarget | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [k for k in TargetKind if getattr(self, k.value) is not None]
        if len(given) != 1:
            kinds = ", ".join(k.value for k in TargetKind)
            msg = f"a target needs exactly one of {kinds}"
            if given:
                msg += f" (got {', '.join(g.value for g in given)})"
            raise ValueError(msg)
        return self

    @property
    def kind(self) -> TargetKind:
        """Which backend this target lives on."""
        for kind in TargetKind:
            if getattr(self, kind.value) is not None:
                return kind
        raise AssertionError  # unreachable: the validator guarantees one

    def identities(self) -> tuple[str, ...]:
        """What this target names, as comparable keys: two targets overlap when they share one.

        A target is identified the way it is written: a proxy by API and name
        (an embedded one by its listen address), containers by daemon and each
        name, by label set or by pattern, Kubernetes objects by namespace and
        kind/name or selector, a supervised process by its ready address or
        argv. Two selectors written differently that happen to match the same
        container are not recognised as overlapping.
        """
        body = self.body
        if isinstance(body, ToxiproxyTarget):
            if body.api == "embedded" and body.listen is not None:
                return (f"toxiproxy:embedded/listen/{body.listen}",)
            return (f"toxiproxy:{body.api.rstrip('/')}/{body.proxy}",)
        if isinstance(body, DockerTarget):
            host = body.host or "default"
            keys = [f"docker:{host}/name/{name}" for name in body.names]
            if body.labels:
                labels = ",".join(f"{k}={v}" for k, v in sorted(body.labels.items()))
                keys.append(f"docker:{host}/labels/{labels}")
            if body.pattern is not None:
                keys.append(f"docker:{host}/pattern/{body.pattern}")
            return tuple(keys)
        if isinstance(body, KubernetesTarget):
            keys = []
            if body.name is not None:
                keys.append(f"k8s:{body.namespace}/{body.kind}/{body.name}")
            if body.selector is not None:
                keys.append(f"k8s:{body.namespace}/selector/{body.selector}")
            return tuple(keys)
        if body.ready is not None:
            return (f"process:ready/{body.ready}",)
        return ("process:argv/" + "\0".join(body.command),)

    @property
    def body(self) -> ToxiproxyTarget | DockerTarget | KubernetesTarget | ProcessTarget:
        """The kind-specific part."""
        value = getattr(self, self.kind.value)
        assert value is not None
        return value  # type: ignore[no-any-return]
