"""The ``dockerbank`` command: a docker-like CLI.

The hot container commands are parsed without click (cli.fastpath); every other command line
goes to the click group (cli.group). Errors end as one line on stderr and a Docker-like exit
code, never a traceback.
"""

from __future__ import annotations

import sys

from dockerbank.cli.common import echo
from dockerbank.errors import DockerbankError


def entry(argv: list[str] | None = None) -> None:
    """Run the CLI; map every error to one line on stderr and a Docker-like exit code."""
    from dockerbank.cli.fastpath import dispatch

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        code = dispatch(args)
        if code is None:
            from dockerbank.cli.group import run_click

            code = run_click(args)
    except DockerbankError as exc:
        echo(f"Error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code)
