"""What the pages show, computed from engine data (pure: tested with plain objects)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass
class Attention:
    """One thing an operator should look at."""

    kind: str        # container | volume
    name: str
    why: str
    link: str


def health_of(container) -> str:
    """The container's health status ('' without a healthcheck)."""
    health = container.state.health or {}
    return str(health.get("Status", "") or "")


def states(containers) -> dict[str, int]:
    """Containers counted by state, in a fixed order (every state shown, zero or not)."""
    counts = Counter(c.state.status for c in containers)
    order = ["running", "paused", "restarting", "created", "exited", "dead", "removing"]
    return {s: counts.get(s, 0) for s in order} | {s: n for s, n in counts.items() if s not in order}


def attention(containers, volumes: list[str] | None = None, backed_up: set[str] | None = None) -> list[Attention]:
    """Unhealthy, restarting, OOM-killed and failed containers; volumes without a recent backup
    (only when ``backed_up`` is known: the volumes in snapshots of the last day)."""
    out: list[Attention] = []
    for c in containers:
        link = f"/containers/{c.id}"
        status = c.state.status
        if health_of(c) == "unhealthy":
            out.append(Attention("container", c.name, "unhealthy", link))
        if status == "restarting":
            out.append(Attention("container", c.name, f"restarting (restarted {c.state.restart_count} times)", link))
        if c.state.oom_killed:
            out.append(Attention("container", c.name, "killed: out of memory", link))
        elif status in ("exited", "dead") and c.state.exit_code not in (0,) and not c.state.user_stopped:
            out.append(Attention("container", c.name, f"exited with code {c.state.exit_code}", link))
        elif status == "dead":
            out.append(Attention("container", c.name, "dead", link))
    if backed_up is not None:
        for name in volumes or []:
            if name not in backed_up:
                out.append(Attention("volume", name, "no backup in the last 24 hours", "/volumes"))
    return out


def familiar(name: str) -> str:
    """An image name as docker shows it (``busybox:latest``, not ``docker.io/library/busybox:latest``)."""
    from dockerbank.errors import DockerbankError
    from dockerbank.oci.reference import parse

    try:
        return parse(name).familiar()
    except DockerbankError:
        return name


def severity_counts(findings) -> dict[str, int] | None:
    """Findings counted by severity, worst first, only the severities found (None: not audited)."""
    if findings is None:
        return None
    counts = Counter(f.severity for f in findings)
    return {s: counts[s] for s in ("high", "medium", "low", "info") if counts.get(s)}


def image_attention(images) -> list[Attention]:
    """Images whose last audit found high-severity problems (``images``: (name, findings or None))."""
    out = []
    for name, findings in images:
        high = [f for f in findings or [] if f.severity == "high"]
        if high:
            rules = sorted({f.rule for f in high})
            out.append(Attention("image", name, f"audit: {len(high)} high ({', '.join(rules)})", "/images"))
    return out


def inspect_summary(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The lines of docker's inspect object an operator reads first."""
    cfg = data.get("Config") or {}
    state = data.get("State") or {}
    host = data.get("HostConfig") or {}
    mounts = ", ".join(f"{m.get('Name') or m.get('Source')} → {m.get('Destination')}" for m in data.get("Mounts") or [])
    ports = ", ".join(f"{k} → {','.join((b or {}).get('HostPort', '') for b in v or [])}"
                      for k, v in ((data.get("NetworkSettings") or {}).get("Ports") or {}).items())
    rows = [
        ("ID", data.get("Id", "")),
        ("Image", cfg.get("Image", "")),
        ("Command", " ".join([*(data.get("Path") and [data["Path"]] or []), *(data.get("Args") or [])])),
        ("Created", data.get("Created", "")),
        ("State", state.get("Status", "")),
        ("Started", state.get("StartedAt", "")),
        ("Finished", state.get("FinishedAt", "")),
        ("Exit code", str(state.get("ExitCode", ""))),
        ("Health", ((state.get("Health") or {}).get("Status", "")) or "—"),
        ("Restart policy", (host.get("RestartPolicy") or {}).get("Name", "") or "no"),
        ("Restart count", str(data.get("RestartCount", 0))),
        ("Ports", ports or "—"),
        ("Mounts", mounts or "—"),
        ("Networks", ", ".join(((data.get("NetworkSettings") or {}).get("Networks") or {}).keys()) or "—"),
    ]
    return [(k, str(v)) for k, v in rows]


def event_line(item: dict[str, Any]) -> dict[str, str]:
    """An event as the events page shows it."""
    import datetime

    attrs = (item.get("Actor") or {}).get("Attributes") or {}
    nano = int(item.get("timeNano") or 0)
    when = datetime.datetime.fromtimestamp(nano / 1e9, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    actor = (item.get("Actor") or {}).get("ID", "")
    return {"time": when, "type": str(item.get("Type", "")), "action": str(item.get("Action", "")),
            "name": attrs.get("name", actor[:12]), "user": attrs.get("user", "")}
