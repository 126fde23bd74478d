"""Unpack one layer tar into a directory as an overlayfs lower layer.

PLACEHOLDER: a hardened implementation replaces this (hostile paths, links leaving the
layer, device nodes, whiteouts -> overlay whiteouts, id mapping).
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True)
class IdMapping:
    """Shift of owners while unpacking; identity for rootful containers."""

    uid_offset: int = 0
    gid_offset: int = 0


IDENTITY = IdMapping()


def unpack_layer(tar_stream: BinaryIO, dest: Path, idmap: IdMapping = IDENTITY) -> int:
    """Unpack the uncompressed tar read from ``tar_stream`` into ``dest``; return unpacked bytes."""
    total = 0
    with tarfile.open(fileobj=tar_stream, mode="r|") as archive:
        for member in archive:
            total += member.size if member.isfile() else 0
            archive.extract(member, dest, set_attrs=True, numeric_owner=True)
    return total
