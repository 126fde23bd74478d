"""Vulnerabilities from a database the user supplies as OSV JSON files (hosts may be offline).

Nothing is claimed without such a database. An entry affects an installed package when the
ecosystem and name match and the version is listed or inside one of its ranges.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from dockerbank.audit.findings import Finding, finding
from dockerbank.audit.inventory import Package
from dockerbank.errors import InvalidArgument

_ECOSYSTEMS = {"deb": "Debian", "apk": "Alpine", "pypi": "PyPI", "npm": "npm"}
_SEVERITY = {"critical": "high", "high": "high", "important": "high", "moderate": "medium", "medium": "medium",
             "low": "low", "negligible": "low", "unimportant": "low"}


@dataclass
class VulnDb:
    entries: list[dict]
    problems: list[Finding]


def load_db(directory: Path) -> VulnDb:
    """Every ``*.json`` file under ``directory``: one OSV entry, or a list of them."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidArgument(f"--vuln-db {directory}: not a directory of OSV JSON files")
    entries: list[dict] = []
    problems: list[Finding] = []
    for path in sorted(directory.rglob("*.json")):
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            problems.append(finding("unreadable", str(path), f"OSV file {path} could not be read: {exc}", "low"))
            continue
        for entry in data if isinstance(data, list) else [data]:
            if isinstance(entry, dict) and entry.get("id") and isinstance(entry.get("affected"), list):
                entries.append(entry)
            else:
                problems.append(finding("unreadable", str(path), f"{path} holds no OSV entry", "low"))
    return VulnDb(entries, problems)


def match(packages: list[Package], db: VulnDb) -> list[Finding]:
    """Findings for the packages that entries of ``db`` affect (and for files it could not read)."""
    index: dict[tuple[str, str], list[Package]] = {}
    for pkg in packages:
        eco = _ECOSYSTEMS.get(pkg.type)
        if eco is None:
            continue
        for name in {pkg.name, pkg.source} - {""}:
            index.setdefault((eco, _norm(eco, name)), []).append(pkg)
    out = list(db.problems)
    for entry in db.entries:
        for affected in entry["affected"]:
            spec = affected.get("package") or {}
            eco = str(spec.get("ecosystem") or "").split(":", 1)[0]
            for pkg in index.get((eco, _norm(eco, str(spec.get("name") or ""))), []):
                if _affects(affected, pkg.version, eco):
                    out.append(_finding(entry, affected, pkg))
    return out


def _norm(eco: str, name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower() if eco == "PyPI" else name


def _finding(entry: dict, affected: dict, pkg: Package) -> Finding:
    fixed = sorted({e["fixed"] for r in affected.get("ranges") or [] for e in r.get("events") or [] if "fixed" in e})
    aliases = [a for a in entry.get("aliases") or [] if isinstance(a, str)]
    detail = f"{entry['id']}" + (f" ({', '.join(aliases[:3])})" if aliases else "")
    summary = str(entry.get("summary") or entry.get("details") or "").strip().splitlines()
    if summary:
        detail += f": {summary[0][:120]}"
    if fixed:
        detail += f"; fixed in {', '.join(fixed)}"
    return finding("vulnerability", f"{pkg.type} {pkg.name} {pkg.version}", detail, _severity(entry, affected))


def _severity(entry: dict, affected: dict) -> str:
    for source in (affected.get("ecosystem_specific") or {}, affected.get("database_specific") or {},
                   entry.get("database_specific") or {}):
        value = source.get("severity") if isinstance(source, dict) else None
        if isinstance(value, str) and value.lower() in _SEVERITY:
            return _SEVERITY[value.lower()]
    return "high"


def _affects(affected: dict, version: str, eco: str) -> bool:
    if version in (affected.get("versions") or []):
        return True
    key = _version_key(eco)
    for rng in affected.get("ranges") or []:
        if rng.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue  # GIT ranges name commits, not package versions
        try:
            if _in_range(version, rng.get("events") or [], key):
                return True
        except (ValueError, TypeError):
            continue  # a version this ecosystem's ordering cannot compare: no claim
    return False


def _in_range(version: str, events: list[dict], key) -> bool:
    """OSV's algorithm: walk the events in version order, flipping affected at introduced/fixed."""
    current = key(version)
    points = []
    for event in events:
        for kind in ("introduced", "fixed", "last_affected", "limit"):
            if kind in event:
                value = str(event[kind])
                points.append((key("0") if value == "0" and kind == "introduced" else key(value), kind))
    affected = False
    for point, kind in sorted(points, key=lambda p: p[0]):
        if kind == "introduced" and current >= point:
            affected = True
        elif kind == "fixed" and current >= point:
            affected = False
        elif kind == "last_affected" and current > point:
            affected = False
        elif kind == "limit" and current >= point:
            affected = False
    return affected


def _version_key(eco: str):
    if eco == "Debian":
        from debian.debian_support import Version

        return Version
    if eco == "PyPI":
        from packaging.version import Version as PyVersion

        return PyVersion
    return _loose


def _loose(version: str):
    """semver-ish ordering for npm and Alpine: numeric parts compared as numbers."""
    parts = re.split(r"[.\-+_]", version.lstrip("v"))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)
