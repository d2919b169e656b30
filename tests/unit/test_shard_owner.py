"""Rendezvous hashing: shares are even, and only the departed member's policies move."""

from __future__ import annotations

from collections import Counter

from aftershock.operator.shards import owner


def test_shares_are_even_and_a_departure_moves_only_its_share() -> None:
    keys = [f"ns/policy-{i}" for i in range(3000)]
    members = ["op-a", "op-b", "op-c"]
    before = {k: owner(k, members) for k in keys}
    counts = Counter(before.values())
    assert set(counts) == set(members)
    assert all(900 <= n <= 1100 for n in counts.values()), counts
    after = {k: owner(k, ["op-a", "op-c"]) for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    assert moved
    assert all(before[k] == "op-b" for k in moved)
    joined = {k: owner(k, [*members, "op-d"]) for k in keys}
    gained = [k for k in keys if joined[k] != before[k]]
    assert all(joined[k] == "op-d" for k in gained)
    assert 600 <= len(gained) <= 900


def test_no_members_no_owner() -> None:
    assert owner("ns/x", []) is None
    assert owner("ns/x", ["only"]) == "only"
