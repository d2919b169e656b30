"""``aftershock import chaostoolkit``: Chaos Toolkit experiments as aftershock documents.

Each file is read through ``read_source`` (regular files only, bounded) and
translated by ``aftershock.importing``. Without ``-o`` the documents go to
stdout; with ``-o DIR`` each is written to ``DIR/<name of the input>.yaml``
and its path printed. Warnings (what was not translated) and errors go to
stderr as ``file:line:col: path: message``. Exit 0: everything translated;
1: written, with warnings; 2: an input is not a Chaos Toolkit experiment (or
cannot be read, or the output cannot be written): nothing is written for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from aftershock.cli.common import EXIT_INVALID, fail, os_reason, output_dir_problem
from aftershock.cli.startup import Command

if TYPE_CHECKING:
    # The translator loads when the command runs, not for ``--help``.
    from aftershock.importing import ImportResult

__all__ = ["chaostoolkit", "import_app"]

EXIT_WARNINGS: Final = 1

import_app = typer.Typer(
    name="import",
    help="Translate experiments written for other tools into aftershock documents.",
    no_args_is_help=True,
)


def _output_names(paths: list[Path]) -> list[str]:
    names = [f"{path.stem}.yaml" for path in paths]
    seen: dict[str, Path] = {}
    for path, name in zip(paths, names, strict=True):
        if name in seen and seen[name] != path:
            fail(f"-o: {seen[name]} and {path} would both be written to {name}")
        seen[name] = path
    return names


def _translate(path: Path) -> ImportResult | None:
    from aftershock.importing import NotChaosToolkit, import_chaostoolkit
    from aftershock.loading import UnreadableFile, read_source
    from aftershock.loading.problems import make_problem

    try:
        raw = read_source(path)
    except UnreadableFile as exc:
        typer.echo(str(make_problem(str(path), 1, 1, "", str(exc))), err=True)
        return None
    try:
        return import_chaostoolkit(raw, str(path))
    except NotChaosToolkit as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        return None


@import_app.command("chaostoolkit", cls=Command)
def chaostoolkit(
    files: Annotated[
        list[Path],
        typer.Argument(help="Chaos Toolkit experiments (JSON or YAML).", readable=False),
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", "-o", help="Write DIR/<name>.yaml instead of stdout."),
    ] = None,
) -> None:
    """Translate Chaos Toolkit experiments; what does not translate is kept as comments."""
    from aftershock.loading.problems import escape_text

    names = _output_names(files) if out_dir is not None else []
    if out_dir is not None and (problem := output_dir_problem(out_dir, tuple(names), "-o")):
        fail(problem)
    code = 0
    documents: list[str] = []
    imported = warnings = 0
    for index, path in enumerate(files):
        result = _translate(path)
        if result is None:
            code = EXIT_INVALID
            continue
        imported += 1
        warnings += len(result.warnings)
        for warning in result.warnings:
            typer.echo(str(warning), err=True)
        if result.warnings:
            code = max(code, EXIT_WARNINGS)
        if out_dir is None:
            documents.append(result.yaml)
            continue
        target = out_dir / names[index]
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            target.write_text(result.yaml, encoding="utf-8")
        except OSError as exc:
            fail(f"-o: {os_reason(exc)}")
        typer.echo(escape_text(str(target)))
    if documents:
        typer.echo("---\n".join(documents), nl=False)
    failed = len(files) - imported
    typer.echo(
        f"{imported} imported, {failed} not a Chaos Toolkit experiment, {warnings} warning(s)",
        err=True,
    )
    raise typer.Exit(code)
