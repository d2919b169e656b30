"""Playbook steps: one healing action each, discriminated by ``action:``.

Driver actions (``docker.*``, ``process.*``, ``toxiproxy.*``, ``k8s.*``) act on a
named target; ``http.call``, ``command`` and ``wait.healthy`` stand alone.
``errors`` says what a failure of the step means, in the vocabulary of kopf:
``temporary`` (retry the playbook later with backoff), ``permanent`` (give up
and escalate), ``ignore`` (carry on with the next step).
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Final, Literal, get_args

from pydantic import Field, StrictInt

from aftershock.model import params as p
from aftershock.model.base import Name, Spec
from aftershock.model.probes import StatusSet
from aftershock.model.secrets import HttpUrlText, Text
from aftershock.model.targets import TargetKind
from aftershock.model.units import Duration

__all__ = ["ACTIONS", "ActionStep", "ActionStepBase", "ErrorsMode"]


class ErrorsMode(StrEnum):
    """What a failed step means."""

    TEMPORARY = "temporary"
    PERMANENT = "permanent"
    IGNORE = "ignore"


class ActionStepBase(Spec):
    """What every playbook step has."""

    target: Name | None = Field(default=None, description="Required for driver actions.")
    timeout: Duration = Field(default=timedelta(seconds=60), description="Per-step time limit.")
    errors: ErrorsMode = ErrorsMode.TEMPORARY

    @property
    def params(self) -> Spec:
        """The ``with:`` parameters of this step."""
        value: Spec = self.__dict__["with_"]
        return value


def _with(model: type[Spec], *, required: bool = False) -> object:
    if required:
        return Field(alias="with")
    return Field(default_factory=model, alias="with")


class RemoveToxicParams(Spec):
    """Which toxic to remove; all toxics of the proxy when omitted."""

    toxic: str | None = None


class HttpCallParams(Spec):
    """A webhook call."""

    url: HttpUrlText
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, Text] = Field(default_factory=dict)
    body: Text | None = None
    status: StatusSet | None = Field(default=None, description="Accepted codes; default 2xx.")


class CommandParams(Spec):
    """A command run without a shell."""

    command: list[str] = Field(min_length=1)
    cwd: str | None = None
    env: dict[str, Text] = Field(default_factory=dict)
    exit_code: StrictInt = 0


class WaitHealthyParams(Spec):
    """Wait until a watched probe is healthy again; fails the step otherwise."""

    probe: Name
    within: Duration = timedelta(seconds=30)


class DockerStart(ActionStepBase):
    """Start stopped containers."""

    action: Literal["docker.start"]
    with_: p.NoParams = _with(p.NoParams)  # type: ignore[assignment]


class DockerRestartAction(ActionStepBase):
    """Restart containers."""

    action: Literal["docker.restart"]
    with_: p.GraceParams = _with(p.GraceParams)  # type: ignore[assignment]


class DockerUnpause(ActionStepBase):
    """Unpause paused containers."""

    action: Literal["docker.unpause"]
    with_: p.NoParams = _with(p.NoParams)  # type: ignore[assignment]


class ProcessStart(ActionStepBase):
    """Start a supervised process that is not running."""

    action: Literal["process.start"]
    with_: p.NoParams = _with(p.NoParams)  # type: ignore[assignment]


class ProcessRestartAction(ActionStepBase):
    """Restart a supervised process."""

    action: Literal["process.restart"]
    with_: p.GraceParams = _with(p.GraceParams)  # type: ignore[assignment]


class ProcessResume(ActionStepBase):
    """Resume a stopped process (SIGCONT)."""

    action: Literal["process.resume"]
    with_: p.NoParams = _with(p.NoParams)  # type: ignore[assignment]


class ToxiproxyReset(ActionStepBase):
    """Remove every toxic and enable every proxy on the server."""

    action: Literal["toxiproxy.reset"]
    with_: p.NoParams = _with(p.NoParams)  # type: ignore[assignment]


class ToxiproxyEnable(ActionStepBase):
    """Enable the target proxy."""

    action: Literal["toxiproxy.enable"]
    with_: p.NoParams = _with(p.NoParams)  # type: ignore[assignment]


class ToxiproxyRemoveToxic(ActionStepBase):
    """Remove toxics from the target proxy."""

    action: Literal["toxiproxy.removeToxic"]
    with_: RemoveToxicParams = _with(RemoveToxicParams)  # type: ignore[assignment]


class K8sRolloutRestartAction(ActionStepBase):
    """Rollout-restart a workload."""

    action: Literal["k8s.rolloutRestart"]
    with_: p.NoParams = _with(p.NoParams)  # type: ignore[assignment]


class K8sDeletePodAction(ActionStepBase):
    """Delete the selected pods."""

    action: Literal["k8s.deletePod"]
    with_: p.DeletePodParams = _with(p.DeletePodParams)  # type: ignore[assignment]


class K8sScaleAction(ActionStepBase):
    """Scale a workload."""

    action: Literal["k8s.scale"]
    with_: p.ScaleParams = _with(p.ScaleParams, required=True)  # type: ignore[assignment]


class K8sUncordon(ActionStepBase):
    """Make nodes schedulable again."""

    action: Literal["k8s.uncordon"]
    with_: p.NoParams = _with(p.NoParams)  # type: ignore[assignment]


class HttpCall(ActionStepBase):
    """Call a webhook."""

    action: Literal["http.call"]
    with_: HttpCallParams = _with(HttpCallParams, required=True)  # type: ignore[assignment]


class Command(ActionStepBase):
    """Run a command (argv, no shell)."""

    action: Literal["command"]
    with_: CommandParams = _with(CommandParams, required=True)  # type: ignore[assignment]


class WaitHealthy(ActionStepBase):
    """Verify the remediation worked: wait until the probe is healthy."""

    action: Literal["wait.healthy"]
    with_: WaitHealthyParams = _with(WaitHealthyParams, required=True)  # type: ignore[assignment]


_STEPS: Final = (
    DockerStart,
    DockerRestartAction,
    DockerUnpause,
    ProcessStart,
    ProcessRestartAction,
    ProcessResume,
    ToxiproxyReset,
    ToxiproxyEnable,
    ToxiproxyRemoveToxic,
    K8sRolloutRestartAction,
    K8sDeletePodAction,
    K8sScaleAction,
    K8sUncordon,
    HttpCall,
    Command,
    WaitHealthy,
)

ActionStep = Annotated[
    DockerStart
    | DockerRestartAction
    | DockerUnpause
    | ProcessStart
    | ProcessRestartAction
    | ProcessResume
    | ToxiproxyReset
    | ToxiproxyEnable
    | ToxiproxyRemoveToxic
    | K8sRolloutRestartAction
    | K8sDeletePodAction
    | K8sScaleAction
    | K8sUncordon
    | HttpCall
    | Command
    | WaitHealthy,
    Field(discriminator="action"),
]
"""One playbook step; the ``action`` name selects its parameter model."""


def _kind_of(name: str) -> TargetKind | None:
    prefix = name.split(".", 1)[0]
    return next((k for k in TargetKind if k.prefix == prefix), None)


def _entry(cls: type[ActionStepBase]) -> tuple[str, tuple[TargetKind | None, type[Spec]]]:
    name = str(get_args(cls.model_fields["action"].annotation)[0])
    params = cls.model_fields["with_"].annotation
    assert isinstance(params, type)
    assert issubclass(params, Spec)
    return name, (_kind_of(name), params)


ACTIONS: Final[dict[str, tuple[TargetKind | None, type[Spec]]]] = dict(_entry(c) for c in _STEPS)
"""Action name → (target kind it needs, or None for standalone actions; parameter model)."""
