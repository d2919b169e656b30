"""The libyaml shortcut reads every text exactly as PyYAML's Python parser does.

``compose_documents`` takes libyaml's events when it can and the Python parser
otherwise; ``fast_path=False`` is the Python parser alone. Whatever the text,
both must give the same documents, values, marks, problems and error.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from aftershock.loading.composing import fast_loader
from aftershock.loading.yamltree import compose_documents

ROOT = Path(__file__).resolve().parents[3]
FILES = sorted(p for folder in ("experiments", "deploy") for p in (ROOT / folder).rglob("*.y*ml"))
ENV = {"PORT": "8080", "TOKEN": "s3cret"}

#: Texts where libyaml and PyYAML's scanner or parser differ, or that exercise the composer.
TRICKY = [
    "a: 1\n\tb: 2\n",  # a tab where PyYAML refuses it
    "{a: b}\t\n",
    "a: x\x85b: y\n",  # NEL: a line break to PyYAML's scanner
    "a: x\u2028b: y\n",
    "a: \ufeffb\n",
    "{a: }\n",  # an empty value: libyaml marks it a column later
    "[a, , b]\n",
    "a:\nb: 2\n",
    "{a: b?c}\n",  # libyaml accepts ? inside a flow plain scalar
    "url: http://127.0.0.1:8080/health?full=1\n",
    "a: &x [1, 2]\nb: *x\nc: *y\n",
    "a: &x [*x]\n",
    "base: &b {p: 1}\nuse: {<<: *b, q: 2}\n",
    "- !!str 3\n- !!int x\n- !!python/object:os.system {}\n",
    "a: 1\na: 2\n",
    "a: ${PORT}\nb: ${secret:TOKEN}\nc: ${MISSING}\n",
    "%YAML 1.1\n---\na: 1\n...\n---\nb: [1, {c: d}]\n",
    "a: 'it''s'\nb: \"tab\\tand \\u00e9\"\nc: |\n  lit\n  eral\nd: >-\n  fold\n  ed\n",
    "a: [1, 2\nb: 3\n",
    "key: value: other\n",
    "[" * 80 + "]" * 80 + "\n",
    "a:\r\n  b: 1\r\n  c: [x, y]\r\n",
    "? complex\n: key\n",
]


def _summary(text: str, *, fast_path: bool) -> tuple[Any, ...]:
    documents, error = compose_documents(text, ENV, fast_path=fast_path)
    docs = [
        (
            repr(d.data),
            d.line,
            d.marks,
            d.key_marks,
            [(p.message, p.line, p.column, p.path) for p in d.problems],
        )
        for d in documents
    ]
    return docs, None if error is None else (error.message, error.line, error.column, error.path)


def _same(text: str) -> None:
    assert _summary(text, fast_path=True) == _summary(text, fast_path=False), repr(text)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_repository_documents_read_the_same(path: Path) -> None:
    _same(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_texts_read_the_same(text: str) -> None:
    _same(text)


def test_mutated_documents_read_the_same() -> None:
    """Characters that matter to YAML, inserted, deleted and replaced in real documents."""
    rng = random.Random(20261204)
    alphabet = list(":-[]{},#&*!|>\"'\t \n%@`?<.\\~=0aZ\u00e9\u2028\x85\ufeff\r")
    sources = [p.read_text(encoding="utf-8") for p in FILES[:8]] + TRICKY
    for _ in range(400):
        chars = list(rng.choice(sources))
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(chars) + 1)
            op = rng.random()
            if op < 0.4:
                chars.insert(at, rng.choice(alphabet))
            elif chars:
                at = min(at, len(chars) - 1)
                if op < 0.7:
                    del chars[at]
                else:
                    chars[at] = rng.choice(alphabet)
        _same("".join(chars))


def test_the_shortcut_is_taken_for_plain_documents() -> None:
    """Not vacuous: an ordinary experiment goes through libyaml, a tab does not."""
    text = (ROOT / "experiments" / "toxiproxy-latency.yaml").read_text(encoding="utf-8")
    loader = fast_loader(text)
    assert loader is not None
    assert type(loader).__module__ == "aftershock.loading.libyaml"
    loader.dispose()
    assert fast_loader(text.replace("  ", "\t", 1)) is None
