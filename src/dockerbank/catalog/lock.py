"""An entry's lock: the exact Debian packages its image installs, resolved once against the
configured mirror on the entry's base image and committed beside the entry (``packages.lock``),
so that every build installs the same versions (``apt-get install NAME=VERSION ...``) and, with
the lock's time as SOURCE_DATE_EPOCH, gives the same image.

The file, one item a line (``#`` starts a comment)::

    base debian:latest sha256:c146...     the base image the lock was resolved on (reference, image ID)
    sources deb http://deb.debian.org/debian bookworm main    the base's apt sources
    epoch 1764925200                      SOURCE_DATE_EPOCH of the entry's builds (when the lock was made)
    requested postgresql-15               the entry's packages as entry.yaml lists them
    perl=5.36.0-7+deb12u3                 every package apt installs on the base, in apt's order

Pure: the side effect (apt in a container of the base) is the caller's; this module makes its
script, reads its output and says what a failure means in one line.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from dockerbank.errors import CorruptData

FILE_NAME = "packages.lock"
# apt-get's simulation of the install: "Inst NAME [OLD] (VERSION RELEASE [ARCH])" per package
_INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) ")
_NAME = re.compile(r"^[a-z0-9][a-z0-9+.:-]*$")
_VERSION = re.compile(r"^[A-Za-z0-9.+~:-]+$")

# Run in a container of the base image: refresh apt's lists from the base's sources, print the
# sources, simulate the install of "$@" (names, or NAME=VERSION pins) without recommends.
RESOLVE_SCRIPT = ('apt-get update -qq >&2 || exit 100; '
                  'grep -hs "^deb " /etc/apt/sources.list /etc/apt/sources.list.d/*.list | sed "s/^/sources /"; '
                  'exec apt-get install -s -q --no-install-recommends -- "$@"')


def resolve_argv(packages: list[str]) -> list[str]:
    """The command a resolver runs in the base image for ``packages`` (names or pins)."""
    return ["/bin/sh", "-c", RESOLVE_SCRIPT, "resolve", *packages]


@dataclass(frozen=True)
class Lock:
    base: str                      # the base image's reference, e.g. debian:latest
    base_id: str                   # its image ID when the lock was made
    epoch: int
    requested: list[str]
    pins: list[tuple[str, str]]    # (name, version) in apt's install order
    sources: list[str] = field(default_factory=list)

    def text(self, entry: str) -> str:
        lines = [f"# The exact Debian packages of catalog entry {entry}: `dockerbank catalog build` installs",
                 f"# these and no others. Made by `dockerbank catalog lock {entry}` (run it again to refresh).",
                 f"base {self.base} {self.base_id}"]
        lines += [f"sources {s}" for s in self.sources]
        lines += [f"epoch {self.epoch}", "requested " + " ".join(self.requested)]
        lines += [f"{name}={version}" for name, version in self.pins]
        return "\n".join(lines) + "\n"

    def pinned(self) -> list[str]:
        """``NAME=VERSION`` of every package, as apt-get install takes them."""
        return [f"{name}={version}" for name, version in self.pins]

    def same_resolution(self, other: Lock) -> bool:
        """The same packages, versions and sources (a refresh that changed nothing keeps its epoch)."""
        return (self.pins, self.requested, self.sources) == (other.pins, other.requested, other.sources)


def digest(text: str) -> str:
    """The lock's identity, recorded in the images built from it."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def parse(text: str, where: Path | str) -> Lock:
    """Read a lock file; a malformed one is CorruptData naming the line."""
    base = base_id = None
    epoch = None
    requested: list[str] = []
    sources: list[str] = []
    pins: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, rest = line.partition(" ")
        if "=" in key:
            name, _, version = line.partition("=")
            if not _NAME.match(name) or not _VERSION.match(version):
                raise CorruptData(f"{where}:{number}: expected NAME=VERSION, found {line!r}")
            pins.append((name, version))
        elif key == "base" and len(rest.split()) == 2:
            base, base_id = rest.split()
        elif key == "sources":
            sources.append(rest)
        elif key == "epoch" and rest.isdigit():
            epoch = int(rest)
        elif key == "requested":
            requested = rest.split()
        else:
            raise CorruptData(f"{where}:{number}: unknown line {line!r}")
    if base is None or base_id is None or epoch is None or not requested or not pins:
        raise CorruptData(f"{where}: incomplete lock (base, epoch, requested and pins are needed)")
    return Lock(base, base_id, epoch, requested, pins, sources)


def parse_resolution(stdout: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The sources and the (name, version) apt would install, from RESOLVE_SCRIPT's output."""
    sources, pins = [], []
    for line in stdout.splitlines():
        if line.startswith("sources "):
            sources.append(" ".join(line.split()[1:]))
            continue
        match = _INST.match(line)
        if match:
            pins.append((match.group(1), match.group(2)))
    return sources, pins


def failure(entry: str, stderr: str, code: int, lock: Lock | None = None) -> str:
    """One line saying why apt could not resolve (or no longer satisfies) an entry's packages."""
    refresh = f"refresh the lock with `dockerbank catalog lock {entry}` (and commit it)"
    errors = [line[3:].strip() for line in stderr.splitlines() if line.startswith("E: ")]
    for error in errors:
        missing = re.match(r"Version '([^']+)' for '([^']+)' was not found", error)
        if missing and lock is not None:
            return (f"the lock of {entry} pins {missing.group(2)}={missing.group(1)}, which the mirror no "
                    f"longer has: {refresh}")
        if missing:
            return f"{entry}: the mirror has no {missing.group(2)} {missing.group(1)}"
        unknown = re.match(r"Unable to locate package (\S+)", error)
        if unknown:
            name = unknown.group(1).split("=")[0]
            if lock is not None:
                return f"the lock of {entry} pins {name}, which the mirror does not have: {refresh}"
            return f"{entry}: the mirror has no package {name}: check the entry's packages and the base's sources"
    if code == 100 and not errors:
        tail = [line for line in stderr.splitlines() if line.strip()][-1:]
        return f"{entry}: apt-get update failed on the base image (is the mirror reachable?): {' '.join(tail)}"
    detail = errors[-1] if errors else (stderr.strip().splitlines() or [f"exit code {code}"])[-1]
    return f"{entry}: apt could not resolve its packages: {detail}"


def unpinned(lock: Lock, installs: list[tuple[str, str]]) -> tuple[str, str] | None:
    """A package apt would install with the lock's pins that the lock does not pin (the mirror
    now pulls in something new: the build would not be the locked one), else None."""
    pinned = dict(lock.pins)
    for name, version in installs:
        if pinned.get(name) != version:
            return name, version
    return None
