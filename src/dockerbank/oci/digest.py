"""Content digests (``sha256:<64 hex>``): parsing, computing, short IDs."""

from __future__ import annotations

import re

from dockerbank.errors import CorruptData, InvalidArgument

_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_HEX_RE = re.compile(r"^[a-f0-9]{64}$")


def validate(digest: object) -> str:
    """Return ``digest`` if it is a well-formed sha256 digest (of any type, e.g. read from JSON), else
    raise InvalidArgument."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise InvalidArgument(f"invalid digest {digest!r}: expected sha256:<64 lowercase hex>")
    return digest


def is_digest(text: str) -> bool:
    """Whether ``text`` is a full ``sha256:`` digest."""
    return bool(_DIGEST_RE.match(text))


def is_full_hex(text: str) -> bool:
    """Whether ``text`` is a bare 64-hex ID."""
    return bool(_HEX_RE.match(text))


def of_bytes(data: bytes) -> str:
    """The sha256 digest of ``data``."""
    import hashlib  # here, not at the top: it loads OpenSSL, which most commands never need

    return "sha256:" + hashlib.sha256(data).hexdigest()


def hex_of(digest: str) -> str:
    """The hex part of a digest."""
    return validate(digest).split(":", 1)[1]


def short_id(digest_or_hex: str, length: int = 12) -> str:
    """Docker's short ID: the first 12 hex characters."""
    return digest_or_hex.split(":", 1)[-1][:length]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI chain IDs of a layer stack: ChainID(L0)=DiffID(L0), ChainID(Ln)=sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(validate(diff_id))
        else:
            chains.append(of_bytes(f"{chains[-1]} {validate(diff_id)}".encode()))
    return chains


class Verifier:
    """Hash a stream as it passes and check it against an expected digest at the end."""

    def __init__(self, expected: str | None = None):
        import hashlib

        self.expected = validate(expected) if expected else None
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def check(self) -> str:
        """Return the digest; raise CorruptData if it differs from the expected one."""
        actual = self.digest
        if self.expected and actual != self.expected:
            raise CorruptData(f"digest mismatch: expected {self.expected}, got {actual}")
        return actual
