"""Progress of pulls and pushes: docker-like status lines, or rich bars on a terminal."""

from __future__ import annotations

import sys
import threading

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import TextIO

    from rich.progress import TaskID


class Progress:
    """Reports nothing (``-q``); the base of the other reporters."""

    def line(self, text: str) -> None:
        """A line outside any layer (``latest: Pulling from ...``)."""

    def status(self, item: str, text: str) -> None:
        """A layer's new state (``Pulling fs layer``, ``Download complete``, ``Pushed``)."""

    def start(self, item: str, total: int, text: str) -> None:
        """A transfer of ``total`` bytes begins."""

    def advance(self, item: str, amount: int) -> None:
        """``amount`` more bytes of ``item`` were transferred."""

    def close(self) -> None:
        """Stop drawing (bars are removed before the final lines)."""


class LineProgress(Progress):
    """What docker prints when its output is not a terminal: one line per state change."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def status(self, item: str, text: str) -> None:
        self.line(f"{item}: {text}")


class BarProgress(LineProgress):
    """rich progress bars on stderr (a terminal); states still printed as lines above them."""

    def __init__(self, stream: TextIO | None = None):
        super().__init__(stream)
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, TextColumn, TransferSpeedColumn
        from rich.progress import Progress as RichProgress

        self._console = Console(file=sys.stderr)
        self._bars = RichProgress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), console=self._console, transient=True)
        self._tasks: dict[str, TaskID] = {}
        self._bars.start()

    def line(self, text: str) -> None:
        with self._lock:
            self._bars.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def start(self, item: str, total: int, text: str) -> None:
        with self._lock:
            self._tasks[item] = self._bars.add_task(f"{item}: {text}", total=total or None)

    def advance(self, item: str, amount: int) -> None:
        task = self._tasks.get(item)
        if task is not None:
            self._bars.advance(task, amount)

    def status(self, item: str, text: str) -> None:
        task = self._tasks.pop(item, None)
        if task is not None:
            self._bars.remove_task(task)
        super().status(item, text)

    def close(self) -> None:
        self._bars.stop()


def reporter(quiet: bool) -> Progress:
    """Bars when stderr is a terminal, lines otherwise, nothing with ``-q``."""
    if quiet:
        return Progress()
    if sys.stderr.isatty():
        return BarProgress()
    return LineProgress()


class CountingReader:
    """Pass reads through while reporting their size as progress of ``item``."""

    def __init__(self, inner, progress: Progress, item: str):
        self.inner = inner
        self.progress = progress
        self.item = item

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        if data:
            self.progress.advance(self.item, len(data))
        return data
