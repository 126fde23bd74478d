"""``docker top``: run the host's ``ps`` and keep the rows of the container's processes.

Docker's daemon does exactly this (``daemon/top_unix.go``): ``ps`` with the user's
options (``-ef`` by default) plus ``-q <pids>`` (retried without when the options do not
combine with ``-q``), then it keeps the header and the rows whose PID column is one of the
container's pids (thread rows ``-`` following a kept row stay too). The filtering is the
pure :func:`parse_ps_output`; :func:`run_top` adds the subprocess.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from dockerbank.container.stats import tabwrite
from dockerbank.errors import InvalidArgument, RuntimeFailure

DEFAULT_PS_ARGS = "-ef"
_ASCII_SPACE = re.compile(r"[\t\n\f\r ]+")
_PID_KEY = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")


@dataclass
class TopResult:
    """The Engine API ``ContainerTopOKBody``: ``Titles`` and ``Processes``."""

    titles: list[str] = field(default_factory=list)
    processes: list[list[str]] = field(default_factory=list)

    def to_api(self) -> dict[str, list]:
        """JSON body of ``GET /containers/{id}/top``."""
        return {"Titles": list(self.titles), "Processes": [list(p) for p in self.processes]}


def ps_args_of(args: Sequence[str] | str | None) -> list[str]:
    """The argument list for ``ps``: the CLI joins the user's words with spaces and the
    daemon splits on single spaces; nothing given means ``-ef``."""
    joined = args if isinstance(args, str) else " ".join(args or ())
    if not joined:
        joined = DEFAULT_PS_ARGS
    return joined.split(" ")


def validate_ps_args(args: Sequence[str] | str | None) -> None:
    """Reject ``-o user=PID`` style renamings of the PID header (Docker's rule: only
    ``pid=PID...`` is allowed), which would make filtering by PID lie."""
    joined = args if isinstance(args, str) else " ".join(args or ())
    for key, value in _PID_KEY.findall(joined):
        if key != "pid":
            raise InvalidArgument(f'specifying "{key}={value}" is not allowed')


def _fields(line: str) -> list[str]:
    return [f for f in _ASCII_SPACE.split(line) if f]


def parse_ps_output(output: str, pids: Iterable[int]) -> TopResult:
    """Keep the header of ``ps`` output and the rows of ``pids`` (pure).

    Cells beyond the number of titles are joined into the last one (a command line with
    spaces). Raises ``InvalidArgument("Couldn't find PID field in ps output")`` when no
    column is titled ``PID``.
    """
    wanted = set(pids)
    lines = output.split("\n")
    result = TopResult(titles=_fields(lines[0]) if lines else [])
    try:
        pid_index = result.titles.index("PID")
    except ValueError:
        raise InvalidArgument("Couldn't find PID field in ps output") from None
    ncols = len(result.titles)

    def append(cells: list[str]) -> None:
        result.processes.append(cells[:ncols - 1] + [" ".join(cells[ncols - 1:])])

    previous_kept = False
    for line in lines[1:]:
        if not line:
            continue
        cells = _fields(line)
        if len(cells) <= pid_index:
            continue
        if cells[pid_index] == "-":
            # a thread row (ps -m / H) belongs to the process row above it
            if previous_kept:
                append(cells)
            continue
        try:
            pid = int(cells[pid_index])
        except ValueError as exc:
            raise RuntimeFailure(f"Unexpected pid '{cells[pid_index]}': {exc}", exit_code=1) from exc
        previous_kept = pid in wanted
        if previous_kept:
            append(cells)
    return result


def run_top(pids: Sequence[int], ps_args: Sequence[str] | str | None = None,
            ps_binary: str = "ps") -> TopResult:
    """Run ``ps`` on the host for a container whose processes are ``pids`` (host pid
    namespace, e.g. from :func:`dockerbank.host.cgroups.pids_of`)."""
    validate_ps_args(ps_args)
    args = ps_args_of(ps_args)
    attempt = [ps_binary, *args, "-q", ",".join(str(p) for p in pids)]
    try:
        proc = subprocess.run(attempt, check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            # some options (such as f) cannot be combined with -q: retry without it
            proc = subprocess.run([ps_binary, *args], check=False, capture_output=True, text=True)
    except OSError as exc:
        raise RuntimeFailure(f"ps: {exc.strerror or exc}", exit_code=1) from exc
    if proc.returncode != 0:
        first = (proc.stderr or "").split("\n", 1)[0].strip() or f"exit status {proc.returncode}"
        raise RuntimeFailure(f"ps: {first}", exit_code=1)
    return parse_ps_output(proc.stdout, pids)


def render_top(result: TopResult) -> str:
    """``docker top``'s table: Go tabwriter with minimum width 20 and padding 3."""
    return tabwrite([result.titles] + result.processes, minwidth=20, padding=3)
