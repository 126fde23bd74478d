"""Healthchecks as docker has them (pure): the config (image's ``HEALTHCHECK`` merged with the
create options), the schedule of the probes, and the ``State.Health`` a probe's result leads to.

The config is docker's ``Healthcheck`` object ({Test, Interval, Timeout, StartPeriod,
StartInterval, Retries}, durations in nanoseconds, 0 meaning the default); ``State.Health`` is
docker's {Status, FailingStreak, Log} with the last 5 results. This module imports only the
standard library (and ``errors`` lazily): the health scheduler, a process kept small on purpose,
imports it.
"""

from __future__ import annotations

from datetime import datetime, timezone

TYPE_CHECKING = False  # typing stays unimported at run time (the scheduler's start-up)
if TYPE_CHECKING:
    from typing import Any

SECOND = 1_000_000_000
DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_PERIOD = 0
DEFAULT_START_INTERVAL = 5 * SECOND
DEFAULT_RETRIES = 3
MIN_DURATION = 1_000_000          # docker's containertypes.MinimumDuration (1 ms)
MAX_LOG = 5                       # results kept in State.Health.Log
MAX_OUTPUT = 4096                 # bytes of a probe's output kept

STARTING, HEALTHY, UNHEALTHY, NONE = "starting", "healthy", "unhealthy", "none"

_DURATIONS = (("Interval", "interval"), ("Timeout", "timeout"), ("StartPeriod", "start-period"),
              ("StartInterval", "start-interval"))


# --- the config ---------------------------------------------------------------------------

def merge(user: dict[str, Any] | None, image: dict[str, Any] | None) -> dict[str, Any] | None:
    """The container's healthcheck: the create options' over the image's, field by field
    (docker's daemon ``merge``: an empty Test or a zero value takes the image's)."""
    if not user:
        return dict(image) if image else None
    merged = dict(user)
    image = image or {}
    if not merged.get("Test"):
        merged["Test"] = list(image.get("Test") or [])
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
        if not merged.get(key) and image.get(key):
            merged[key] = image[key]
    return {k: v for k, v in merged.items() if v or k == "Test"}


def validate(config: dict[str, Any] | None) -> None:
    """Docker's daemon checks of a create's healthcheck (one-line errors, exit 125)."""
    from dockerbank.errors import InvalidArgument

    if not config:
        return
    test = config.get("Test") or []
    if not isinstance(test, list) or not all(isinstance(x, str) for x in test):
        raise InvalidArgument("Healthcheck Test must be a list of strings", exit_code=125)
    if test and test[0] not in ("NONE", "CMD", "CMD-SHELL"):
        raise InvalidArgument(f"unknown healthcheck type {test[0]!r} (expected CMD, CMD-SHELL or NONE)",
                              exit_code=125)
    if test and test[0] == "CMD-SHELL" and len(test) != 2:
        raise InvalidArgument("Healthcheck CMD-SHELL takes exactly one command string", exit_code=125)
    if test and test[0] == "CMD" and len(test) < 2:
        raise InvalidArgument("Healthcheck CMD needs a command", exit_code=125)
    for key, _ in _DURATIONS:
        value = config.get(key) or 0
        if not isinstance(value, int) or value < 0 or 0 < value < MIN_DURATION:
            raise InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms", exit_code=125)
    retries = config.get("Retries") or 0
    if not isinstance(retries, int) or retries < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative", exit_code=125)


def from_flags(cmd: str | None, interval: str | None, timeout: str | None, start_period: str | None,
               start_interval: str | None, retries: int | None, no_healthcheck: bool) -> dict[str, Any] | None:
    """The docker CLI's ``--health-*`` / ``--no-healthcheck`` -> a create's Healthcheck (None: the image's)."""
    from dockerbank.errors import InvalidArgument

    durations = {}
    for (key, flag), text in zip(_DURATIONS, (interval, timeout, start_period, start_interval), strict=True):
        if text:
            durations[key] = parse_go_duration(text, f"--health-{flag}")
    have = bool(cmd) or any(durations.values()) or bool(retries)
    if no_healthcheck:
        if have:
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options", exit_code=125)
        return {"Test": ["NONE"]}
    if not have:
        return None
    for (key, flag) in _DURATIONS:
        if durations.get(key, 0) < 0:
            raise InvalidArgument(f"--health-{flag} cannot be negative", exit_code=125)
    if (retries or 0) < 0:
        raise InvalidArgument("--health-retries cannot be negative", exit_code=125)
    config: dict[str, Any] = {"Test": ["CMD-SHELL", cmd] if cmd else []}
    config.update({k: v for k, v in durations.items() if v})
    if retries:
        config["Retries"] = retries
    validate(config)
    return config


