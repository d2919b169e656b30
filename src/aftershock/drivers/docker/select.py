"""Which containers a Docker target selects, and how: pure logic, no ``docker`` import.

The driver lists the daemon's containers as ``Candidate`` records and hands them
here, so the rules that decide the blast radius are tested without a daemon:

1. match: every selector the target gives must hold (exact ``names``, all
   ``labels``, ``pattern`` searched in the name); several selectors narrow,
   never widen;
2. never aftershock's own container;
3. the allowlist: a container outside it is *refused* (reported, never touched);
4. eligibility: only containers the operation applies to (a fault needs a
   running container);
5. ``pick``: N or N% (rounded up, at least 1) drawn with ``random.Random(seed)``
   from the eligible containers sorted by name, so a seed reproduces a run.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aftershock.errors import TargetNotFound
from aftershock.model.targets import DockerTarget
from aftershock.settings import Allowlist

__all__ = [
    "Candidate",
    "Selection",
    "candidate_from_listing",
    "ids_from_cgroup",
    "ids_from_mountinfo",
    "is_own",
    "own_ids_from_hostname",
    "pick_count",
    "select",
]

_FULL_ID = re.compile(r"[0-9a-f]{64}")
_SHORT_ID = re.compile(r"^[0-9a-f]{12,64}$")
# Docker bind-mounts these three files from /var/lib/docker/containers/<id>/ into
# every container; elsewhere a container id in mountinfo only means "some container".
_CONTAINER_FILES = frozenset({"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One container as the daemon lists it."""

    id: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    state: str = "running"
    """Docker's state: created, running, paused, restarting, exited, dead, removing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """The outcome of a selection, with what was left out and why."""

    chosen: tuple[Candidate, ...]
    refused: tuple[str, ...] = ()
    """Names matched by the selector but outside the allowlist."""
    own: tuple[str, ...] = ()
    """Names skipped because they are aftershock's own container."""
    ineligible: tuple[str, ...] = ()
    """Names matched and allowed, but in a state the operation does not apply to."""


def candidate_from_listing(row: Mapping[str, Any]) -> Candidate:
    """A ``Candidate`` from one entry of the daemon's container list (``GET /containers/json``)."""
    names = [str(n) for n in row.get("Names") or []]
    # Legacy links add "/other/alias" names; the container's own has one slash.
    own = next((n for n in names if n.count("/") == 1), names[0] if names else "")
    return Candidate(
        id=str(row["Id"]),
        name=own.lstrip("/"),
        labels={str(k): str(v) for k, v in (row.get("Labels") or {}).items()},
        state=str(row.get("State") or ""),
    )


def pick_count(pick: int | str | None, total: int) -> int:
    """How many of ``total`` eligible containers ``pick`` asks for.

    ``None`` means all; ``"N%"`` rounds up and is at least 1 (a share of a
    non-empty set never rounds down to nothing); a count larger than ``total``
    takes all.
    """
    if total <= 0:
        return 0
    if pick is None:
        return total
    if isinstance(pick, int):
        return min(pick, total)
    share = int(pick.rstrip("%"))
    return min(total, max(1, math.ceil(total * share / 100)))


def is_own(candidate: Candidate, own_ids: Collection[str]) -> bool:
    """Is ``candidate`` one of ``own_ids`` (full ids or prefixes of at least 12 digits)?"""
    return any(
        candidate.id == own or (len(own) >= 12 and candidate.id.startswith(own)) for own in own_ids
    )


def ids_from_cgroup(text: str) -> set[str]:
    """Container ids in ``/proc/self/cgroup`` (``/docker/<id>``, ``docker-<id>.scope``)."""
    return set(_FULL_ID.findall(text))


def ids_from_mountinfo(text: str) -> set[str]:
    """Container ids of the files Docker bind-mounts into a container (``/etc/hostname``)."""
    found: set[str] = set()
    for line in text.splitlines():
        fields = line.split()
        # mountinfo: id parent major:minor root mount-point ...; the root names the source.
        if len(fields) > 4 and fields[4] in _CONTAINER_FILES and "containers/" in fields[3]:
            found.update(_FULL_ID.findall(fields[3]))
    return found


def own_ids_from_hostname(hostname: str, candidates: Iterable[Candidate]) -> set[str]:
    """The hostname, when it is a container-id prefix of one of ``candidates``.

    Docker's default hostname is the first 12 digits of the id; a host that merely
    happens to look hexadecimal is not mistaken for a container unless it matches.
    """
    name = hostname.strip().lower()
    if not _SHORT_ID.match(name):
        return set()
    return {c.id for c in candidates if c.id.startswith(name)}


def _matches(target: DockerTarget, candidate: Candidate) -> bool:
    if target.names and candidate.name not in target.names:
        return False
    if any(candidate.labels.get(k) != v for k, v in target.labels.items()):
        return False
    return not (target.pattern and re.search(target.pattern, candidate.name) is None)


def select(
    target: DockerTarget,
    candidates: Sequence[Candidate],
    allowlist: Allowlist,
    *,
    target_name: str,
    seed: int | None,
    own_ids: Collection[str] = (),
    states: Collection[str] | None = None,
    require_eligible: bool = True,
) -> Selection:
    """Apply the target's selectors, the allowlist, eligibility and ``pick``.

    Raises ``TargetNotFound`` when an explicitly named container does not exist
    (a name is a promise, not a filter) or when nothing is left to act on; the
    message says at which rule the containers dropped out. ``states`` are the
    Docker states the operation applies to (all when ``None``). With ``require_eligible=False``
    allowed containers that are all ineligible give an empty selection instead
    (a healing action with nothing to do).
    """
    present = {c.name for c in candidates}
    missing = [n for n in target.names if n not in present]
    if missing:
        msg = f"no container named {', '.join(missing)}"
        raise TargetNotFound(msg, target=target_name)
    matched = [c for c in candidates if _matches(target, c)]
    own = [c for c in matched if is_own(c, own_ids)]
    matched = [c for c in matched if not is_own(c, own_ids)]
    allowed: list[Candidate] = []
    refused: list[str] = []
    for c in matched:
        named = c.name in target.names
        if allowlist.allows_container(c.name, c.labels, named=named):
            allowed.append(c)
        else:
            refused.append(c.name)
    usable = [c for c in allowed if states is None or c.state in states]
    ineligible = [c.name for c in allowed if c not in usable]
    if not usable and (require_eligible or not allowed):
        raise TargetNotFound(
            _nothing_left(len(matched) + len(own), own, refused, ineligible, states or ()),
            target=target_name,
        )
    usable.sort(key=lambda c: (c.name, c.id))  # listing order is the daemon's, not stable
    count = pick_count(target.pick, len(usable))
    chosen = usable if count == len(usable) else random.Random(seed).sample(usable, count)
    return Selection(
        chosen=tuple(sorted(chosen, key=lambda c: c.name)),
        refused=tuple(sorted(refused)),
        own=tuple(sorted(c.name for c in own)),
        ineligible=tuple(sorted(ineligible)),
    )


def _nothing_left(
    matched: int,
    own: list[Candidate],
    refused: list[str],
    ineligible: list[str],
    states: Collection[str],
) -> str:
    if not matched:
        return "no container matches the selector"
    reasons = []
    if own:
        reasons.append(f"{len(own)} is aftershock's own container")
    if refused:
        reasons.append(f"{len(refused)} outside the allowlist ({', '.join(sorted(refused))})")
    if ineligible:
        reasons.append(f"{len(ineligible)} not {' or '.join(sorted(states))}")
    return f"{matched} container(s) matched but none is usable: {'; '.join(reasons)}"
