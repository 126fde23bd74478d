"""Licensed source in a build context: a ``.dockerbank-license`` marker makes the image non-redistributable.

REDCap, Oracle XE and the like may be built from local source but never published. Whoever puts
such source into a context marks it with a ``.dockerbank-license`` file beside it (its text says
which license); the build then labels the image ``org.dockerbank.redistributable=false``, which
the push policy (registry.policy) enforces. Pure but for reading the context's directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from dockerbank.build.context import BuildContext
from dockerbank.registry.policy import LABEL, is_redistributable

#: image ID -> the components of the image whose license forbids redistribution ("deb foo 1.0");
#: the audit provides it (build cannot import the audit: it sits above the engine)
LicenseScan = Callable[[str], list[str]]

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


def relabel_if_forbidden(store, image_id: str, scan: LicenseScan, out: Callable[[str], None]) -> str:
    """The image itself, or, when ``scan`` finds components whose license forbids redistribution
    and the image is not labelled so yet, the same layers under a config labelled
    ``org.dockerbank.redistributable=false`` (its parent: the unlabelled one)."""
    config = store.image_config(image_id)
    if not is_redistributable(config):
        return image_id
    banned = scan(image_id)
    if not banned:
        return image_id
    labelled = json.loads(json.dumps(config))
    labelled.setdefault("config", {}).setdefault("Labels", {})
    labelled["config"]["Labels"] = {**(labelled["config"]["Labels"] or {}), LABEL: "false"}
    record = store.record_image(json.dumps(labelled, separators=(",", ":")).encode())
    store.set_parent(record.id, image_id)
    shown = ", ".join(banned[:3]) + (f" and {len(banned) - 3} more" if len(banned) > 3 else "")
    out(f"[LICENSE]: {shown}: a license that forbids redistribution; the image is labelled {LABEL}=false "
        "and stays in private registries")
    return record.id
