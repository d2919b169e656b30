"""Which playbooks apply: pure functions of the policy and the watches' verdicts."""

from __future__ import annotations

from aftershock.healer.matching import matching, next_due, step_targets, subject_of

from .helpers import RESTART, playbook, policy


def test_unhealthy_for_long_enough_in_declaration_order() -> None:
    spec = policy(
        playbook("slow", for_="30s"),
        playbook("first"),
        playbook("other", probe="db"),
        watches={"web": "api", "db": "pg"},
    ).spec
    since = {"web": 100.0, "db": None}
    assert [m.playbook.name for m in matching(spec, since, 110.0)] == ["first"]
    assert [m.playbook.name for m in matching(spec, since, 130.0)] == ["slow", "first"]
    assert matching(spec, {"web": None, "db": None}, 130.0) == []
    assert next_due(spec, since, 110.0) == 130.0
    assert next_due(spec, since, 130.0) is None
    found = matching(spec, {"web": None, "db": 0.0}, 1.0)
    assert [(m.index, m.probe, m.target) for m in found] == [(2, "db", "pg")]


def test_subject_and_targets() -> None:
    doc = policy(
        playbook(steps=[{"action": "process.restart", "target": "db"}, RESTART]),
        watches={"web": "api", "plain": "api"},
    )
    spec = doc.spec
    book = spec.playbooks[0]
    assert subject_of(spec, book) == "api"  # the watch's target wins
    assert step_targets(spec, book) == {"api", "db"}
    unbound = policy(
        playbook(steps=[{"action": "process.restart", "target": "db"}]), watches={"web": "api"}
    ).spec.model_copy(update={"watch": {}})
    assert subject_of(unbound, unbound.playbooks[0]) == "db"
