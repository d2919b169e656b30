"""Input that is not a Chaos Toolkit experiment: located refusals, never a traceback."""

import json
import random
from pathlib import Path

import pytest

from aftershock.importing import NotChaosToolkit, import_chaostoolkit


def refused(raw: bytes, name: str = "in.json") -> list[str]:
    with pytest.raises(NotChaosToolkit) as caught:
        import_chaostoolkit(raw, name)
    problems = caught.value.problems
    assert problems
    for problem in problems:
        assert problem.file == name
        assert problem.line >= 1
        assert problem.column >= 1
        assert str(problem).isprintable()
    return [str(p) for p in problems]


@pytest.mark.parametrize(
    ("raw", "name", "expected"),
    [
        (
            b"[1, 2]",
            "in.json",
            "in.json:1:1: not a Chaos Toolkit experiment: the document is a list",
        ),
        (b"just text\n", "in.yaml", "the document is a string"),
        (b"", "in.yaml", "no document in file"),
        (b'{"method": []}', "in.json", "title must be a non-empty string"),
        (b"title: t\nmethod: {}\n", "in.yaml", "in.yaml:2:1: method: not a Chaos Toolkit"),
        (b"title: t\n", "in.yaml", "method must be a list of activities"),
        (
            b"apiVersion: aftershock.dev/v1alpha1\nkind: Experiment\n",
            "in.yaml",
            "already an aftershock",
        ),
        (b'{"title": "t", "method": [}', "in.json", "in.json:1:27: JSON syntax error"),
        (b'{"title": "t", "title": "u", "method": []}', "in.json", "duplicate key 'title'"),
        (b'{"title": "t", "method": [NaN]}', "in.json", "NaN is not a JSON number"),
        (b"title: t\nmethod: []\n---\ntitle: u\nmethod: []\n", "in.yaml", "2 documents"),
        (b"title: [unclosed\n", "in.yaml", "YAML syntax error"),
    ],
)
def test_not_an_experiment_is_refused_with_a_location(raw, name, expected) -> None:
    problems = refused(raw, name)
    assert any(expected in p for p in problems), problems


def test_garbage_bytes_are_located() -> None:
    (problem,) = refused(b'{"title": "t",\n "x": "\xff\xfe"}', "bin.json")
    assert problem == "bin.json:2:8: file is not valid UTF-8 (byte 0xff)"


def test_a_yaml_alias_bomb_is_refused_not_expanded() -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(10))}]" for i in range(1, 9)]
    bomb = "\n".join(lines) + "\ntitle: t\nmethod: [*a8]\n"
    (problem,) = refused(bomb.encode(), "bomb.yaml")
    assert "alias expansion bomb" in problem


def test_deep_json_is_refused() -> None:
    deep = '{"title": "t", "method": ' + "[" * 200_000 + "]" * 200_000 + "}"
    (problem,) = refused(deep.encode(), "deep.json")
    assert "nest" in problem


def test_control_characters_in_the_input_never_reach_the_terminal_or_the_file() -> None:
    action = {"type": "action", "name": "\x1b[2J\u202e", "provider": {"type": "process"}}
    doc = {"title": "t\x1b]0;x\x07", "method": [action], "\x1b[31mkey": 1}
    result = import_chaostoolkit(json.dumps(doc).encode(), "x.json")
    for warning in result.warnings:
        assert str(warning).isprintable(), str(warning)
    assert "\x1b" not in result.yaml
    assert "\u202e" not in result.yaml


def test_a_lone_surrogate_is_replaced_and_reported() -> None:
    doc = {"title": "t", "method": [], "description": "\ud800"}
    raw = json.dumps(doc).encode()  # ensure_ascii keeps the escape
    result = import_chaostoolkit(raw, "s.json")
    assert any("lone surrogate" in w.message for w in result.warnings)
    result.yaml.encode("utf-8")  # writable as UTF-8


def test_tab_indented_json_keeps_locations() -> None:
    doc = '{\n\t"title": "t",\n\t"method": [\n\t\t{"type": "action", "name": "x",\n\t\t "provider": {"type": "http", "url": "http://127.0.0.1/"}}\n\t]\n}'
    result = import_chaostoolkit(doc.encode(), "tabs.json")
    warning = next(w for w in result.warnings if w.path == "method[0]")
    assert (warning.line, warning.column) == (4, 3)


def test_mutated_examples_import_or_are_refused_with_a_location() -> None:
    examples = Path(__file__).resolve().parents[4] / "shared" / "ctk-examples"
    files = sorted(p for p in examples.iterdir() if p.suffix in (".json", ".yaml", ".yml"))
    rnd = random.Random(20261204)
    pieces = [b"&a ", b"*a", b"<<: ", b"!!python/object ", b"\\U0011FFFF", b"${", b'"\\ud800"']
    for _ in range(400):
        path = rnd.choice(files)
        raw = bytearray(path.read_bytes())
        for _ in range(rnd.randint(1, 4)):
            at = rnd.randrange(len(raw) or 1)
            roll = rnd.random()
            if roll < 0.3 and raw:
                del raw[at:]
            elif roll < 0.6 and raw:
                raw[at] = rnd.choice(b'{}[]:,"\t\n &*!|>-#$\x00\xff')
            else:
                raw[at:at] = rnd.choice(pieces)
        located = True
        try:
            import_chaostoolkit(bytes(raw), path.name).yaml.encode("utf-8")
        except NotChaosToolkit as exc:
            located = all(p.line >= 1 and p.column >= 1 for p in exc.problems)
        assert located
