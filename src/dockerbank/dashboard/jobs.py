"""Long actions of the dashboard (verify, restore) as jobs: started by a form, run in a worker
thread, their progress read by the page (``GET /jobs/{id}``) until they end."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dockerbank.backup.create import Progress

#: Jobs kept per dashboard, the newest; older finished ones are forgotten.
KEEP = 50


@dataclass
class Job:
    id: str
    what: str
    user: str
    state: str = "running"          # running | ok | failed
    message: str = ""
    done: int = 0
    total: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "what": self.what, "user": self.user, "state": self.state,
                "message": self.message, "done": self.done, "total": self.total}


class JobProgress(Progress):
    """backup.create.Progress for a job: byte counts of its tasks add up to the job's figures."""

    def __init__(self, job: Job):
        self.job = job

    def task(self, description: str, total: int | None) -> Callable[[int], None]:
        job = self.job
        with job.lock:
            job.total += total or 0

        def tick(n: int) -> None:
            with job.lock:
                job.done += n

        return tick

    def done(self, description: str) -> None:
        pass


class Jobs:
    """The jobs of one dashboard process."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Future[Any]] = set()

    def start(self, what: str, user: str, run: Callable[[Job], asyncio.Future[str]]) -> Job:
        """Start ``run(job)`` (a future giving the message of success); its failure is the job's."""
        from dockerbank.errors import DockerbankError

        job = Job(str(next(self._ids)), what, user)
        self._jobs[job.id] = job
        for old in [j for j in self._jobs.values() if j.state != "running"][:-KEEP]:
            self._jobs.pop(old.id, None)

        async def watch() -> None:
            try:
                job.message = await run(job)
                job.state = "ok"
            except DockerbankError as exc:
                job.state, job.message = "failed", str(exc)

        task = asyncio.ensure_future(watch())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def recent(self) -> list[Job]:
        return list(reversed(self._jobs.values()))
