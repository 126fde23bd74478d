"""Rules over a container's inspect view (docker's shape), numbered as in the CIS Docker Benchmark v1.6. Pure."""

from __future__ import annotations

from dockerbank.audit.findings import Finding, finding

# host paths whose mounting hands the container the host (CIS 5.5)
SENSITIVE = ("/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr", "/var/lib/dockerbank", "/run/dockerbank")
_NO_LIMIT = (None, 0, -1)


def check(view: dict, api_sockets: list[str], written_bytes: int | None = None) -> list[Finding]:
    """Findings for one container: ``view`` is its inspect dict, ``api_sockets`` the paths of
    engine API sockets on this host, ``written_bytes`` what its own layer holds (None: unknown)."""
    host = view.get("HostConfig") or {}
    config = view.get("Config") or {}
    out: list[Finding] = []
    if host.get("Privileged"):
        out.append(finding("privileged", "HostConfig.Privileged", "runs --privileged: all capabilities and devices"))
    for key, kind, cis in (("NetworkMode", "network", "5.9"), ("PidMode", "PID", "5.15"), ("IpcMode", "IPC", "5.16"),
                           ("UTSMode", "UTS", "5.20"), ("UsernsMode", "user", "5.30")):
        if str(host.get(key) or "") == "host":
            out.append(finding("host-namespace", f"HostConfig.{key}", f"shares the host's {kind} namespace (CIS {cis})"))
    sockets = {s.rstrip("/") for s in api_sockets} | {"/var/run/docker.sock", "/run/docker.sock"}
    for mount in view.get("Mounts") or []:
        source = str(mount.get("Source") or "").rstrip("/") or "/"
        where = f"Mounts {source} -> {mount.get('Destination')}"
        if mount.get("Type") != "bind":
            continue
        if source in sockets:
            out.append(finding("api-socket-mounted", where, f"the API socket {source} is mounted"))
        elif source in SENSITIVE:
            mode = "read-only" if mount.get("RW") is False else "read-write"
            out.append(finding("sensitive-mount", where, f"host directory {source} is mounted {mode}"))
    caps = [str(c) for c in host.get("CapAdd") or []]
    if caps:
        out.append(finding("added-capabilities", "HostConfig.CapAdd", f"adds {', '.join(caps)}",
                           "high" if any(c.upper() in ("ALL", "SYS_ADMIN", "CAP_SYS_ADMIN") for c in caps) else None))
    if host.get("Memory") in _NO_LIMIT:
        out.append(finding("no-memory-limit", "HostConfig.Memory", "no memory limit: it can take the host's memory"))
    if host.get("PidsLimit") in _NO_LIMIT:
        out.append(finding("no-pids-limit", "HostConfig.PidsLimit", "no pids limit: a fork bomb reaches the host"))
    for port, bindings in sorted((host.get("PortBindings") or {}).items()):
        for binding in bindings or []:
            address = str(binding.get("HostIp") or "")
            if address in ("", "0.0.0.0", "::"):
                out.append(finding("ports-all-interfaces", f"HostConfig.PortBindings {port}",
                                   f"{port} is published on all interfaces (host port {binding.get('HostPort')})"))
    if not host.get("ReadonlyRootfs"):
        out.append(finding("writable-rootfs", "HostConfig.ReadonlyRootfs", "the root filesystem is writable"))
    health = (config.get("Healthcheck") or {}).get("Test") or []
    if not health or health == ["NONE"]:
        out.append(finding("container-no-healthcheck", "Config.Healthcheck", "no healthcheck"))
    options = [str(o) for o in host.get("SecurityOpt") or []]
    if not any(o.startswith("no-new-privileges") and not o.endswith("false") for o in options):
        out.append(finding("no-new-privileges", "HostConfig.SecurityOpt", "no-new-privileges is not set"))
    if written_bytes:
        out.append(finding("written-outside-volumes", "container layer",
                           f"{written_bytes} bytes written to the container's own layer, outside volumes"))
    return out
