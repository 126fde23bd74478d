"""``backup schedule``: a backup job for the host's scheduler, without a daemon of our own.

The job is a cron entry (``/etc/cron.d/<name>``, read by Debian's cron): ``backup create`` into
the repository, then ``prune`` by the keep rules, then ``copy`` to the off-site repository —
each step only if the one before succeeded, the whole job under ``flock -n`` so a slow run is
never overlapped by the next, its output appended to a log file. A scheduled job cannot answer
a prompt: an encrypted repository needs ``--password-file`` (the target's own with
``--copy-password-file``). ``cron_file`` is pure; ``install`` writes the file atomically.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dockerbank.errors import InvalidArgument

_CRON_FIELD = re.compile(r"^[0-9*/,\-a-zA-Z]+$")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")     # cron ignores files in /etc/cron.d with other characters


@dataclass
class ScheduleOptions:
    name: str = "dockerbank-backup"
    cron: str = "15 3 * * *"
    what: list[str] = field(default_factory=list)     # the arguments of ``backup create`` (volumes, --all ...)
    repo: str = ""
    password_file: str | None = None
    copy_to: str | None = None
    copy_password_file: str | None = None
    keep_last: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    user: str = "root"


def cron_file(opts: ScheduleOptions, root: Path, run_root: Path, python: str = sys.executable,
              log_dir: Path = Path("/var/log")) -> str:
    """The text of ``/etc/cron.d/<name>`` for ``opts`` (pure)."""
    fields = opts.cron.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise InvalidArgument(f"invalid --cron {opts.cron!r}: five cron fields, e.g. '15 3 * * *'")
    if not _NAME.match(opts.name):
        raise InvalidArgument(f"invalid schedule name {opts.name!r}: letters, digits, - and _ only")
    if not opts.repo:
        raise InvalidArgument("backup schedule needs --repo")
    if not opts.what:
        raise InvalidArgument("backup schedule needs what to save: volume names, --container, --stack or --all")
    if opts.keep_last < 0 or opts.keep_daily < 0 or opts.keep_weekly < 0:
        raise InvalidArgument("--keep-* values must not be negative")
    base = [python, "-m", "dockerbank", "--root", str(root), "--runroot", str(run_root)]
    repo = ["--repo", opts.repo] + (["--password-file", opts.password_file] if opts.password_file else [])
    steps = [[*base, "backup", "create", *opts.what, *repo, "--tag", opts.name, "-q"]]
    keep = [(flag, n) for flag, n in (("--keep-last", opts.keep_last), ("--keep-daily", opts.keep_daily),
                                      ("--keep-weekly", opts.keep_weekly)) if n]
    if keep:
        steps.append([*base, "backup", "prune", *repo, *[x for flag, n in keep for x in (flag, str(n))]])
    if opts.copy_to:
        copy = [*base, "backup", "copy", "--from", opts.repo, "--to", opts.copy_to]
        if opts.password_file:
            copy += ["--from-password-file", opts.password_file]
        target_password = opts.copy_password_file or opts.password_file
        if target_password:
            copy += ["--password-file", target_password]
        steps.append(copy)
    job = " && ".join(" ".join(shlex.quote(arg) for arg in step) for step in steps)
    lock = f"/run/lock/{opts.name}.lock"
    log = log_dir / f"{opts.name}.log"
    # cron hands the command line to /bin/sh; a % would be cut as stdin, so none may remain unescaped
    command = f"flock -n {lock} sh -c {shlex.quote(job)} >> {shlex.quote(str(log))} 2>&1".replace("%", r"\%")
    return ("# written by `dockerbank backup schedule`; remove the file to stop the job\n"
            "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
            f"{opts.cron} {opts.user} {command}\n")


def install(text: str, name: str, cron_dir: Path = Path("/etc/cron.d")) -> Path:
    """Write the cron file atomically (0644, as cron requires: not group/other-writable)."""
    cron_dir.mkdir(parents=True, exist_ok=True)
    target = cron_dir / name
    tmp = cron_dir / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return target


__all__ = ["ScheduleOptions", "cron_file", "install"]
