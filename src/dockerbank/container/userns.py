"""``--userns``: which user namespace a container runs in, and its share of subordinate IDs (pure).

``host`` (Docker's default): container root is host root. ``auto`` (Podman's ``--userns=auto``):
the container gets a range of its own from the ``dockerbank`` user's subordinate IDs, recorded in
its config, so its root is an unprivileged ID on the host and a container of another range cannot
touch its files. The allocation is first-fit over the ranges minus what the recorded containers
hold; the caller holds a lock from the choice until the container's row is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockerbank.errors import InvalidArgument

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

    from dockerbank.host.subids import Range

HOST = "host"
AUTO = "auto"
#: IDs per container: 0..65535 as on a host (nobody is 65534), like Docker's userns-remap
DEFAULT_SIZE = 65536
MIN_SIZE = 1024   # Podman's smallest auto size


@dataclass(frozen=True)
class Mode:
    """A parsed ``--userns`` value."""

    kind: str = HOST      # host | auto
    size: int = DEFAULT_SIZE


def parse(value: str | None) -> Mode:
    """``""``/``host`` -> host; ``auto`` or ``auto:size=N`` -> auto (Podman's syntax)."""
    text = (value or "").strip()
    if text in ("", HOST):
        return Mode()
    kind, _, options = text.partition(":")
    if kind != AUTO:
        # docker's words (``--userns: invalid USER mode``), then what Dockerbank takes
        raise InvalidArgument(f"--userns: invalid USER mode {value!r}: use 'host' or 'auto' (or 'auto:size=N')",
                              exit_code=125)
    size = DEFAULT_SIZE
    for option in filter(None, options.split(",")):
        key, _, number = option.partition("=")
        if key != "size" or not number.isdigit() or not MIN_SIZE <= int(number) <= 2 ** 31:
            raise InvalidArgument(f"invalid --userns option {option!r}: use size=N with N from {MIN_SIZE} to 2^31",
                                  exit_code=125)
        size = int(number)
    return Mode(AUTO, size)


def allocate(ranges: list[Range], used: list[tuple[int, int]], size: int) -> int | None:
    """The first host ID of a free run of ``size`` IDs inside ``ranges``, not overlapping any
    ``used`` (start, size); None when the ranges are full."""
    taken = sorted(used)
    for r in sorted(ranges, key=lambda r: r.start):
        start = r.start
        for used_start, used_size in taken:
            if used_start + used_size <= start or used_start >= r.end:
                continue
            if used_start >= start + size:
                break
            start = max(start, used_start + used_size)
        if start + size <= r.end:
            return start
    return None


def mapping(uid_start: int, gid_start: int, size: int) -> dict[str, Any]:
    """The record kept in the container's config (and handed to the runtime spec)."""
    return {"mode": AUTO, "uid": [{"containerID": 0, "hostID": uid_start, "size": size}],
            "gid": [{"containerID": 0, "hostID": gid_start, "size": size}]}


def held(records: list[dict[str, Any]], key: str) -> list[tuple[int, int]]:
    """The (start, size) host runs the recorded mappings hold for ``key`` (``uid``/``gid``)."""
    return [(m["hostID"], m["size"]) for record in records for m in record.get(key) or []]


def host_root(record: dict[str, Any] | None) -> tuple[int, int]:
    """The host uid/gid of the container's root (0, 0 without a user namespace)."""
    if not record:
        return 0, 0
    from dockerbank.oci.idmapping import NOBODY, to_host

    uid, gid = to_host(record["uid"], 0), to_host(record["gid"], 0)
    return (NOBODY if uid is None else uid), (NOBODY if gid is None else gid)


def describe(record: dict[str, Any] | None) -> str:
    """``host`` or ``auto (uids 2147483648-2147549183)`` for inspect and ps."""
    if not record:
        return HOST
    first = record["uid"][0]
    return f"auto (host uids {first['hostID']}-{first['hostID'] + first['size'] - 1})"
