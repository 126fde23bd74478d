"""docker's ``max-file`` and ``compress`` for conmon's k8s-file log.

conmon bounds the live log itself (``--log-size-max``): past it, it writes a new file and renames it
over the old one, which would then be gone. :class:`Keeper` keeps a second, hidden name on the live
file (``.ctr.log.held``, a hard link: no copy); once conmon has replaced the live file, the held one
becomes ``ctr.log.1`` (gzipped to ``ctr.log.1.gz`` with ``compress``), the older ones move up, and
past ``max-file`` files in all the oldest goes. So at most ``max-file`` files of at most ``max-size``
are kept, as docker's json-file does. The container's output never waits for any of this: conmon
writes its file whatever the keeper does.

The keeper runs in the log keeper process (container.logship), woken by inotify on each of
conmon's renames, and once in the starter before the container's process starts, so the first
file is held before a line is written. It holds the new file before it moves the old one, and
gzips in a worker thread, so it is back at once; a file that conmon replaced twice before the
keeper's process got the CPU would be missing from the rotated history (only with a max-size far
smaller than what the container writes in one scheduling delay).

The readers (``logs``) take :func:`log_files` oldest first; :func:`read_file` opens gzipped ones.
"""

from __future__ import annotations

import gzip
import os
import queue
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rotation:
    """How a container's local log is bounded (docker's max-size, max-file, compress)."""

    max_size: int = 0          # bytes; 0: unbounded
    max_files: int = 1         # the live file and max_files - 1 rotated ones
    compress: bool = False     # gzip the rotated files

    @property
    def keeps_history(self) -> bool:
        """Whether rotated files are kept (so a keeper must run beside conmon)."""
        return self.max_size > 0 and self.max_files > 1


def held_path(path: Path) -> Path:
    """The hidden second name of the live file (not matched by ``ctr.log*``)."""
    return path.with_name(f".{path.name}.held")


def rotated_path(path: Path, number: int, compressed: bool) -> Path:
    """``ctr.log.N`` or ``ctr.log.N.gz`` (pure)."""
    return path.with_name(f"{path.name}.{number}{'.gz' if compressed else ''}")


def _rotated(path: Path) -> dict[int, Path]:
    """The rotated files that exist, by number."""
    found: dict[int, Path] = {}
    prefix = path.name + "."
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return found
    for name in names:
        if not name.startswith(prefix):
            continue
        number = name[len(prefix):].removesuffix(".gz")
        if number.isdigit():
            found[int(number)] = path.with_name(name)
    return found


def _pending(path: Path) -> list[Path]:
    """Replaced files waiting to be compressed, oldest first (``.ctr.log.pending.<seq>``)."""
    prefix = f".{path.name}.pending."
    try:
        names = [n for n in os.listdir(path.parent) if n.startswith(prefix) and n[len(prefix):].isdigit()]
    except FileNotFoundError:
        return []
    return [path.with_name(n) for n in sorted(names, key=lambda n: int(n[len(prefix):]))]


def log_files(path: Path) -> list[Path]:
    """Every file of a container's log, oldest first, the live one last. Replaced files that the
    keeper has not moved yet (being compressed, or not seen yet) come before the live one."""
    path = Path(path)
    rotated = _rotated(path)
    files = [rotated[n] for n in sorted(rotated, reverse=True)] + _pending(path)
    held = held_path(path)
    try:
        if os.stat(held).st_ino != os.stat(path).st_ino:
            files.append(held)
    except FileNotFoundError:
        pass
    return [*files, path]


