"""Installed packages from the package databases an image ships (dpkg, apk, Python, npm). Pure.

Input: the final content of the files the layer scan collected (path -> bytes). Output: the
packages, and findings for every database that could not be read, so that an incomplete
inventory is never presented as complete.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from dataclasses import asdict, dataclass, field
from email.parser import BytesHeaderParser
from urllib.parse import quote

from dockerbank.audit import licenses
from dockerbank.audit.findings import Finding, finding


@dataclass
class Package:
    type: str                 # deb, apk, pypi, npm (package-url types)
    name: str
    version: str
    arch: str = ""
    source: str = ""          # source package / origin, where the database names one
    license: str | None = None  # an SPDX expression, None if unknown
    location: str = ""        # the database file it was read from
    distro: str = ""          # e.g. debian-12 (the purl's distro qualifier)

    @property
    def purl(self) -> str:
        namespace = {"deb": "debian", "apk": "alpine"}.get(self.type, "")
        if self.type == "rpm":
            namespace = self.distro.split("-", 1)[0] or "rpm"
        name = self.name
        if self.type == "npm" and name.startswith("@"):
            namespace, _, name = name.partition("/")
            namespace = quote(namespace, safe="")
        path = f"{namespace}/{quote(name, safe='')}" if namespace else quote(name, safe="")
        qualifiers = []
        if self.arch:
            qualifiers.append(f"arch={quote(self.arch, safe='')}")
        if self.distro:
            qualifiers.append(f"distro={quote(self.distro, safe='')}")
        tail = "?" + "&".join(qualifiers) if qualifiers else ""
        return f"pkg:{self.type}/{path}@{quote(self.version, safe='')}{tail}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Inventory:
    packages: list[Package] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    os: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not any(f.rule == "unreadable" for f in self.findings)


class _Unreadable(ValueError):
    pass


def build(collected: dict[str, bytes]) -> Inventory:
    """The inventory of an image from the collected files."""
    inv = Inventory()
    for name in ("etc/os-release", "usr/lib/os-release"):
        if name in collected:
            inv.os = _os_release(collected[name])
            break
    distro = f"{inv.os.get('ID', '')}-{inv.os.get('VERSION_ID', '')}".strip("-") if inv.os else ""
    readers = (
        (lambda p: p == "var/lib/dpkg/status" or p.startswith("var/lib/dpkg/status.d/"), _dpkg),
        (lambda p: p == "lib/apk/db/installed", _apk),
        (lambda p: p.endswith("rpm/rpmdb.sqlite"), lambda p, d: _rpm(p, d, collected.get(p + "-wal", b""))),
        (lambda p: p.endswith(".dist-info/METADATA") or p.endswith("PKG-INFO") or p.endswith(".egg-info"), _python),
        (lambda p: p.endswith("/package.json"), _npm),
    )
    for path in sorted(collected):
        if re.search(r"(^|/)rpm/Packages(\.db)?$", path):
            inv.findings.append(finding("unreadable", f"/{path}", f"/{path}: Berkeley DB and NDB rpm databases "
                                        "are not read (only rpmdb.sqlite); rpm packages are missing"))
            continue
        if path.endswith("rpmdb.sqlite-wal"):
            continue  # read with its database
        for matches, reader in readers:
            if not matches(path):
                continue
            data = collected[path]
            try:
                if not data:
                    raise _Unreadable("empty or implausibly large")
                found = reader(path, data)
            except (_Unreadable, ValueError, UnicodeDecodeError) as exc:
                inv.findings.append(finding("unreadable", f"/{path}",
                                            f"/{path} could not be read: {exc}; its packages are missing"))
                break
            for pkg in found:
                pkg.location = f"/{path}"
                if pkg.type in ("deb", "apk", "rpm"):
                    pkg.distro = distro
            inv.packages.extend(found)
            break
    _debian_licenses(inv.packages, collected)
    inv.packages.sort(key=lambda p: (p.type, p.name, p.version, p.arch))
    return inv


def _os_release(data: bytes) -> dict[str, str]:
    out = {}
    for line in data.decode("utf-8", errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def deb822(text: str, path: str) -> list[dict[str, str]]:
    """Paragraphs of a deb822 file (dpkg status, apk is different). Raises _Unreadable on garbage."""
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, key = {}, None
            continue
        if line[0] in " \t":
            if key is None:
                raise _Unreadable(f"line {number} continues no field")
            current[key] += "\n" + line[1:]
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or " " in name:
            raise _Unreadable(f"line {number} is not a field")
        key = name.strip()
        current[key] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def _text(data: bytes) -> str:
    if b"\0" in data[:65536]:
        raise _Unreadable("binary content")
    return data.decode("utf-8")


def _dpkg(path: str, data: bytes) -> list[Package]:
    out = []
    for number, para in enumerate(deb822(_text(data), path), start=1):
        name = para.get("Package")
        if not name:
            raise _Unreadable(f"paragraph {number} names no Package")
        status = para.get("Status", "").split()
        # dpkg-query -W lists every package whose state is not "not-installed"
        if len(status) == 3 and status[2] == "not-installed":
            continue
        version = para.get("Version", "")
        source = para.get("Source", "").split(" ")[0] or name
        out.append(Package("deb", name, version, para.get("Architecture", ""), source))
    return out


def _debian_licenses(packages: list[Package], collected: dict[str, bytes]) -> None:
    """Licenses from machine-readable ``/usr/share/doc/<package>/copyright`` files."""
    cache: dict[str, str | None] = {}
    for pkg in packages:
        if pkg.type != "deb":
            continue
        path = f"usr/share/doc/{pkg.name}/copyright"
        if path not in cache:
            cache[path] = copyright_license(collected[path]) if path in collected else None
        pkg.license = cache[path]


def copyright_license(data: bytes) -> str | None:
    """The SPDX expression of a machine-readable Debian copyright file (None if it is not one)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.lstrip().lower().startswith("format:"):
        return None
    try:
        paragraphs = deb822(text, "copyright")
    except _Unreadable:
        return None
    names = []
    for para in paragraphs[1:]:
        if "Files" in para and para.get("License"):
            synopsis = para["License"].split("\n", 1)[0].strip()
            if synopsis and synopsis not in names:
                names.append(synopsis)
    return licenses.expression(names)


