"""Probes: how health is sampled (http, tcp, command, prometheus), and tolerances on samples."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, StrictInt, model_validator

from aftershock.model.base import Name, Spec
from aftershock.model.secrets import HttpUrlText, Text
from aftershock.model.targets import HostPort, Regex
from aftershock.model.units import Duration, DurationThreshold, NumberThreshold, RatioThreshold

__all__ = [
    "BodyMatch",
    "CommandProbe",
    "HttpProbe",
    "ProbeSpec",
    "PrometheusProbe",
    "TcpProbe",
    "Tolerance",
    "WatchSpec",
]

_JSONPATH_RE = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_\-]*|\[[0-9]+\]|\['[^']*'\])*$", re.ASCII)


def _check_jsonpath(value: str) -> str:
    if not _JSONPATH_RE.fullmatch(value):
        msg = f"unsupported JSONPath {value!r}; use $.a.b, $.items[0] or $['key']"
        raise ValueError(msg)
    return value


JsonPath = Annotated[str, AfterValidator(_check_jsonpath)]


class BodyMatch(Spec):
    """A check on a response body: a regex, or a JSONPath with an expected value."""

    regex: Regex | None = None
    json_path: JsonPath | None = None
    equals: str | int | float | bool | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.regex is None) == (self.json_path is None):
            msg = "body needs exactly one of regex or jsonPath"
            raise ValueError(msg)
        if self.equals is not None and self.json_path is None:
            msg = "equals needs jsonPath"
            raise ValueError(msg)
        return self


def _status_set(value: list[int]) -> list[int]:
    for code in value:
        if not 100 <= code <= 599:
            msg = f"HTTP status {code} is outside 100..599"
            raise ValueError(msg)
    return value


StatusSet = Annotated[list[StrictInt], AfterValidator(_status_set)]


class HttpProbe(Spec):
    """An HTTP request; success = expected status (and body match), within the timeout."""

    url: HttpUrlText = Field(description="http:// or https:// URL.")
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, Text] = Field(default_factory=dict)
    body: Text | None = None
    timeout: Duration = timedelta(seconds=1)
    status: StatusSet | None = Field(default=None, description="Accepted codes; default 2xx/3xx.")
    expect_body: BodyMatch | None = None


class TcpProbe(Spec):
    """A TCP connect; the sample's latency is the connect time."""

    address: HostPort
    timeout: Duration = timedelta(seconds=1)


class CommandProbe(Spec):
    """A command (argv, no shell); success = exit code (and stdout match)."""

    command: list[str] = Field(min_length=1)
    cwd: str | None = None
    env: dict[str, Text] = Field(default_factory=dict)
    exit_code: StrictInt = 0
    stdout: Regex | None = None
    timeout: Duration = timedelta(seconds=5)


class PrometheusProbe(Spec):
    """An instant PromQL query whose value is compared with a threshold."""

    url: HttpUrlText = Field(description="Prometheus base URL, e.g. http://127.0.0.1:9090.")
    query: str = Field(min_length=1)
    expect: NumberThreshold = Field(description="Comparison of the query's value, e.g. '< 0.05'.")
    headers: dict[str, Text] = Field(default_factory=dict)
    timeout: Duration = timedelta(seconds=2)


class ProbeSpec(Spec):
    """One probe: exactly one kind, sampled every ``every``."""

    http: HttpProbe | None = None
    tcp: TcpProbe | None = None
    command: CommandProbe | None = None
    prometheus: PrometheusProbe | None = None
    every: Duration = Field(default=timedelta(seconds=1), description="Sampling period.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [k for k in ("http", "tcp", "command", "prometheus") if getattr(self, k)]
        if len(given) != 1:
            msg = "a probe needs exactly one of http, tcp, command, prometheus"
            if given:
                msg += f" (got {', '.join(given)})"
            raise ValueError(msg)
        if self.every.total_seconds() < 0.01:
            msg = "every must be at least 10ms"
            raise ValueError(msg)
        return self

    @property
    def kind(self) -> str:
        """``http``, ``tcp``, ``command`` or ``prometheus``."""
        return next(k for k in ("http", "tcp", "command", "prometheus") if getattr(self, k))


class WatchSpec(ProbeSpec):
    """A probe the healer watches, with hysteresis."""

    unhealthy_after: StrictInt = Field(
        default=3, ge=1, le=1000, description="Consecutive failures."
    )
    healthy_after: StrictInt = Field(default=2, ge=1, le=1000, description="Consecutive successes.")
    target: Name | None = Field(default=None, description="The target this probe speaks for.")


class Tolerance(Spec):
    """What the samples of a probe over a window must satisfy."""

    success_ratio: RatioThreshold | None = None
    p50: DurationThreshold | None = None
    p95: DurationThreshold | None = None
    p99: DurationThreshold | None = None
    status: StatusSet | None = Field(default=None, description="Every sample's status in the set.")
    body: BodyMatch | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if all(getattr(self, f) is None for f in type(self).model_fields):
            msg = "expect needs at least one of successRatio, p50, p95, p99, status, body"
            raise ValueError(msg)
        return self
