"""Hypothesis probes and every tolerance kind, as probes and steady-state checks."""

from datetime import timedelta

import pytest

from aftershock.model.jsonpath import parse


def one_probe(ctk, probe, env=None):
    result = ctk(ctk.experiment([], probes=[probe]))
    spec = ctk.load(result, env).spec
    (name,) = spec.probes
    checks = [c for c in spec.steady_state if c.probe == name]
    return result, spec.probes[name], (checks[0] if checks else None)


@pytest.mark.parametrize(("tolerance", "codes"), [(200, [200]), ([200, 204], [200, 204])])
def test_status_codes_are_the_probe_status_and_the_check(ctk, tolerance, codes) -> None:
    result, probe, check = one_probe(ctk, ctk.http_probe(tolerance))
    assert probe.http.status == codes
    assert check.expect.status == codes
    assert (check.over, probe.every) == (timedelta(seconds=3), timedelta(seconds=1))
    assert [w for w in result.warnings if "placeholder" not in w.message] == []


def test_a_status_range_is_a_set_of_codes(ctk) -> None:
    tolerance = {"type": "range", "range": [200, 204], "target": "status"}
    _, probe, check = one_probe(ctk, ctk.http_probe(tolerance))
    assert check.expect.status == [200, 201, 202, 203, 204] == probe.http.status


def test_a_body_regex(ctk) -> None:
    tolerance = {"type": "regex", "pattern": "^ok$", "target": "body"}
    _, _, check = one_probe(ctk, ctk.http_probe(tolerance))
    assert check.expect.body.regex == "^ok$"


@pytest.mark.parametrize(
    ("tolerance", "path", "equals"),
    [
        (
            {"type": "jsonpath", "path": "$.status", "target": "body", "expect": "up"},
            "$.status",
            "up",
        ),
        ({"type": "jsonpath", "path": "$.body.db.ok", "expect": [True]}, "$.db.ok", True),
        ({"type": "jsonpath", "path": '$.body["a b"][0]'}, "$['a b'][0]", None),
        ({"type": "jsonpath", "path": "$.body.n", "count": 1}, "$.n", None),
    ],
)
def test_a_jsonpath_on_the_body(ctk, tolerance, path, equals) -> None:
    _, _, check = one_probe(ctk, ctk.http_probe(tolerance))
    assert check.expect.body.json_path == path
    assert parse(path)  # within the subset aftershock evaluates
    assert check.expect.body.equals == equals


@pytest.mark.parametrize(
    ("tolerance", "reason"),
    [
        (True, "never equals an HTTP probe's value"),
        ("ok", "never equals an HTTP probe's value"),
        ({"type": "regex", "pattern": "ok"}, "needs target: body"),
        ({"type": "jsonpath", "path": "$.items[*].id", "target": "body"}, "uses more than"),
        ({"type": "jsonpath", "path": "$.body.a", "count": 0}, "count is not translated"),
        ({"type": "jsonpath", "path": "$.body.a", "expect": [1, 2]}, "several values"),
        ({"type": "range", "range": [0.1, 0.5], "target": "body"}, "only with target: status"),
        ({"type": "probe", "provider": {"type": "python"}}, "has no aftershock check"),
        ([99, 700], "not an HTTP status"),
    ],
)
def test_tolerances_without_a_check_leave_the_probe_unchecked(ctk, tolerance, reason) -> None:
    result, probe, check = one_probe(ctk, ctk.http_probe(tolerance))
    assert check is None
    assert probe.http is not None
    assert any(reason in m and "tolerance not translated" in m for m in ctk.messages(result))


def test_http_provider_options(ctk) -> None:
    probe = ctk.http_probe(
        200,
        method="post",
        headers={"Authorization": "Bearer ${token}"},
        arguments={"q": "a b"},
        timeout=[1, 2.5],
        verify_tls=False,
    )
    secrets = {"api": {"token": {"type": "env", "key": "TOKEN"}}}
    result = ctk(ctk.experiment([], probes=[probe], secrets=secrets))
    spec = ctk.load(result).spec
    http = spec.probes["health"].http
    assert http.method == "POST"
    assert http.body == "q=a+b"
    assert http.headers["Authorization"].reveal() == "Bearer s3cret"
    assert http.timeout == timedelta(seconds=3.5)
    assert any("verify_tls" in m for m in ctk.messages(result))


