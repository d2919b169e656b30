"""Parts shared by both kinds: metadata, SLOs, schedules."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Final, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, StrictBool, model_validator

from aftershock.model.base import Name, Spec
from aftershock.model.units import Duration, Percentage

__all__ = ["API_VERSION", "Blackout", "Metadata", "Schedule", "SloSpec"]

API_VERSION: Final = "aftershock.dev/v1alpha1"
"""The apiVersion of every aftershock document and custom resource."""

_LABEL_KEY = re.compile(
    r"^([a-z0-9.\-]{1,253}/)?[A-Za-z0-9]([A-Za-z0-9_.\-]{0,61}[A-Za-z0-9])?$", re.ASCII
)


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if not _LABEL_KEY.fullmatch(key):
            msg = f"invalid label key {key!r}"
            raise ValueError(msg)
    return value


class Metadata(Spec):
    """Name and labels, as on a Kubernetes object."""

    name: Name
    namespace: str | None = None
    labels: Annotated[dict[str, str], AfterValidator(_check_labels)] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class SloSpec(Spec):
    """A service level objective measured by a probe.

    A sample is *good* when the probe succeeded and, if ``latency`` is set, was
    faster than it. ``objective`` is the share of good samples promised over
    ``window``; the error budget is ``1 - objective``.
    """

    probe: Name
    objective: Percentage
    latency: Duration | None = None
    window: Duration = timedelta(days=28)

    @model_validator(mode="after")
    def _sane(self) -> Self:
        if not 0.0 < self.objective < 1.0:
            msg = "objective must be above 0% and below 100% (100% leaves no error budget)"
            raise ValueError(msg)
        if self.window < timedelta(minutes=1):
            msg = "window must be at least 1m"
            raise ValueError(msg)
        return self


class Weekday(StrEnum):
    """Days of the week, as cron spells them."""

    MON = "MON"
    TUE = "TUE"
    WED = "WED"
    THU = "THU"
    FRI = "FRI"
    SAT = "SAT"
    SUN = "SUN"


_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", re.ASCII)


def _check_hhmm(value: str) -> str:
    if not _HHMM.fullmatch(value):
        msg = f"invalid time of day {value!r}; expected HH:MM (24h)"
        raise ValueError(msg)
    return value


HourMinute = Annotated[str, AfterValidator(_check_hhmm)]


class Blackout(Spec):
    """When chaos is not allowed: some days, optionally between two times of day."""

    days: list[Weekday] = Field(default_factory=lambda: list(Weekday), min_length=1)
    from_: HourMinute = Field(default="00:00", alias="from")
    to: HourMinute = "23:59"
    reason: str = ""


_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?LW#]+$", re.ASCII)


def _check_cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 or not all(_CRON_FIELD.fullmatch(f) for f in fields):
        msg = f"invalid cron expression {value!r}; expected 5 fields, e.g. '0 3 * * MON'"
        raise ValueError(msg)
    return value


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"unknown time zone {value!r}; expected an IANA name such as UTC or Europe/Berlin"
        raise ValueError(msg) from None
    return value


class Schedule(Spec):
    """When an experiment runs unattended."""

    cron: Annotated[str, AfterValidator(_check_cron)]
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "UTC"
    jitter: Duration = timedelta(0)
    blackout: list[Blackout] = Field(default_factory=list)
    concurrency_policy: Literal["Forbid", "Allow", "Replace"] = "Forbid"
    suspend: StrictBool = False
