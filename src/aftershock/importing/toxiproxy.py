"""chaostoolkit-toxiproxy (``chaostoxi``) actions as Toxiproxy targets and faults.

``chaostoxi`` finds the Toxiproxy API through the configuration keys
``toxiproxy_host`` and ``toxiproxy_port`` (default 8474); the target's ``api``
is built from them, with ``${TOXIPROXY_HOST:-127.0.0.1}`` and
``${TOXIPROXY_PORT:-8474}`` for a key the experiment does not set. Its toxic
attributes are integers in Toxiproxy's units: milliseconds, KB/s, bytes, and
microseconds for the slicer's delay.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from aftershock.importing.context import Activity, Context, slug
from aftershock.importing.steps import (
    Fault,
    Handler,
    NotTranslated,
    Phase,
    Setup,
    Translation,
    Undo,
)
from aftershock.model.faults import TOXIPROXY_DOWN

__all__ = ["HANDLERS", "api_url"]

_MS: Final = timedelta(milliseconds=1)
_US: Final = timedelta(microseconds=1)
TOXIC: Final = "chaostoxi.toxic.actions"
PROXY: Final = "chaostoxi.proxy.actions"
_ALL: Final = ("*toxiproxy",)


def api_url(ctx: Context) -> str:
    """The Toxiproxy API URL as ``chaostoxi`` builds it, in aftershock text."""
    host = ctx.refs.lookup("toxiproxy_host")
    port = ctx.refs.lookup("toxiproxy_port")
    host_text = host.text if host is not None and host.text else "${TOXIPROXY_HOST:-127.0.0.1}"
    port_text = port.text if port is not None and port.text else "${TOXIPROXY_PORT:-8474}"
    return f"http://{host_text}:{port_text}"


def _arg(act: Activity, name: str) -> tuple[Any, tuple[str | int, ...]]:
    return act.arguments.get(name), (*act.path, "provider", "arguments", name)


def _proxy(ctx: Context, act: Activity, key: str) -> str | None:
    value, path = _arg(act, key)
    if value is None:
        ctx.warn(path, f"{key} is missing")
        return None
    proxy = ctx.text(value, path)
    if not proxy:
        ctx.warn(path, f"{key} is empty")
        return None
    for name, spec in ctx.targets.items():
        if spec.get("toxiproxy", {}).get("proxy") == proxy:
            return name
    spec = {"toxiproxy": {"api": api_url(ctx), "proxy": proxy}}
    return ctx.target(f"proxy-{slug(str(value), 'proxy')}", spec)


_ATTRIBUTES: Final = {
    "latency": (("latency", "latency", _MS), ("jitter", "jitter", _MS)),
    "bandwidth": (("rate", "rate", None),),
    "slow_close": (("delay", "delay", _MS),),
    "timeout": (("timeout", "timeout", _MS),),
    "reset_peer": (("timeout", "timeout", _MS),),
    "slicer": (
        ("average_size", "averageSize", None),
        ("size_variation", "sizeVariation", None),
        ("delay", "delay", _US),
    ),
    "limit_data": (("bytes", "bytes", None),),
}
"""Toxic type → (Toxiproxy attribute, aftershock parameter, unit or None for an integer)."""
_REQUIRED: Final = {
    "latency": "latency",
    "bandwidth": "rate",
    "slow_close": "delay",
    "slicer": "average_size",
    "limit_data": "bytes",
}
"""The attribute each toxic type cannot do without."""


def _toxic(
    ctx: Context,
    act: Activity,
    toxic_type: str,
    attributes: dict[str, tuple[Any, tuple[str | int, ...]]],
    extra: dict[str, Any] | None = None,
) -> Translation:
    target = _proxy(ctx, act, "for_proxy")
    name_value, name_path = _arg(act, "toxic_name")
    toxic = ctx.text(name_value, name_path) if name_value is not None else None
    if target is None or toxic is None:
        return NotTranslated("the proxy or the toxic name cannot be translated")
    params: dict[str, Any] = {}
    for attribute, param, unit in _ATTRIBUTES[toxic_type]:
        if attribute not in attributes:
            if _REQUIRED.get(toxic_type) == attribute:
                return NotTranslated(f"the {toxic_type} toxic needs {attribute}")
            continue
        value, path = attributes[attribute]
        converted: object = (
            _whole(ctx, value, path, attribute) if unit is None else ctx.duration(value, path, unit)
        )
        if converted is None:
            return NotTranslated(f"{attribute} cannot be translated")
        params[param] = converted
    params.update(extra or {})
    fault = Fault(
        name=act.name,
        fault=f"toxiproxy.{toxic_type}",
        target=target,
        params=params,
        key=("toxic", target, toxic),
        notes=(f"Chaos Toolkit's toxic {toxic!r}; aftershock names its own and removes it",),
    )
    return [fault]


def _whole(ctx: Context, value: object, path: tuple[str | int, ...], what: str) -> int | None:
    def convert(v: object) -> int:
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            raise ValueError(f"{what} must be a whole number, got {v!r}")
        number = float(v)
        if number != int(number) or number < 0:
            raise ValueError(f"{what} must be a whole number of at least 0, got {v!r}")
        return int(number)

    result: int | None = ctx.value(value, path, convert)
    return result


def _named(toxic_type: str, *mapping: tuple[str, str]) -> Handler:
    """A ``create_*_toxic`` function: its arguments named ``mapping`` (argument → attribute)."""

    def handle(ctx: Context, act: Activity, phase: Phase) -> Translation:
        attributes = {}
        for argument, attribute in mapping:
            value, path = _arg(act, argument)
            if value is not None:
                attributes[attribute] = (value, path)
        return _toxic(ctx, act, toxic_type, attributes)

    return handle


def _create_toxic(ctx: Context, act: Activity, phase: Phase) -> Translation:
    kind, _ = _arg(act, "toxic_type")
    if kind not in _ATTRIBUTES:
        return NotTranslated(f"toxic type {kind!r} has no aftershock fault")
    raw, path = _arg(act, "attributes")
    attrs = raw if isinstance(raw, dict) else {}
    known = {a for a, _, _ in _ATTRIBUTES[str(kind)]}
    for name in attrs:
        if name not in known:
            ctx.warn((*path, name), f"attribute {name!r} of a {kind} toxic is not translated")
    attributes = {k: (v, (*path, k)) for k, v in attrs.items() if k in known}
    extra: dict[str, Any] = {}
    stream = act.arguments.get("stream")
    if stream is not None:
        if stream not in ("upstream", "downstream"):
            return NotTranslated(f"stream {stream!r} is neither upstream nor downstream")
        extra["stream"] = stream
    toxicity, toxicity_path = _arg(act, "toxicity")
    if toxicity is not None:
        value = ctx.value(toxicity, toxicity_path, _ratio)
        if value is None:
            return NotTranslated("toxicity cannot be translated")
        extra["toxicity"] = value
    return _toxic(ctx, act, str(kind), attributes, extra)


def _ratio(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"toxicity must be a number from 0 to 1, got {value!r}")
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"toxicity must be a number from 0 to 1, got {value!r}")
    return number


def _delete_toxic(ctx: Context, act: Activity, phase: Phase) -> Translation:
    target = _proxy(ctx, act, "for_proxy")
    value, path = _arg(act, "toxic_name")
    toxic = ctx.text(value, path) if value is not None else None
    if target is None or toxic is None:
        return NotTranslated("the proxy or the toxic name cannot be translated")
    return Undo((("toxic", target, toxic),), f"removes toxic {toxic!r}")


def _disable(ctx: Context, act: Activity, phase: Phase) -> Translation:
    target = _proxy(ctx, act, "proxy_name")
    if target is None:
        return NotTranslated("the proxy name cannot be translated")
    note = "the proxy is disabled: every connection refused until aftershock enables it again"
    return [Fault(act.name, TOXIPROXY_DOWN.name, target, key=("down", target), notes=(note,))]


def _enable(ctx: Context, act: Activity, phase: Phase) -> Translation:
    target = _proxy(ctx, act, "proxy_name")
    if target is None:
        return NotTranslated("the proxy name cannot be translated")
    return Undo((("down", target),), "enables the proxy again")


def _modify(ctx: Context, act: Activity, phase: Phase) -> Translation:
    if set(act.arguments) - {"proxy_name", "enabled"}:
        return NotTranslated(
            "changing a proxy's listen or upstream address has no aftershock fault"
        )
    enabled = act.arguments.get("enabled")
    if enabled is False:
        return _disable(ctx, act, phase)
    if enabled is True:
        return _enable(ctx, act, phase)
    return NotTranslated("modify_proxy without enabled true or false changes nothing translatable")


def _create_proxy(ctx: Context, act: Activity, phase: Phase) -> Translation:
    target = _proxy(ctx, act, "proxy_name")
    if target is None:
        return NotTranslated("the proxy name cannot be translated")
    parts: dict[str, str] = {}
    for field, host_key, port_key, default_host in (
        ("upstream", "upstream_host", "upstream_port", None),
        ("listen", "listen_host", "listen_port", "0.0.0.0"),  # noqa: S104 (chaostoxi's default)
    ):
        host, host_path = _arg(act, host_key)
        port, port_path = _arg(act, port_key)
        host = default_host if host is None else host
        port = 0 if port is None and field == "listen" else port
        if host is None or port is None:
            return NotTranslated(f"{host_key} and {port_key} are needed")
        host_text = _env_prefixed(ctx, host, host_path)
        port_text = _env_prefixed(ctx, port, port_path)
        if host_text is None or port_text is None:
            return NotTranslated(f"{host_key} or {port_key} cannot be translated")
        parts[field] = f"{host_text}:{port_text}"
    spec = ctx.targets[target]["toxiproxy"]
    spec["listen"], spec["upstream"] = parts["listen"], parts["upstream"]
    return Setup(
        f"creates proxy {spec['proxy']!r} ({parts['listen']} -> {parts['upstream']}): "
        f"target {target} has listen and upstream, so aftershock creates it when it is "
        "missing and deletes what it created at the end"
    )


def _env_prefixed(ctx: Context, value: object, path: tuple[str | int, ...]) -> str | None:
    # chaostoxi reads "env:NAME" from the environment itself.
    if isinstance(value, str) and value.startswith("env:") and value[4:].isidentifier():
        return f"${{{value[4:]}}}"
    return ctx.text(value, path)


def _delete_proxy(ctx: Context, act: Activity, phase: Phase) -> Translation:
    target = _proxy(ctx, act, "proxy_name")
    if target is None:
        return NotTranslated("the proxy name cannot be translated")
    if phase == "rollbacks":
        if "listen" in ctx.targets[target]["toxiproxy"]:
            return Setup("deletes the proxy the experiment created; aftershock deletes it itself")
        return NotTranslated("deleting a proxy the experiment did not create is not translated")
    note = "the proxy is deleted in Chaos Toolkit; aftershock disables it and enables it again"
    return [Fault(act.name, TOXIPROXY_DOWN.name, target, key=("down", target), notes=(note,))]


def _reset(ctx: Context, act: Activity, phase: Phase) -> Translation:
    return Undo((_ALL,), "removes every toxic and enables every proxy")


HANDLERS: Final[dict[tuple[str, str], Handler]] = {
    (TOXIC, "create_toxic"): _create_toxic,
    (TOXIC, "create_latency_toxic"): _named(
        "latency", ("latency", "latency"), ("jitter", "jitter")
    ),
    (TOXIC, "create_bandwith_degradation_toxic"): _named("bandwidth", ("rate", "rate")),
    (TOXIC, "create_slow_connection_close_toxic"): _named("slow_close", ("delay", "delay")),
    (TOXIC, "create_timeout_toxic"): _named("timeout", ("timeout", "timeout")),
    (TOXIC, "create_slicer_toxic"): _named(
        "slicer",
        ("average_size", "average_size"),
        ("size_variation", "size_variation"),
        ("delay", "delay"),
    ),
    (TOXIC, "create_limiter_toxic"): _named("limit_data", ("bytes_limit", "bytes")),
    (TOXIC, "delete_toxic"): _delete_toxic,
    (PROXY, "create_proxy"): _create_proxy,
    (PROXY, "delete_proxy"): _delete_proxy,
    (PROXY, "disable_proxy"): _disable,
    (PROXY, "enable_proxy"): _enable,
    (PROXY, "modify_proxy"): _modify,
    (PROXY, "reset"): _reset,
}
"""(module, function) → translation, for every chaostoolkit-toxiproxy action."""
