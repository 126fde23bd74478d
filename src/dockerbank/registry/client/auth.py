"""Registry credentials (``~/.docker/config.json``) and the auth challenges of a registry.

The file format is Docker's: ``{"auths": {"<registry>": {"auth": base64("user:password")}}}``,
with Docker Hub stored under ``https://index.docker.io/v1/``. Parsing of
``WWW-Authenticate`` (Basic or Bearer with realm/service/scope) is pure, for unit tests.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dockerbank.errors import CorruptData, InvalidArgument

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(?:,|$)')


@dataclass(frozen=True)
class Challenge:
    """One parsed ``WWW-Authenticate`` challenge."""

    scheme: str            # "basic" or "bearer" (lower case)
    params: dict[str, str]

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Parse ``Bearer realm="...",service="...",scope="a,b"`` (quoted values may hold commas)."""
    challenges: list[Challenge] = []
    rest = header.strip()
    while rest:
        match = re.match(r"([A-Za-z][A-Za-z0-9_-]*)\s*", rest)
        if not match:
            break
        scheme = match.group(1).lower()
        rest = rest[match.end():]
        params: dict[str, str] = {}
        while rest:
            param = _PARAM_RE.match(rest)
            if not param:
                break
            value = param.group(2) if param.group(2) is not None else param.group(3)
            params[param.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
            rest = rest[param.end():]
        challenges.append(Challenge(scheme, params))
    return challenges


def config_key(registry: str) -> str:
    """The key a registry's credentials are stored under (Docker Hub's legacy URL)."""
    return DOCKER_HUB_KEY if registry in ("docker.io", "index.docker.io", "registry-1.docker.io") else registry


def default_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json`` (docker's rule)."""
    folder = os.environ.get("DOCKER_CONFIG")
    return Path(folder) / "config.json" if folder else Path.home() / ".docker" / "config.json"


class CredentialStore:
    """Read and write the ``auths`` map of a docker config file, keeping its other keys."""

    def __init__(self, path: Path | None = None):
        self.path = path or default_config_path()

    def _load(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptData(f"{self.path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise CorruptData(f"{self.path} is not a JSON object")
        return data

    def get(self, registry: str) -> tuple[str, str] | None:
        """(user, password) stored for ``registry``, or None."""
        auths = self._load().get("auths") or {}
        entry = auths.get(config_key(registry))
        if entry is None:  # docker also accepts keys written with a scheme
            for key, value in auths.items():
                if re.sub(r"^https?://", "", key).rstrip("/") == registry:
                    entry = value
                    break
        if not entry:
            return None
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise CorruptData(f"invalid auth entry for {registry} in {self.path}") from exc
            return user, password
        if entry.get("username"):
            return entry["username"], entry.get("password", "")
        return None

    def store(self, registry: str, user: str, password: str) -> None:
        if ":" in user:
            raise InvalidArgument("a user name must not contain ':'")
        data = self._load()
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        data.setdefault("auths", {})[config_key(registry)] = {"auth": auth}
        self._write(data)

    def erase(self, registry: str) -> bool:
        """Remove stored credentials; return whether there were any."""
        data = self._load()
        auths = data.get("auths") or {}
        if config_key(registry) not in auths:
            return False
        del auths[config_key(registry)]
        self._write(data)
        return True

    def _write(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".config-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:  # mkstemp makes it 0600: credentials stay private
                json.dump(data, handle, indent="\t")
                handle.write("\n")
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
