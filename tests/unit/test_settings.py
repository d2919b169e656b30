"""Controller settings and the blast-radius allowlist at validation time."""

from pathlib import Path

import pytest

from aftershock.errors import ConfigError
from aftershock.loading import load_text
from aftershock.settings import Allowlist, load_settings

DOC = """\
apiVersion: aftershock.dev/v1alpha1
kind: Experiment
metadata: {{name: a}}
spec:
  targets:
    t: {target}
  method:
    - {{name: s, fault: {fault}, target: t}}
"""


def problems(target: str, fault: str, allow: Allowlist) -> list[str]:
    _, found = load_text(DOC.format(target=target, fault=fault), "a.yaml", env={}, allowlist=allow)
    return [f"{p.line}:{p.path}: {p.message}" for p in found]


def test_named_containers_pass_an_empty_allowlist_but_selectors_do_not() -> None:
    assert problems("{docker: {names: [api]}}", "docker.kill", Allowlist()) == []
    refused = problems("{docker: {labels: {app: web}}}", "docker.kill", Allowlist())
    expected = (
        "6:spec.targets.t: refused by the allowlist: selection by labels or pattern needs an "
        "allowlist (AFTERSHOCK_ALLOW_CONTAINERS or AFTERSHOCK_ALLOW_LABELS)"
    )
    assert refused == [expected]


def test_a_container_outside_the_name_patterns_fails_validation() -> None:
    allow = Allowlist(containers=("^checkout-",))
    assert problems("{docker: {names: [checkout-1]}}", "docker.kill", allow) == []
    assert (
        "not in the allowlist" in problems("{docker: {names: [billing]}}", "docker.kill", allow)[0]
    )


def test_a_wider_label_selector_is_refused() -> None:
    allow = Allowlist(labels=({"app": "checkout", "tier": "web"},))
    assert (
        problems("{docker: {labels: {app: checkout, tier: web, x: y}}}", "docker.kill", allow) == []
    )
    assert "wider" in problems("{docker: {labels: {app: checkout}}}", "docker.kill", allow)[0]


def test_namespaces_and_toxiproxy_servers() -> None:
    allow = Allowlist(namespaces=("shop",), toxiproxy=("http://127.0.0.1:8474",))
    assert (
        problems("{kubernetes: {namespace: shop, selector: app=x}}", "k8s.deletePod", allow) == []
    )
    assert (
        "namespace 'prod'"
        in problems("{kubernetes: {namespace: prod, selector: app=x}}", "k8s.deletePod", allow)[0]
    )
    assert problems("{kubernetes: {kind: Node, name: n1}}", "k8s.cordon", allow) == []
    assert problems("{toxiproxy: {api: embedded, proxy: p}}", "toxiproxy.down", allow) == []
    assert (
        "not in the allowlist"
        in problems(
            "{toxiproxy: {api: 'http://10.0.0.1:8474', proxy: p}}", "toxiproxy.down", allow
        )[0]
    )


def test_settings_from_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[allow]\ncontainers = ["^api$"]\nlabels = ["app=a,tier=b"]\n')
    settings = load_settings(
        {"AFTERSHOCK_HOME": str(tmp_path), "AFTERSHOCK_ALLOW_NAMESPACES": "shop, ops"}
    )
    assert settings.home == tmp_path
    assert settings.allow.containers == ("^api$",)
    assert settings.allow.labels == ({"app": "a", "tier": "b"},)
    assert settings.allow.namespaces == ("shop", "ops")
    assert settings.journal_dir == tmp_path / "journal"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[allow]\ncontainers = 3\n", "must be a list"),
        ("[allow\n", "cannot read"),
        ('[allow]\ncontainers = ["("]\n', "not a valid regex"),
    ],
)
def test_bad_settings_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings({"AFTERSHOCK_HOME": str(tmp_path)})


def test_a_missing_explicit_settings_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings({"AFTERSHOCK_CONFIG": str(tmp_path / "nope.toml")})
