"""Load documents from files: read, parse, substitute, validate, cross-check, locate.

Every problem in a file is reported at once, each as ``file:line:col: path:
message``; nothing here lets a traceback reach the user for bad input. Files
are read only through ``reading.read_source`` (regular files, bounded, never
blocking); a problem with a file as a whole (unreadable, too large, not a
regular file) is reported at line 1, column 1. Problems are built only by
``problems.make_problem``, which escapes what came from the input.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from aftershock.errors import ExperimentInvalid, Problem
from aftershock.loading.problems import make_problem, translate
from aftershock.loading.reading import MAX_FILE_BYTES, UnreadableFile, read_source
from aftershock.loading.yamltree import Located, compose_documents
from aftershock.model import DOCUMENT_ADAPTER, Experiment, HealingPolicy, check_document
from aftershock.settings import Allowlist

__all__ = [
    "MAX_FILE_BYTES",
    "LoadedDocument",
    "collect_files",
    "load_file",
    "load_paths",
    "load_text",
    "policy_path",
]

_SUFFIXES: Final = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    """A valid document and where it came from."""

    source: str
    line: int
    document: Experiment | HealingPolicy
    located: Located | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        """``metadata.name``."""
        return self.document.metadata.name

    def position(self, path: tuple[str | int, ...]) -> tuple[int, int]:
        """Line and column of a field of the document (its key), else of the document."""
        if self.located is None:
            return self.line, 1
        return self.located.mark(path)


def _file_problem(source: str, message: str) -> Problem:
    return make_problem(source, 1, 1, "", message)


def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        message = f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})"
        raise ExperimentInvalid([make_problem(source, line, column, "", message)]) from None


def _validate(
    located: Located, source: str, allowlist: Allowlist | None
) -> tuple[Experiment | HealingPolicy | None, list[Problem]]:
    def problem(path: tuple[str | int, ...], message: str) -> Problem:
        line, column = located.mark(path)
        return make_problem(source, line, column, path, message)

    problems = [make_problem(source, p.line, p.column, p.path, p.message) for p in located.problems]
    if not isinstance(located.data, dict):
        problems.append(
            problem((), "a document must be a mapping with apiVersion, kind, metadata and spec")
        )
        return None, problems
    try:
        document = DOCUMENT_ADAPTER.validate_python(located.data)
    except ValidationError as exc:
        problems.extend(problem(path, message) for path, message in translate(exc, located.data))
        return None, problems
    problems.extend(problem(path, message) for path, message in check_document(document))
    if allowlist is not None:
        for name, target in document.spec.targets.items():
            refusal = allowlist.refusal(target)
            if refusal:
                problems.append(
                    problem(("spec", "targets", name), f"refused by the allowlist: {refusal}")
                )
    return (None if problems else document), problems


def load_text(
    text: str,
    source: str,
    *,
    env: Mapping[str, str] | None = None,
    allowlist: Allowlist | None = None,
) -> tuple[list[LoadedDocument], list[Problem]]:
    """Load every document of ``text``; return the valid ones and every problem."""
    environ = os.environ if env is None else env
    located_docs, error = compose_documents(text, environ)
    problems: list[Problem] = []
    if error is not None:
        problems.append(make_problem(source, error.line, error.column, error.path, error.message))
    elif not located_docs:
        return [], [_file_problem(source, "no documents in file")]
    documents: list[LoadedDocument] = []
    for located in located_docs:
        document, found = _validate(located, source, allowlist)
        problems.extend(found)
        if document is not None:
            documents.append(LoadedDocument(source, located.line, document, located))
    problems.extend(_duplicate_names(documents, source))
    return documents, sorted(problems, key=lambda p: (p.line, p.column))


def _duplicate_names(documents: Sequence[LoadedDocument], source: str) -> Iterable[Problem]:
    seen: set[tuple[str, str]] = set()
    for loaded in documents:
        key = (loaded.document.kind, loaded.name)
        if key in seen:
            line, column = loaded.position(("metadata", "name"))
            message = f"duplicate {key[0]} name {key[1]!r} in this file"
            yield make_problem(source, line, column, "metadata.name", message)
        seen.add(key)


def load_file(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    allowlist: Allowlist | None = None,
) -> list[LoadedDocument]:
    """Load one file; raise ``ExperimentInvalid`` listing every problem."""
    documents, problems = _load_one(Path(path), env, allowlist)
    if problems:
        raise ExperimentInvalid(problems)
    return documents


def _load_bytes(
    raw: bytes, source: str, env: Mapping[str, str] | None, allowlist: Allowlist | None
) -> tuple[list[LoadedDocument], list[Problem]]:
    try:
        text = _decode(raw, source)
    except ExperimentInvalid as exc:
        return [], exc.problems
    return load_text(text, source, env=env, allowlist=allowlist)


def _load_one(
    path: Path, env: Mapping[str, str] | None, allowlist: Allowlist | None
) -> tuple[list[LoadedDocument], list[Problem]]:
    try:
        raw = read_source(path, MAX_FILE_BYTES)
    except UnreadableFile as exc:
        return [], [_file_problem(str(path), str(exc))]
    documents, problems = _load_bytes(raw, str(path), env, allowlist)
    valid: list[LoadedDocument] = []
    for loaded in documents:
        found = _check_closed_loop(loaded, path, env)
        problems.extend(found)
        if not found:
            valid.append(loaded)
    return valid, problems


def policy_path(experiment_file: str | os.PathLike[str], reference: str) -> Path:
    """Where an experiment's ``healingPolicy`` file is: relative to the experiment file."""
    ref = Path(reference)
    return ref if ref.is_absolute() else Path(experiment_file).parent / ref


