"""Reading conmon's k8s-file logs: ``<RFC3339Nano> <stdout|stderr> <F|P> <text>`` per line.

``P`` marks a partial line (the output had no newline yet); ``F`` a full one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dockerbank.errors import InvalidArgument

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import BinaryIO


@dataclass(frozen=True)
class LogEntry:
    time: str        # as written, RFC 3339 with nanoseconds
    stream: str      # "stdout" or "stderr"
    data: bytes      # with the newline for full lines

    @property
    def epoch(self) -> float:
        return parse_time(self.time)


def parse_time(text: str) -> float:
    """RFC 3339 (nanoseconds, ``Z`` or ``+00:00``) to epoch seconds."""
    main, _, frac = text.partition(".")
    tz = "+00:00"
    if frac:
        digits = frac.rstrip("Z")
        for sign in "+-":
            if sign in digits:
                digits, tail = digits.split(sign, 1)
                tz = sign + tail
        frac_value = float("0." + (digits or "0"))
    else:
        frac_value = 0.0
        if main.endswith("Z"):
            main = main[:-1]
        elif len(main) > 19:
            main, tz = main[:19], main[19:]
    base = datetime.fromisoformat(main[:19] + tz.replace("Z", "+00:00"))
    return base.timestamp() + frac_value


def parse_line(line: bytes) -> LogEntry | None:
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    ts, stream, tag = parts[0].decode(), parts[1].decode(), parts[2]
    data = parts[3] if len(parts) > 3 else b""
    if tag != b"P":
        data += b"\n"
    return LogEntry(ts, stream, data)


def parse_since(value: str | None, now: float | None = None) -> float | None:
    """Docker's --since/--until: RFC 3339, a Unix time, or a duration (``10m``) before now."""
    if not value:
        return None
    now = time.time() if now is None else now
    units = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    for unit in sorted(units, key=len, reverse=True):
        if value.endswith(unit) and value[: -len(unit)].replace(".", "", 1).isdigit():
            return now - float(value[: -len(unit)]) * units[unit]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        if "T" in value:
            return parse_time(value if any(c in value[10:] for c in "Z+-") else value + "Z")
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError as exc:
        raise InvalidArgument(f'invalid value for "since": failed to parse value as time or duration: "{value}"') from exc


def read_entries(path: str, *, tail: int | None = None, since: float | None = None,
                 until: float | None = None) -> tuple[list[LogEntry], int]:
    """The log's entries (filtered), the rotated files' first (container.logrotate), and the live
    file's offset reached, for ``--follow`` to go on from."""
    from dockerbank.container.logrotate import log_files, read_file

    files = log_files(Path(path))
    entries: list[LogEntry] = []
    offset = 0
    for file in reversed(files):   # newest first: a --tail stops once it has its lines
        data = read_file(file)
        end = data.rfind(b"\n") + 1
        if file == files[-1]:
            offset = end
        entries[:0] = [e for e in (parse_line(line) for line in data[:end].splitlines()) if e is not None]
        if tail is not None and until is None and 0 <= tail < sum(e.data.endswith(b"\n") for e in entries) \
                and (since is None or (entries and entries[0].epoch < since)):
            break
    if since is not None or until is not None:
        entries = [e for e in entries if (since is None or e.epoch >= since) and (until is None or e.epoch <= until)]
    if tail is not None and tail >= 0:
        entries = _tail_lines(entries, tail)
    return entries, offset


def _tail_lines(entries: list[LogEntry], count: int) -> list[LogEntry]:
    """The entries of the last ``count`` full lines (partial chunks belong to their line)."""
    if count == 0:
        return []
    result: list[LogEntry] = []
    lines = 0
    for entry in reversed(entries):
        if entry.data.endswith(b"\n"):
            if lines == count:
                break
            lines += 1
        result.append(entry)
    return list(reversed(result))


def follow(path: str | Path, offset: int, running: Callable[[], bool], until: float | None = None,
           interval: float = 0.1, handle: BinaryIO | None = None,
           tick: Callable[[], object] | None = None) -> Iterator[LogEntry]:
    """Entries appended after ``offset`` while ``running()`` is true (then the rest, then stop).

    When conmon starts the file afresh (``--log-size-max``: a new file renamed over the old one)
    the old one is read to its end through the descriptor still open on it, then the new one from
    its start: nothing is skipped. ``handle``: the log already open at ``offset`` (the log keeper's,
    opened by the starter before it existed). ``tick``: called once a round before reading (the
    keeper's rotation)."""
    buffer = b""
    path = Path(path)
    if handle is not None:
        handle.seek(offset)
    try:
        while True:
            still = running()
            if tick is not None:
                tick()
            if handle is None:
                try:
                    handle = open(path, "rb")
                    handle.seek(offset)
                except FileNotFoundError:
                    if not still:
                        return
                    handle = None
            chunk = handle.read() if handle is not None else b""
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            switched = handle is not None and current is not None and current != os.fstat(handle.fileno()).st_ino
            if switched and handle is not None:
                chunk += handle.read()   # what was written to the old file before the switch
                handle.close()
                handle, offset = None, 0
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                entry = parse_line(line)
                if entry is None:
                    continue
                if until is not None and entry.epoch > until:
                    return
                yield entry
            if switched:
                continue   # read the new file at once (also when the container just ended)
            if not still:
                return
            time.sleep(interval)
    finally:
        if handle is not None:
            handle.close()


def format_entry(entry: LogEntry, timestamps: bool) -> bytes:
    if not timestamps:
        return entry.data
    return docker_timestamp(entry.time).encode() + b" " + entry.data


def docker_timestamp(ts: str) -> str:
    """conmon's ``...+00:00`` as Docker's ``...Z`` (RFC3339Nano)."""
    return ts[:-6] + "Z" if ts.endswith("+00:00") else ts


def log_fd(stream: str) -> int:
    return 2 if stream == "stderr" else 1


def write_entry(entry: LogEntry, timestamps: bool) -> None:
    data = format_entry(entry, timestamps)
    fd = log_fd(entry.stream)
    while data:
        try:
            written = os.write(fd, data)
        except BrokenPipeError:
            return
        data = data[written:]
