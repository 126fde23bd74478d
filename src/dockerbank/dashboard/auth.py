"""Who may use the dashboard: htpasswd users with roles, sessions with CSRF tokens, a login rate limit.

Pure logic (the clock is handed in); the server wires it to cookies and forms.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dockerbank.errors import InvalidArgument

ADMIN = "admin"
VIEWER = "viewer"
SESSION_IDLE = 8 * 3600          # seconds a session lives without a request
MAX_FAILURES = 5                 # failed logins per window (per client address and per user name)
FAILURE_WINDOW = 60.0


@dataclass
class Users:
    """htpasswd users (bcrypt only) and their roles: everyone is an admin unless named a viewer."""

    hashes: dict[str, bytes]
    viewers: frozenset[str] = frozenset()

    @classmethod
    def load(cls, path: str | Path, viewers: Iterable[str] = ()) -> Users:
        """Read ``path`` (``user:$2y$...`` lines, as ``htpasswd -B`` writes them)."""
        from dockerbank.registry.server.auth import parse_htpasswd

        try:
            hashes = parse_htpasswd(Path(path).read_text())
        except OSError as exc:
            raise InvalidArgument(f"cannot read htpasswd file {path}: {exc.strerror}") from None
        if not hashes:
            raise InvalidArgument(f"htpasswd file {path} has no users")
        unknown = set(viewers) - set(hashes)
        if unknown:
            raise InvalidArgument(f"--viewers names users not in {path}: {', '.join(sorted(unknown))}")
        return cls(hashes, frozenset(viewers))

    def check(self, user: str, password: str) -> str | None:
        """The user's role if the password is right, else None (bcrypt: ~100 ms by design)."""
        import bcrypt

        hashed = self.hashes.get(user)
        if hashed is None:
            bcrypt.checkpw(password.encode(), _DUMMY)  # the same time for unknown users
            return None
        if not bcrypt.checkpw(password.encode(), hashed.replace(b"$2y$", b"$2b$", 1)):
            return None
        return VIEWER if user in self.viewers else ADMIN


_DUMMY = b"$2b$10$FfXpQZHz6XURqDSWGk5aDO/2lEoxj7DDsN1qMVyWBRnZ8aKfHkqvy"  # a real hash of a throwaway password


@dataclass
class Session:
    user: str
    role: str
    csrf: str
    last_seen: float

    @property
    def admin(self) -> bool:
        return self.role == ADMIN


@dataclass
class Sessions:
    """In-memory sessions of this server process (a restart logs everyone out, on purpose)."""

    clock: Callable[[], float] = time.monotonic
    idle: float = SESSION_IDLE
    _by_token: dict[str, Session] = field(default_factory=dict)

    def create(self, user: str, role: str) -> tuple[str, Session]:
        """A new session and its cookie token."""
        token = secrets.token_urlsafe(32)
        session = Session(user, role, secrets.token_urlsafe(32), self.clock())
        self._by_token[token] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        """The live session of ``token`` (touching it), or None."""
        if not token:
            return None
        session = self._by_token.get(token)
        if session is None:
            return None
        now = self.clock()
        if now - session.last_seen > self.idle:
            del self._by_token[token]
            return None
        session.last_seen = now
        return session

    def drop(self, token: str | None) -> None:
        self._by_token.pop(token or "", None)


def csrf_ok(session: Session, sent: str | None) -> bool:
    """Whether a form carried the session's CSRF token (constant-time compare)."""
    return bool(sent) and secrets.compare_digest(session.csrf.encode(), str(sent).encode())


@dataclass
class LoginLimiter:
    """At most MAX_FAILURES failed logins per FAILURE_WINDOW for one key (client address, user name)."""

    clock: Callable[[], float] = time.monotonic
    limit: int = MAX_FAILURES
    window: float = FAILURE_WINDOW
    _failures: dict[str, list[float]] = field(default_factory=dict)

    def _recent(self, key: str) -> list[float]:
        now = self.clock()
        kept = [t for t in self._failures.get(key, []) if now - t < self.window]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    def blocked(self, *keys: str) -> bool:
        """Whether any of ``keys`` used up its failures."""
        return any(len(self._recent(k)) >= self.limit for k in keys)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            self._failures.setdefault(key, []).append(now)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)
