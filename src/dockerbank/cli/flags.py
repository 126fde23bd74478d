"""Command-line flags as data, and a small parser for them that needs no click.

The flags of the hot commands (``run``, ``ps``, ``exec``, ...) are declared once here. The click
commands are built from these tables (``cli.clickflags``), and ``cli.fastpath`` parses the same
tables directly, so that a plain ``dockerbank run``/``ps`` does not pay for importing click (tens
of milliseconds per call). The parser follows click's rules for the cases it takes: long options
with ``=`` or a separate value, clusters of short options (``-it``, ``-eKEY=v``), ``--``, and
options stop at the first positional where the command says so. Anything else (``--help``, an
unknown flag, a value of the wrong type) raises :class:`Declined`, and the command line goes to
click, which gives the error its usual wording. Pure: no I/O.
"""

from __future__ import annotations

BOOL, TEXT, INT, MULTI, CHOICE = "bool", "text", "int", "multi", "choice"


class Flag:
    """One option: its spellings (``-i``, ``--interactive``), the keyword it fills, its kind."""

    __slots__ = ("names", "dest", "kind", "default", "help", "choices", "off", "hidden")

    def __init__(self, *names: str, dest: str | None = None, kind: str = TEXT, default=None, help: str = "",
                 choices: tuple[str, ...] = (), off: str | None = None, hidden: bool = False):
        self.names = names
        longs = [name for name in names if name.startswith("--")]
        self.dest = dest or (longs or names)[0].lstrip("-").replace("-", "_")  # click's choice
        self.kind = kind
        self.default = default if default is not None or kind != BOOL else False
        if kind == MULTI:
            self.default = ()
        self.help, self.choices, self.off, self.hidden = help, choices, off, hidden

    @property
    def takes_value(self) -> bool:
        return self.kind != BOOL


class Declined(Exception):
    """The fast parser does not take this command line; click parses it (and words any error)."""


class Command:
    """A command's flags and positionals: ``positionals`` names them; ``rest`` (if set) takes
    every argument after them; options stop at the first positional unless ``interspersed``."""

    __slots__ = ("flags", "positionals", "rest", "rest_required", "interspersed")

    def __init__(self, flags: list[Flag], positionals: tuple[str, ...] = (), rest: str | None = None,
                 rest_required: bool = False, interspersed: bool = True):
        self.flags, self.positionals, self.rest = flags, positionals, rest
        self.rest_required, self.interspersed = rest_required, interspersed


def parse(command: Command, args: list[str]) -> dict:
    """The keyword arguments click would pass the command for ``args``; raises Declined."""
    by_name: dict[str, tuple[Flag, bool]] = {}
    for flag in command.flags:
        for name in flag.names:
            by_name[name] = (flag, True)
        if flag.off:
            by_name[flag.off] = (flag, False)
    values: dict[str, object] = {flag.dest: flag.default for flag in command.flags}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional += args[i:]
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            if not command.interspersed:
                positional += args[i:]
                break
            continue
        if arg.startswith("--"):
            name, eq, inline = arg.partition("=")
            flag, on = _lookup(by_name, name)
            if not flag.takes_value:
                values[flag.dest] = on if not eq else on == parse_bool(inline, Declined(arg))
                continue
            if not eq:
                if i >= len(args):
                    raise Declined(arg)
                inline, i = args[i], i + 1
            _store(values, flag, inline)
            continue
        j = 1
        while j < len(arg):  # a cluster of short options: -it, -e KEY, -eKEY
            flag, on = _lookup(by_name, "-" + arg[j])
            j += 1
            if not flag.takes_value:
                values[flag.dest] = on
                continue
            if j < len(arg):
                value = arg[j:]
            elif i < len(args):
                value, i = args[i], i + 1
            else:
                raise Declined(arg)
            _store(values, flag, value)
            break
    return _bind_positionals(command, positional, values)


GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def parse_bool(text: str, error: Exception) -> bool:
    """A boolean flag's ``=value`` as docker's flag parser (Go's strconv.ParseBool) takes it."""
    if text in GO_TRUE:
        return True
    if text in GO_FALSE:
        return False
    raise error


def _lookup(by_name: dict[str, tuple[Flag, bool]], name: str) -> tuple[Flag, bool]:
    try:
        return by_name[name]
    except KeyError:
        raise Declined(name) from None


def _store(values: dict, flag: Flag, value: str) -> None:
    if flag.kind == MULTI:
        values[flag.dest] = (*values[flag.dest], value)
    elif flag.kind == INT:
        try:
            values[flag.dest] = int(value)
        except ValueError:
            raise Declined(value) from None
    elif flag.kind == CHOICE and value not in flag.choices:
        raise Declined(value)
    else:
        values[flag.dest] = value


def _bind_positionals(command: Command, positional: list[str], values: dict) -> dict:
    wanted = len(command.positionals)
    if len(positional) < wanted or (command.rest is None and len(positional) > wanted):
        raise Declined("arguments")
    if command.rest_required and len(positional) == wanted:
        raise Declined("arguments")
    for name, value in zip(command.positionals, positional):
        values[name] = value
    if command.rest is not None:
        values[command.rest] = tuple(positional[wanted:])
    return values
