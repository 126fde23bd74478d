"""Findings, severities and the catalogue of rules (pure data)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

# ordered from most to least severe; "info" never trips --fail-on
SEVERITIES = ("high", "medium", "low", "info")


def rank(severity: str) -> int:
    """0 for high ... 3 for info (lower is worse)."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    title: str
    fix: str


RULES: dict[str, Rule] = {rule.id: rule for rule in (
    Rule("runs-as-root", "high", "the image runs as root",
         "add a USER instruction with an unprivileged user (CIS 4.1)"),
    Rule("setuid-file", "medium", "setuid/setgid file",
         "remove the file or its setuid/setgid bit (chmod u-s,g-s) unless the image needs it (CIS 4.8)"),
    Rule("world-writable-dir", "medium", "world-writable directory outside /tmp",
         "chmod o-w the directory, or use a volume for shared scratch space"),
    Rule("secret-in-file", "high", "secret in a file",
         "remove the secret from every layer (rebuild without it; pass secrets at run time, e.g. "
         "RUN --mount=type=secret or a mounted file) and rotate it (CIS 4.10)"),
    Rule("secret-in-env", "high", "secret in an ENV variable",
         "do not bake secrets into ENV: pass them at run time (-e/--env-file or a mounted file) and rotate it"),
    Rule("secret-in-label", "high", "secret in a label", "remove it from the labels and rotate it"),
    Rule("secret-in-history", "high", "secret in the build history",
         "do not pass secrets as build arguments or on RUN lines; use a secret mount and rotate it"),
    Rule("deleted-file-shipped", "low", "file deleted in a later layer but shipped in an earlier one",
         "delete files in the same RUN that creates them, or use a multi-stage build"),
    Rule("privileged-port", "low", "EXPOSEd privileged port (< 1024)",
         "listen on a port >= 1024 inside the container and publish it as the port clients expect"),
    Rule("no-healthcheck", "low", "no HEALTHCHECK", "add a HEALTHCHECK instruction (CIS 4.6)"),
    Rule("base-no-digest", "medium", "base image not pinned by digest",
         "name the base as NAME@sha256:DIGEST in FROM so rebuilds use the same base"),
    Rule("image-age", "low", "old image", "rebuild the image on an updated base to pick up security fixes"),
    Rule("not-redistributable", "info", "not redistributable (license)",
         "push it only to registries listed as private"),
    Rule("vulnerability", "high", "known vulnerability", "update the package to a fixed version"),
    Rule("backup-overdue", "medium", "a volume without a recent backup",
         "back it up (dockerbank backup create NAME) and schedule it (dockerbank backup schedule)"),
    Rule("unreadable", "medium", "content that could not be read",
         "check the image's layers (dockerbank system check) or rebuild it; results are incomplete"),
    # containers (CIS Docker Benchmark v1.6, section 5)
    Rule("privileged", "high", "privileged container (CIS 5.4)",
         "run without --privileged; add only the capabilities and devices it needs"),
    Rule("host-namespace", "high", "shares a host namespace (CIS 5.9, 5.15, 5.16, 5.20, 5.30)",
         "use the container's own namespace (e.g. a bridge network instead of --network host)"),
    Rule("api-socket-mounted", "high", "the engine's API socket is mounted (CIS 5.31)",
         "do not mount the API socket: whoever reaches it controls the host"),
    Rule("sensitive-mount", "high", "a sensitive host directory is mounted (CIS 5.5)",
         "mount only the data the container needs, read-only where it can be"),
    Rule("added-capabilities", "medium", "capabilities added (CIS 5.3)",
         "drop --cap-add unless the service cannot work without it; never add ALL"),
    Rule("no-memory-limit", "low", "no memory limit (CIS 5.10)", "set --memory"),
    Rule("no-pids-limit", "low", "no pids limit (CIS 5.28)", "set --pids-limit"),
    Rule("ports-all-interfaces", "low", "ports published on all interfaces (CIS 5.13)",
         "publish on one address, e.g. -p 127.0.0.1:8080:80"),
    Rule("writable-rootfs", "low", "root filesystem is writable (CIS 5.12)",
         "run with --read-only and volumes/tmpfs for what it writes"),
    Rule("container-no-healthcheck", "low", "no healthcheck (CIS 5.26)", "add --health-cmd or a HEALTHCHECK"),
    Rule("no-new-privileges", "low", "may gain new privileges (CIS 5.25)",
         "run with --security-opt no-new-privileges"),
    Rule("written-outside-volumes", "low", "data written outside volumes",
         "keep data in volumes: the container's own layer is lost with the container and not backed up"),
    # the host
    Rule("api-socket-perms", "high", "API socket open to other users (CIS 3.15, 3.16)",
         "chmod 660 (or 600) the socket and make root its owner"),
    Rule("tcp-without-tls", "high", "API over TCP without TLS (CIS 2.6)",
         "serve the API on a unix socket, or with --tlsverify and certificates"),
    Rule("insecure-registry", "medium", "insecure registry configured (CIS 2.4)",
         "use TLS for every registry; drop it from \"insecure\" in registries.json"),
    Rule("registry-without-auth", "medium", "registry server without authentication",
         "serve the registry with --htpasswd (and TLS) unless it listens on loopback only"),
    Rule("root-dir-perms", "high", "Dockerbank's directories or files open to other users",
         "chmod 700 the root and run directories and 600 the database and configuration"),
    Rule("userns-not-default", "low", "user namespaces not enabled by default (CIS 2.8)",
         "run 'dockerbank system userns-default auto' (or --userns=auto per container)"),
    Rule("rootless-limits", "info", "rootless engine: what it cannot do",
         "run as root for resource limits; install slirp4netns for networks' way out and published ports"),
    Rule("unscanned-file", "info", "file too large to scan for secrets",
         "check these files by hand or keep large data out of images (volumes)"),
)}


@dataclass(frozen=True)
class Finding:
    """One finding: which rule, how bad, where it was found, what it is and what to do."""

    rule: str
    severity: str
    where: str
    detail: str
    fix: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        return cls(data["rule"], data["severity"], data["where"], data["detail"], data["fix"])


def finding(rule_id: str, where: str, detail: str, severity: str | None = None) -> Finding:
    """A finding of a catalogued rule (its default severity unless one is given)."""
    rule = RULES[rule_id]
    fix = rule.fix
    cis = re.search(r"\(CIS [^)]*\)", rule.title)
    if cis and "CIS" not in fix:
        fix = f"{fix} {cis.group(0)}"
    return Finding(rule_id, severity or rule.severity, where, detail, fix)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (rank(f.severity), f.rule, f.where))


def fails(findings: list[Finding], fail_on: str | None) -> bool:
    """True if any finding is at least as severe as ``fail_on`` (None: never)."""
    if not fail_on:
        return False
    limit = rank(fail_on)
    return any(rank(f.severity) <= limit for f in findings)