def read_file(path: Path) -> bytes:
    """The bytes of one log file (gunzipped when it is ``.gz``); b"" when it went meanwhile."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (FileNotFoundError, EOFError, gzip.BadGzipFile):
        return b""


class Keeper:
    """Keeps ``rotation.max_files`` files of the log at ``path`` (see the module's docstring)."""

    def __init__(self, path: Path, rotation: Rotation):
        self.path = Path(path)
        self.rotation = rotation
        self.held = held_path(self.path)
        self._queue: queue.Queue[Path | None] | None = None
        self._worker: threading.Thread | None = None
        self._seq = 0

    def step(self) -> bool:
        """Hold the live file; when conmon replaced it, rotate the held one. True when it rotated.
        The new live file is held before the old one is rotated; compressing happens in a worker
        thread, so the keeper never misses a replacement while it gzips."""
        try:
            live = os.stat(self.path)
        except FileNotFoundError:
            return False
        try:
            held = os.stat(self.held)
        except FileNotFoundError:
            self._hold()
            return False
        if held.st_ino == live.st_ino:
            return False
        if not self.rotation.compress:
            self._retire(self.held)
            self._hold()
            return True
        self._seq = max([self._seq, *(int(p.name.rsplit(".", 1)[1]) for p in _pending(self.path))]) + 1
        pending = self.path.with_name(f".{self.path.name}.pending.{self._seq}")
        os.replace(self.held, pending)
        self._hold()
        self._later(pending)
        return True

    def _later(self, pending: Path) -> None:
        if self._queue is None:
            self._queue = queue.Queue()
            self._worker = threading.Thread(target=self._work, name="logrotate", daemon=True)
            self._worker.start()
        self._queue.put(pending)

    def _work(self) -> None:
        assert self._queue is not None
        while (item := self._queue.get()) is not None:
            try:
                self._retire(item)
            except OSError:
                pass   # a full disk: the pending file stays readable and is retried at the next start

    def close(self) -> None:
        """Wait until the files handed to the worker are rotated."""
        if self._queue is not None and self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._queue = self._worker = None

    def start_afresh(self) -> None:
        """Before a (re)start: the previous run's lines become the newest rotated file, so conmon,
        which counts max-size from its own start, begins an empty file."""
        for pending in _pending(self.path):   # left by a keeper that was killed
            self._retire(pending)
        self.step()
        self.close()
        try:
            if os.stat(self.path).st_size == 0:
                return
        except FileNotFoundError:
            return
        try:
            os.unlink(self.held)
        except FileNotFoundError:
            pass
        moved = self.path.with_name(f".{self.path.name}.previous")
        os.replace(self.path, moved)
        self._retire(moved)

    def _hold(self) -> None:
        tmp = self.held.with_name(self.held.name + ".tmp")
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        try:
            os.link(self.path, tmp)
        except FileNotFoundError:
            return
        os.replace(tmp, self.held)

    def _retire(self, source: Path) -> None:
        """``source`` becomes ``ctr.log.1``; the others move up; the ones past max-file go."""
        keep = self.rotation.max_files - 1
        existing = _rotated(self.path)
        for number in sorted(existing, reverse=True):
            old = existing[number]
            if number + 1 > keep:
                old.unlink(missing_ok=True)
            else:
                os.replace(old, rotated_path(self.path, number + 1, old.name.endswith(".gz")))
        if keep < 1:
            source.unlink(missing_ok=True)
            return
        if not self.rotation.compress:
            os.replace(source, rotated_path(self.path, 1, False))
            return
        target = rotated_path(self.path, 1, True)
        tmp = target.with_name(target.name + ".tmp")   # not a ``ctr.log.N`` name until it is whole
        with open(source, "rb") as src, gzip.open(tmp, "wb", compresslevel=6) as out:
            shutil.copyfileobj(src, out, 1 << 20)
        os.chmod(tmp, 0o640)
        os.replace(tmp, target)
        source.unlink(missing_ok=True)


def keep(keeper: Keeper, running, timeout: float = 1.0) -> None:
    """Rotate while ``running()`` (a container with a local driver only), then once more.

    Woken by inotify when conmon renames a new log over the old one (``IN_MOVED_TO``), so the
    keeper reacts at once and sleeps otherwise; it polls every 50 ms where inotify cannot be had."""
    from dockerbank.host.inotify import IN_MOVED_TO, DirWatch

    watch = DirWatch(keeper.path.parent, IN_MOVED_TO)
    pause = timeout if watch.fd >= 0 else min(timeout, 0.05)
    try:
        while running():
            keeper.step()
            watch.wait(pause)
            watch.names()   # drain the records: the next wait sleeps until a new rename
        keeper.step()
    finally:
        watch.close()
        keeper.close()
