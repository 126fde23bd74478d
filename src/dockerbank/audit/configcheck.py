"""Rules over an image's config alone (user, ENV, labels, history, ports, healthcheck, base, age). Pure."""

from __future__ import annotations

from datetime import datetime, timezone

from dockerbank.audit import secrets
from dockerbank.audit.findings import Finding, finding

REDISTRIBUTABLE = "org.dockerbank.redistributable"   # the push policy's label (registry.policy.LABEL)
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


def container_config(image_config: dict) -> dict:
    return image_config.get("config") or {}


def env_pairs(image_config: dict) -> dict[str, str]:
    pairs = {}
    for item in container_config(image_config).get("Env") or []:
        key, _, value = str(item).partition("=")
        pairs[key] = value
    return pairs


def check_static(image_config: dict) -> list[Finding]:
    """Findings that depend only on the (immutable) config: cacheable with the image's ID."""
    c = container_config(image_config)
    out: list[Finding] = []
    user = str(c.get("User") or "").strip()
    name = user.split(":", 1)[0]
    if name in ("", "root", "0"):
        out.append(finding("runs-as-root", "config: User",
                           "no USER is set: processes run as root" if not user else f"USER is {user}"))
    flagged: list[str] = []
    for key, kinds in secrets.scan_pairs(env_pairs(image_config)).items():
        flagged.append(f"{key}=")
        out.append(finding("secret-in-env", f"config: Env {key}", f"ENV {key} holds a secret: {', '.join(kinds)}"))
    labels = {str(k): str(v) for k, v in (c.get("Labels") or {}).items()}
    for key, kinds in secrets.scan_pairs(labels).items():
        flagged.append(f"{key}=")
        out.append(finding("secret-in-label", f"config: Label {key}", f"label {key} holds a secret: {', '.join(kinds)}"))
    for number, entry in enumerate(image_config.get("history") or [], start=1):
        line = str(entry.get("created_by") or "")
        if "#(nop)" in line and any(key in line for key in flagged):
            continue  # the ENV or LABEL step of a secret reported above
        hits = secrets.scan_lines("Dockerfile", [(1, line)]) if line else []
        if hits:
            shown = line if len(line) <= 80 else line[:77] + "..."
            out.append(finding("secret-in-history", f"history {number}",
                               f"{', '.join(sorted({h.kind for h in hits}))} in: {shown}"))
    for spec in sorted(c.get("ExposedPorts") or {}):
        port = str(spec).split("/", 1)[0]
        if port.isdigit() and 0 < int(port) < 1024:
            out.append(finding("privileged-port", f"config: ExposedPorts {spec}",
                               f"EXPOSE {spec} is a privileged port (needs root or CAP_NET_BIND_SERVICE)"))
    health = c.get("Healthcheck") or {}
    test = health.get("Test") or []
    if not test or test == ["NONE"]:
        out.append(finding("no-healthcheck", "config: Healthcheck",
                           "no HEALTHCHECK: nothing tells whether the service works" if not test
                           else "HEALTHCHECK NONE disables the check"))
    base = labels.get(BASE_NAME)
    if base is not None and "@sha256:" not in base and not labels.get(BASE_DIGEST):
        out.append(finding("base-no-digest", f"config: Label {BASE_NAME}",
                           f"base image {base} is named by tag only: rebuilds may get a different base"))
    return out


def check_dynamic(image_config: dict, now: datetime, max_age_days: int) -> list[Finding]:
    """Findings that change with time or policy: the age of the image, its license label."""
    out: list[Finding] = []
    created = _parse_time(image_config.get("created"))
    if created is not None and max_age_days >= 0:
        days = (now - created).days
        if days > max_age_days:
            severity = "medium" if days > 2 * max_age_days else "low"
            out.append(finding("image-age", "config: created",
                               f"built {days} days ago ({image_config.get('created')}), more than {max_age_days}",
                               severity))
    labels = container_config(image_config).get("Labels") or {}
    value = labels.get(REDISTRIBUTABLE)
    if value is not None and str(value).strip().lower() in ("false", "0", "no"):
        out.append(finding("not-redistributable", f"config: Label {REDISTRIBUTABLE}",
                           f"{REDISTRIBUTABLE}={value}: built from licensed source; push refuses public registries"))
    return out


def _parse_time(text) -> datetime | None:
    if not text:
        return None
    value = str(text).strip().replace("Z", "+00:00")
    # Go writes nanoseconds; Python takes at most microseconds
    if "." in value:
        head, _, rest = value.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        tail = rest[len(digits):]
        value = f"{head}.{digits[:6].ljust(6, '0')}{tail}"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
