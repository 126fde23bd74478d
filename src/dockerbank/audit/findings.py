"""Findings, severities and the catalogue of rules (pure data)."""

from __future__ import annotations

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
    Rule("unreadable", "medium", "content that could not be read",
         "check the image's layers (dockerbank system check) or rebuild it; results are incomplete"),
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
    return Finding(rule_id, severity or rule.severity, where, detail, rule.fix)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (rank(f.severity), f.rule, f.where))


def fails(findings: list[Finding], fail_on: str | None) -> bool:
    """True if any finding is at least as severe as ``fail_on`` (None: never)."""
    if not fail_on:
        return False
    limit = rank(fail_on)
    return any(rank(f.severity) <= limit for f in findings)
