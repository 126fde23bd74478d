"""The container use cases: one typed method per operation any transport offers (Podman's
``abi`` ContainerEngine over libpod).

The CLI, the Docker API and every later transport (compose, dashboard, kube) call these and only
parse input and render the reports. Typed options go in, typed reports come out; output is
written to sinks the caller passes (engine.sinks), never to fds 1/2. Batch calls (start, stop,
kill, restart, rm, pause, unpause, wait of many containers) run their items in parallel threads
and return one :class:`ItemReport` per item in the order asked: one failure does not stop the
others.

The domain work stays in ``container.lifecycle.ContainerService`` (``engine.containers``) and the
modules beside it; this layer chooses, validates and reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from dockerbank.container import model
from dockerbank.errors import Conflict, DockerbankError, InvalidArgument, NotFound

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path
    from typing import Any, BinaryIO

    from dockerbank.build.context import BuildContext
    from dockerbank.build.executor import BuildOptions
    from dockerbank.container.changes import Change
    from dockerbank.container.commit import CommitOptions
    from dockerbank.container.lifecycle import Attachment, ContainerService
    from dockerbank.container.options import CreateOptions
    from dockerbank.container.top import TopResult
    from dockerbank.engine import Engine
    from dockerbank.engine.container_options import (
        LogsOptions,
        LogsReport,
        PruneOptions,
        PruneReport,
        StatsReport,
        UpdateOptions,
    )
    from dockerbank.engine.sinks import Sink
    from dockerbank.image.store import ImageRecord

#: ``ps``/``GET /containers/json`` filters (docker's names).
LIST_FILTERS = frozenset({"name", "label", "status", "ancestor", "id", "exited", "health", "pod"})
#: ``container prune`` filters (docker's: ``until``, ``label``, ``label!``).
PRUNE_FILTERS = frozenset({"until", "label", "label!"})
WAIT_CONDITIONS = ("not-running", "next-exit", "removed")
#: At most this many items of a batch run at once (each holds a database connection).
BATCH_THREADS = 16


# --- options and reports ------------------------------------------------------------------

@dataclass
class ItemReport:
    """The outcome for one container of a batch call (Podman's ``entities.*Report``)."""

    ref: str                                  # as the caller named it
    id: str = ""                              # the container's full ID, when it was found
    error: DockerbankError | None = None
    not_modified: bool = False                # already in the wanted state (the API's 304)
    exit_code: int | None = None              # ``wait``: the container's exit code (None: unknown)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ListOptions:
    """``ps`` / ``GET /containers/json``."""

    all: bool = False
    last: int = -1                             # the N most recently created (``-n``, ``limit``), implies all
    filters: dict[str, list[str]] = field(default_factory=dict)
    size: bool = False


@dataclass
class ListEntry:
    container: model.Container
    size_rw: int | None = None                 # bytes in the container's own layer (with ``size``)
    size_root_fs: int | None = None            # image + own layer










@dataclass
class ExecOptions:
    """``exec`` / ``POST /containers/{id}/exec`` + ``/exec/{id}/start``."""

    command: list[str]
    interactive: bool = False
    tty: bool = False
    detach: bool = False
    env: list[str] = field(default_factory=list)
    user: str | None = None
    workdir: str | None = None
    privileged: bool = False






def parse_tail(text: str | None) -> int | None:
    """Docker's ``--tail`` / ``tail=``: ``all`` (or nothing, or a negative number) is every line,
    else a number of lines; anything else is refused (the API answers 400, as dockerd does)."""
    if text is None or text.strip() in ("", "all"):
        return None
    try:
        count = int(text)
    except ValueError as exc:
        raise InvalidArgument(f"failed to parse tail {text}: expected \"all\" or a number") from exc
    return None if count < 0 else count


def check_tags(tags: Sequence[str]) -> None:
    """Every ``-t``/``t=`` must be a valid reference (docker's message)."""
    from dockerbank.oci import reference

    for tag in tags:
        try:
            reference.parse(tag)
        except InvalidArgument as exc:
            raise InvalidArgument(f'invalid argument "{tag}" for "-t, --tag" flag: {exc.message}') from exc


def check_filters(filters: dict[str, list[str]], allowed: frozenset[str]) -> None:
    unknown = set(filters) - allowed
    if unknown:
        raise InvalidArgument(f"invalid filter '{min(unknown)}'")


def _not_found(ref: str, exc: NotFound) -> NotFound:
    """Docker's wording for a container that is not there, whatever the store said."""
    return exc if exc.message.startswith("No such container") else NotFound(f"No such container: {ref}")


# --- the engine ---------------------------------------------------------------------------

class ContainerEngine:
    """Container use cases of one engine (``engine.container_ops``)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @property
    def service(self) -> ContainerService:
        return self.engine.containers

    def get(self, ref: str) -> model.Container:
        """A container by name, ID or prefix (``No such container: ref`` else)."""
        try:
            return self.service.get(ref)
        except NotFound as exc:
            raise _not_found(ref, exc) from exc

    # --- batch machinery ----------------------------------------------------------------

    def _batch(self, refs: Sequence[str], act: Callable[[Engine, str], ItemReport]) -> list[ItemReport]:
        """``act(engine, ref)`` for each ref, in parallel threads with an engine (a database
        connection) each; the reports in the order of ``refs``."""
        def one(engine: Engine, ref: str) -> ItemReport:
            try:
                return act(engine, ref)
            except NotFound as exc:
                return ItemReport(ref, error=_not_found(ref, exc))
            except DockerbankError as exc:
                return ItemReport(ref, error=exc)

        if len(refs) <= 1:
            return [one(self.engine, ref) for ref in refs]
        from concurrent.futures import ThreadPoolExecutor

        def in_thread(ref: str) -> ItemReport:
            sibling = self.engine.sibling()
            try:
                return one(sibling, ref)
            finally:
                sibling.close(defer_to=self.engine)

        with ThreadPoolExecutor(max_workers=min(BATCH_THREADS, len(refs))) as pool:
            return list(pool.map(in_thread, refs))

    # --- create, start, stop, kill, restart, remove, pause --------------------------------

    def create(self, opts: CreateOptions) -> model.Container:
        """``create``: the new container (the image must be in the store: pulling is the caller's
        choice of policy and progress display); ``opts.pod`` joins it to that pod."""
        if opts.pod:
            return self.engine.pod_ops.create_container(opts)
        return self.service.create(opts)

    def start(self, refs: Sequence[str]) -> list[ItemReport]:
        """Start each container (detached); a running one is reported ``not_modified``."""
        def act(engine: Engine, ref: str) -> ItemReport:
            found = engine.containers.get(ref)
            if found.state.status in model.ACTIVE:
                return ItemReport(ref, found.id, not_modified=True)
            engine.containers.start(found.id)
            return ItemReport(ref, found.id)

        return self._batch(refs, act)

    def start_attached(self, ref: str, *, stdin: bool | None = None) -> Attachment | None:
        """Start one container with its stdio attached (the caller streams the Attachment);
        None when it already ran."""
        found = self.get(ref)
        return self.service.start(found.id, attached=True, stdin=stdin)

    def stop(self, refs: Sequence[str], timeout: int | None = None) -> list[ItemReport]:
        """Stop each container (its stop signal, SIGKILL after ``timeout`` s); in parallel, so
        many containers stop within one grace period, as docker's do."""
        def act(engine: Engine, ref: str) -> ItemReport:
            found = engine.containers.get(ref)
            if found.state.status not in model.ACTIVE:
                return ItemReport(ref, found.id, not_modified=True)
            engine.containers.stop(found.id, timeout)
            return ItemReport(ref, found.id)

        return self._batch(refs, act)

    def kill(self, refs: Sequence[str], signal: str | int = "KILL") -> list[ItemReport]:
        """Send ``signal`` to each container (refused as a whole for an unknown signal)."""
        from dockerbank.container.options import parse_signal

        parse_signal(signal)

        def act(engine: Engine, ref: str) -> ItemReport:
            return ItemReport(ref, engine.containers.kill(ref, signal).id)

        return self._batch(refs, act)

    def restart(self, refs: Sequence[str], timeout: int | None = None) -> list[ItemReport]:
        def act(engine: Engine, ref: str) -> ItemReport:
            found = engine.containers.get(ref)
            engine.containers.restart(found.id, timeout)
            return ItemReport(ref, found.id)

        return self._batch(refs, act)

    def remove(self, refs: Sequence[str], *, force: bool = False, volumes: bool = False) -> list[ItemReport]:
        """``rm``: a running container only with ``force`` (killed first); ``volumes``: its
        anonymous volumes too."""
        def act(engine: Engine, ref: str) -> ItemReport:
            found = engine.containers.store.find(ref)
            pod = engine.pods.store.names().get(found.config.pod) if found.config.is_infra else None
            if pod is not None:  # an infra left by a pod create that crashed before its record may go
                raise Conflict(f"container {found.id} is the infra container of pod {pod} and cannot be removed "
                               "without removing the pod (dockerbank pod rm)", exit_code=125)
            return ItemReport(ref, engine.containers.remove(found.id, force=force, volumes=volumes))

        return self._batch(refs, act)

    def pause(self, refs: Sequence[str]) -> list[ItemReport]:
        def act(engine: Engine, ref: str) -> ItemReport:
            found = engine.containers.get(ref)
            engine.containers.pause(found.id)
            return ItemReport(ref, found.id)

        return self._batch(refs, act)

    def unpause(self, refs: Sequence[str]) -> list[ItemReport]:
        def act(engine: Engine, ref: str) -> ItemReport:
            found = engine.containers.get(ref)
            engine.containers.unpause(found.id)
            return ItemReport(ref, found.id)

        return self._batch(refs, act)

    def wait(self, refs: Sequence[str], condition: str = "not-running",
             cancelled: Callable[[], bool] = lambda: False) -> list[ItemReport]:
        """Block until each container meets ``condition`` (``not-running``, ``next-exit``,
        ``removed``); ``exit_code`` of each report is its exit code. ``cancelled()`` true (the
        client went away) ends the waiting with an error report."""
        if condition not in WAIT_CONDITIONS:
            raise InvalidArgument(f"invalid condition: {condition}")

        def act(engine: Engine, ref: str) -> ItemReport:
            found = engine.containers.get(ref)
            code = _wait_for(engine.containers, found, condition, cancelled)
            return ItemReport(ref, found.id, exit_code=code)

        return self._batch(refs, act)

    def rename(self, ref: str, new_name: str) -> None:
        found = self.get(ref)
        self.service.rename(found.id, new_name)

    def update(self, refs: Sequence[str], opts: UpdateOptions) -> list[ItemReport]:
        """``update``: resources (applied at once to a running container) and restart policy."""
        def act(engine: Engine, ref: str) -> ItemReport:
            found = engine.containers.get(ref)
            engine.containers.update(found.id, memory=opts.memory, memory_swap=opts.memory_swap,
                                     nano_cpus=opts.nano_cpus, cpu_shares=opts.cpu_shares,
                                     pids_limit=opts.pids_limit, blkio_weight=opts.blkio_weight,
                                     restart=opts.restart)
            return ItemReport(ref, found.id)

        return self._batch(refs, act)

    # --- reading --------------------------------------------------------------------------

    def list(self, opts: ListOptions) -> list[ListEntry]:
        """``ps``: containers newest first, running ones unless ``all``, filtered as docker does."""
        from dockerbank.container.views import _ps_matches

        check_filters(opts.filters, LIST_FILTERS)
        if "health" in opts.filters:
            from dockerbank.container.health import check_filter

            check_filter(opts.filters)
        live = (*model.ACTIVE, model.RESTARTING)
        running_only = not opts.all and opts.last <= 0 and "status" not in opts.filters and "exited" not in opts.filters
        # without -a only live rows are read (reconciling may still find one of them exited)
        containers = self.service.list(live if running_only else None)
        if "pod" in opts.filters:  # the pods named, by ID, name or prefix (the domain views know no pods)
            pods = self.engine.pod_ops.member_filter(opts.filters["pod"])
            containers = [c for c in containers if c.config.pod in pods]
            opts = ListOptions(all=opts.all, last=opts.last, size=opts.size,
                               filters={k: v for k, v in opts.filters.items() if k != "pod"})
        show_all = opts.all
        if opts.last > 0:
            containers, show_all = containers[:opts.last], True
        if not show_all and "status" not in opts.filters and "exited" not in opts.filters:
            containers = [c for c in containers if c.state.status in live]
        image_ids: dict[str, str] = {}
        for ref in opts.filters.get("ancestor", []):
            try:
                image_ids[ref] = self.engine.images.resolve(ref).id
            except DockerbankError:
                pass
        entries = [ListEntry(c) for c in containers if _ps_matches(c, opts.filters, image_ids)]
        if opts.size:
            from dockerbank.host.fs import tree_size

            for entry in entries:
                entry.size_rw = tree_size(self.service.dir(entry.container.id) / "upper")
                try:
                    entry.size_root_fs = self.engine.images.get(entry.container.config.image_id).size + entry.size_rw
                except DockerbankError:
                    entry.size_root_fs = entry.size_rw
        return entries

    def inspect(self, ref: str, *, size: bool = False) -> dict[str, Any]:
        """Docker's inspect object of one container."""
        from dockerbank.container.views import inspect_container

        return inspect_container(self.engine, self.get(ref), size)

    def logs(self, ref: str, opts: LogsOptions, stdout: Sink, stderr: Sink,
             cancelled: Callable[[], bool] = lambda: False) -> LogsReport:
        """Write the container's log entries to ``stdout``/``stderr`` (a TTY container's all to
        ``stdout``); with ``follow`` until the container stops or ``cancelled()``."""
        return self.logs_many([ref], opts, stdout, stderr, prefix=False, cancelled=cancelled)[0]

    def logs_many(self, refs: Sequence[str], opts: LogsOptions, stdout: Sink, stderr: Sink, *,
                  prefix: bool = True, cancelled: Callable[[], bool] = lambda: False) -> builtins.list[LogsReport]:
        """Several containers' logs at once (``logs A B``, ``compose logs``, ``compose up``): the
        stored entries merged by time, then with ``follow`` the running ones' new entries as they
        come, until all have stopped or ``cancelled()``. ``prefix``: each line starts with
        ``NAME  | `` (names padded to one width, compose's layout) and all goes to ``stdout``;
        without it a non-TTY container's stderr lines go to ``stderr``."""
        import heapq
        import threading

        from dockerbank.container import logs as lg
        from dockerbank.engine.container_options import LogsReport
        from dockerbank.errors import NotSupported

        found = [self.get(ref) for ref in refs]   # every name resolved before a line is written
        for c in found:
            if (c.config.log_config or {}).get("Type") == "none":
                raise NotSupported("configured logging driver does not support reading"
                                   + (f": {c.name}" if len(found) > 1 else ""))
        width = max((len(c.name) for c in found), default=0)
        reports = [LogsReport(c.id, c.config.tty) for c in found]
        lock = threading.Lock()

        def emit(index: int, entry: lg.LogEntry) -> None:
            if not (opts.stderr if entry.stream == "stderr" else opts.stdout):
                return
            c = found[index]
            data = lg.format_entry(entry, opts.timestamps)
            if prefix:
                data = f"{c.name.ljust(width)}  | ".encode() + data + (b"" if data.endswith(b"\n") else b"\n")
            with lock:
                (stderr if entry.stream == "stderr" and not prefix and not c.config.tty else stdout).write(data)
                reports[index].entries += 1

        paths = [str(self.service.log_path(c.id)) for c in found]
        stored = [lg.read_entries(path, tail=opts.tail, since=opts.since, until=opts.until) for path in paths]
        ordered = [[(entry.epoch, index, entry) for entry in entries] for index, (entries, _) in enumerate(stored)]
        for _epoch, index, entry in heapq.merge(*ordered, key=lambda item: item[0]):  # each log keeps its order
            emit(index, entry)
        if not opts.follow:
            return reports

        def follow_one(index: int) -> None:
            from dockerbank.runtime.conmon import alive

            state = found[index].state
            for entry in lg.follow(paths[index], stored[index][1],
                                   lambda: not cancelled() and alive(state.conmon_pid, state.conmon_start),
                                   until=opts.until):
                if opts.since is None or entry.epoch >= opts.since:
                    emit(index, entry)

        active = [i for i, c in enumerate(found) if c.state.status in model.ACTIVE]
        if len(active) == 1:
            follow_one(active[0])      # the usual ``logs -f``: no thread
        else:
            threads = [threading.Thread(target=follow_one, args=(i,), daemon=True) for i in active]
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
        for i in active:
            self.service.reconcile(found[i])
        return reports

    def top(self, ref: str, ps_args: Sequence[str] | str | None = None) -> TopResult:
        """``top``: the host's ``ps`` rows of the container's processes."""
        from dockerbank.container.top import run_top
        from dockerbank.host.cgroups import container_cgroups_path, pids_of

        found = self.get(ref)
        if found.state.status not in model.ACTIVE:
            raise Conflict(f"Container {found.id} is not running")
        pids = pids_of(container_cgroups_path(found.id)) or [found.state.pid]
        return run_top(pids, ps_args or None)

    def stats(self, ref: str | model.Container) -> StatsReport:
        """One resource sample of a container (None for one that is not running)."""
        from dockerbank.container import stats as st
        from dockerbank.engine.container_options import StatsReport
        from dockerbank.host.cgroups import Cgroup, container_cgroups_path, detect_layout

        found = ref if isinstance(ref, model.Container) else self.get(ref)
        if found.state.status not in model.ACTIVE:
            return StatsReport(found, None)
        try:
            sample = st.read_sample(Cgroup(detect_layout(), container_cgroups_path(found.id)), found.state.pid)
        except DockerbankError:
            sample = None
        return StatsReport(found, sample)

    def stats_many(self, refs: Sequence[str] = (), *, all: bool = False, no_trunc: bool = False,
                   interval: float = 1.0) -> Iterator[builtins.list[dict[str, str]]]:
        """``stats`` of several containers: a list of docker's rows (container.stats.stats_row)
        every ``interval`` seconds, each CPU share measured over the interval before it. Without
        ``refs``: the running containers (every one with ``all``), listed anew each round as
        docker does, so started ones appear and removed ones go; a stopped one shows zeros."""
        import time

        from dockerbank.container import stats as st

        def chosen() -> builtins.list[tuple[str | None, model.Container]]:
            if refs:
                return [(ref, self.get(ref)) for ref in refs]
            return [(None, entry.container) for entry in self.list(ListOptions(all=all))]

        previous: dict[str, st.StatsSample] = {}
        for _ref, c in chosen():
            sample = self.stats(c).sample
            if sample is not None:
                previous[c.id] = sample
        while True:
            time.sleep(interval)
            rows = []
            for ref, c in chosen():
                current = self.stats(c).sample
                if current is None and c.state.status not in model.ACTIVE:
                    current = st.StatsSample()       # docker's zeros for a stopped container
                rows.append(st.stats_row(c.id, c.name, current, previous.get(c.id), no_trunc=no_trunc, container=ref))
                if current is not None and current.read:
                    previous[c.id] = current
            yield rows

    def prune(self, opts: PruneOptions) -> PruneReport:
        """Remove every stopped container the filters take; a failure is reported, the rest go on."""
        from dockerbank.container.logs import parse_since, parse_time
        from dockerbank.engine.container_options import PruneReport
        from dockerbank.host.fs import tree_size
        from dockerbank.labels import match_label

        check_filters(opts.filters, PRUNE_FILTERS)
        untils = [parse_since(value) for value in opts.filters.get("until", [])]
        report = PruneReport()
        pods = self.engine.pods.store.names()
        for c in self.service.list():
            if c.state.status in (*model.ACTIVE, model.RESTARTING) or (c.config.is_infra and c.config.pod in pods):
                continue  # an infra container goes with its pod (pod rm, pod prune)
            if any(u is not None and parse_time(c.created) > u for u in untils):
                continue
            if not all(match_label(c.config.labels, f) for f in opts.filters.get("label", [])):
                continue
            if any(match_label(c.config.labels, f) for f in opts.filters.get("label!", [])):
                continue
            size = tree_size(self.service.dir(c.id) / "upper")
            try:
                self.service.remove(c.id)
            except DockerbankError as exc:
                report.errors.append(ItemReport(c.id, c.id, error=exc))
                continue
            report.deleted.append(c.id)
            report.space_reclaimed += size
        return report

    # --- files ----------------------------------------------------------------------------

    def diff(self, ref: str) -> builtins.list[Change]:  # ``list`` here is the method above
        """``diff``: the changes in the container's own layer."""
        from dockerbank.container import fileops

        return list(fileops.diff(self.service, self.get(ref).id))

    def export(self, ref: str, out: Sink | BinaryIO) -> None:
        """``export``: the container's whole filesystem as a tar written to ``out``."""
        from dockerbank.container import fileops

        fileops.export(self.service, self.get(ref).id, out)  # type: ignore[arg-type]

    def archive_stat(self, ref: str, path: str) -> Any:
        """``HEAD /containers/{id}/archive``: the PathStat of ``path`` in the container."""
        from dockerbank.container import fileops
        from dockerbank.image.pack import stat_in_root

        with fileops.mounted_rootfs(self.service, self.get(ref).id) as (container, rootfs):
            where = fileops.locate(self.service, container, rootfs, _absolute(path))
            try:
                found = stat_in_root(where.root, where.path)
                return replace(found, name=where.name) if where.name else found  # a mount point: its own name
            except NotFound as exc:
                raise NotFound(f"Could not find the file {path} in container {ref}") from exc

    def archive_get(self, ref: str, path: str, out: Sink | BinaryIO, *, follow_link: bool = False) -> None:
        """``GET /containers/{id}/archive`` / ``cp CTR:SRC -``: ``path`` as a tar on ``out``."""
        from dockerbank.container import fileops

        fileops.copy_from(self.service, self.get(ref).id, path, "-", follow_link=follow_link,
                          out=out)  # type: ignore[arg-type]

    def archive_put(self, ref: str, path: str, tar: BinaryIO, *, copy_uid_gid: bool = False) -> None:
        """``PUT /containers/{id}/archive`` / ``cp - CTR:DEST``: extract ``tar`` below ``path``."""
        from dockerbank.container import fileops

        fileops.copy_to(self.service, self.get(ref).id, "-", path, archive=copy_uid_gid, stdin=tar)

    def copy_from(self, ref: str, src: str, dest: str, *, follow_link: bool = False) -> None:
        """``cp CTR:SRC DEST`` to a host path."""
        from dockerbank.container import fileops

        fileops.copy_from(self.service, self.get(ref).id, src, dest, follow_link=follow_link)

    def copy_to(self, ref: str, src: str, dest: str, *, follow_link: bool = False, archive: bool = False) -> None:
        """``cp SRC CTR:DEST`` from a host path."""
        from dockerbank.container import fileops

        fileops.copy_to(self.service, self.get(ref).id, src, dest, follow_link=follow_link, archive=archive)

    def commit(self, ref: str, opts: CommitOptions) -> ImageRecord:
        """``commit``: a new image of the container's own layer on its image."""
        from dockerbank.container.commit import commit

        return commit(self.engine, self.get(ref).id, opts)

    def build(self, context: BuildContext, opts: BuildOptions, out: Sink, *, quiet: bool = False,
              err: Sink | None = None) -> str:
        """``build`` (docker's legacy builder): progress lines and the RUN steps' output to
        ``out`` (the RUN steps' stderr to ``err`` when given), nothing with ``quiet``; the image ID."""
        from dockerbank.build.executor import Builder
        from dockerbank.build.run import run_step_for

        check_tags(opts.tags)

        def line(text: str) -> None:
            if not quiet:
                out.write(text.encode() + b"\n")

        def warn(text: str) -> None:  # warnings show even with quiet, on the error stream when there is one
            (err if err is not None else out).write(text.encode() + b"\n")

        run_step = run_step_for(self.engine, None if quiet else out, None if quiet else err)
        with context:
            return Builder(self.engine, line, run_step=run_step, quiet=quiet, warn=warn).build(context, opts)

    # --- processes ------------------------------------------------------------------------

    def exec(self, ref: str, opts: ExecOptions) -> Attachment | None:
        """Start ``opts.command`` in a running container: None detached, else an Attachment
        the caller streams (its ``finish()`` gives the exit code)."""
        found = self.get(ref)
        try:
            return self.service.exec(found.id, list(opts.command), interactive=opts.interactive, tty=opts.tty,
                                     detach=opts.detach, env=list(opts.env), user=opts.user,
                                     workdir=opts.workdir, privileged=opts.privileged)
        except DockerbankError as exc:
            if exc.exit_code not in (126, 127) and "permission denied" in exc.message:
                exc.exit_code = 126
            raise

    def attach(self, ref: str, *, stdin: bool = True) -> Attachment:
        """Connect to a running container's stdio (conmon's attach socket); the caller streams
        the Attachment and ends it with ``finish()`` (``run()`` on a terminal)."""
        from dockerbank.container.lifecycle import Attachment
        from dockerbank.runtime import conmon

        found = self.get(ref)
        if found.state.status not in model.ACTIVE:
            raise Conflict("You cannot attach to a stopped container, start it first")
        work = self.service.dir(found.id)
        sock = conmon.connect_attach(work)
        return Attachment(self.service, found.id, work, sock, found.state.conmon_pid, found.state.conmon_start,
                          found.config.tty, found.config.open_stdin and stdin)

    def resize(self, ref: str, height: int, width: int) -> None:
        """The TTY size of a running container's process."""
        from dockerbank.runtime import conmon

        found = self.get(ref)
        if found.state.status not in model.ACTIVE:
            raise Conflict(f"Container {found.id} is not running")
        conmon.resize(self.service.dir(found.id), height, width)

    def resize_session(self, work: Path, height: int, width: int) -> None:
        """The TTY size of an exec session (``work``: its directory, ``Attachment.work``)."""
        from dockerbank.runtime import conmon

        conmon.resize(work, height, width)

    def check_running(self, ref: str) -> model.Container:
        """The container, refused (409) unless it runs (exec create, resize)."""
        found = self.get(ref)
        if found.state.status != model.RUNNING:
            raise Conflict(f"Container {found.id} is not running")
        return found


def _absolute(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def _die_code_soon(config, cid: str, changes, timeout: float = 2.0) -> int | None:
    """The removed container's exit code from its ``die`` event, which the process that cleaned it
    up may append a moment after the removal became visible here (under load): the log's appends
    are watched for up to ``timeout`` seconds before giving up."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        code = _exit_code_of_removed(config, cid)
        if code is not None or time.monotonic() >= deadline:
            return code
        changes.wait(min(0.2, max(0.0, deadline - time.monotonic())))


def _exit_code_of_removed(config, cid: str, window: int = 256 * 1024) -> int | None:
    """The exit code a removed container's last ``die`` event recorded (whoever cleaned it up:
    an attached client, conmon's exit command, a reconcile), from the event log's tail; None
    when it is not there."""
    import json

    from dockerbank.events.log import EventLog

    needle = cid.encode()
    try:
        with open(EventLog.of(config).path, "rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - window))
            tail = handle.read()
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        if needle not in line or b'"die"' not in line:
            continue
        try:
            item = json.loads(line)
            if item.get("Action") == "die" and (item.get("Actor") or {}).get("ID") == cid:
                return int(item["Actor"]["Attributes"]["exitCode"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def _wait_for(service: ContainerService, found: model.Container, condition: str,
              cancelled: Callable[[], bool]) -> int | None:
    """Block until ``found`` meets ``condition``; its exit code (None: it ran and was removed
    before this saw its exit; the one who removed it knows).

    Event-driven: a running container's exit wakes it through conmon's pidfd, any other change
    (its clean-up, its removal, a start) through the event log's append (events.watch), so the
    answer comes as soon as the state allows; the timeouts only bound how late ``cancelled()``
    is noticed."""
    from dockerbank.events.watch import EventWatch
    from dockerbank.runtime import conmon

    cid, initial_finished = found.id, found.state.finished_at
    seen_exit: int | None = None
    with EventWatch.of(service.config) as changes:  # opened before the first read: no change missed
        while True:
            if cancelled():
                raise DockerbankError("the waiting client went away")
            try:
                current = service.get(cid)
            except NotFound:  # removed meanwhile (``--rm``): the exit code seen, else its die event's
                if seen_exit is not None:
                    return seen_exit
                return _die_code_soon(service.config, cid, changes)
            state = current.state
            if state.status in model.ACTIVE or state.status == model.RESTARTING:
                code = conmon.wait_exit(service.dir(cid), state.conmon_pid, state.conmon_start, 0.5)
                if code is not None:
                    seen_exit = code  # the next get() records the exit (reconcile)
                elif not conmon.alive(state.conmon_pid, state.conmon_start):
                    changes.wait(0.5)  # restarting: its monitor is gone, the new one's start is an event
                continue
            if condition == "not-running":
                return state.exit_code
            if condition == "next-exit" and (seen_exit is not None or state.finished_at != initial_finished):
                return state.exit_code
            changes.wait(0.5)
