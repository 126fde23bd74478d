"""Options and reports of the container use cases that the hot CLI paths (``run``, ``ps``,
``rm``, ``exec``) never need: kept apart so those commands do not pay for building them."""

from __future__ import annotations

from dataclasses import dataclass, field

from dockerbank.container import model
from dockerbank.engine.containers import ItemReport

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from dockerbank.container.stats import StatsSample


@dataclass
class LogsOptions:
    """``logs`` / ``GET /containers/{id}/logs``; times are epoch seconds (logs.parse_since)."""

    tail: int | None = None                    # None: all lines
    since: float | None = None
    until: float | None = None
    follow: bool = False
    timestamps: bool = False
    stdout: bool = True
    stderr: bool = True


@dataclass
class LogsReport:
    id: str
    tty: bool
    entries: int = 0


@dataclass
class PruneOptions:
    filters: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class PruneReport:
    """``container prune``: what went, the bytes freed, and what could not go (not fatal)."""

    deleted: list[str] = field(default_factory=list)
    space_reclaimed: int = 0
    errors: list[ItemReport] = field(default_factory=list)


@dataclass
class UpdateOptions:
    """``update`` / ``POST /containers/{id}/update``: None leaves a setting as it is."""

    memory: int | None = None
    memory_swap: int | None = None
    nano_cpus: int | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None
    blkio_weight: int | None = None
    restart: str | None = None                 # docker's ``--restart`` text (``on-failure:3``)


@dataclass
class StatsReport:
    container: model.Container
    sample: StatsSample | None                 # None: not running (or its cgroup is gone)
