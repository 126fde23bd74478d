"""htpasswd (bcrypt) authentication for the registry server, as distribution's ``auth: htpasswd``."""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from dockerbank.errors import InvalidArgument


def parse_htpasswd(text: str) -> dict[str, bytes]:
    """``user:$2y$...`` lines -> {user: hash}; only bcrypt hashes are accepted (like distribution)."""
    users: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user:
            raise InvalidArgument(f"htpasswd line {number}: expected user:hash")
        if not hashed.startswith(("$2y$", "$2b$", "$2a$")):
            raise InvalidArgument(f"htpasswd line {number}: only bcrypt hashes are supported (htpasswd -B)")
        users[user] = hashed.encode()
    return users


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an ``Authorization: Basic`` header, or None."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class Htpasswd:
    """Checks Basic credentials against an htpasswd file.

    bcrypt costs ~100 ms per check by design and clients send credentials with every
    request, so a successful check is remembered (by a sha256 of user and password).
    """

    def __init__(self, path: Path):
        self.users = parse_htpasswd(Path(path).read_text())
        self._good: set[bytes] = set()

    def check(self, header: str | None) -> str | None:
        """The user name if the header carries valid credentials, else None."""
        creds = parse_basic(header)
        if creds is None:
            return None
        user, password = creds
        hashed = self.users.get(user)
        if hashed is None:
            return None
        key = hashlib.sha256(f"{user}\0{password}".encode() + hashed).digest()
        if key in self._good:
            return user
        import bcrypt  # lazily: only a server with --htpasswd needs it

        if bcrypt.checkpw(password.encode(), hashed.replace(b"$2y$", b"$2b$", 1)):
            self._good.add(key)
            return user
        return None


def make_htpasswd_line(user: str, password: str, rounds: int = 10) -> str:
    """One ``user:$2y$...`` line (for tests and for setting a server up without apache2-utils)."""
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()
    return f"{user}:{hashed.replace('$2b$', '$2y$', 1)}"
