"""Image references by the distribution reference grammar, normalised like Docker.

``busybox`` -> ``docker.io/library/busybox:latest``;
``localhost:5000/team/app:1.2@sha256:...`` keeps its registry, tag and digest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockerbank.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE_RE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_NAME_MAX = 255


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """Fully qualified repository name, e.g. ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """The name as Docker prints it: ``busybox``, ``team/app``, ``localhost:5000/app``."""
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_PREFIX) and self.path.count("/") == 1:
                return self.path[len(OFFICIAL_PREFIX):]
            return self.path
        return self.repository

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def familiar(self) -> str:
        """The short form Docker shows: ``busybox:latest``."""
        text = self.familiar_repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str) -> "Reference":
        if not _TAG_RE.match(tag):
            raise InvalidArgument(f"invalid tag format: {tag!r}")
        return Reference(self.domain, self.path, tag, None)

    @property
    def name_tag(self) -> str:
        """``repository:tag`` (the key tags are stored under)."""
        return f"{self.repository}:{self.tag or DEFAULT_TAG}"


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise a reference; add ``latest`` when it has neither tag nor digest.

    Raises InvalidArgument with Docker's wording for a malformed reference.
    """
    if not text:
        raise InvalidArgument("invalid reference format: empty reference")
    match = _REFERENCE_RE.match(text)
    if not match:
        if text != text.lower() and _REFERENCE_RE.match(text.lower()):
            raise InvalidArgument(f"invalid reference format: repository name must be lowercase: {text!r}")
        raise InvalidArgument(f"invalid reference format: {text!r}")
    name = match.group("name")
    if len(name) > _NAME_MAX:
        raise InvalidArgument(f"invalid reference format: repository name must not be more than {_NAME_MAX} characters")
    domain, path = _split_domain(name)
    if not _PATH_RE.match(path):
        raise InvalidArgument(f"invalid reference format: repository name must be lowercase: {text!r}")
    tag = match.group("tag")
    digest = match.group("digest")
    if digest is not None and not digest.startswith("sha256:"):
        raise InvalidArgument(f"unsupported digest algorithm in {text!r}")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def looks_like_reference(text: str) -> bool:
    """Whether ``text`` parses as a reference (used to tell names from ID prefixes)."""
    try:
        parse(text)
    except InvalidArgument:
        return False
    return True
