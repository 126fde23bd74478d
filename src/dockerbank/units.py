"""Docker's human-readable units (docker/go-units), in one place for every command."""

from __future__ import annotations

from datetime import datetime

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def _custom_size(precision: int, size: float, base: float, units: tuple[str, ...]) -> str:
    index = 0
    while size >= base and index < len(units) - 1:
        size /= base
        index += 1
    return f"{size:.{precision}g}{units[index]}"


def human_size(size: float, precision: int = 4) -> str:
    """go-units ``HumanSizeWithPrecision`` (decimal units); ``HumanSize`` is precision 4."""
    return _custom_size(precision, float(size), 1000.0, _DECIMAL)


def bytes_size(size: float) -> str:
    """go-units ``BytesSize``: binary units, 4 significant digits (``1.5MiB``)."""
    return _custom_size(4, float(size), 1024.0, _BINARY)


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration``: 'Less than a second', '5 seconds', 'About an hour', ..."""
    if seconds < 1:
        return "Less than a second"
    if int(seconds) == 1:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(round(seconds / 3600))
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


_GO_UNIT_NS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DAY_NS = 24 * 3600 * 10**9


def go_duration_ns(text: str, *, days: bool = False) -> int | None:
    """Go's ``time.ParseDuration`` (``1m30s``, ``.5s``, ``-1s``, ``0``) in nanoseconds; None when
    ``text`` is not one. ``days``: compose-go also knows ``d``. Callers word their own error."""
    import re

    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text.removeprefix("+"))
    if body == "0":
        return 0
    pos, total = 0, 0.0
    pattern = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h" + ("|d)" if days else ")")
    for match in re.finditer(pattern, body):
        if match.start() != pos:
            break
        unit = match.group(2)
        total += float(match.group(1)) * (_DAY_NS if unit == "d" else _GO_UNIT_NS[unit])
        pos = match.end()
    if not body or pos != len(body):
        return None
    return sign * int(total)


def since(moment: datetime, now: datetime) -> str:
    """``5 minutes ago``, as docker's CREATED columns print it."""
    return human_duration(max(0.0, (now - moment).total_seconds())) + " ago"
