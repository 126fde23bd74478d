"""Helpers shared by the CLI modules: the engine from the context, output, Go-template-like --format.

Free of click: the fast path (cli.fastpath) prints through these too.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from dockerbank.errors import InvalidArgument
from dockerbank.units import human_duration, human_size  # noqa: F401  (re-exported for CLI modules)

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

    import click

    from dockerbank.engine import Engine


def engine_of(ctx: click.Context) -> Engine:
    """The Engine the top-level group created."""
    return ctx.find_root().obj


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print a line to stdout (or stderr) at once, as click.echo does."""
    stream = sys.stderr if err else sys.stdout
    stream.write(message + "\n" if nl else message)
    stream.flush()


def _prepare(fmt: str) -> str:
    """docker's pre-formatting: a literal ``\\t`` or ``\\n`` typed in a shell becomes a tab or a newline."""
    return fmt.replace("\\t", "\t").replace("\\n", "\n")


def render_template(template: str, data: Any, *, name: str = "", parse_exit: int = 1) -> str:
    """Render a docker ``--format`` Go template on one object (see dockerbank.gotemplate). ``name``:
    the template's name in Go's errors (docker's ``version`` names it); ``parse_exit``: the exit code
    of a template that does not parse (64 for docker's inspect, info, version and events)."""
    from dockerbank import gotemplate

    try:
        parsed = gotemplate.Template(_prepare(template))
    except gotemplate.TemplateError as exc:
        raise gotemplate.TemplateError(f"failed to parse template: {_named(str(exc), name)}",
                                       exit_code=parse_exit) from exc
    return _execute(parsed, data, name)


def _execute(parsed: Any, data: Any, name: str = "") -> str:
    from dockerbank import gotemplate

    try:
        return parsed.render(data)
    except gotemplate.TemplateError as exc:
        raise gotemplate.TemplateError(f"failed to execute template: {_named(str(exc), name)}") from exc
    except RecursionError as exc:
        raise gotemplate.TemplateError("failed to execute template: nested too deeply") from exc


def _named(message: str, name: str) -> str:
    """Go's error of a named template: ``template: NAME:1:2: executing "NAME" at ...``."""
    if not name:
        return message
    return message.replace("template: :", f"template: {name}:", 1).replace('executing ""', f'executing "{name}"', 1)


class _Headers:
    """The header row of a ``table`` format: each field names its column (``headers`` or its
    name split at capitals and upper-cased); ``{{.Label "a.b"}}`` heads its column with ``b``."""

    def __init__(self, headers: dict[str, str] | None):
        self._names = headers or {}

    def __getattr__(self, name: str) -> Any:
        header = self._names.get(name) or re.sub(r"(?<!^)(?=[A-Z][a-z])", " ", name).upper()
        return lambda *args: _label_header(str(args[0])) if args else header


def _label_header(key: str) -> str:
    """docker heads a ``{{.Label "org.example.team-name"}}`` column with ``team name``."""
    return key.split(".")[-1].replace("-", " ").replace("_", " ")


def print_formatted(rows: list[Any], fmt: str | None, default_table: Callable[[list[Any]], None],
                    headers: dict[str, str] | None = None, tabs: tuple[int, int] = (10, 3),
                    go_type: str | None = None, probe: dict | None = None) -> None:
    """Print rows as docker does with ``--format``: ``json`` (one object a line), ``table TEMPLATE``
    (a header row, columns aligned by Go's tabwriter rules: ``tabs`` is its minimum width and
    padding, docker's by default, podman's (12, 2) for podman's commands) or a template per row;
    else the default table. ``go_type``: the rows are docker's context structs of that Go type (a
    field they lack fails, see cli.gotypes); else plain dicts are Go maps. ``probe``: an empty row
    docker runs the whole format on before listing (``ps``): a template that fails on it fails the
    command, with no row listed too."""
    from dockerbank import gotemplate
    from dockerbank.cli import gotypes

    if go_type is not None:
        rows = [gotypes.row(row, go_type) if type(row) is dict else row for row in rows]

    if not fmt or fmt == "table":
        default_table(rows)
        return
    if fmt == "json":
        for row in rows:
            echo(gotemplate.go_json(row, sort_keys=True))
        return
    table = fmt.startswith("table ")
    source = _prepare(fmt[len("table "):] if table else fmt).strip(" ")
    try:
        parsed = gotemplate.Template(source)
        header = gotemplate.Template(source, gotemplate.HEADER_FUNCTIONS) if table else None
    except gotemplate.TemplateError as exc:
        raise gotemplate.TemplateError(f"failed to parse template: {exc}") from exc
    if probe is not None:  # docker's ps runs its whole --format, "table " included, on an empty row first
        whole = parsed if not table else gotemplate.Template(_prepare(fmt))
        _execute(whole, gotypes.row(probe, go_type) if go_type is not None else gotemplate.GoMap(probe))
    lines = [_execute(parsed, gotemplate.GoMap(row) if type(row) is dict else row) for row in rows]
    if header is None:
        for line in lines:
            echo(line)
        return
    out = "\n".join([_execute(header, _Headers(headers))] + lines)
    for line in gotemplate.tabwriter(out.split("\n"), *tabs):
        echo(line)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Docker's tabwriter layout (minwidth 10, padding 3): every column but the last at least 10 wide."""
    widths = [max(10, len(h) + 3) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell) + 3)
    for line in [headers] + rows:
        cells = "".join(cell.ljust(widths[i]) for i, cell in enumerate(line[:-1])) + line[-1]
        echo(cells.rstrip())


def parse_pairs(values: tuple[str, ...]) -> dict[str, str]:
    """``--label``/``--opt`` values: ``KEY=VALUE`` (``KEY`` alone: an empty value)."""
    return {key: value for key, _, value in (item.partition("=") for item in values)}


def parse_filters(values: tuple[str, ...], allowed: set[str]) -> dict[str, list[str]]:
    """``--filter key=value`` pairs grouped by key; unknown keys are refused like docker does."""
    filters: dict[str, list[str]] = {}
    for item in values:
        key, sep, val = item.partition("=")
        if not sep:
            raise InvalidArgument(f"bad format of filter (expected name=value): {item}")
        if key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")
        filters.setdefault(key, []).append(val)
    return filters
