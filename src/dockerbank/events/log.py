"""The event log: one JSON line per event in ``<root>/events.jsonl`` (Docker's event shape).

Appends are single ``write`` calls on an O_APPEND descriptor, so concurrent writers (CLI
processes, the API server's threads) never interleave lines. The history is persisted (it
survives a reboot, unlike dockerd's in-memory ring of 256 events, so ``events --since`` can look
back) and bounded: the file is rotated once past ``MAX_BYTES`` and the previous generation is
kept as ``events.jsonl.1``, so at most about 2 × MAX_BYTES (several thousand events) are kept.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

MAX_BYTES = 1 << 20
TYPES = ("container", "image", "volume", "network", "pod")


def event(kind: str, action: str, actor: str, attributes: dict[str, str] | None = None,
          now_ns: int | None = None) -> dict[str, Any]:
    """A Docker event object (pure)."""
    now_ns = now_ns if now_ns is not None else time.time_ns()
    data: dict[str, Any] = {"Type": kind, "Action": action, "Actor": {"ID": actor, "Attributes": attributes or {}},
                            "scope": "local", "time": now_ns // 1_000_000_000, "timeNano": now_ns}
    if kind in ("container", "image"):  # the pre-1.22 fields the docker CLI still prints from
        data["status"] = action
        data["id"] = actor
        if kind == "container" and attributes and "image" in attributes:
            data["from"] = attributes["image"]
    return data


def emit(config, kind: str, action: str, actor: str, attributes: dict[str, str] | None = None) -> None:
    """Record an event in ``config``'s run root (what every service calls; never fails its caller)."""
    EventLog.of(config).record(kind, action, actor, attributes)


def container_attributes(container, **extra: str) -> dict[str, str]:
    """A container event's attributes as dockerd gives them: labels, image, name, extras (pure)."""
    return {**{k: str(v) for k, v in (container.config.labels or {}).items()}, "image": container.config.image,
            "name": container.name, **extra}


def matches(item: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """Docker's event filters: type, event/action, container, image, volume, network, label (pure)."""
    attrs = item.get("Actor", {}).get("Attributes", {}) or {}
    actor = item.get("Actor", {}).get("ID", "")
    for key, values in filters.items():
        if not values:
            continue
        if key == "type" and item.get("Type") not in values:
            return False
        if key in ("event", "action") and not any(item.get("Action", "").split(":")[0] == v or item.get("Action") == v
                                                  for v in values):
            return False
        if key in ("container", "volume", "network") and (
                item.get("Type") != key or not any(actor.startswith(v) or attrs.get("name") == v for v in values)):
            return False
        if key == "image":
            name = attrs.get("image") if item.get("Type") == "container" else attrs.get("name", actor)
            if not any(v in (name, actor) for v in values):
                return False
        if key == "label":
            for value in values:
                k, sep, v = value.partition("=")
                if k not in attrs or (sep and attrs[k] != v):
                    return False
    return True


@dataclass
class EventLog:
    path: Path

    @classmethod
    def of(cls, config) -> EventLog:
        return cls(Path(config.root) / "events.jsonl")

    def record(self, kind: str, action: str, actor: str, attributes: dict[str, str] | None = None) -> None:
        """Append one event; never fails the operation it reports."""
        line = (json.dumps(event(kind, action, actor, attributes)) + "\n").encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line)
                if os.fstat(fd).st_size > MAX_BYTES:
                    os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            finally:
                os.close(fd)
        except OSError:
            pass

    def read(self, since_ns: int = 0, until_ns: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """Stored events in [since, until] and the offset to follow from."""
        out: list[dict[str, Any]] = []
        offset = 0
        for path in (self.path.with_name(self.path.name + ".1"), self.path):
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if path == self.path:
                offset = len(data)
            for line in data.splitlines():
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                nano = item.get("timeNano", 0)
                if nano >= since_ns and (until_ns is None or nano <= until_ns):
                    out.append(item)
        return out, offset

    def follow(self, offset: int) -> Iterator[list[dict[str, Any]]]:
        """Batches of events appended after ``offset`` (an empty batch when nothing came); a rotation
        restarts at the new file's beginning."""
        buffer = b""
        while True:
            try:
                size = self.path.stat().st_size
            except OSError:
                size = 0
            if size < offset:
                offset, buffer = 0, b""
            batch = []
            if size > offset:
                with open(self.path, "rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                offset += len(chunk)
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    try:
                        batch.append(json.loads(line))
                    except ValueError:
                        continue
            yield batch
