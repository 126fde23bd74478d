"""The engine facade: the one object the CLI, the API server and ops features call.

It owns the database connection and builds each service on first use, so a command
pays only for what it touches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property

from dockerbank.config import Config
from dockerbank.state.db import Database

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up); services import on first use
if TYPE_CHECKING:
    from pathlib import Path

    from dockerbank.container.lifecycle import ContainerService
    from dockerbank.engine.events import EventsOptions
    from dockerbank.image.store import ImageStore
    from dockerbank.network.service import NetworkService
    from dockerbank.pod.service import PodService
    from dockerbank.registry.service import RegistryService
    from dockerbank.volume.store import VolumeStore


class Engine:
    """Services of one Dockerbank root, created lazily from a Config.

    ``short_lived``: a CLI call, which closes the engine before it exits; work handed to
    :meth:`after_close` then runs in a detached child once the database is closed (a forked
    child must not open SQLite while its parent's connection to the same file is open).
    Long-lived engines (the API service) get ``False`` and must not defer work.

    ``background``: how a long-lived process runs work nobody waits for (the API service hands
    it to a thread of its own, engine.workers); without it such work runs at once.
    ``exit_guard``: the lock of a resident exit handler this process holds (engine.exits): the
    containers it starts get conmon's exit command behind it.
    """

    def __init__(self, config: Config, *, short_lived: bool = False,
                 background: Callable[[Callable[[], None]], None] | None = None,
                 exit_guard: Path | None = None):
        self.config = config
        self.short_lived = short_lived
        self.background = background
        self.exit_guard = exit_guard
        self._after_close: list[Callable[[], None]] = []

    def after_close(self, work: Callable[[], None]) -> None:
        """Run ``work`` in a detached child when this (short-lived) engine closes."""
        if not self.short_lived:
            raise RuntimeError("only a short-lived engine defers work to its close")
        self._after_close.append(work)

    def later(self, work: Callable[[], None]) -> None:
        """Work the caller need not wait for, and that opens no database: after the close in a
        CLI call, in a background thread of a long-lived process that has one (``background``),
        else at once. ``work`` handles its own errors."""
        if self.short_lived:
            self._after_close.append(work)
        elif self.background is not None:
            self.background(work)
        else:
            work()

    @cached_property
    def db(self) -> Database:
        """The root's state database (the root is closed to other users before it is created)."""
        from dockerbank.host.permissions import close_root, create_private_file

        from dockerbank.host.reserve import keep_room

        close_root(self.config)  # before the first file of a new root exists (CVE-2021-41091)
        keep_room(self.config.root)  # a disk filled by a volume must not lock the user out
        create_private_file(self.config.db_path)  # 0600: SQLite gives its -wal and -shm files this mode
        return Database(self.config.db_path)

    @cached_property
    def images(self) -> ImageStore:
        """Images, tags, layers and blobs."""
        from dockerbank.image.store import ImageStore

        return ImageStore(self.config, self.db)

    @cached_property
    def volumes(self) -> VolumeStore:
        """Named and anonymous volumes."""
        from dockerbank.volume.store import VolumeStore

        return VolumeStore(self.config, self.db)

    @cached_property
    def networks(self) -> NetworkService:
        """Networks, their endpoints and the network driver."""
        from dockerbank.network.service import NetworkService

        return NetworkService(self.config, self.db)

    @cached_property
    def registry(self) -> RegistryService:
        """Pull, push, login and search against registries."""
        from dockerbank.registry.service import RegistryService

        return RegistryService(self.config, self.images)

    @cached_property
    def containers(self) -> ContainerService:
        """Containers: the lifecycle and every operation on them."""
        from dockerbank.container.lifecycle import ContainerService

        return ContainerService(self)

    @cached_property
    def container_ops(self):
        """The container use cases every transport calls (engine.containers.ContainerEngine)."""
        from dockerbank.engine.containers import ContainerEngine

        return ContainerEngine(self)

    @cached_property
    def stacks(self):
        """The images of compose stacks: list them, push them all (engine.stacks.StackEngine)."""
        from dockerbank.engine.stacks import StackEngine

        return StackEngine(self)

    @cached_property
    def pods(self) -> PodService:
        """Pods: their records, infra containers and views."""
        from dockerbank.pod.service import PodService

        return PodService(self)

    @cached_property
    def pod_ops(self):
        """The pod use cases every transport calls (engine.pods.PodEngine)."""
        from dockerbank.engine.pods import PodEngine

        return PodEngine(self)

    def prune_build_cache(self, all_entries: bool = False) -> list[str]:
        """``builder prune`` / ``POST /build/prune``: the step cache's entries dropped (build.cache)."""
        from dockerbank.build.cache import prune

        return prune(self.db, all_entries)

    def events(self, opts: EventsOptions, cancelled: Callable[[], bool] = lambda: False) -> Iterator[list[dict]]:
        """``events`` / ``GET /events``: batches of the persisted history, then of new events
        (engine.events.stream)."""
        from dockerbank.engine.events import stream

        return stream(self.config, opts, cancelled)

    def sibling(self) -> Engine:
        """Another engine of the same root for a worker thread (its own database connection);
        close it with ``close(defer_to=self)`` so its deferred work runs when this one closes."""
        return Engine(self.config, short_lived=self.short_lived, background=self.background,
                      exit_guard=self.exit_guard)

    def close(self, defer_to: Engine | None = None) -> None:
        """Close the database, then start the deferred work (inline where forking is unsafe);
        ``defer_to`` (the engine a :meth:`sibling` came from) takes the deferred work instead."""
        if "db" in self.__dict__:
            self.db.close()
        work, self._after_close = self._after_close, []
        if defer_to is not None:
            defer_to._after_close.extend(work)
            return
        if work:
            from dockerbank.host.detach import run_detached

            for item in work:
                if not run_detached(item):
                    item()
