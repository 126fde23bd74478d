"""Named fault-injection points: the crash-safety tests kill a command at each step (issue 20).

The steps every multi-step operation passes through are few and low: a database transaction, a
blob or layer moved into place, a runtime call, a chunk or snapshot of a backup, a blob or manifest
of the registry. Each calls :func:`point` with its name. In a test:

- ``DOCKERBANK_FAULT_TRACE=FILE`` appends ``name:n`` for each point reached (the n-th time), so a
  test learns the steps of an operation;
- ``DOCKERBANK_FAULT=name:n`` kills the process with SIGKILL the n-th time ``name`` is reached.

:func:`arm` reads and removes both variables when a command starts, so the processes it starts
(conmon, its exit command, a detached teardown) run unharmed. Without them a point costs one
comparison.
"""

from __future__ import annotations

import os
import signal

_target: tuple[str, int] | None = None
_trace: str | None = None
_counts: dict[str, int] = {}
_armed = False


def arm() -> None:
    """Take this process's fault plan from the environment (and hide it from child processes)."""
    global _target, _trace, _armed
    _armed = True
    spec = os.environ.pop("DOCKERBANK_FAULT", "")
    _trace = os.environ.pop("DOCKERBANK_FAULT_TRACE", None) or None
    name, _, count = spec.rpartition(":")
    _target = (name, int(count)) if name and count.isdigit() else None


def point(name: str) -> None:
    """A step of an operation: killed here when the plan says so, recorded when tracing."""
    if not _armed:
        if "DOCKERBANK_FAULT" not in os.environ and "DOCKERBANK_FAULT_TRACE" not in os.environ:
            return
        arm()  # a process that did not start through the CLI (a test's engine, the API service)
    if _target is None and _trace is None:
        return
    count = _counts[name] = _counts.get(name, 0) + 1
    if _trace is not None:
        fd = os.open(_trace, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{name}:{count}\n".encode())
        finally:
            os.close(fd)
    if _target == (name, count):
        os.kill(os.getpid(), signal.SIGKILL)
