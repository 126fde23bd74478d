"""A deployment's settings: ``--set KEY=VALUE`` over the values kept from an earlier deployment
of the same project, over the entry's defaults; secrets not given are generated. Pure: the
generator is handed in."""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from dockerbank.catalog.model import SETTING, Entry
from dockerbank.errors import InvalidArgument, UsageError


@dataclass
class Resolved:
    """Plain settings (written to the project's ``.env``) and secrets (one 0600 file each)."""

    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    generated: list[str] = field(default_factory=list)   # secrets made now (none given, none kept)

    def ports(self, entry: Entry) -> list[int]:
        return [int(self.env[k]) for k, s in entry.settings.items() if s.port]


def parse_sets(items: Iterable[str]) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` to a dict; a malformed item is a usage error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not SETTING.match(key):
            raise UsageError(f"invalid --set {item!r}: use KEY=VALUE with an upper-case KEY")
        out[key] = value
    return out


def new_password() -> str:
    """A generated secret: 32 URL-safe characters (~190 bits), no quoting needed anywhere."""
    return _secrets.token_urlsafe(24)


def resolve(entry: Entry, given: Mapping[str, str], kept: Mapping[str, str] | None = None,
            generate: Callable[[], str] = new_password) -> Resolved:
    """The settings of one deployment; raises on an unknown setting, a missing required one, a bad port."""
    unknown = sorted(set(given) - set(entry.settings))
    if unknown:
        known = ", ".join(entry.settings) or "none"
        raise InvalidArgument(f"unknown setting {unknown[0]} for {entry.name} (its settings: {known}; "
                              f"see `dockerbank catalog show {entry.name}`)")
    kept = kept or {}
    out = Resolved()
    for key, setting in entry.settings.items():
        value = given.get(key, kept.get(key, setting.default))
        if setting.secret:
            if value is None:
                value = generate()
                out.generated.append(key)
            if "\n" in value:
                raise InvalidArgument(f"setting {key}: a secret is one line")
            out.secrets[key] = value
            continue
        if value is None:
            raise InvalidArgument(f"setting {key} of {entry.name} is required ({setting.help}): "
                                  f"give it with --set {key}=VALUE")
        if "\n" in value:
            raise InvalidArgument(f"setting {key}: a value is one line")
        if setting.port and not (value.isdigit() and 0 < int(value) < 65536):
            raise InvalidArgument(f"setting {key}={value!r}: a port is a number from 1 to 65535")
        out.env[key] = value
    return out


def env_file(values: Mapping[str, str]) -> str:
    """The ``.env`` text compose reads (values single-quoted: compose takes them literally)."""
    lines = []
    for key, value in values.items():
        if "'" in value:
            raise InvalidArgument(f"setting {key}: a value may not hold a single quote")
        lines.append(f"{key}='{value}'")
    return "\n".join(lines) + "\n"
