"""click options built from the flag tables of :mod:`dockerbank.cli.flags`."""

from __future__ import annotations

import click

from dockerbank.cli.flags import BOOL, CHOICE, INT, MULTI, Flag


def click_options(flags: list[Flag]):
    """A decorator adding ``flags`` to a click command, in table order."""

    def decorate(func):
        for flag in reversed(flags):
            func = _option(flag)(func)
        return func

    return decorate


def _option(flag: Flag):
    decls = [flag.dest, *flag.names]
    extra: dict = {}
    if flag.kind == BOOL:
        if flag.off:
            decls = [flag.dest, f"{flag.names[0]}/{flag.off}"]
        else:
            extra["is_flag"] = True
    elif flag.kind == MULTI:
        extra["multiple"] = True
    elif flag.kind == INT:
        extra["type"] = int
    elif flag.kind == CHOICE:
        extra["type"] = click.Choice(list(flag.choices))
    return click.option(*decls, default=flag.default, help=flag.help or None, hidden=flag.hidden, **extra)
