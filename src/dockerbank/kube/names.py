"""Kubernetes names and quantities (pure)."""

from __future__ import annotations

import re

#: annotations of Dockerbank's own (a DNS prefix as Kubernetes wants for non-core keys)
PREFIX = "dockerbank.org/"
ANN_VOLUME = PREFIX + "volume-name"          # a PVC's Dockerbank volume (compose names hold "_")
ANN_BACKUP = PREFIX + "backup-consistency"   # x-dockerbank-backup of the service
ANN_DEPENDS = PREFIX + "depends-on"          # compose depends_on with conditions (JSON)
ANN_SERVICE = PREFIX + "service-name"        # the compose service a workload came from
LABEL_NAME = "app.kubernetes.io/name"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED = "app.kubernetes.io/managed-by"

_INVALID = re.compile(r"[^a-z0-9-]+")


def dns_label(name: str, *, limit: int = 63) -> str:
    """``name`` as an RFC 1123 label (a Service's also starts with a letter): lower case,
    other characters as ``-``, at most ``limit`` characters."""
    out = _INVALID.sub("-", name.lower()).strip("-")[:limit].strip("-")
    if not out or not out[0].isalpha():
        out = ("x-" + out)[:limit].strip("-")
    return out


_QUANTITY = re.compile(r"^([0-9.]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_FACTORS = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
            "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4, "Pi": 1024 ** 5, "Ei": 1024 ** 6}


def parse_quantity(value: object) -> float:
    """A Kubernetes quantity (``500m``, ``64Mi``, ``1.5``, ``2G``) as a number; ValueError if it is none."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        raise ValueError(f"invalid quantity {value!r}")
    return float(match[1]) * _FACTORS[match[2]]


def memory_quantity(nbytes: int) -> str:
    """Bytes as the shortest exact binary quantity (``64Mi``), else plain bytes."""
    for suffix, factor in (("Gi", 1024 ** 3), ("Mi", 1024 ** 2), ("Ki", 1024)):
        if nbytes and nbytes % factor == 0:
            return f"{nbytes // factor}{suffix}"
    return str(int(nbytes))


def cpu_quantity(cpus: float) -> str:
    """CPUs as millicores (``500m``) or whole CPUs (``2``)."""
    milli = round(cpus * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def seconds(value: float) -> int:
    """A duration as whole seconds for a probe field (at least 1)."""
    return max(1, int(round(value)))
