"""Per-registry settings: ``<root>/registries.json``.

    {"insecure": ["myreg.lan:5000"],       # plain HTTP or unverified TLS allowed
     "private":  ["registry.klinik.de"]}   # may receive images labelled not redistributable

Like docker, ``localhost``, ``127.0.0.0/8`` and ``::1`` are always insecure (plain HTTP allowed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from dockerbank.errors import CorruptData
from dockerbank.host.addresses import is_loopback as host_is_loopback

FILE_NAME = "registries.json"


def host_of(registry: str) -> str:
    """The host part of ``host:port`` / ``[v6]:port``."""
    if registry.startswith("["):
        return registry[1:].split("]", 1)[0]
    return registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry


def is_loopback(registry: str) -> bool:
    """Whether the registry runs on this machine (plain HTTP is allowed there, as docker's)."""
    return host_is_loopback(host_of(registry))


@dataclass(frozen=True)
class RegistriesConfig:
    """Which registries are insecure and which are private."""

    insecure: frozenset[str] = field(default_factory=frozenset)
    private: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def load(cls, root: Path, extra_insecure: tuple[str, ...] = ()) -> RegistriesConfig:
        """Read ``root/registries.json`` (absent means empty) and add ``--insecure-registry`` values."""
        path = Path(root) / FILE_NAME
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            data = {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptData(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise CorruptData(f"{path} must hold a JSON object")
        insecure = {str(x) for x in data.get("insecure", [])} | set(extra_insecure)
        private = {str(x) for x in data.get("private", [])}
        return cls(frozenset(insecure), frozenset(private))

    def is_insecure(self, registry: str) -> bool:
        return is_loopback(registry) or registry in self.insecure or host_of(registry) in self.insecure

    def is_private(self, registry: str) -> bool:
        return registry in self.private or host_of(registry) in self.private
