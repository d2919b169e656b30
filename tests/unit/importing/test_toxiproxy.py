"""chaostoolkit-toxiproxy actions: every toxic, the proxy actions, the API address."""

from datetime import timedelta

import pytest

TOXIC = "chaostoxi.toxic.actions"
PROXY = "chaostoxi.proxy.actions"
CONFIG = {
    "toxiproxy_host": {"type": "env", "key": "TOXIPROXY_HOST"},
    "proxy": {"type": "env", "key": "TOXIPROXY_PROXY_NAME"},
}


def toxic(ctk, func, **arguments):
    return ctk.python(TOXIC, func, name=func, for_proxy="${proxy}", toxic_name="t1", **arguments)


def one_step(ctk, action, configuration=CONFIG):
    spec = ctk.spec(ctk.experiment([action], configuration=configuration))
    (step,) = spec.method
    return spec, step


@pytest.mark.parametrize(
    ("func", "arguments", "fault", "params"),
    [
        (
            "create_latency_toxic",
            {"latency": 1200, "jitter": 100},
            "toxiproxy.latency",
            {"latency": timedelta(milliseconds=1200), "jitter": timedelta(milliseconds=100)},
        ),
        ("create_bandwith_degradation_toxic", {"rate": 64}, "toxiproxy.bandwidth", {"rate": 64}),
        (
            "create_slow_connection_close_toxic",
            {"delay": 250},
            "toxiproxy.slow_close",
            {"delay": timedelta(milliseconds=250)},
        ),
        (
            "create_timeout_toxic",
            {"timeout": 3000},
            "toxiproxy.timeout",
            {"timeout": timedelta(seconds=3)},
        ),
        (
            "create_slicer_toxic",
            {"average_size": 64, "size_variation": 8, "delay": 1500},
            "toxiproxy.slicer",
            {"average_size": 64, "size_variation": 8, "delay": timedelta(microseconds=1500)},
        ),
        ("create_limiter_toxic", {"bytes_limit": 2048}, "toxiproxy.limit_data", {"bytes": 2048}),
    ],
)
def test_each_named_toxic_becomes_its_fault(ctk, func, arguments, fault, params) -> None:
    spec, step = one_step(ctk, toxic(ctk, func, **arguments))
    assert step.fault == fault
    for key, value in params.items():
        assert getattr(step.params, key) == value
    target = spec.targets[step.target].toxiproxy
    assert target.proxy == "web"
    assert target.api == "http://127.0.0.1:8474"


@pytest.mark.parametrize(
    ("toxic_type", "attributes", "fault"),
    [
        ("latency", {"latency": 10}, "toxiproxy.latency"),
        ("bandwidth", {"rate": 1}, "toxiproxy.bandwidth"),
        ("slow_close", {"delay": 10}, "toxiproxy.slow_close"),
        ("timeout", {"timeout": 0}, "toxiproxy.timeout"),
        ("reset_peer", {"timeout": 500}, "toxiproxy.reset_peer"),
        ("slicer", {"average_size": 10, "size_variation": 1, "delay": 10}, "toxiproxy.slicer"),
        ("limit_data", {"bytes": 100}, "toxiproxy.limit_data"),
    ],
)
def test_create_toxic_takes_type_stream_and_toxicity(ctk, toxic_type, attributes, fault) -> None:
    action = toxic(
        ctk,
        "create_toxic",
        toxic_type=toxic_type,
        stream="upstream",
        toxicity=0.5,
        attributes=attributes,
    )
    result = ctk(ctk.experiment([action], configuration=CONFIG))
    assert result.warnings == ()
    (step,) = ctk.load(result).spec.method
    assert step.fault == fault
    assert step.params.stream == "upstream"
    assert step.params.toxicity == 0.5


def test_an_unknown_toxic_type_or_attribute_is_reported(ctk) -> None:
    unknown = toxic(ctk, "create_toxic", toxic_type="jam", attributes={})
    extra = toxic(ctk, "create_toxic", toxic_type="latency", attributes={"latency": 5, "wobble": 1})
    result = ctk(ctk.experiment([unknown, extra], configuration=CONFIG))
    messages = ctk.messages(result)
    assert any("toxic type 'jam' has no aftershock fault" in m for m in messages)
    assert any("attribute 'wobble'" in m for m in messages)
    (step,) = ctk.load(result).spec.method
    assert step.fault == "toxiproxy.latency"
    kept = [line for line in result.yaml.splitlines() if "toxic_type: jam" in line]
    assert kept and all(line.lstrip().startswith("#") for line in kept)


def test_delete_toxic_in_the_method_ends_the_step(ctk) -> None:
    create = toxic(ctk, "create_latency_toxic", latency=100)
    create["pauses"] = {"before": 2, "after": 5}
    delete = ctk.python(TOXIC, "delete_toxic", for_proxy="${proxy}", toxic_name="t1")
    delete["pauses"] = {"after": 10}
    spec = ctk.spec(ctk.experiment([create, delete], configuration=CONFIG))
    (step,) = spec.method
    assert step.at == timedelta(seconds=2)
    assert step.for_ == timedelta(seconds=5)


