"""License names as packages write them (Debian's copyright short names, PyPI classifiers, npm) -> SPDX. Pure."""

from __future__ import annotations

import re
from functools import lru_cache

# Debian's short names (copyright-format 1.0, "License specification") that differ from SPDX ids
_DEBIAN = {
    "expat": "MIT", "artistic": "Artistic-1.0", "artistic-2.0": "Artistic-2.0", "psf-2": "PSF-2.0",
    "python-2.0": "Python-2.0", "zlib": "Zlib", "bsd-2-clause": "BSD-2-Clause", "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause", "mpl-1.1": "MPL-1.1", "mpl-2.0": "MPL-2.0", "isc": "ISC", "cc0": "CC0-1.0",
    "cc0-1.0": "CC0-1.0", "apache-2": "Apache-2.0", "apache-2.0": "Apache-2.0", "openssl": "OpenSSL",
    "public-domain": "LicenseRef-public-domain", "permissive": "LicenseRef-permissive",
}
_GNU = re.compile(r"^(a|l)?(gpl|gfdl)-?v?(\d(?:\.\d)?)(\+)?$", re.I)   # Debian GPL-2+, Fedora GPLv2+
# PyPI trove classifiers -> SPDX
_CLASSIFIERS = {
    "MIT License": "MIT", "BSD License": "LicenseRef-BSD", "Apache Software License": "Apache-2.0",
    "ISC License (ISCL)": "ISC", "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only", "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only", "Python Software Foundation License": "PSF-2.0",
    "GNU Affero General Public License v3": "AGPL-3.0-only", "The Unlicense (Unlicense)": "Unlicense",
}
# names packages give to licenses that grant no right to redistribute: npm's UNLICENSED ("do not
# use"), the trove classifier "Other/Proprietary License", plain "proprietary"
_PROPRIETARY = {"unlicensed", "proprietary", "other/proprietary license", "commercial"}
# licenses that forbid redistribution of the software (SPDX ids and LicenseRefs)
NON_REDISTRIBUTABLE = {"LicenseRef-proprietary", "LicenseRef-non-redistributable", "LicenseRef-REDCap",
                       "LicenseRef-Oracle-OTN"}


@lru_cache(maxsize=1)
def _known() -> dict[str, str]:
    from license_expression import get_spdx_licensing

    known: dict[str, str] = {}
    for symbol in get_spdx_licensing().known_symbols.values():
        known[symbol.key.lower()] = symbol.key
        for alias in symbol.aliases:
            known.setdefault(alias.lower(), symbol.key)
    return known


def ref_of(name: str) -> str:
    """A LicenseRef for a name that is no SPDX id (idstring: letters, digits, '.', '-')."""
    cleaned = re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-") or "unknown"
    return f"LicenseRef-{cleaned}"


def spdx_id(name: str) -> str:
    """One license name -> an SPDX id, or a LicenseRef when SPDX has none."""
    name = name.strip()
    lowered = name.lower()
    if name.startswith("LicenseRef-"):
        return name
    if lowered in _PROPRIETARY:
        return "LicenseRef-proprietary"
    if lowered in _DEBIAN:
        return _DEBIAN[lowered]
    gnu = _GNU.match(name)
    if gnu:
        family = (gnu.group(1) or "").upper() + gnu.group(2).upper()   # GPL, LGPL, AGPL, GFDL
        version = gnu.group(3) if "." in gnu.group(3) else gnu.group(3) + ".0"
        return f"{family}-{version}-{'or-later' if gnu.group(4) else 'only'}"
    known = _known().get(lowered)
    if known:
        return known
    return ref_of(name)


def expression(names: list[str]) -> str | None:
    """License names of a package's parts -> one SPDX expression: parts joined with AND,
    alternatives inside one name ("GPL-2+ or Artistic") with OR."""
    terms: list[str] = []
    for name in names:
        options: list[str] = []
        for part in re.split(r"\s+or\s+|\s*\|\s*", name.strip(), flags=re.I):
            part = part.strip().strip("()").strip()
            if not part:
                continue
            # "GPL-2+ with OpenSSL exception": the license; the exception stays in the copyright file
            ident = spdx_id(re.split(r"\s+with\s+", part, flags=re.I)[0])
            if ident not in options:
                options.append(ident)
        if not options:
            continue
        term = options[0] if len(options) == 1 else "(" + " OR ".join(options) + ")"
        if term not in terms:
            terms.append(term)
    return " AND ".join(terms) if terms else None


def ids_in(expr: str | None) -> set[str]:
    """The license ids an expression names."""
    if not expr:
        return set()
    return {t for t in re.split(r"[\s()]+", expr) if t and t not in ("AND", "OR", "WITH")}


def from_classifiers(classifiers: list[str]) -> list[str]:
    out = []
    for item in classifiers:
        if item.startswith("License :: OSI Approved :: ") or item.startswith("License :: "):
            last = item.split(" :: ")[-1]
            out.append(_CLASSIFIERS.get(last, ref_of(last)))
    return out
