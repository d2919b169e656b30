"""Load documents from files: read, parse, substitute, validate, cross-check, locate.

Every problem in a file is reported at once, each as ``file:line:col: path:
message``; nothing here lets a traceback reach the user for bad input.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from aftershock.errors import ExperimentInvalid, Problem
from aftershock.loading.problems import format_path, translate
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

MAX_FILE_BYTES: Final = 1024 * 1024
_SUFFIXES: Final = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    """A valid document and where it came from."""

    source: str
    line: int
    document: Experiment | HealingPolicy

    @property
    def name(self) -> str:
        """``metadata.name``."""
        return self.document.metadata.name


def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        message = f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})"
        raise ExperimentInvalid(
            [Problem(file=source, line=line, column=column, path="", message=message)]
        ) from None


def _validate(
    located: Located, source: str, allowlist: Allowlist | None
) -> tuple[Experiment | HealingPolicy | None, list[Problem]]:
    def problem(path: tuple[str | int, ...], message: str) -> Problem:
        line, column = located.mark(path)
        return Problem(
            file=source, line=line, column=column, path=format_path(path), message=message
        )

    problems = [
        Problem(
            file=source, line=p.line, column=p.column, path=format_path(p.path), message=p.message
        )
        for p in located.problems
    ]
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
        problems.append(
            Problem(
                file=source,
                line=error.line,
                column=error.column,
                path=format_path(error.path),
                message=error.message,
            )
        )
    elif not located_docs:
        return [], [Problem(file=source, line=1, column=1, path="", message="no documents in file")]
    documents: list[LoadedDocument] = []
    for located in located_docs:
        document, found = _validate(located, source, allowlist)
        problems.extend(found)
        if document is not None:
            documents.append(LoadedDocument(source, located.line, document))
    problems.extend(_duplicate_names(documents, source))
    return documents, sorted(problems, key=lambda p: (p.line, p.column))


def _duplicate_names(documents: Sequence[LoadedDocument], source: str) -> Iterable[Problem]:
    seen: set[tuple[str, str]] = set()
    for loaded in documents:
        key = (loaded.document.kind, loaded.name)
        if key in seen:
            yield Problem(
                file=source,
                line=loaded.line,
                column=1,
                path="metadata.name",
                message=f"duplicate {key[0]} name {key[1]!r} in this file",
            )
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


def _load_one(
    path: Path, env: Mapping[str, str] | None, allowlist: Allowlist | None
) -> tuple[list[LoadedDocument], list[Problem]]:
    source = str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return [], [
            Problem(
                file=source,
                line=0,
                column=0,
                path="",
                message=f"cannot read: {exc.strerror or exc}",
            )
        ]
    if len(raw) > MAX_FILE_BYTES:
        return [], [
            Problem(file=source, line=0, column=0, path="", message="file is larger than 1 MiB")
        ]
    try:
        text = _decode(raw, source)
    except ExperimentInvalid as exc:
        return [], exc.problems
    documents, problems = load_text(text, source, env=env, allowlist=allowlist)
    for loaded in documents:
        problems.extend(_check_closed_loop(loaded, path, env))
    valid = [
        d
        for d in documents
        if not any(p.line == d.line and p.path.startswith("spec.") for p in problems)
    ]
    return valid, problems


def policy_path(experiment_file: str | os.PathLike[str], reference: str) -> Path:
    """Where an experiment's ``healingPolicy`` file is: relative to the experiment file."""
    ref = Path(reference)
    return ref if ref.is_absolute() else Path(experiment_file).parent / ref


def _check_closed_loop(
    loaded: LoadedDocument, path: Path, env: Mapping[str, str] | None
) -> list[Problem]:
    doc = loaded.document
    if not isinstance(doc, Experiment) or doc.spec.healing_policy is None:
        return []
    where = Problem(
        file=str(path), line=loaded.line, column=1, path="spec.healingPolicy", message=""
    )
    target = policy_path(path, doc.spec.healing_policy)
    if not target.is_file():
        return [replace(where, message=f"healing policy file {str(target)!r} not found")]
    documents, problems = _load_one_plain(target, env)
    if problems:
        return [
            replace(
                where,
                message=f"healing policy {str(target)!r} is invalid ({len(problems)} problem(s))",
            )
        ]
    policies = [d.document for d in documents if isinstance(d.document, HealingPolicy)]
    if not policies:
        return [replace(where, message=f"{str(target)!r} holds no HealingPolicy")]
    wanted = doc.spec.expect.healed_by
    names = sorted(b.name for p in policies for b in p.spec.playbooks)
    if wanted is not None and wanted not in names:
        return [
            replace(
                where,
                path="spec.expect.healedBy",
                message=f"no playbook {wanted!r} in {str(target)!r}; known: {', '.join(names)}",
            )
        ]
    return []


def _load_one_plain(
    path: Path, env: Mapping[str, str] | None
) -> tuple[list[LoadedDocument], list[Problem]]:
    try:
        raw = path.read_bytes()[: MAX_FILE_BYTES + 1]
        if len(raw) > MAX_FILE_BYTES:
            return [], [
                Problem(
                    file=str(path), line=0, column=0, path="", message="file is larger than 1 MiB"
                )
            ]
        return load_text(_decode(raw, str(path)), str(path), env=env)
    except (OSError, ExperimentInvalid) as exc:
        return [], [Problem(file=str(path), line=0, column=0, path="", message=str(exc))]


def collect_files(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[Problem]]:
    """Expand directories into their YAML files (recursively, sorted)."""
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
            if not found:
                problems.append(
                    Problem(
                        file=str(path),
                        line=0,
                        column=0,
                        path="",
                        message="no .yaml or .yml files in directory",
                    )
                )
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append(
                Problem(
                    file=str(path), line=0, column=0, path="", message="no such file or directory"
                )
            )
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
    return documents, problems
