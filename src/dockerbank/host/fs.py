"""Filesystem measurements shared by volumes, containers and system df."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def tree_size(path: Path) -> int:
    """Bytes of the regular files below ``path``, hard links counted once (docker's directory.Size)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + dirnames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total
