"""Helpers shared by the CLI modules: the engine from the context, output, Go-template-like --format.

Free of click: the fast path (cli.fastpath) prints through these too.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable

from dockerbank.errors import InvalidArgument
from dockerbank.units import human_duration, human_size  # noqa: F401  (re-exported for CLI modules)

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

    import click


def engine_of(ctx: click.Context):
    """The Engine the top-level group created."""
    return ctx.find_root().obj


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print a line to stdout (or stderr) at once, as click.echo does."""
    stream = sys.stderr if err else sys.stdout
    stream.write(message + "\n" if nl else message)
    stream.flush()


_FIELD_RE = re.compile(r"{{\s*(.*?)\s*}}")


def render_template(template: str, data: Any) -> str:
    """Render the subset of Go templates that docker's --format users rely on.

    Supported: ``{{.Field}}``, ``{{.A.B}}``, ``{{json .}}``, ``{{json .Field}}``, ``{{index .M "k"}}``,
    ``{{.Field}}`` on dicts and objects, ``\\t`` and ``\\n`` escapes. ``table`` prefixes are stripped
    by the caller.
    """

    def value(expr: str) -> Any:
        expr = expr.strip()
        if expr.startswith("json "):
            return json.dumps(value(expr[5:]), separators=(",", ":"))
        if expr.startswith("index "):
            parts = re.findall(r'"[^"]*"|\S+', expr[6:])
            current = value(parts[0])
            for key in parts[1:]:
                key = key.strip('"')
                current = current.get(key) if isinstance(current, dict) else None
            return current
        if expr.startswith("lower "):
            return str(value(expr[6:])).lower()
        if expr.startswith("upper "):
            return str(value(expr[6:])).upper()
        if expr == ".":
            return data
        if not expr.startswith("."):
            raise InvalidArgument(f"template: unsupported expression {{{{{expr}}}}}")
        current = data
        for part in expr[1:].split("."):
            if isinstance(current, dict):
                current = current.get(part)
            else:
                current = getattr(current, part, None)
        return current

    def replace(match: re.Match) -> str:
        result = value(match.group(1))
        if result is None:
            return "<no value>"
        if isinstance(result, (dict, list)):
            return _go_repr(result)
        if isinstance(result, bool):
            return "true" if result else "false"
        return str(result)

    text = template.replace("\\t", "\t").replace("\\n", "\n")
    return _FIELD_RE.sub(replace, text)


def _go_repr(value: Any) -> str:
    """How Go prints a map or slice with %v: map[k:v] and [a b]."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_repr(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_repr(v) for v in value) + "]"
    return str(value)


def print_formatted(rows: list[Any], fmt: str | None, default_table: Callable[[list[Any]], None]) -> None:
    """Print rows with --format (``json``, ``table ...`` or a template), or the default table."""
    if not fmt or fmt == "table":
        default_table(rows)
        return
    if fmt == "json":
        for row in rows:
            echo(json.dumps(row, separators=(",", ":")))
        return
    if fmt.startswith("table "):
        template = fmt[len("table "):]
        header = _FIELD_RE.sub(lambda m: _header_of(m.group(1)), template.replace("\\t", "\t"))
        echo(header)
        fmt = template
    for row in rows:
        echo(render_template(fmt, row))


def _header_of(expr: str) -> str:
    name = expr.strip().lstrip(".")
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", " ", name).upper()


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
