"""Label filters (``--filter label=key`` / ``label=key=value``), shared by containers, volumes and
the API; apart from the stores so that ``ps`` does not import the volume store to filter."""

from __future__ import annotations

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from collections.abc import Mapping


def match_label(labels: Mapping[str, str], expression: str) -> bool:
    """``key`` matches when the label exists, ``key=value`` when it has that value."""
    key, sep, value = expression.partition("=")
    if key not in labels:
        return False
    return not sep or labels[key] == value