def _apk(path: str, data: bytes) -> list[Package]:
    out = []
    for block in re.split(r"\n\s*\n", _text(data)):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if len(line) > 1 and line[1] == ":":
                fields.setdefault(line[0], line[2:])
        if not fields:
            continue
        if "P" not in fields or "V" not in fields:
            raise _Unreadable("a package entry lacks its name or version")
        lic = fields.get("L")
        out.append(Package("apk", fields["P"], fields["V"], fields.get("A", ""), fields.get("o", ""),
                           licenses.expression([lic]) if lic else None))
    return out


def _python(path: str, data: bytes) -> list[Package]:
    if path.endswith(".egg-info") and not data:
        return []
    headers = BytesHeaderParser().parsebytes(data)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        raise _Unreadable("no Name or Version")
    expression = headers.get("License-Expression")
    if not expression:
        classifiers = licenses.from_classifiers(headers.get_all("Classifier") or [])
        short = (headers.get("License") or "").strip()
        if classifiers:
            expression = " AND ".join(dict.fromkeys(classifiers))
        elif short and "\n" not in short and len(short) < 64 and short.upper() != "UNKNOWN":
            expression = licenses.expression([short])
    return [Package("pypi", str(name), str(version), license=expression or None)]


def _npm(path: str, data: bytes) -> list[Package]:
    # only the package.json of a package directly under node_modules
    if "node_modules/" not in path or posixpath.basename(posixpath.dirname(posixpath.dirname(path))) not in (
            "node_modules",) and not posixpath.basename(posixpath.dirname(posixpath.dirname(path))).startswith("@"):
        return []
    meta = json.loads(_text(data))
    if not isinstance(meta, dict):
        raise _Unreadable("not a JSON object")
    name, version = meta.get("name"), meta.get("version")
    if not name or not version:
        return []
    lic = meta.get("license")
    if isinstance(lic, dict):
        lic = lic.get("type")
    return [Package("npm", str(name), str(version), license=licenses.expression([str(lic)]) if lic else None)]


# rpm header tags and types (rpm's lib/rpmtag.h)
_RPM_TAGS = {1000: "name", 1001: "version", 1002: "release", 1003: "epoch", 1014: "license", 1022: "arch",
             1044: "sourcerpm"}
_RPM_STRING, _RPM_INT32, _RPM_I18N = 6, 4, 9


def _rpm(path: str, data: bytes, wal: bytes) -> list[Package]:
    """Packages of an rpm sqlite database (rpm >= 4.16; RHEL 9, Fedora 33+): each row a header blob."""
    import sqlite3
    import tempfile

    if not data.startswith(b"SQLite format 3\0"):
        raise _Unreadable("not an SQLite database")
    with tempfile.TemporaryDirectory(prefix="dockerbank-rpmdb-") as tmp:
        db_path = os.path.join(tmp, "rpmdb.sqlite")
        with open(db_path, "wb") as handle:
            handle.write(data)
        if wal:
            with open(db_path + "-wal", "wb") as handle:
                handle.write(wal)
        try:
            connection = sqlite3.connect(db_path)
            try:
                rows = connection.execute("SELECT blob FROM Packages ORDER BY hnum").fetchall()
            finally:
                connection.close()
        except sqlite3.Error as exc:
            raise _Unreadable(f"SQLite: {exc}") from exc
    out = []
    for (blob,) in rows:
        fields = rpm_header(bytes(blob))
        if "name" not in fields or "version" not in fields:
            raise _Unreadable("a header lacks its name or version")
        version = f"{fields['version']}-{fields['release']}" if fields.get("release") else fields["version"]
        if fields.get("epoch"):
            version = f"{fields['epoch']}:{version}"
        source = re.sub(r"-[^-]+-[^-]+\.src\.rpm$", "", fields.get("sourcerpm", ""))
        lic = fields.get("license")
        names = re.split(r"\s+and\s+", lic, flags=re.I) if lic else []
        out.append(Package("rpm", fields["name"], version, fields.get("arch", ""), source,
                           licenses.expression(names) if names else None))
    return out


def rpm_header(blob: bytes) -> dict[str, str]:
    """The tags the inventory needs from an rpm header as the database stores it (no lead, no magic)."""
    import struct

    if len(blob) < 8:
        raise _Unreadable("truncated rpm header")
    count, size = struct.unpack(">II", blob[:8])
    store = 8 + 16 * count
    if count > 100_000 or store + size > len(blob):
        raise _Unreadable("implausible rpm header")
    fields: dict[str, str] = {}
    for index in range(count):
        tag, kind, offset, _n = struct.unpack(">IIII", blob[8 + 16 * index: 24 + 16 * index])
        name = _RPM_TAGS.get(tag)
        if name is None or offset >= size:
            continue
        at = store + offset
        if kind in (_RPM_STRING, _RPM_I18N):
            end = blob.find(b"\0", at, store + size)
            fields[name] = blob[at:end if end >= 0 else store + size].decode("utf-8", errors="replace")
        elif kind == _RPM_INT32 and at + 4 <= store + size:
            fields[name] = str(struct.unpack(">I", blob[at:at + 4])[0])
    return fields
