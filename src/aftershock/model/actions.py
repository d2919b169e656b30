"""Playbook steps: one healing action each, discriminated by ``action:``.

Driver actions (``docker.*``, ``process.*``, ``toxiproxy.*``, ``k8s.*``) act on a
named target; ``http.call``, ``command`` and ``wait.healthy`` stand alone.
Each action is named once, here: an ``ActionType`` constant (``DOCKER_START``,
``WAIT_HEALTHY``, ...) in ``CATALOG``, from which the step models and the schema
are built; drivers bind their handlers to these constants.
``errors`` says what a failure of the step means, in the vocabulary of kopf:
``temporary`` (retry the playbook later with backoff), ``permanent`` (give up
and escalate), ``ignore`` (carry on with the next step).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Final, Generic, Literal, TypeVar, Union

from pydantic import Field, StrictInt

from aftershock.model import params as p
from aftershock.model.base import Name, Spec
from aftershock.model.catalog import checked_params, class_name, step_model
from aftershock.model.probes import StatusSet
from aftershock.model.secrets import HttpUrlText, Text
from aftershock.model.targets import TargetKind
from aftershock.model.units import Duration

__all__ = [
    "ACTIONS",
    "ACTION_TYPES",
    "CATALOG",
    "COMMAND",
    "DOCKER_RESTART",
    "DOCKER_START",
    "DOCKER_UNPAUSE",
    "HTTP_CALL",
    "K8S_DELETE_POD",
    "K8S_ROLLOUT_RESTART",
    "K8S_SCALE",
    "K8S_UNCORDON",
    "PROCESS_RESTART",
    "PROCESS_RESUME",
    "PROCESS_START",
    "TOXIPROXY_ENABLE",
    "TOXIPROXY_REMOVE_TOXIC",
    "TOXIPROXY_RESET",
    "WAIT_HEALTHY",
    "ActionStep",
    "ActionStepBase",
    "ActionType",
    "CommandParams",
    "ErrorsMode",
    "HttpCallParams",
    "RemoveToxicParams",
    "WaitHealthyParams",
]


P = TypeVar("P", bound=Spec)


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

    action: str
    with_: Spec = Field(alias="with")

    @property
    def params(self) -> Spec:
        """The ``with:`` parameters of this step (the model its action's entry names)."""
        return self.with_

    @property
    def action_type(self) -> ActionType[Any]:
        """This step's catalog entry."""
        return ACTION_TYPES[self.action]


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


@dataclass(frozen=True, slots=True)
class ActionType(Generic[P]):
    """One healing action: its name, the target kind it needs (None: standalone), parameters."""

    name: str
    kind: TargetKind | None
    params: type[P]
    summary: str
    params_required: bool = False
    model_name: str = ""
    """The step model's class name (and JSON Schema title); default from ``name``."""

    def parse(self, params: Spec) -> P:
        """``params`` as this action's model; ``ParamsMismatch`` if they are another model."""
        return checked_params(self.name, self.params, params)


_D, _K, _P, _T = TargetKind.DOCKER, TargetKind.KUBERNETES, TargetKind.PROCESS, TargetKind.TOXIPROXY

DOCKER_START: Final = ActionType("docker.start", _D, p.NoParams, "Start stopped containers.")
DOCKER_RESTART: Final = ActionType(
    "docker.restart", _D, p.GraceParams, "Restart containers.", model_name="DockerRestartAction"
)
DOCKER_UNPAUSE: Final = ActionType("docker.unpause", _D, p.NoParams, "Unpause paused containers.")
PROCESS_START: Final = ActionType(
    "process.start", _P, p.NoParams, "Start a supervised process that is not running."
)
PROCESS_RESTART: Final = ActionType(
    "process.restart",
    _P,
    p.GraceParams,
    "Restart a supervised process.",
    model_name="ProcessRestartAction",
)
PROCESS_RESUME: Final = ActionType(
    "process.resume", _P, p.NoParams, "Resume a stopped process (SIGCONT)."
)
TOXIPROXY_RESET: Final = ActionType(
    "toxiproxy.reset",
    _T,
    p.NoParams,
    "Remove every toxic and enable every proxy on the server.",
)
TOXIPROXY_ENABLE: Final = ActionType("toxiproxy.enable", _T, p.NoParams, "Enable the target proxy.")
TOXIPROXY_REMOVE_TOXIC: Final = ActionType(
    "toxiproxy.removeToxic", _T, RemoveToxicParams, "Remove toxics from the target proxy."
)
K8S_ROLLOUT_RESTART: Final = ActionType(
    "k8s.rolloutRestart",
    _K,
    p.NoParams,
    "Rollout-restart a workload.",
    model_name="K8sRolloutRestartAction",
)
K8S_DELETE_POD: Final = ActionType(
    "k8s.deletePod",
    _K,
    p.DeletePodParams,
    "Delete the selected pods.",
    model_name="K8sDeletePodAction",
)
K8S_SCALE: Final = ActionType(
    "k8s.scale",
    _K,
    p.ScaleParams,
    "Scale a workload.",
    params_required=True,
    model_name="K8sScaleAction",
)
K8S_UNCORDON: Final = ActionType("k8s.uncordon", _K, p.NoParams, "Make nodes schedulable again.")
HTTP_CALL: Final = ActionType(
    "http.call", None, HttpCallParams, "Call a webhook.", params_required=True
)
COMMAND: Final = ActionType(
    "command", None, CommandParams, "Run a command (argv, no shell).", params_required=True
)
WAIT_HEALTHY: Final = ActionType(
    "wait.healthy",
    None,
    WaitHealthyParams,
    "Verify the remediation worked: wait until the probe is healthy.",
    params_required=True,
)

CATALOG: Final[tuple[ActionType[Any], ...]] = (
    DOCKER_START,
    DOCKER_RESTART,
    DOCKER_UNPAUSE,
    PROCESS_START,
    PROCESS_RESTART,
    PROCESS_RESUME,
    TOXIPROXY_RESET,
    TOXIPROXY_ENABLE,
    TOXIPROXY_REMOVE_TOXIC,
    K8S_ROLLOUT_RESTART,
    K8S_DELETE_POD,
    K8S_SCALE,
    K8S_UNCORDON,
    HTTP_CALL,
    COMMAND,
    WAIT_HEALTHY,
)
"""Every healing action, in the order the schema lists them."""

ACTION_TYPES: Final[dict[str, ActionType[Any]]] = {action.name: action for action in CATALOG}
"""Action name → catalog entry."""


def _step_model(action: ActionType[Any]) -> type[ActionStepBase]:
    return step_model(
        ActionStepBase,
        discriminator="action",
        name=action.name,
        params=action.params,
        params_required=action.params_required,
        summary=action.summary,
        model_name=action.model_name or class_name(action.name),
    )


STEP_MODELS: Final[tuple[type[ActionStepBase], ...]] = tuple(_step_model(a) for a in CATALOG)
"""One step model per catalog entry, in catalog order."""

if TYPE_CHECKING:
    ActionStep = ActionStepBase
else:
    ActionStep = Annotated[Union[STEP_MODELS], Field(discriminator="action")]  # noqa: UP007
"""One playbook step; the ``action`` name selects its parameter model."""

ACTIONS: Final[dict[str, tuple[TargetKind | None, type[Spec]]]] = {
    action.name: (action.kind, action.params) for action in CATALOG
}
"""Action name → (target kind it needs, or None for standalone actions; parameter model)."""
