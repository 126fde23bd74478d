"""Wake-ups on the event log: a waiter sleeps until some process appends an event (or a timeout).

Every state change of a container is recorded in the event log (events.log) by whoever makes
it (a CLI, conmon's exit command, the API service's threads), so an append is the one signal
that "something may have changed" which reaches every process. A waiter (``wait`` with a
condition, the API's ``/containers/{id}/wait``) watches the log's directory with inotify (other
files there, the database's, wake nothing) and re-reads the state when the log grows, instead of
polling every 100 ms: it answers as soon as the state allows.

Without inotify (not Linux, no descriptors left) :meth:`EventWatch.wait` sleeps a short poll
interval instead, so callers work the same, only later.
"""

from __future__ import annotations

import os
import select
import time
from pathlib import Path

from dockerbank.host.inotify import IN_CREATE, IN_MODIFY, IN_MOVED_TO, DirWatch

POLL = 0.1  # seconds between reads when inotify is unavailable


class EventWatch:
    """Watches one event log from its creation until :meth:`close`: events appended after the
    watch began wake :meth:`wait`, so a caller that reads the state after opening the watch
    misses no change (open the watch, read, wait, read again)."""

    def __init__(self, log_path: Path):
        log_path = Path(log_path)
        self.name = os.fsencode(log_path.name)
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass
        self._watch = DirWatch(log_path.parent, IN_MODIFY | IN_CREATE | IN_MOVED_TO)
        self.fd = self._watch.fd

    @classmethod
    def of(cls, config) -> EventWatch:
        """A watch of ``config``'s event log."""
        from dockerbank.events.log import EventLog

        return cls(EventLog.of(config).path)

    def _drain(self) -> bool:
        """Read the queued inotify records; whether one is about the log (append, creation,
        rotation into place)."""
        return self.name in self._watch.names()

    def wait(self, timeout: float) -> bool:
        """Block until an event is appended or ``timeout`` seconds pass; True when woken by an event."""
        if self.fd < 0:
            time.sleep(min(timeout, POLL))
            return False
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            except InterruptedError:
                ready = []
            if ready and self._drain():
                return True
            if time.monotonic() >= deadline:
                return False

    def close(self) -> None:
        self._watch.close()
        self.fd = -1

    def __enter__(self) -> EventWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
