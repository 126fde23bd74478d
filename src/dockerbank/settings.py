"""A root's own settings: ``<root>/config.json``, with docker's ``daemon.json`` keys.

Read when a setting is needed (a create reads the default log driver), never at start-up, so a
mistake in the file fails the commands that use it with one line naming it and nothing else.
Keys: ``log-driver`` and ``log-opts`` (the default of containers that name no driver), ``userns``
(the default ``--userns`` of containers that name none: ``host`` or ``auto[:size=N]``; Podman's
containers.conf key, as daemon.json's ``userns-remap`` has no per-container ranges).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dockerbank.errors import InvalidArgument

FILE = "config.json"
KEYS = ("log-driver", "log-opts", "userns")


def path(root: Path) -> Path:
    return Path(root) / FILE


def parse(text: str, where: str = FILE) -> dict[str, Any]:
    """The settings in ``text`` (pure); one-line InvalidArgument (exit 125) naming what is wrong."""
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"{where}: not valid JSON ({exc.msg}, line {exc.lineno})", exit_code=125) from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{where}: must be a JSON object", exit_code=125)
    for key in data:
        if key not in KEYS:
            raise InvalidArgument(f"{where}: unknown setting {key!r}: use {', '.join(KEYS)}", exit_code=125)
    if not isinstance(data.get("userns", ""), str):
        raise InvalidArgument(f"{where}: userns must be a string", exit_code=125)
    if not isinstance(data.get("log-driver", ""), str):
        raise InvalidArgument(f"{where}: log-driver must be a string", exit_code=125)
    opts = data.get("log-opts", {})
    if not isinstance(opts, dict) or not all(isinstance(v, str) for v in opts.values()):
        raise InvalidArgument(f"{where}: log-opts must map names to strings", exit_code=125)
    return data


def load(root: Path) -> dict[str, Any]:
    """The root's settings ({} when it has no ``config.json``)."""
    file = path(root)
    try:
        text = file.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InvalidArgument(f"{file}: cannot read it: {exc.strerror}", exit_code=125) from None
    return parse(text, str(file))


def update(root: Path, key: str, value: Any) -> None:
    """Set one setting (None: drop it), keeping the others; written 0600 through a temporary name."""
    from dockerbank.host.permissions import write_private

    data = load(root)
    if value is None:
        data.pop(key, None)
    else:
        data[key] = value
    parse(json.dumps(data), str(path(root)))
    write_private(path(root), json.dumps(data, indent=2, sort_keys=True) + "\n")


def default_log_driver(root: Path) -> str:
    """The root's default log driver as ``info`` shows it (``k8s-file`` when none is set, or when
    the file is broken: ``info`` still answers; a create says what is wrong)."""
    try:
        return load(root).get("log-driver") or "k8s-file"
    except InvalidArgument:
        return "k8s-file"
