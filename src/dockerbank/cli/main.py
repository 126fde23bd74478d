"""The ``dockerbank`` command: a docker-like CLI.

The hot container commands are parsed without click (cli.fastpath); every other command line
goes to the click group (cli.group). Errors end as one line on stderr and a Docker-like exit
code, never a traceback.
"""

from __future__ import annotations

import os
import sys

from dockerbank.cli.common import echo
from dockerbank.errors import DockerbankError


def entry(argv: list[str] | None = None) -> None:
    """Run the CLI; map every error to one line on stderr and a Docker-like exit code."""
    code, fast = run_command(sys.argv[1:] if argv is None else list(argv))
    if fast:
        _exit_at_once(code)
    sys.exit(code)


def run_command(args: list[str]) -> tuple[int, bool]:
    """Run one command line: its exit code (an error worded as one line on stderr) and whether
    the fast path ran it (nothing then needs the interpreter's orderly shutdown). The warm
    helper's command process calls this too (dockerbank.warm.helper)."""
    from dockerbank.cli.fastpath import dispatch

    from dockerbank import faults

    faults.arm()  # the crash tests' plan is this process's only, not its children's
    try:
        if os.geteuid() != 0:  # an ordinary user: rootless, as root of the user's own namespaces
            from dockerbank.host.rootless import enter

            enter()
        code = dispatch(args)
        if code is not None:
            return code, True
        from dockerbank.cli.group import run_click

        return run_click(args), False
    except DockerbankError as exc:
        echo(f"Error: {exc.message}", err=True)
        return exc.exit_code, False
    except BrokenPipeError:
        return 0, False
    except KeyboardInterrupt:
        return 130, False
    except OSError as exc:  # what the engine does not word itself, e.g. output to a full disk
        _last_words(f"Error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        return 1, False


def _last_words(message: str) -> None:
    try:
        echo(message, err=True)
    except OSError:
        pass


def _exit_at_once(code: int) -> None:
    """End a fast-path command without the interpreter's finalization (~15 ms of tearing down
    modules here). Its engine is closed and its files are written by then; only the standard
    streams need a flush. Where a thread still runs (none should), exit the normal way."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    os._exit(code)
