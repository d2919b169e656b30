"""Docker target selection without a daemon: matching, pick, self-exclusion, allowlist."""

from __future__ import annotations

import hashlib

import pytest

from aftershock.drivers.docker.select import (
    Candidate,
    candidate_from_listing,
    ids_from_cgroup,
    ids_from_mountinfo,
    is_own,
    own_ids_from_hostname,
    pick_count,
    select,
)
from aftershock.errors import TargetNotFound
from aftershock.model.targets import DockerTarget
from aftershock.settings import Allowlist

ALLOW_ALL = Allowlist(containers=(".*",))


def _id(n: int) -> str:
    # Distinct from the first digit on, like real ids, so prefixes are unambiguous.
    return hashlib.sha256(str(n).encode()).hexdigest()


def _fleet(count: int, **labels: str) -> list[Candidate]:
    return [
        Candidate(id=_id(i + 1), name=f"api-{i}", labels=dict(labels), state="running")
        for i in range(count)
    ]


def _select(target: DockerTarget, fleet: list[Candidate], **kw: object) -> list[str]:
    kw.setdefault("seed", 1)
    kw.setdefault("allowlist", ALLOW_ALL)
    allowlist = kw.pop("allowlist")
    selection = select(target, fleet, allowlist, target_name="api", **kw)  # type: ignore[arg-type]
    return [c.name for c in selection.chosen]


@pytest.mark.parametrize(
    ("pick", "total", "expected"),
    [
        (None, 4, 4),
        (1, 4, 1),
        (9, 4, 4),
        ("50%", 4, 2),
        ("50%", 3, 2),  # rounds up
        ("1%", 3, 1),  # at least one
        ("100%", 7, 7),
        ("34%", 3, 2),
        (1, 0, 0),
    ],
)
def test_pick_count(pick: int | str | None, total: int, expected: int) -> None:
    assert pick_count(pick, total) == expected


def test_same_seed_picks_the_same_container_whatever_the_listing_order() -> None:
    fleet = _fleet(6)
    target = DockerTarget(pattern="^api-", pick=1)
    first = _select(target, fleet, seed=42)
    again = _select(target, list(reversed(fleet)), seed=42)
    assert first == again
    assert len(first) == 1
    # Over many seeds every container gets its turn: the pick is random, not "first".
    picked = {_select(target, fleet, seed=s)[0] for s in range(60)}
    assert picked == {c.name for c in fleet}


def test_percent_pick_of_four_is_two() -> None:
    assert len(_select(DockerTarget(labels={"app": "x"}, pick="50%"), _fleet(4, app="x"))) == 2


def test_selectors_narrow_together() -> None:
    fleet = [
        Candidate(id=_id(1), name="api-1", labels={"app": "shop", "tier": "web"}),
        Candidate(id=_id(2), name="api-2", labels={"app": "shop", "tier": "db"}),
        Candidate(id=_id(3), name="db-1", labels={"app": "shop", "tier": "web"}),
    ]
    assert _select(DockerTarget(labels={"app": "shop", "tier": "web"}), fleet) == [
        "api-1",
        "db-1",
    ]
    assert _select(DockerTarget(labels={"tier": "web"}, pattern="^api"), fleet) == ["api-1"]
    assert _select(DockerTarget(names=["api-2", "db-1"], pattern="^db"), fleet) == ["db-1"]


def test_explicit_name_that_does_not_exist_is_not_found() -> None:
    with pytest.raises(TargetNotFound, match="no container named ghost") as info:
        _select(DockerTarget(names=["api-0", "ghost"]), _fleet(2))
    assert info.value.target == "api"


def test_nothing_matching_is_not_found() -> None:
    with pytest.raises(TargetNotFound, match="no container matches"):
        _select(DockerTarget(pattern="^web"), _fleet(2))


def test_own_container_is_never_selected() -> None:
    fleet = _fleet(3)
    own = fleet[1]
    for seed in range(20):
        chosen = _select(DockerTarget(pattern="^api", pick=1), fleet, seed=seed, own_ids=[own.id])
        assert chosen != [own.name]
    # A 12-digit prefix (the default hostname) is enough to recognise it.
    assert own.name not in _select(DockerTarget(pattern="^api"), fleet, own_ids=[own.id[:12]])
    with pytest.raises(TargetNotFound, match="own container"):
        _select(DockerTarget(names=[own.name]), fleet, own_ids=[own.id])


def test_short_prefixes_never_count_as_own() -> None:
    candidate = Candidate(id="abc" + "0" * 61, name="x")
    assert is_own(candidate, ["abc" + "0" * 61])
    assert is_own(candidate, ["abc" + "0" * 9])
    assert not is_own(candidate, ["abc"])


def test_allowlist_refuses_and_reports() -> None:
    fleet = [
        Candidate(id=_id(1), name="web-1", labels={"app": "shop", "tier": "web"}),
        Candidate(id=_id(2), name="db-1", labels={"app": "shop", "tier": "db"}),
    ]
    allow = Allowlist(labels=({"tier": "web"},))
    selection = select(DockerTarget(labels={"app": "shop"}), fleet, allow, target_name="t", seed=1)
    assert [c.name for c in selection.chosen] == ["web-1"]
    assert selection.refused == ("db-1",)


def test_empty_allowlist_allows_only_named_containers() -> None:
    fleet = _fleet(2, app="x")
    empty = Allowlist()
    assert _select(DockerTarget(names=["api-1"]), fleet, allowlist=empty) == ["api-1"]
    with pytest.raises(TargetNotFound, match="outside the allowlist"):
        _select(DockerTarget(labels={"app": "x"}), fleet, allowlist=empty)


def test_states_filter_and_optional_requirement() -> None:
    fleet = [
        Candidate(id=_id(1), name="a", state="running"),
        Candidate(id=_id(2), name="b", state="exited"),
    ]
    target = DockerTarget(pattern=".")
    assert _select(target, fleet, states={"running"}) == ["a"]
    with pytest.raises(TargetNotFound, match="not paused"):
        _select(target, fleet, states={"paused"})
    selection = select(
        target,
        fleet,
        ALLOW_ALL,
        target_name="t",
        seed=None,
        states={"paused"},
        require_eligible=False,
    )
    assert selection.chosen == ()
    assert selection.ineligible == ("a", "b")


def test_candidate_from_listing() -> None:
    row = {
        "Id": _id(5),
        "Names": ["/other/alias", "/api"],
        "Labels": None,
        "State": "paused",
    }
    assert candidate_from_listing(row) == Candidate(
        id=_id(5), name="api", labels={}, state="paused"
    )


def test_own_id_detection_from_proc_files() -> None:
    cid = "a" * 64
    assert ids_from_cgroup(f"0::/system.slice/docker-{cid}.scope\n") == {cid}
    assert ids_from_cgroup("4:memory:/process_api/6671d41414448f3ba71d31222846e6ca\n") == set()
    inside = f"612 600 254:0 /var/lib/docker/containers/{cid}/hostname /etc/hostname rw - ext4\n"
    # On the host, a container's shm mount names its id too: that is not us.
    host = f"90 27 0:50 / /var/lib/docker/containers/{'b' * 64}/mounts/shm rw - tmpfs shm rw\n"
    assert ids_from_mountinfo(inside) == {cid}
    assert ids_from_mountinfo(host) == set()


def test_own_id_from_hostname_needs_a_matching_container() -> None:
    fleet = _fleet(2)
    assert own_ids_from_hostname(fleet[0].id[:12], fleet) == {fleet[0].id}
    assert own_ids_from_hostname("vm", fleet) == set()
    assert own_ids_from_hostname("deadbeefcafe", fleet) == set()
