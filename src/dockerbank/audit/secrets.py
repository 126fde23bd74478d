"""Secrets in text, file names and key/value pairs, detected with Yelp's ``detect-secrets``.

detect-secrets runs per line and costs ~0.2 ms a line, too slow for every line of an image.
A cheap regular expression first picks the lines that could hold a secret (keywords and the
shapes of well-known tokens); only those lines go through detect-secrets' plugins and its
false-positive filters. The high-entropy plugins are left out: in images they mostly flag
paths, hashes and checksums.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

# Lines worth showing to detect-secrets: secret-ish keywords (matched in lowercased text, which is
# much faster than a case-insensitive pattern) and the shapes of well-known tokens.
_KEYWORDS = re.compile(rb"pass(?:wd|word)?|pwd|secret|api[_-]?key|auth|token|credential|private[_ ]?key")
_TOKENS = re.compile(
    rb"PRIVATE KEY|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30}|glpat-|xox[abposr]-|sk_live_|sk-[A-Za-z0-9]{20}"
    rb"|npm_[A-Za-z0-9]{30}|pypi-[A-Za-z0-9_-]{30}|eyJ[A-Za-z0-9_-]{10,}\.eyJ"
)
_CANDIDATE = re.compile(rb"(?i:" + _KEYWORDS.pattern + rb")|" + _TOKENS.pattern)

# Files that are credentials by their name, whatever detect-secrets makes of their content.
_CREDENTIAL_NAMES = {
    ".env": "an environment file (.env)",
    ".git-credentials": "git credentials",
    ".netrc": "netrc credentials",
    ".pgpass": "a PostgreSQL password file",
    ".htpasswd": "an htpasswd file",
    "id_rsa": "an SSH private key", "id_dsa": "an SSH private key",
    "id_ecdsa": "an SSH private key", "id_ed25519": "an SSH private key",
}
_CREDENTIAL_PATHS = {".aws/credentials": "AWS credentials", ".docker/config.json": "registry credentials",
                     ".kube/config": "a kubeconfig"}

_EXCLUDED_PLUGINS = ("HighEntropy", "IPPublic")


@dataclass(frozen=True)
class SecretHit:
    kind: str       # detect-secrets' secret type, or what a credential file is
    line: int       # 1-based; 0 when the whole file is the finding


_configured = False


def _plugins():
    """Configure detect-secrets' (process-global) settings once: our plugins, its default filters."""
    global _configured
    from detect_secrets.core import scan

    if not _configured:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
        from detect_secrets.settings import cache_bust, configure_settings_from_baseline

        # its value type (a TypeVar bound to no function) leaves mypy nothing to infer: say it
        plugin_classes: dict[str, type] = get_mapping_from_secret_type_to_class()
        names = sorted(plugin.__name__ for plugin in plugin_classes.values())
        plugins = [{"name": n} for n in names if not any(x in n for x in _EXCLUDED_PLUGINS)]
        cache_bust()
        configure_settings_from_baseline({"plugins_used": plugins})
        _configured = True
    return scan


KEYWORD = "Secret Keyword"


def scan_lines(name: str, lines: Iterable[tuple[int, str]], strict: bool = False) -> list[SecretHit]:
    """Secrets in numbered lines of a file named ``name`` (the name picks detect-secrets' syntax).

    ``strict``: drop keyword hits whose value looks like no password (a plain word such as
    ``passwd: files``, a command substitution): in files those are configuration, not secrets.
    """
    scan = _plugins()
    hits: dict[tuple[str, int], SecretHit] = {}
    for number, line in lines:
        for secret in scan._process_line_based_plugins([(number, line)], name):
            if strict and secret.type == KEYWORD and _weak(secret.secret_value or ""):
                continue
            hits.setdefault((secret.type, number), SecretHit(secret.type, number))
    return list(hits.values())


def _weak(value: str) -> bool:
    value = value.strip("'\"")
    return (len(value) < 6 or value.isalpha() and value.islower() or value[:1] in "`$<{%("
            or not any(ch.isalnum() for ch in value))


def scan_text(path: str, data: bytes, keywords: bool = True) -> list[SecretHit]:
    """Secrets in the content of a text file (``path`` inside the image).

    ``keywords=False``: only the shapes of real tokens and keys (for libraries and shared data,
    where words like "password" are code, not secrets).
    """
    positions = [m.start() for m in _TOKENS.finditer(data)]
    if keywords:
        positions += [m.start() for m in _KEYWORDS.finditer(data.lower())]
    if not positions:
        return []
    starts = sorted({data.rfind(b"\n", 0, pos) + 1 for pos in positions})
    candidates = []
    for start in starts[:200]:   # a file with more candidate lines than this is code or data, not config
        end = data.find(b"\n", start)
        line = data[start:] if end < 0 else data[start:end]
        if len(line) < 4096:
            candidates.append((data.count(b"\n", 0, start) + 1, line.decode("utf-8", errors="replace")))
    hits = scan_lines(posixpath.basename(path) or path, candidates, strict=True)
    if not keywords:
        hits = [h for h in hits if h.kind != KEYWORD]
    return hits


def credential_file(path: str) -> str | None:
    """What a file is when its name alone says it holds credentials (``.env``, ``id_rsa``...)."""
    base = posixpath.basename(path)
    if base in _CREDENTIAL_NAMES:
        return _CREDENTIAL_NAMES[base]
    if base.startswith(".env.") and base not in (".env.example", ".env.sample", ".env.dist"):
        return "an environment file (.env)"
    for suffix, what in _CREDENTIAL_PATHS.items():
        if path == suffix or path.endswith("/" + suffix):
            return what
    return None


def scan_pairs(pairs: dict[str, str], name: str = "Dockerfile") -> dict[str, list[str]]:
    """Keys of ``KEY=VALUE`` pairs (ENV, labels) whose values are secrets -> the secret types."""
    found: dict[str, list[str]] = {}
    for key, value in pairs.items():
        if not value:
            continue
        line = f'{key}="{value}"'
        if not _CANDIDATE.search(line.encode("utf-8", errors="replace")):
            continue
        kinds = sorted({hit.kind for hit in scan_lines(name, [(1, line)])})
        if kinds:
            found[key] = kinds
    return found


def is_binary(head: bytes) -> bool:
    return b"\0" in head
