"""``configuration`` and ``secrets`` as ``${VAR}`` / ``${VAR:-default}`` / ``${secret:NAME}``."""

import pytest

from aftershock.importing.refs import References
from aftershock.model.secrets import Secret


def url_of(ctk, url, env=None, **extra):
    probe = ctk.http_probe(200)
    probe["provider"]["url"] = url
    result = ctk(ctk.experiment([], probes=[probe], **extra))
    return result, ctk.load(result, env).spec.probes["health"].http.url


def test_env_configuration_becomes_a_variable(ctk) -> None:
    config = {"base": {"type": "env", "key": "BASE_URL"}}
    result, url = url_of(
        ctk, "${base}/health", {"BASE_URL": "http://127.0.0.1:9"}, configuration=config
    )
    assert "${BASE_URL}/health" in result.yaml
    assert url == "http://127.0.0.1:9/health"


def test_an_env_default_is_kept(ctk) -> None:
    config = {"base": {"type": "env", "key": "BASE_URL", "default": "http://127.0.0.1:7"}}
    result, url = url_of(ctk, "${base}/", configuration=config)
    assert "${BASE_URL:-http://127.0.0.1:7}/" in result.yaml
    assert url == "http://127.0.0.1:7/"


def test_literal_configuration_is_written_in_place(ctk) -> None:
    config = {"host": "127.0.0.1", "port": 8081}
    result, url = url_of(ctk, "http://${host}:$port/x", configuration=config)
    assert result.warnings[-1].message.startswith("no method step")  # nothing else
    assert url == "http://127.0.0.1:8081/x"


def test_an_unknown_name_stays_literal_and_is_reported(ctk) -> None:
    result, url = url_of(ctk, "http://127.0.0.1/${nothing}")
    assert url == "http://127.0.0.1/${nothing}"
    assert any("${nothing} names no configuration" in m for m in ctk.messages(result))


def test_dollar_dollar_and_literal_braces(ctk) -> None:
    _, url = url_of(ctk, "http://127.0.0.1/$$x?a=${{b}")
    assert url == "http://127.0.0.1/$x?a=${{b}"


def test_env_secrets_become_secret_references(ctk) -> None:
    secrets = {"api": {"token": {"type": "env", "key": "TOKEN"}}}
    probe = ctk.http_probe(200, headers={"X-Token": "${token}"})
    result = ctk(ctk.experiment([], probes=[probe], secrets=secrets))
    assert "${secret:TOKEN}" in result.yaml
    header = ctk.load(result).spec.probes["health"].http.headers["X-Token"]
    assert isinstance(header, Secret)
    assert header.reveal() == "s3cret"


def test_inline_and_vault_secrets_are_read_from_the_environment(ctk) -> None:
    secrets = {"db": {"password": "hunter2", "key": {"type": "vault", "path": "secret/x"}}}
    probe = ctk.http_probe(200, headers={"A": "${password}", "B": "${key}"})
    result = ctk(ctk.experiment([], probes=[probe], secrets=secrets))
    assert "hunter2" not in result.yaml.split("apiVersion")[1]
    assert "${secret:DB_PASSWORD}" in result.yaml
    assert "${secret:DB_KEY}" in result.yaml
    messages = ctk.messages(result)
    assert any("inline secret" in m and "DB_PASSWORD" in m for m in messages)
    assert any("Vault secret" in m for m in messages)
    env = {"DB_PASSWORD": "p", "DB_KEY": "k"}
    headers = ctk.load(result, env).spec.probes["health"].http.headers
    assert (headers["A"].reveal(), headers["B"].reveal()) == ("p", "k")


def test_configuration_wins_over_secrets_like_chaos_toolkit(ctk) -> None:
    refs = References({"name": "config"}, {"scope": {"name": "secret"}})
    assert refs.text("${name}").text == "config"


@pytest.mark.parametrize(
    ("configuration", "problem"),
    [
        ({"x": {"type": "env", "key": "not a name"}}, "not a variable name"),
        ({"x": {"type": "probe"}}, "of type 'probe' is not translated"),
        ({"x": {"nested": [1]}}, "structured configuration value"),
    ],
)
def test_configuration_that_cannot_be_a_reference_is_reported(ctk, configuration, problem) -> None:
    result, url = url_of(ctk, "http://127.0.0.1/${x}", configuration=configuration)
    assert any(problem in m for m in ctk.messages(result)), ctk.messages(result)
    assert url == "http://127.0.0.1/${x}"


def test_a_default_with_a_brace_cannot_be_kept(ctk) -> None:
    config = {"x": {"type": "env", "key": "X", "default": "a}b"}}
    result, _ = url_of(ctk, "http://127.0.0.1/${x}", {"X": "y"}, configuration=config)
    assert any("default of X" in m for m in ctk.messages(result))


def test_the_header_lists_every_reference(ctk) -> None:
    config = {"a": {"type": "env", "key": "A", "default": 1}, "b": "literal"}
    result, _ = url_of(ctk, "http://127.0.0.1/", configuration=config)
    header = result.yaml.split("apiVersion:")[0]
    assert "#   a = ${A:-1}" in header
    assert "#   b = 'literal'" in header


def test_yaml_strings_come_through_exactly_as_written(ctk) -> None:
    text = (
        'title: "costs ${x and $${y}"\n'
        'description: "$${z}"\n'
        "method: []\n"
        "steady-state-hypothesis:\n"
        "  title: h\n"
        "  probes:\n"
        "    - {type: probe, name: p, tolerance: 200,\n"
        '       provider: {type: http, url: "http://127.0.0.1/a?$${q}"}}\n'
    )
    result = ctk(text, name="exp.yaml")
    spec = ctk.load(result).spec
    assert spec.description == "costs ${x and $${y} — $${z}"
    # In a Chaos Toolkit string "$$" is one dollar, so "$${q}" is the text "${q}".
    assert spec.probes["p"].http.url == "http://127.0.0.1/a?${q}"
