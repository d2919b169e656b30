"""Pauses on the timeline, rollbacks, refs, and what is kept as a comment."""

from datetime import timedelta

TOXIC = "chaostoxi.toxic.actions"
CONFIG = {"toxiproxy_host": "127.0.0.1"}


def latency(ctk, name, toxic, **pauses):
    action = ctk.python(
        TOXIC, "create_latency_toxic", name=name, for_proxy="db", toxic_name=toxic, latency=50
    )
    if pauses:
        action["pauses"] = pauses
    return action


def delete(ctk, toxic, name="remove"):
    return ctk.python(TOXIC, "delete_toxic", name=name, for_proxy="db", toxic_name=toxic)


def test_pauses_add_up_to_at_and_for(ctk) -> None:
    method = [
        latency(ctk, "first", "a", before=2, after=3),
        latency(ctk, "second", "b", before=1.5),
        {"type": "action", "name": "idle", "provider": {"type": "process", "path": "true"}},
        delete(ctk, "a") | {"pauses": {"before": 4, "after": 10}},
    ]
    spec = ctk.spec(ctk.experiment(method, configuration=CONFIG))
    first, second = spec.method
    assert (first.at, first.for_) == (timedelta(seconds=2), timedelta(seconds=10.5 - 2))
    assert (second.at, second.for_) == (timedelta(seconds=6.5), timedelta(seconds=20.5 - 6.5))


def test_a_step_at_the_very_end_has_no_for(ctk) -> None:
    spec = ctk.spec(ctk.experiment([latency(ctk, "late", "a", before=5)], configuration=CONFIG))
    (step,) = spec.method
    assert (step.at, step.for_) == (timedelta(seconds=5), None)


def test_a_pause_that_is_not_a_number_is_reported_and_taken_as_zero(ctk) -> None:
    result = ctk(ctk.experiment([latency(ctk, "x", "a", before="soon")], configuration=CONFIG))
    assert any("pauses.before" in w.path for w in result.warnings)
    assert ctk.load(result).spec.method[0].at == timedelta(0)


def test_a_rollback_that_only_undoes_a_fault_is_dropped_with_a_note(ctk) -> None:
    result = ctk(
        ctk.experiment(
            [latency(ctk, "slow", "a", after=1)],
            rollbacks=[delete(ctk, "a")],
            configuration=CONFIG,
        )
    )
    assert result.warnings == ()
    assert "#   rollbacks[0]" in result.yaml
    assert "removes toxic 'a'; aftershock reverts slow itself" in result.yaml


def test_a_rollback_undoing_nothing_translated_is_reported(ctk) -> None:
    result = ctk(
        ctk.experiment(
            [latency(ctk, "slow", "a")], rollbacks=[delete(ctk, "b")], configuration=CONFIG
        )
    )
    (warning,) = result.warnings
    assert warning.path == "rollbacks[0]"
    assert "no translated step applied" in warning.message


def test_other_rollbacks_are_kept_as_notes_and_reported(ctk) -> None:
    restore = {
        "type": "action",
        "name": "restore",
        "provider": {"type": "process", "path": "cp", "arguments": "a b"},
    }
    method = [latency(ctk, "slow", "a"), restore]
    result = ctk(ctk.experiment(method, rollbacks=[{"ref": "restore"}], configuration=CONFIG))
    assert [w.path for w in result.warnings] == ["method[1]", "rollbacks[0]"]
    assert "kept as a note, not run" in result.yaml
    assert "#     provider:" in result.yaml


def test_refs_in_the_method_follow_the_named_activity(ctk) -> None:
    method = [latency(ctk, "slow", "a", after=2), {"ref": "slow"}]
    result = ctk(ctk.experiment(method, configuration=CONFIG))
    spec = ctk.load(result).spec
    assert [s.name for s in spec.method] == ["slow", "slow-2"]


def test_a_dangling_ref_or_a_non_mapping_activity_is_reported(ctk) -> None:
    method = [{"ref": "nowhere"}, "just text", latency(ctk, "slow", "a")]
    result = ctk(ctk.experiment(method, configuration=CONFIG))
    assert [w.path for w in result.warnings] == ["method[0]", "method[1]"]
    assert len(ctk.load(result).spec.method) == 1


def test_an_empty_method_gets_a_placeholder_that_validates(ctk) -> None:
    result = ctk(ctk.experiment([], probes=[ctk.http_probe()]))
    spec = ctk.load(result).spec
    (step,) = spec.method
    assert (step.fault, step.target) == ("process.stop", "placeholder")
    assert spec.targets["placeholder"].process.command == ["sleep", "86400"]
    assert any("placeholder" in m for m in ctk.messages(result))


def test_controls_runtime_and_unknown_keys_are_reported_in_the_header(ctk) -> None:
    doc = ctk.experiment(
        [latency(ctk, "slow", "a")],
        configuration=CONFIG,
        controls=[{"name": "tracing", "provider": {"type": "python", "module": "m"}}],
        runtime={"rollbacks": {"strategy": "never"}},
        extras=1,
    )
    result = ctk(doc)
    assert sorted(w.path for w in result.warnings) == ["controls", "extras", "runtime"]
    header = result.yaml.split("apiVersion:")[0]
    assert "strategy: never" in header
    assert "name: tracing" in header


def test_names_and_metadata(ctk) -> None:
    doc = ctk.experiment(
        [latency(ctk, "Slow Down DB!", "a")],
        configuration=CONFIG,
        tags=["db", "latency"],
        contributions={"availability": "high"},
    )
    doc["title"] = "The DB may be slow: checkout must survive, and more words to make this long"
    loaded = ctk.load(ctk(doc))
    assert loaded.metadata.name == "the-db-may-be-slow-checkout-must-survive-and-more-words-to"
    assert loaded.spec.method[0].name == "slow-down-db"
    annotations = loaded.metadata.annotations
    assert annotations["aftershock.dev/imported-from"] == "chaostoolkit:exp.json"
    assert annotations["chaostoolkit.org/tags"] == "db, latency"
    assert annotations["chaostoolkit.org/contributions"] == "availability=high"
    assert loaded.spec.description.startswith("The DB may be slow")


def test_output_is_deterministic(ctk) -> None:
    doc = ctk.experiment([latency(ctk, "slow", "a", after=1)], probes=[ctk.http_probe()])
    assert ctk(doc).yaml == ctk(doc).yaml
