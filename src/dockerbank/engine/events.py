"""``events`` / ``GET /events``: the root's persisted event history (events.log), filtered, then
(unless ``until`` has passed) the new events as they come.

One generator for every transport: the CLI prints each batch, the API writes it to its stream
(calling ``next`` in a worker thread). A batch may be empty, so a caller can check between
batches whether its reader went away.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dockerbank.engine.containers import check_filters

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

#: docker's event filters
FILTERS = frozenset({"type", "event", "action", "container", "image", "volume", "network", "label"})


@dataclass
class EventsOptions:
    """Times in epoch seconds (container.logs.parse_since reads docker's forms)."""

    since: float | None = None     # None: from now on (docker's default)
    until: float | None = None     # None: follow for ever
    filters: dict[str, list[str]] = field(default_factory=dict)
    interval: float = 0.2          # how often the history is looked at while following


def stream(config, opts: EventsOptions, cancelled: Callable[[], bool] = lambda: False,
           now: Callable[[], int] = time.time_ns) -> Iterator[list[dict[str, Any]]]:
    """Batches of Docker event objects: the stored ones in [since, until] first, then new ones
    until ``until`` passes or ``cancelled()``."""
    from dockerbank.events.log import EventLog, matches

    check_filters(opts.filters, FILTERS)
    start = now()
    since_ns = int(opts.since * 1e9) if opts.since is not None else start
    until_ns = int(opts.until * 1e9) if opts.until is not None else None
    log = EventLog.of(config)
    stored, offset = log.read(since_ns, until_ns)
    yield [item for item in stored if matches(item, opts.filters)]
    if until_ns is not None and until_ns <= start:
        return
    for batch in log.follow(offset):
        out: list[dict[str, Any]] = []
        for item in batch:
            if until_ns is not None and item.get("timeNano", 0) > until_ns:
                yield out
                return
            if item.get("timeNano", 0) >= since_ns and matches(item, opts.filters):
                out.append(item)
        yield out
        if cancelled() or (until_ns is not None and now() > until_ns):
            return
        if not batch:
            time.sleep(opts.interval)


def render(item: dict[str, Any]) -> str:
    """docker's line for an event: ``TIME TYPE ACTION ID (key=value, ...)`` (pure)."""
    nano = int(item.get("timeNano") or item.get("time", 0) * 1_000_000_000)
    stamp = datetime.fromtimestamp(nano // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nano % 1_000_000_000:09d}".rstrip("0")   # Go's RFC3339Nano drops trailing zeros
    actor = item.get("Actor") or {}
    attrs = ", ".join(f"{k}={v}" for k, v in sorted((actor.get("Attributes") or {}).items()))
    line = f"{stamp}{'.' + fraction if fraction else ''}Z {item.get('Type', '')} {item.get('Action', '')} " \
           f"{actor.get('ID', '')}"
    return line + (f" ({attrs})" if attrs else "")