def test_a_toxic_with_no_removal_lasts_to_the_end_of_the_method(ctk) -> None:
    create = toxic(ctk, "create_latency_toxic", latency=100)
    other = ctk.python("some.module", "wait", name="wait")
    other["pauses"] = {"before": 4, "after": 6}
    result = ctk(ctk.experiment([create, other], configuration=CONFIG))
    step = ctk.load(result).spec.method[0]
    assert step.at == timedelta(0)
    assert step.for_ == timedelta(seconds=10)


def test_disable_and_enable_proxy_are_an_outage(ctk) -> None:
    disable = ctk.python(PROXY, "disable_proxy", name="cut", proxy_name="${proxy}")
    disable["pauses"] = {"after": 3}
    enable = ctk.python(PROXY, "enable_proxy", name="heal", proxy_name="${proxy}")
    spec = ctk.spec(ctk.experiment([disable, enable], configuration=CONFIG))
    (step,) = spec.method
    assert (step.fault, step.for_) == ("toxiproxy.down", timedelta(seconds=3))


def test_modify_proxy_enabled_false_is_an_outage_and_addresses_are_not(ctk) -> None:
    off = ctk.python(PROXY, "modify_proxy", name="off", proxy_name="${proxy}", enabled=False)
    move = ctk.python(
        PROXY, "modify_proxy", name="move", proxy_name="${proxy}", listen_address="0.0.0.0:1"
    )
    result = ctk(ctk.experiment([off, move], configuration=CONFIG))
    (step,) = ctk.load(result).spec.method
    assert step.fault == "toxiproxy.down"
    assert any("listen or upstream" in m for m in ctk.messages(result))


def test_create_proxy_gives_the_target_listen_and_upstream(ctk) -> None:
    create = ctk.python(
        PROXY,
        "create_proxy",
        name="make",
        proxy_name="db",
        upstream_host="env:DB_HOST",
        upstream_port=5432,
        listen_host="127.0.0.1",
        listen_port=25432,
    )
    latency = ctk.python(TOXIC, "create_latency_toxic", for_proxy="db", toxic_name="x", latency=5)
    drop = ctk.python(PROXY, "delete_proxy", name="drop", proxy_name="db")
    result = ctk(ctk.experiment([create, latency], rollbacks=[drop], configuration=CONFIG))
    assert result.warnings == ()
    spec = ctk.load(result, {"DB_HOST": "127.0.0.1"}).spec
    target = spec.targets[spec.method[0].target].toxiproxy
    assert (target.listen, target.upstream) == ("127.0.0.1:25432", "127.0.0.1:5432")
    assert "aftershock deletes it itself" in result.yaml


def test_delete_proxy_in_the_method_is_an_outage(ctk) -> None:
    drop = ctk.python(PROXY, "delete_proxy", name="drop", proxy_name="${proxy}")
    (step,) = ctk.spec(ctk.experiment([drop], configuration=CONFIG)).method
    assert step.fault == "toxiproxy.down"


def test_reset_ends_every_toxiproxy_step(ctk) -> None:
    a = toxic(ctk, "create_latency_toxic", latency=5)
    b = toxic(ctk, "create_timeout_toxic", timeout=0)
    b["provider"]["arguments"]["toxic_name"] = "t2"
    b["pauses"] = {"after": 2}
    reset = ctk.python(PROXY, "reset", name="reset")
    reset["pauses"] = {"after": 7}
    spec = ctk.spec(ctk.experiment([a, b, reset], configuration=CONFIG))
    assert [s.for_ for s in spec.method] == [timedelta(seconds=2)] * 2


def test_the_api_port_comes_from_configuration_or_a_defaulted_variable(ctk) -> None:
    action = toxic(ctk, "create_latency_toxic", latency=5)
    config = {**CONFIG, "toxiproxy_port": 18474}
    spec, step = one_step(ctk, action, configuration=config)
    assert spec.targets[step.target].toxiproxy.api == "http://127.0.0.1:18474"
    result = ctk(ctk.experiment([action], configuration=CONFIG))
    assert "${TOXIPROXY_PORT:-8474}" in result.yaml
    spec = ctk.load(result, {"TOXIPROXY_PORT": "9999"}).spec
    assert spec.targets[spec.method[0].target].toxiproxy.api == "http://127.0.0.1:9999"


def test_a_latency_from_the_environment_stays_a_reference(ctk) -> None:
    config = {**CONFIG, "lat": {"type": "env", "key": "LATENCY_MS", "default": 300}}
    action = toxic(ctk, "create_latency_toxic", latency="${lat}")
    result = ctk(ctk.experiment([action], configuration=config))
    assert "${LATENCY_MS:-300}ms" in result.yaml
    assert ctk.load(result).spec.method[0].params.latency == timedelta(milliseconds=300)
    step = ctk.load(result, {"LATENCY_MS": "40"}).spec.method[0]
    assert step.params.latency == timedelta(milliseconds=40)


def test_a_missing_required_attribute_is_not_translated(ctk) -> None:
    action = toxic(ctk, "create_latency_toxic")
    result = ctk(ctk.experiment([action], configuration=CONFIG))
    assert any("needs latency" in m for m in ctk.messages(result))
    assert ctk.load(result).spec.method[0].name == "placeholder"
