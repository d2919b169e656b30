"""Controller settings: where state lives and what aftershock may touch.

Settings belong to the process running aftershock, not to experiment documents.
They come from a TOML file (``$AFTERSHOCK_CONFIG``, default
``$AFTERSHOCK_HOME/config.toml``) and from environment variables, which win::

    [allow]
    containers = ["^checkout-", "^api$"]   # regexes on container / process names
    labels = ["app=checkout", "tier=web"]  # label selectors (all pairs must match)
    namespaces = ["shop"]
    toxiproxy = ["http://127.0.0.1:8474"]

    AFTERSHOCK_ALLOW_CONTAINERS="^checkout-,^api$"   (comma separated)
    AFTERSHOCK_ALLOW_LABELS="app=checkout;tier=web"  (semicolon separated selectors)
    AFTERSHOCK_ALLOW_NAMESPACES="shop"
    AFTERSHOCK_ALLOW_TOXIPROXY="http://127.0.0.1:8474"

An empty allowlist means "only what the experiment names explicitly": container
``names``, a Kubernetes ``kind``+``name``, a Toxiproxy proxy on a named server,
and processes aftershock starts itself. Selection by labels or patterns then
needs an allowlist entry covering every container it matches.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aftershock.errors import ConfigError

if TYPE_CHECKING:
    # The document model loads when a target is checked, so commands that only
    # read settings (``--help``, ``lever``, ``history``) start without it.
    from aftershock.model.targets import DockerTarget, TargetSpec

__all__ = ["Allowlist", "Settings", "default_home", "load_settings"]


def _parse_selector(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            msg = f"invalid label selector {text!r}: expected key=value[,key=value]"
            raise ConfigError(msg)
        pairs[key.strip()] = value.strip()
    return pairs


@dataclass(frozen=True, slots=True, kw_only=True)
class Allowlist:
    """The blast radius: which containers, namespaces and proxies may be touched."""

    containers: tuple[str, ...] = ()
    """Regexes matched (``re.search``) against container and process names."""
    labels: tuple[Mapping[str, str], ...] = ()
    """Label selectors; a container matching any one of them is allowed."""
    namespaces: tuple[str, ...] = ()
    """Kubernetes namespaces that may be touched."""
    toxiproxy: tuple[str, ...] = ()
    """Toxiproxy API URLs that may be touched (``embedded`` is always allowed)."""

    @property
    def empty(self) -> bool:
        """True when nothing is listed: only explicitly named targets are allowed."""
        return not (self.containers or self.labels or self.namespaces or self.toxiproxy)

    def allows_container(self, name: str, labels: Mapping[str, str], *, named: bool) -> bool:
        """May this container be touched? ``named`` = the target lists it by exact name."""
        if not (self.containers or self.labels):
            return named
        if any(re.search(pattern, name) for pattern in self.containers):
            return True
        return any(all(labels.get(k) == v for k, v in selector.items()) for selector in self.labels)

    def allows_namespace(self, namespace: str, *, named: bool) -> bool:
        """May objects in this namespace be touched?"""
        if not self.namespaces:
            return named
        return namespace in self.namespaces

    def allows_toxiproxy(self, api: str) -> bool:
        """May this Toxiproxy server be touched?"""
        if api == "embedded" or not self.toxiproxy:
            return True
        return api.rstrip("/") in {u.rstrip("/") for u in self.toxiproxy}

    def refusal(self, target: TargetSpec) -> str | None:
        """Why a target is outside the allowlist at validation time, or ``None``."""
        from aftershock.model.targets import DockerTarget, KubernetesTarget, ToxiproxyTarget

        body = target.body
        if isinstance(body, ToxiproxyTarget) and not self.allows_toxiproxy(body.api):
            return f"Toxiproxy server {body.api} is not in the allowlist"
        if isinstance(body, KubernetesTarget) and body.kind != "Node":
            named = body.selector is None and body.name is not None
            if not self.allows_namespace(body.namespace, named=named):
                return f"namespace {body.namespace!r} is not in the allowlist"
        if isinstance(body, DockerTarget):
            return self._docker_refusal(body)
        return None

    def _docker_refusal(self, body: DockerTarget) -> str | None:
        selecting = bool(body.labels or body.pattern)
        if not (self.containers or self.labels):
            if selecting:
                return (
                    "selection by labels or pattern needs an allowlist "
                    "(AFTERSHOCK_ALLOW_CONTAINERS or AFTERSHOCK_ALLOW_LABELS)"
                )
            return None
        # Labels of a named container are only known at run time; with label rules in the
        # allowlist the driver decides then. With name patterns only, decide now.
        refused = (
            []
            if self.labels
            else [n for n in body.names if not self.allows_container(n, {}, named=True)]
        )
        if refused:
            return f"container(s) {', '.join(refused)} not in the allowlist"
        if body.labels and not body.names and not body.pattern:
            # A label selector is acceptable when it is at least as narrow as an allowed one.
            narrow = any(
                all(body.labels.get(k) == v for k, v in sel.items()) for sel in self.labels
            )
            if not narrow and not self.containers:
                return f"label selector {body.labels} is wider than every allowed selector"
        return None


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$AFTERSHOCK_HOME``, else ``$XDG_STATE_HOME/aftershock``, else ``~/.local/state/...``."""
    env = os.environ if environ is None else environ
    if env.get("AFTERSHOCK_HOME"):
        return Path(env["AFTERSHOCK_HOME"])
    state = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "aftershock"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the controller process is configured with."""

    home: Path = field(default_factory=default_home)
    """Where journals, the SQLite ledger and healer state live."""
    allow: Allowlist = field(default_factory=Allowlist)
    """The blast-radius allowlist."""

    @property
    def journal_dir(self) -> Path:
        """One JSON-lines fault journal per run lives here."""
        return self.home / "journal"


def _split(value: str, sep: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(sep) if part.strip())


def _strings(data: Mapping[str, object], key: str, source: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        msg = f"{source}: allow.{key} must be a list of strings"
        raise ConfigError(msg)
    return tuple(value)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings file (if any) and the environment; raise ``ConfigError``."""
    env = os.environ if environ is None else environ
    home = default_home(env)
    path = Path(env.get("AFTERSHOCK_CONFIG") or home / "config.toml")
    data: Mapping[str, object] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            msg = f"{path}: cannot read settings: {exc}"
            raise ConfigError(msg) from exc
    elif env.get("AFTERSHOCK_CONFIG"):
        msg = f"{path}: settings file not found (AFTERSHOCK_CONFIG)"
        raise ConfigError(msg)
    allow = data.get("allow", {})
    if not isinstance(allow, dict):
        msg = f"{path}: [allow] must be a table"
        raise ConfigError(msg)
    source = str(path)
    containers = _strings(allow, "containers", source)
    labels = _strings(allow, "labels", source)
    namespaces = _strings(allow, "namespaces", source)
    toxiproxy = _strings(allow, "toxiproxy", source)
    if "AFTERSHOCK_ALLOW_CONTAINERS" in env:
        containers = _split(env["AFTERSHOCK_ALLOW_CONTAINERS"], ",")
    if "AFTERSHOCK_ALLOW_LABELS" in env:
        labels = _split(env["AFTERSHOCK_ALLOW_LABELS"], ";")
    if "AFTERSHOCK_ALLOW_NAMESPACES" in env:
        namespaces = _split(env["AFTERSHOCK_ALLOW_NAMESPACES"], ",")
    if "AFTERSHOCK_ALLOW_TOXIPROXY" in env:
        toxiproxy = _split(env["AFTERSHOCK_ALLOW_TOXIPROXY"], ",")
    for pattern in containers:
        try:
            re.compile(pattern)
        except re.error as exc:
            msg = f"allowlist pattern {pattern!r} is not a valid regex: {exc}"
            raise ConfigError(msg) from exc
    return Settings(
        home=home,
        allow=Allowlist(
            containers=containers,
            labels=tuple(_parse_selector(s) for s in labels),
            namespaces=namespaces,
            toxiproxy=toxiproxy,
        ),
    )