def _check_closed_loop(
    loaded: LoadedDocument, path: Path, env: Mapping[str, str] | None
) -> list[Problem]:
    """The experiment's ``healingPolicy`` file loads, holds one policy, has ``healedBy``.

    Problems point at the ``healingPolicy`` key (or ``expect.healedBy``) in
    the experiment; an invalid policy's own problems follow, located in its file.
    """
    doc = loaded.document
    if not isinstance(doc, Experiment) or doc.spec.healing_policy is None:
        return []
    key = ("spec", "healingPolicy")

    def at(where: tuple[str, ...], message: str) -> Problem:
        line, column = loaded.position(where)
        return make_problem(str(path), line, column, ".".join(where), message)

    target = policy_path(path, doc.spec.healing_policy)
    name = repr(str(target))
    try:
        raw = read_source(target, MAX_FILE_BYTES)
    except UnreadableFile as exc:
        return [at(key, f"healing policy {name}: {exc}")]
    documents, problems = _load_bytes(raw, str(target), env, None)
    if problems:
        first = problems[0]
        message = (
            f"healing policy {name} is invalid: {len(problems)} problem(s), the first at "
            f"{first.file}:{first.line}:{first.column}"
        )
        return [at(key, message), *problems]
    policies = [d.document for d in documents if isinstance(d.document, HealingPolicy)]
    if len(policies) != 1:
        # ``run`` and the scheduler take the one policy of the file.
        return [at(key, f"{name} holds {len(policies)} HealingPolicy documents; expected one")]
    wanted = doc.spec.expect.healed_by
    names = sorted(b.name for p in policies for b in p.spec.playbooks)
    if wanted is not None and wanted not in names:
        message = f"no playbook {wanted!r} in {name}; known: {', '.join(names)}"
        return [at(("spec", "expect", "healedBy"), message)]
    return []


def collect_files(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[Problem]]:
    """Expand directories into their YAML files (recursively, sorted).

    Anything else named, and anything with a YAML suffix found in a directory
    that is not itself a directory (a FIFO, a socket, a dangling symlink), is
    returned as a file: reading it then reports exactly what is wrong with it.
    """
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and not p.is_dir())
            if not found:
                problems.append(_file_problem(str(path), "no .yaml or .yml files in directory"))
            files.extend(found)
        else:
            files.append(path)
    return files, problems


def load_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    allowlist: Allowlist | None = None,
) -> tuple[list[LoadedDocument], list[Problem]]:
    """Load files and directories; return the valid documents and every problem."""
    files, problems = collect_files(paths)
    documents: list[LoadedDocument] = []
    for file in files:
        found, file_problems = _load_one(file, env, allowlist)
        documents.extend(found)
        problems.extend(file_problems)
    # A policy's problems appear under its own file and under each experiment naming it.
    return documents, list(dict.fromkeys(problems))
