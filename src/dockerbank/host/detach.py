"""Work handed to a detached child after the CLI's answer is known (network and mount teardown).

A ``run --rm`` in the foreground returns the container's exit code without waiting for the
netavark teardown (150-250 ms) or the overlay unmount (an RCU grace period). Forking the
running interpreter costs ~2 ms; starting a new one to do the same work costs ~100 ms of CPU
(start-up and imports) that competes with whatever the user runs next on a 2-core host.
A child that opens SQLite must be forked after the parent closed its connection (SQLite's
per-process lock state would point at descriptors the child closed): see Engine.after_close.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable


def run_detached(work: Callable[[], None]) -> bool:
    """Run ``work`` in a child in its own session with stdio on /dev/null; True once it is under
    way. False when this process must not fork (other threads could hold locks the child would
    need) or the fork failed: the caller then does the work another way.

    One fork, not waited for: only short-lived processes (a CLI call, a warm helper's command
    process) hand work here, and they exit right after, when the child goes to init. The double
    fork this replaces waited for the first child's own fork and exit: ~13 ms of every
    ``exec`` (its session directory's removal) and ``run --rm`` on a loaded 2-CPU host, before
    the exit code was reported.
    """
    if threading.active_count() > 1:
        return False
    # Until its setsid() the child is in the terminal's foreground process group: when the CLI
    # of a `run -it --rm` (the session leader) exits, the kernel hangs the terminal up at once,
    # and a SIGHUP or a ctrl-c would kill the child mid-teardown and leave the overlay mounted.
    # Blocked before the fork, they cannot reach the child before it ignores them (a freshly
    # forked interpreter needs a moment to get there; the CLI exits right away). Only this
    # process's one thread changes its mask, and only for the fork.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP, signal.SIGINT})
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        return False
    if pid > 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # a signal that came meanwhile is delivered now
        return True
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # pending ones are discarded with the ignore
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)  # whoever reads the CLI's output must not wait for this child
        os.closerange(3, 1 << 16)  # no inherited lock file or database handle stays open here
        work()
    except BaseException:  # noqa: BLE001, S110  (system check repairs what a failed teardown leaves)
        pass
    os._exit(0)
