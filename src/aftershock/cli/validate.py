"""``aftershock validate`` and ``aftershock schema``.

The loader, the document model and the schema generators load when the command
runs: neither command needs a driver, the runtime or the other's modules.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer

from aftershock.cli.common import fail, os_reason, output_dir_problem
from aftershock.errors import ConfigError
from aftershock.settings import load_settings

__all__ = ["schema", "validate"]

EXIT_INVALID = 2


def validate(
    paths: Annotated[
        list[Path],
        # The loader reports an unreadable file as file:line:col like every other problem.
        typer.Argument(help="Files or directories of YAML documents.", readable=False),
    ],
    output: Annotated[
        Literal["text", "json"], typer.Option("--output", "-o", help="text or json.")
    ] = "text",
    no_allowlist: Annotated[
        bool, typer.Option("--no-allowlist", help="Skip the blast-radius allowlist check.")
    ] = False,
) -> None:
    """Check documents; print every problem as file:line:col: field: message (exit 2)."""
    from aftershock.loading import load_paths

    # click's echo, not rich: the output is lines (colour only on a terminal), and
    # rich costs a tenth of the command's start-up.
    try:
        allowlist = None if no_allowlist else load_settings().allow
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    with _batch_gc():
        documents, problems = load_paths(paths, allowlist=allowlist)
    if output == "json":
        report = {
            "valid": not problems,
            "documents": [
                {"file": d.source, "line": d.line, "kind": d.document.kind, "name": d.name}
                for d in documents
            ],
            "problems": [
                {
                    "file": p.file,
                    "line": p.line,
                    "column": p.column,
                    "path": p.path,
                    "message": p.message,
                }
                for p in problems
            ],
        }
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for problem in problems:
            typer.echo(str(problem))
        files = len({d.source for d in documents} | {p.file for p in problems})
        if problems:
            count = typer.style(f"{len(problems)} problem(s)", fg="red")
            typer.echo(f"{count} in {files} file(s)", err=True)
        else:
            ok = typer.style("ok", fg="green")
            typer.echo(f"{ok}: {len(documents)} document(s) in {files} file(s) are valid", err=True)
    if problems:
        raise typer.Exit(EXIT_INVALID)


@contextmanager
def _batch_gc() -> Iterator[None]:
    """The cyclic garbage collector tuned for reading many documents, then as it was.

    Everything loaded by now (typer, pydantic, the document validator) lives as
    long as the command: frozen, the collector no longer walks it. Reading a file
    makes thousands of short-lived nodes; collecting young objects every 20,000
    allocations instead of 700 keeps the collector from walking the documents
    read so far again and again. Memory stays bounded: garbage without cycles is
    freed at once, and the collector still runs. Both are undone on the way
    out, for a caller that runs the command in its own process; a heap someone
    else froze already (a healer host in the same process) is left as it is.
    """
    threshold = gc.get_threshold()
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    gc.set_threshold(20_000, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if freeze:
            gc.unfreeze()


def schema(
    crd: Annotated[bool, typer.Option("--crd", help="CustomResourceDefinition manifests.")] = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write one file per CRD into this directory.")
    ] = None,
    docs_dir: Annotated[
        Path | None,
        typer.Option(
            "--docs", help="Write the Markdown reference of every field into this directory."
        ),
    ] = None,
) -> None:
    """Print the JSON Schema of both kinds or the CRD manifests (--crd); or write the docs."""
    from aftershock.loading import dump_yaml
    from aftershock.model.reference import reference_docs
    from aftershock.model.schema import crd_manifests, json_schema

    if docs_dir is not None:
        if crd or out_dir is not None:
            fail("--docs writes the reference pages on its own; drop --crd and --out")
        _write_files(docs_dir, reference_docs(), "--docs")
        return
    if not crd:
        typer.echo(json.dumps(json_schema(), indent=2))
        return
    manifests = crd_manifests()
    if out_dir is None:
        typer.echo(dump_yaml(manifests), nl=False)
        return
    files = {f"{m['metadata']['name']}.yaml": dump_yaml([m]) for m in manifests}
    _write_files(out_dir, files, "--out")


def _write_files(directory: Path, files: dict[str, str], option: str) -> None:
    """Write ``files`` (name → text) into ``directory``, checked first; print each path."""
    problem = output_dir_problem(directory, tuple(files), option)
    if problem is not None:
        fail(problem)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = directory / name
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"{option}: {os_reason(exc)}")
        typer.echo(str(path))
