"""Encryption at rest for a backup repository (restic's scheme, with an AEAD of ``cryptography``).

A repository made with ``--encrypt`` has one random *master key* (32 bytes for AES-256-GCM, 32
bytes for HMAC-SHA256). It is stored only wrapped: each passphrase has a key file
(``keys/<id>``) holding the master key encrypted with a key-encryption key derived from the
passphrase by a memory-hard KDF (Argon2id when ``cryptography`` offers it, else scrypt; the
parameters and salt are in the key file). Adding a passphrase adds a key file; removing one
deletes it; the data is never re-encrypted.

- a chunk is named by HMAC-SHA256(mac key, plain bytes), so equal chunks still deduplicate but
  the names reveal nothing about the content to whoever lacks the key (restic does the same with
  its polynomial and IDs); it is stored as ``version | nonce | AES-256-GCM(zstd(plain))`` with
  the chunk's name as associated data, so a chunk cannot be swapped for another one;
- a snapshot manifest is stored the same way with ``snapshot:<id>`` as associated data.

Without the passphrase nothing can be read, and any altered byte fails authentication.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

from dockerbank.errors import CorruptData, InvalidArgument

SEAL_VERSION = b"\x01"
NONCE = 12
KEY_AAD = b"dockerbank-backup-key"

# Argon2id as RFC 9106's second recommended option (64 MiB, 3 passes, 4 lanes): ~0.2 s here.
ARGON2 = {"name": "argon2id", "memory": 64 * 1024, "iterations": 3, "lanes": 4}
# scrypt where Argon2 is missing (cryptography < 44 or an OpenSSL without it): 64 MiB, ~0.2 s.
SCRYPT = {"name": "scrypt", "n": 1 << 16, "r": 8, "p": 1}


class WrongPassphrase(InvalidArgument):
    """No key file of the repository opens with the given passphrase."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode())


def default_kdf() -> dict:
    """KDF parameters for a new key file: Argon2id if available, else scrypt (with a new salt)."""
    try:
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id  # noqa: F401
        params = dict(ARGON2)
    except ImportError:
        params = dict(SCRYPT)
    params["salt"] = _b64(secrets.token_bytes(16))
    return params


_KDF_LOCK = threading.Lock()


def derive(passphrase: bytes, params: dict) -> bytes:
    """The 32-byte key-encryption key for ``passphrase`` under the key file's KDF parameters."""
    salt = _unb64(params["salt"])
    name = params.get("name")
    if name == "argon2id":
        try:
            from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
        except ImportError as exc:
            from dockerbank.errors import NotSupported

            raise NotSupported("this key file uses Argon2id, which this host's cryptography library lacks") from exc
        # OpenSSL's Argon2 (its own lane threads) deadlocks when two Python threads derive at once
        # (seen with cryptography 44 here: restore's read-ahead threads hung forever): one at a time
        with _KDF_LOCK:
            return Argon2id(salt=salt, length=32, iterations=int(params["iterations"]), lanes=int(params["lanes"]),
                            memory_cost=int(params["memory"])).derive(passphrase)
    if name == "scrypt":
        return hashlib.scrypt(passphrase, salt=salt, n=int(params["n"]), r=int(params["r"]), p=int(params["p"]),
                              maxmem=256 << 20, dklen=32)
    raise CorruptData(f"key file: unknown KDF {name!r}")


@dataclass(frozen=True)
class MasterKey:
    """The repository's secret: an AES-256-GCM key and an HMAC-SHA256 key."""

    encrypt: bytes
    mac: bytes

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(secrets.token_bytes(32), secrets.token_bytes(32))

    def to_bytes(self) -> bytes:
        return json.dumps({"encrypt": _b64(self.encrypt), "mac": _b64(self.mac)}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> MasterKey:
        doc = json.loads(data)
        return cls(_unb64(doc["encrypt"]), _unb64(doc["mac"]))

    @property
    def fingerprint(self) -> str:
        """Names the key without revealing it (two repositories with equal keys can copy raw)."""
        return hashlib.sha256(b"dockerbank-fingerprint" + self.encrypt + self.mac).hexdigest()[:16]


def _username() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def wrap(master: MasterKey, passphrase: bytes, kdf: dict | None = None) -> dict:
    """A key file (JSON-able) holding ``master`` encrypted under ``passphrase``."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    params = kdf or default_kdf()
    nonce = secrets.token_bytes(NONCE)
    sealed = AESGCM(derive(passphrase, params)).encrypt(nonce, master.to_bytes(), KEY_AAD)
    return {"created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "hostname": socket.gethostname(),
            "username": _username(),
            "kdf": params, "data": _b64(nonce + sealed)}


def unwrap(keyfile: dict, passphrase: bytes) -> MasterKey | None:
    """The master key if ``passphrase`` opens this key file, else None."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    blob = _unb64(keyfile["data"])
    try:
        plain = AESGCM(derive(passphrase, keyfile["kdf"])).decrypt(blob[:NONCE], blob[NONCE:], KEY_AAD)
    except InvalidTag:
        return None
    return MasterKey.from_bytes(plain)


class PlainCodec:
    """An unencrypted repository: chunks named by sha256, stored as zstd, manifests as JSON."""

    encrypted = False
    hash_name = "sha256"
    fingerprint = "plain"

    def chunk_id(self, data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def seal(self, data: bytes, label: str) -> bytes:
        return data

    def open(self, stored: bytes, label: str) -> bytes:
        return stored


class AeadCodec:
    """An encrypted repository: keyed chunk IDs, AES-256-GCM with the object's name as AAD."""

    encrypted = True
    hash_name = "hmac-sha256"

    def __init__(self, master: MasterKey, key_id: str = ""):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.master = master
        self.key_id = key_id      # the key file that opened the repository
        self._aead = AESGCM(master.encrypt)
        self.fingerprint = master.fingerprint

    def chunk_id(self, data: bytes) -> str:
        return hmac.digest(self.master.mac, data, "sha256").hex()

    def seal(self, data: bytes, label: str) -> bytes:
        nonce = secrets.token_bytes(NONCE)
        if not hasattr(self._aead, "encrypt_into"):     # cryptography < 44
            return SEAL_VERSION + nonce + self._aead.encrypt(nonce, data, label.encode())
        # encrypted straight behind the header: no second copy of every chunk
        out = bytearray(1 + NONCE + len(data) + 16)
        out[0:1] = SEAL_VERSION
        out[1:1 + NONCE] = nonce
        self._aead.encrypt_into(nonce, data, label.encode(), memoryview(out)[1 + NONCE:])
        return out  # type: ignore[return-value]  # bytes-like: written and hashed as it is

    def open(self, stored: bytes, label: str) -> bytes:
        """Decrypt and authenticate; CorruptData naming ``label`` if a byte was altered."""
        from cryptography.exceptions import InvalidTag

        if stored[:1] != SEAL_VERSION or len(stored) < 1 + NONCE + 16:
            raise CorruptData(f"{label} is corrupt: not an encrypted object of this format")
        try:
            view = memoryview(stored)
            return self._aead.decrypt(view[1:1 + NONCE], view[1 + NONCE:], label.encode())
        except InvalidTag as exc:
            raise CorruptData(f"{label} is corrupt: it fails authentication (altered, or of another "
                              "repository)") from exc


__all__ = ["AeadCodec", "MasterKey", "PlainCodec", "WrongPassphrase", "default_kdf", "derive", "unwrap", "wrap"]
