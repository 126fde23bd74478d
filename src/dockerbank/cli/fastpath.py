"""The hot command lines (``run``, ``create``, ``start``, ``exec``, ``ps``, ``rm`` and conmon's
``container cleanup``) parsed and run without importing click.

Importing click and building the command tree costs 30-60 ms per call on these machines, a
tenth of a ``run --rm`` and most of a ``ps``. The flags are the same tables the click commands
are built from (cli.container_flags) and the work is the same functions (cli.container_commands);
a command line this parser does not take (help, an unknown flag, a bad value) returns None and
goes to click, which words the error as before.
"""

from __future__ import annotations

from dockerbank.cli import container_commands as commands
from dockerbank.cli import container_flags as table
from dockerbank.cli.flags import Declined, parse

HOT = {
    "run": (table.RUN, commands.run),
    "create": (table.CREATE, commands.create),
    "start": (table.START, commands.start),
    "exec": (table.EXEC, commands.exec_in),
    "ps": (table.PS, commands.ps),
    "rm": (table.RM, commands.remove),
    "container cleanup": (table.CLEANUP, commands.cleanup),
}
GLOBAL_OPTIONS = ("--root", "--runroot")


def dispatch(args: list[str]) -> int | None:
    """Run ``args`` if it is a hot command line and return its exit code; None leaves it to click."""
    found = _split(args)
    if found is None:
        return None
    options, name, rest = found
    hot = HOT.get(name)
    if hot is None:
        return None
    command, action = hot
    try:
        kw = parse(command, rest)
    except Declined:
        return None
    from dockerbank.config import Config
    from dockerbank.engine import Engine

    engine = Engine(Config.from_env(options.get("--root"), options.get("--runroot")), short_lived=True)
    try:
        return action(engine, kw)
    finally:
        engine.close()


def _split(args: list[str]) -> tuple[dict[str, str], str, list[str]] | None:
    """The global options, the command's name and its arguments; None for anything unusual."""
    options: dict[str, str] = {}
    i = 0
    while i < len(args) and args[i].startswith("-"):
        name, eq, value = args[i].partition("=")
        if name not in GLOBAL_OPTIONS:
            return None
        if not eq:
            if i + 1 >= len(args):
                return None
            i += 1
            value = args[i]
        options[name] = value
        i += 1
    if i >= len(args):
        return None
    name, rest = args[i], args[i + 1:]
    if name == "container" and rest[:1] == ["cleanup"]:
        name, rest = "container cleanup", rest[1:]
    return options, name, rest
