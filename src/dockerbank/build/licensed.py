"""Licensed source in a build context: a ``.dockerbank-license`` marker makes the image non-redistributable.

REDCap, Oracle XE and the like may be built from local source but never published. Whoever puts
such source into a context marks it with a ``.dockerbank-license`` file beside it (its text says
which license); the build then labels the image ``org.dockerbank.redistributable=false``, which
the push policy (registry.policy) enforces. Pure but for reading the context's directory.
"""

from __future__ import annotations

import os

from dockerbank.build.context import BuildContext
from dockerbank.registry.policy import LABEL

MARKER = ".dockerbank-license"


def markers(context: BuildContext) -> list[str]:
    """Relative paths of the license markers under the context's directory, also those
    .dockerignore excludes: ignoring the marker does not make the source beside it redistributable."""
    if context.root is None:
        return []
    found = []
    for directory, dirs, files in os.walk(context.root):
        dirs[:] = [d for d in dirs if d != ".git"]
        if MARKER in files:
            found.append(os.path.relpath(os.path.join(directory, MARKER), context.root))
    return sorted(found)


def labels_for(context: BuildContext, labels: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The build's extra labels with the license label forced when the context holds a marker."""
    found = markers(context)
    if not found:
        return labels, []
    return {**labels, LABEL: "false"}, found
