"""Image configs (OCI image spec ``config`` / Docker's container config): building and changing.

Pure functions over dicts, so that import, commit and build share one way to apply
``--change`` instructions and to add history.
"""

from __future__ import annotations

import json
import os
import shlex

from dockerbank.errors import InvalidArgument

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def host_arch() -> str:
    machine = os.uname().machine  # not platform.machine(): importing platform costs ~7 ms per CLI call
    return _ARCH.get(machine, machine)


def new_config(created: str, diff_ids: list[str], history: list[dict], container_config: dict | None = None) -> dict:
    """A fresh image config for this host's platform."""
    return {
        "architecture": host_arch(),
        "os": "linux",
        "created": created,
        "config": container_config or {},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": list(history),
    }


def canonical_bytes(config: dict) -> bytes:
    """The bytes stored for a config we write (compact, key order kept: its digest is the image ID)."""
    return json.dumps(config, separators=(",", ":")).encode()


CHANGE_INSTRUCTIONS = {"CMD", "ENTRYPOINT", "ENV", "WORKDIR", "USER", "EXPOSE", "LABEL", "VOLUME", "STOPSIGNAL", "ONBUILD"}


def _json_or_shell(value: str, shell_form: bool) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise InvalidArgument(f"invalid JSON array: {value}") from exc
        if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
            raise InvalidArgument(f"expected a JSON array of strings: {value}")
        return parsed
    return ["/bin/sh", "-c", value] if shell_form else shlex.split(value)


def _pairs(value: str, what: str) -> list[tuple[str, str]]:
    """``KEY=VALUE ...`` (quoted values allowed) or the legacy ``KEY VALUE`` form."""
    tokens = shlex.split(value)
    if tokens and "=" not in tokens[0]:
        if len(tokens) < 2:
            raise InvalidArgument(f"{what} needs a value: {value}")
        return [(tokens[0], value.split(None, 1)[1].strip())]
    pairs = []
    for token in tokens:
        key, sep, val = token.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{what} expects KEY=VALUE, got {token!r}")
        pairs.append((key, val))
    return pairs


def apply_change(container_config: dict, change: str) -> dict:
    """Apply one Dockerfile-style ``--change`` instruction; return the new container config."""
    instruction, _, value = change.strip().partition(" ")
    keyword = instruction.upper()
    if keyword not in CHANGE_INSTRUCTIONS:
        raise InvalidArgument(f"{instruction} is not a valid change command")
    cfg = json.loads(json.dumps(container_config))  # deep copy: configs are shared dicts
    value = value.strip()
    if keyword == "CMD":
        cfg["Cmd"] = _json_or_shell(value, shell_form=True)
    elif keyword == "ENTRYPOINT":
        cfg["Entrypoint"] = _json_or_shell(value, shell_form=True)
    elif keyword == "ENV":
        env = [e for e in cfg.get("Env") or []]
        for key, val in _pairs(value, "ENV"):
            env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={val}"]
        cfg["Env"] = env
    elif keyword == "WORKDIR":
        cfg["WorkingDir"] = value
    elif keyword == "USER":
        cfg["User"] = value
    elif keyword == "EXPOSE":
        ports = dict(cfg.get("ExposedPorts") or {})
        for port in value.split():
            ports[port if "/" in port else f"{port}/tcp"] = {}
        cfg["ExposedPorts"] = ports
    elif keyword == "LABEL":
        labels = dict(cfg.get("Labels") or {})
        labels.update(_pairs(value, "LABEL"))
        cfg["Labels"] = labels
    elif keyword == "VOLUME":
        volumes = dict(cfg.get("Volumes") or {})
        for path in _json_or_shell(value, shell_form=False):
            volumes[path] = {}
        cfg["Volumes"] = volumes
    elif keyword == "STOPSIGNAL":
        cfg["StopSignal"] = value
    elif keyword == "ONBUILD":
        cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [value]
    return cfg