def parse_go_duration(text: str, flag: str) -> int:
    """Go's ``time.ParseDuration`` (``1m30s``, ``500ms``, ``-1s``) -> nanoseconds, with the docker
    CLI's message for what it cannot read."""
    from dockerbank.errors import InvalidArgument
    from dockerbank.units import go_duration_ns

    value = go_duration_ns(text)
    if value is None:
        raise InvalidArgument(f'invalid argument "{text}" for "{flag}" flag: time: invalid duration "{text}"',
                              exit_code=125)
    return value


def enabled(config: dict[str, Any] | None) -> bool:
    """Whether the healthcheck runs a probe (not NONE, not empty, a type docker knows)."""
    test = (config or {}).get("Test") or []
    return bool(test) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1


def probe_argv(config: dict[str, Any], shell: list[str] | None = None) -> list[str]:
    """The probe's command line: CMD's arguments, or CMD-SHELL's text under ``/bin/sh -c``."""
    test = config["Test"]
    if test[0] == "CMD-SHELL":
        return [*(shell or ["/bin/sh", "-c"]), test[1]]
    return list(test[1:])


def timing(config: dict[str, Any]) -> tuple[float, float, float, float, int]:
    """(interval, timeout, start period, start interval) in seconds and the retries, defaults applied."""
    def seconds(key: str, default: int) -> float:
        return (config.get(key) or default) / SECOND

    retries = config.get("Retries") or 0
    return (seconds("Interval", DEFAULT_INTERVAL), seconds("Timeout", DEFAULT_TIMEOUT),
            seconds("StartPeriod", DEFAULT_START_PERIOD), seconds("StartInterval", DEFAULT_START_INTERVAL),
            retries if retries > 0 else DEFAULT_RETRIES)


def go_duration(seconds: float) -> str:
    """A duration as Go prints it in a message (``30s``, ``1.5s``, ``1m0s``)."""
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}m{rest:g}s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}h{int(minutes)}m{rest:g}s"


# --- State.Health -------------------------------------------------------------------------

def started(previous: dict[str, Any] | None) -> dict[str, Any]:
    """Health at a (re)start: starting, no failing streak; the log of earlier runs is kept (docker)."""
    return {"Status": STARTING, "FailingStreak": 0, "Log": list((previous or {}).get("Log") or [])}


def stopped(health: dict[str, Any] | None) -> dict[str, Any] | None:
    """Health once probing stops (the container exited or was paused): docker reports it
    unhealthy, streak and log kept; after an unpause the next probe's result sets it again."""
    if not health:
        return health
    return {**health, "Status": UNHEALTHY}


def result(start: float, end: float, exit_code: int, output: bytes | str) -> dict[str, Any]:
    """One entry of State.Health.Log (output cut to 4096 bytes, as docker does)."""
    if isinstance(output, str):
        output = output.encode()
    return {"Start": rfc3339(start), "End": rfc3339(end), "ExitCode": exit_code,
            "Output": output[:MAX_OUTPUT].decode(errors="replace")}


