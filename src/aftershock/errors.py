"""The one exception tree of aftershock.

Every error a user can see is one of these; errors from SDKs (httpx, docker,
kubernetes, sqlite3, yaml) are translated at the adapter edge and chained as the
``__cause__``, so the original is never lost and never shown as a traceback.

    AftershockError
     ├── ConfigError                       settings or allowlist files
     ├── ExperimentInvalid                 documents that fail to load or validate
     │                                     (carries every Problem with file:line:col)
     ├── TargetRefused                     outside the blast-radius allowlist
     ├── DriverError
     │    ├── DriverUnavailable            backend unreachable: retry later
     │    │    └── UnexpectedAnswer        it answered, but not as its API promises
     │    ├── TargetNotFound               nothing matched the selector
     │    ├── FaultInjectionFailed         the backend refused the fault
     │    └── RevertFailed                 a fault could not be undone
     ├── ProbeError                        a probe could not run at all
     ├── JournalError                      the fault journal could not be written/read
     ├── BudgetExhausted                   admission refused the run (lever, budget gate)
     │    └── TargetLeased                 a target is held by another live run
     └── RemediationError
          ├── TemporaryRemediationError    retry later (optional delay)
          └── PermanentRemediationError    give up and escalate
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "KILL_SWITCH_ENGAGED",
    "AftershockError",
    "BudgetExhausted",
    "ConfigError",
    "DriverError",
    "DriverUnavailable",
    "ExperimentInvalid",
    "FaultInjectionFailed",
    "JournalError",
    "PermanentRemediationError",
    "ProbeError",
    "Problem",
    "RemediationError",
    "RevertFailed",
    "TargetLeased",
    "TargetNotFound",
    "TargetRefused",
    "TemporaryRemediationError",
    "UnexpectedAnswer",
]


class AftershockError(Exception):
    """Base of every error aftershock raises on purpose."""


class ConfigError(AftershockError):
    """Controller settings (allowlist, environment) are unusable."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One located problem in an input document.

    ``line`` and ``column`` are 1-based; 0 means "unknown" (for example a file
    that could not be decoded at all).
    """

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ExperimentInvalid(AftershockError):
    """One or more documents are invalid; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid document")


class TargetRefused(AftershockError):
    """A target lies outside the blast-radius allowlist."""


class DriverError(AftershockError):
    """Base for errors raised by fault drivers; ``target`` names the target."""

    def __init__(self, message: str, *, target: str = "") -> None:
        self.target = target
        super().__init__(f"{target}: {message}" if target else message)


class DriverUnavailable(DriverError):
    """The backend (daemon, API server, proxy) cannot be reached; retry later."""


class UnexpectedAnswer(DriverUnavailable):
    """The backend answered, but not in the shape its API promises.

    Not JSON, JSON of the wrong type, an object missing fields, or a body too
    long to be an answer: whatever listens there cannot be used as that
    backend. The message says what it answered (status, content type and a
    short escaped excerpt). Unlike a plain ``DriverUnavailable`` it is not
    worth retrying at once: the same server gives the same answer, and a write
    may have taken effect before its answer went wrong.
    """


class TargetNotFound(DriverError):
    """Nothing matched the target's selector."""


class FaultInjectionFailed(DriverError):
    """The backend refused to apply the fault."""


class RevertFailed(DriverError):
    """A fault could not be undone; the journal keeps it for ``aftershock recover``."""


class ProbeError(AftershockError):
    """A probe could not be run at all (as opposed to a failed sample)."""


class JournalError(AftershockError):
    """The fault journal could not be written or read."""


class BudgetExhausted(AftershockError):
    """Admission refused to start a run: the kill switch or the error-budget gate (exit 3)."""


class TargetLeased(BudgetExhausted):
    """A target of the run is leased by another live run (exit 3, like every refusal).

    ``holder`` is that run's id, ``target`` the contested target's name in this
    run's experiment.
    """

    def __init__(self, message: str, *, holder: str, target: str) -> None:
        super().__init__(message)
        self.holder = holder
        self.target = target


KILL_SWITCH_ENGAGED: Final = "the kill switch is engaged (aftershock lever release to allow runs)"
"""Why nothing starts while the lever is engaged (runs, scheduled fires, the operator)."""


class RemediationError(AftershockError):
    """Base for errors raised by remediation steps."""


class TemporaryRemediationError(RemediationError):
    """The step failed but may succeed later; ``delay`` seconds suggested."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        self.delay = delay
        super().__init__(message)


class PermanentRemediationError(RemediationError):
    """The step can never succeed as configured; give up and escalate."""
