"""Reading conmon's k8s-file logs: ``<RFC3339Nano> <stdout|stderr> <F|P> <text>`` per line.

``P`` marks a partial line (the output had no newline yet); ``F`` a full one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from dockerbank.errors import InvalidArgument


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
    """The log's entries (filtered) and the file offset reached, for ``--follow`` to go on from."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return [], 0
    offset = data.rfind(b"\n") + 1
    entries = [e for e in (parse_line(line) for line in data[:offset].splitlines()) if e is not None]
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


def follow(path: str, offset: int, running: Callable[[], bool], until: float | None = None,
           interval: float = 0.1) -> Iterator[LogEntry]:
    """Entries appended after ``offset`` while ``running()`` is true (then the rest, then stop)."""
    buffer = b""
    while True:
        still = running()
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        offset += len(chunk)
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            entry = parse_line(line)
            if entry is None:
                continue
            if until is not None and entry.epoch > until:
                return
            yield entry
        if not still:
            return
        time.sleep(interval)


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
