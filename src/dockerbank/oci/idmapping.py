"""Translating IDs through OCI ``uidMappings``/``gidMappings`` (``[{containerID, hostID, size}]``), pure."""

from __future__ import annotations

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

NOBODY = 65534   # the kernel's overflow ID: what an unmapped ID reads as


def to_host(maps: list[dict[str, Any]], inner: int) -> int | None:
    """The host ID of container ID ``inner`` (None when unmapped)."""
    for m in maps:
        if m["containerID"] <= inner < m["containerID"] + m["size"]:
            return int(m["hostID"] + inner - m["containerID"])
    return None


def to_container(maps: list[dict[str, Any]], outer: int) -> int | None:
    """The container ID of host ID ``outer`` (None when unmapped)."""
    for m in maps:
        if m["hostID"] <= outer < m["hostID"] + m["size"]:
            return int(m["containerID"] + outer - m["hostID"])
    return None