def record(health: dict[str, Any] | None, entry: dict[str, Any], config: dict[str, Any],
           started_at: str) -> tuple[dict[str, Any], str | None]:
    """Docker's ``handleProbeResult``: the new health after ``entry`` and the new status when it
    changed (for the ``health_status`` event), else None.

    A failure while the container is still ``starting`` and within its start period does not
    count; ``retries`` failures in a row make it unhealthy; one success makes it healthy.
    """
    health = dict(health or started(None))
    old = health.get("Status", STARTING)
    health["Log"] = ([*(health.get("Log") or []), entry])[-MAX_LOG:]
    streak = int(health.get("FailingStreak") or 0)
    if entry["ExitCode"] == 0:
        streak, status = 0, HEALTHY
    else:
        status = old
        _, _, start_period, _, retries = timing(config)
        counts = not (old == STARTING and epoch(entry["Start"]) - epoch(started_at) < start_period)
        if counts:
            streak += 1
            if streak >= retries:
                status = UNHEALTHY
    health["FailingStreak"], health["Status"] = streak, status
    return health, (status if status != old else None)


def next_due(config: dict[str, Any], health: dict[str, Any] | None, started_at: str) -> float:
    """When the next probe is due (epoch seconds): one interval after the last probe of this run
    ended, else after the start; the start interval while starting within the start period
    (docker's ``getInterval``)."""
    interval, _, start_period, start_interval, _ = timing(config)
    start = epoch(started_at)
    log = (health or {}).get("Log") or []
    last = max(start, epoch(log[-1]["End"])) if log else start
    status = (health or {}).get("Status", STARTING)
    wait = start_interval if (last - start < start_period and status == STARTING) else interval
    return last + wait


#: the most a probe waits for others due soon after it, so one worker runs them all
MAX_SLACK = 1.0
#: timer jitter: probes due this close are due now
EARLY = 0.02


def slack(config: dict[str, Any]) -> float:
    """How late a probe may start to share a worker with others: a tenth of its interval, at most 1 s."""
    interval, _, _, start_interval, _ = timing(config)
    return min(MAX_SLACK, 0.1 * min(interval, start_interval))


def batch(dues: dict[str, tuple[float, float]], now: float) -> tuple[list[str], float | None]:
    """Which probes to start now, and when to look again (None: nothing waits).

    ``dues`` maps a container to (when its probe is due, its slack). The earliest probe waits
    for the others due within its slack (never longer), and then they all start in one worker:
    each worker start costs an interpreter, and probes started together stay together (their
    next ones are due together), so the worker starts per period fall as the phases merge.
    """
    if not dues:
        return [], None
    order = sorted(dues.items(), key=lambda item: item[1][0])
    first_due, first_slack = order[0][1]
    group = [due for _, (due, _) in order if due <= first_due + first_slack]
    start = max(group)
    if start > now + EARLY:
        return [], start
    ready = [cid for cid, (due, _) in order if due <= max(start, now) + EARLY]
    waiting = [due for cid, (due, _) in order if cid not in ready]
    return ready, (min(waiting) if waiting else None)


# --- views --------------------------------------------------------------------------------

def status_suffix(health: dict[str, Any] | None) -> str:
    """What ``ps`` adds to ``Up …``: `` (healthy)``, `` (health: starting)``, `` (unhealthy)``."""
    if not health:
        return ""
    status = health.get("Status", STARTING)
    return f" ({'health: starting' if status == STARTING else status})"


def filter_value(health: dict[str, Any] | None) -> str:
    """The value ``ps --filter health=`` compares: starting, healthy, unhealthy or none."""
    return (health or {}).get("Status") or NONE


FILTER_VALUES = (STARTING, HEALTHY, UNHEALTHY, NONE)


def check_filter(filters: dict[str, list[str]]) -> None:
    """Docker's refusal of a ``health`` filter value it does not know."""
    for value in filters.get("health", []):
        if value not in FILTER_VALUES:
            from dockerbank.errors import InvalidArgument

            raise InvalidArgument(f"Unrecognised filter value for health: {value}")


# --- times --------------------------------------------------------------------------------

def rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def epoch(text: str) -> float:
    """RFC 3339 (Z, up to nanoseconds) -> epoch seconds; docker's zero time -> 0."""
    if not text or text.startswith("0001-"):
        return 0.0
    head, _, frac = text.rstrip("Z").partition(".")
    moment = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return moment + (float("0." + frac) if frac.isdigit() else 0.0)