def test_get_arguments_are_the_query_string(ctk) -> None:
    _, probe, _ = one_probe(ctk, ctk.http_probe(200, arguments={"x": "1"}))
    assert probe.http.url == "http://127.0.0.1:8080/health?x=1"


def process_probe(tolerance, arguments=None):
    probe = {
        "type": "probe",
        "name": "cmd",
        "tolerance": tolerance,
        "provider": {"type": "process", "path": "grep", "timeout": 2},
    }
    if arguments is not None:
        probe["provider"]["arguments"] = arguments
    return probe


@pytest.mark.parametrize(
    ("arguments", "argv"),
    [
        ("-q 'a b' file", ["grep", "-q", "a b", "file"]),
        (["-c", "x"], ["grep", "-c", "x"]),
        ({"-e": "x", "file": ""}, ["grep", "-e", "x", "file"]),
        (None, ["grep"]),
    ],
)
def test_process_arguments_become_argv(ctk, arguments, argv) -> None:
    _, probe, check = one_probe(ctk, process_probe(0, arguments))
    assert probe.command.command == argv
    assert probe.command.timeout == timedelta(seconds=2)
    assert (probe.command.exit_code, check.expect.success_ratio.value) == (0, 1.0)


@pytest.mark.parametrize(
    ("tolerance", "field", "value"),
    [
        (1, "exit_code", 1),
        ([2], "exit_code", 2),
        ({"type": "range", "range": [3, 3], "target": "status"}, "exit_code", 3),
        ({"type": "regex", "pattern": "ready", "target": "stdout"}, "stdout", "ready"),
    ],
)
def test_process_tolerances(ctk, tolerance, field, value) -> None:
    _, probe, check = one_probe(ctk, process_probe(tolerance, "-q x f"))
    assert getattr(probe.command, field) == value
    assert check is not None


def test_shell_syntax_is_not_translated(ctk) -> None:
    result = ctk(ctk.experiment([], probes=[process_probe(0, "x < file | wc -l")]))
    assert any("shell syntax" in m for m in ctk.messages(result))
    assert "steadyState: []" in result.yaml


@pytest.mark.parametrize(("tolerance", "code"), [(True, 0), (False, 1)])
def test_os_path_exists_is_test_e(ctk, tolerance, code) -> None:
    probe = {
        "type": "probe",
        "name": "pid",
        "tolerance": tolerance,
        "provider": {
            "type": "python",
            "module": "os.path",
            "func": "exists",
            "arguments": {"path": "app.pid"},
        },
    }
    _, spec_probe, check = one_probe(ctk, probe)
    assert spec_probe.command.command == ["test", "-e", "app.pid"]
    assert spec_probe.command.exit_code == code
    assert check is not None


def test_other_python_probes_are_comments_where_they_were(ctk) -> None:
    probe = {
        "type": "probe",
        "name": "k8s",
        "tolerance": True,
        "provider": {"type": "python", "module": "chaosk8s.probes", "func": "all_healthy"},
    }
    result = ctk(ctk.experiment([], probes=[ctk.http_probe(), probe]))
    lines = result.yaml.splitlines()
    at = next(i for i, line in enumerate(lines) if "chaosk8s.probes.all_healthy" in line)
    assert lines[at].lstrip().startswith("# steady-state-hypothesis.probes[1]")
    assert lines.index("  method:") > at > lines.index("  steadyState:")
    assert len(ctk.load(result).spec.steady_state) == 1


def test_a_hypothesis_probe_without_tolerance_is_reported(ctk) -> None:
    probe = ctk.http_probe()
    del probe["tolerance"]
    result = ctk(ctk.experiment([], probes=[probe]))
    assert any("without a tolerance" in m for m in ctk.messages(result))
