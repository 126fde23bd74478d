"""Rules over facts of the host: API socket, API listeners, registries, Dockerbank's own directories. Pure.

The facts are gathered by the service (stat, /proc, registries.json, host.permissions); the
rules only judge them, so they are unit-tested with made-up facts.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field

from dockerbank.audit.findings import Finding, finding


@dataclass
class HostFacts:
    socket_path: str
    socket_stat: tuple[int, int, int] | None = None      # (mode, uid, gid), None: no socket
    services: list[list[str]] = field(default_factory=list)  # argv of running ``system service`` processes
    insecure_registries: list[str] = field(default_factory=list)
    open_paths: list[str] = field(default_factory=list)    # host.permissions.findings lines
    problems: list[str] = field(default_factory=list)      # facts that could not be gathered
    registries: list[list[str]] = field(default_factory=list)  # argv of running ``registry serve`` processes
    userns_default: str = "auto"       # the root's default --userns (host: containers' root is host root)
    userns_problem: str = ""           # why --userns=auto cannot work here ("" when it can)
    rootless: bool = False             # an ordinary user's engine (rootless mode)
    rootless_limits: list[str] = field(default_factory=list)   # what it cannot do here, one line each
    backup_repository: str = ""        # where the volumes' backups are looked for
    unprotected: dict[str, float | None] = field(default_factory=dict)  # volume -> seconds since its
    #                                    last backup (None: never), only those past the allowed age


def check(facts: HostFacts) -> list[Finding]:
    out: list[Finding] = []
    if facts.socket_stat is not None:
        mode, uid, _gid = facts.socket_stat
        perms = stat.S_IMODE(mode)
        if perms & 0o007:
            out.append(finding("api-socket-perms", facts.socket_path,
                               f"{facts.socket_path} is mode {perms:04o}: any local user can drive the engine (CIS 3.16)"))
        if uid != 0:
            out.append(finding("api-socket-perms", facts.socket_path,
                               f"{facts.socket_path} is owned by uid {uid}, not root (CIS 3.15)"))
    for argv in facts.services:
        hosts = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-H", "--host")]
        hosts += [a.split("=", 1)[1] for a in argv if a.startswith("--host=")]
        tcp = [h for h in hosts if h.startswith("tcp://")]
        if tcp and "--insecure-tcp" in argv:
            out.append(finding("tcp-without-tls", f"system service {' '.join(tcp)}",
                               f"the API is served on {', '.join(tcp)} without TLS (--insecure-tcp)"))
    for argv in facts.registries:
        listen = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--listen"), "")
        listen = listen or next((a.split("=", 1)[1] for a in argv if a.startswith("--listen=")), "")
        loopback = not listen or listen.startswith(("127.", "localhost", "[::1]"))  # the default is 127.0.0.1
        if not any(a == "--htpasswd" or a.startswith("--htpasswd=") for a in argv) and not loopback:
            out.append(finding("registry-without-auth", f"registry serve {listen}",
                               "a registry server runs without --htpasswd: anyone who reaches it can push and pull"))
    for registry in sorted(facts.insecure_registries):
        out.append(finding("insecure-registry", "registries.json insecure",
                           f"{registry} is trusted without TLS verification"))
    for line in facts.open_paths:
        out.append(finding("root-dir-perms", line.split(" is mode", 1)[0], line))
    if facts.userns_default == "host":
        out.append(finding("userns-not-default", "system userns-default",
                           "containers run without a user namespace by default: their root is the host's root"
                           + (f" ({facts.userns_problem})" if facts.userns_problem else "")))
    if facts.rootless:
        for line in facts.rootless_limits:
            out.append(finding("rootless-limits", "rootless", line))
    for volume, age in sorted(facts.unprotected.items()):
        since = "never backed up" if age is None else f"last backup {age / 3600:.0f} hours ago"
        out.append(finding("backup-overdue", f"volume {volume}", f"{since} (repository {facts.backup_repository})"))
    for problem in facts.problems:
        out.append(finding("unreadable", "host", problem, "low"))
    return out


def service_argvs(cmdlines: list[list[str]]) -> list[list[str]]:
    """The argv of processes that run ``dockerbank system service`` (from /proc/*/cmdline)."""
    out = []
    for argv in cmdlines:
        joined = " ".join(argv)
        if "dockerbank" in joined and "system" in argv and "service" in argv:
            out.append(argv)
    return out


def registry_argvs(cmdlines: list[list[str]]) -> list[list[str]]:
    """The argv of processes that run ``dockerbank registry serve``."""
    return [argv for argv in cmdlines
            if "dockerbank" in " ".join(argv) and "registry" in argv and "serve" in argv]
