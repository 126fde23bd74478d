"""``audit image``: the use case over the engine's image store, with results cached by image ID.

What depends only on the image's content and config (an image ID names both) is computed
once and cached in ``<root>/audit/<id>.json``; what changes with time or with the user's
options (the image's age, vulnerabilities from the user's OSV files) is derived at each call.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from dockerbank.audit.findings import Finding, sort_findings
from dockerbank.audit.inventory import Inventory, Package
from dockerbank.errors import DockerbankError
from dockerbank.oci import digest as dg

CACHE_VERSION = 4   # bump when rules or the inventory change what a scan produces


@dataclass(frozen=True)
class AuditOptions:
    max_age_days: int = 180
    vuln_db: Path | None = None
    use_cache: bool = True


@dataclass
class ImageAudit:
    """The report of ``audit image``: findings, and the inventory the SBOM is made from."""

    image_id: str
    name: str
    created: str
    findings: list[Finding]
    packages: list[Package]
    os: dict[str, str] = field(default_factory=dict)
    complete: bool = True
    cached: bool = False

    def to_dict(self) -> dict:
        return {
            "Image": self.name, "ImageID": self.image_id, "Created": self.created, "Complete": self.complete,
            "Findings": [f.to_dict() for f in self.findings],
            "Packages": len(self.packages),
        }


@dataclass
class Audit:
    """The report of ``audit container`` and ``audit host``."""

    kind: str          # container, host
    name: str
    id: str
    findings: list[Finding]
    complete: bool = True
    notes: list[str] = field(default_factory=list)   # facts worth knowing that are no finding

    def to_dict(self) -> dict:
        return {"Kind": self.kind, "Name": self.name, "ID": self.id, "Complete": self.complete,
                "Findings": [f.to_dict() for f in self.findings], "Notes": list(self.notes)}


class AuditService:
    """Audits of the images in one store (an operation above the engine: built from it, not by it)."""

    @classmethod
    def of(cls, engine) -> AuditService:
        return cls(engine.config, engine.images, engine)

    def __init__(self, config, images, engine=None):
        self.config = config
        self.images = images
        self.engine = engine   # containers are looked up through it (audit container)
        self.cache_dir = Path(config.root) / "audit"

    def audit_image(self, name: str, options: AuditOptions = AuditOptions()) -> ImageAudit:
        """Audit an image from its layers and config without running it."""
        from dockerbank.audit import configcheck

        record = self.images.resolve(name)
        image_config = self.images.image_config(record.id)
        scan, cached = self._scan(record.id, image_config, options.use_cache)
        findings = [Finding.from_dict(f) for f in scan["findings"]]
        findings += configcheck.check_dynamic(image_config, datetime.now(timezone.utc), options.max_age_days)
        packages = [Package(**p) for p in scan["packages"]]
        if options.vuln_db is not None:
            from dockerbank.audit import vulns

            findings += vulns.match(packages, vulns.load_db(options.vuln_db))
        shown = record.tags[0] if record.tags and not dg.is_digest(name) else name
        return ImageAudit(record.id, shown, str(image_config.get("created") or ""), sort_findings(findings),
                          packages, scan.get("os") or {}, scan["complete"], cached)

    def cached_findings(self, image_id: str) -> list[Finding] | None:
        """The content findings of an earlier audit of ``image_id`` (every build audits its image),
        None when it was never audited; reads the cache only, never scans."""
        try:
            data = json.loads((self.cache_dir / f"{dg.hex_of(image_id)}.json").read_text())
        except (OSError, ValueError):
            return None
        if data.get("version") != CACHE_VERSION or data.get("image") != image_id:
            return None
        return sort_findings([Finding.from_dict(f) for f in data["findings"]])

    def audit_container(self, name: str) -> Audit:
        """Audit a container's configuration (CIS Docker Benchmark section 5) and what it wrote."""
        from dockerbank.audit import containercheck
        from dockerbank.container.views import inspect_container

        container = self.engine.containers.get(name)
        view = inspect_container(self.engine, container, with_size=True)
        sockets = [str(Path(self.config.run_root) / "docker.sock")]
        findings = containercheck.check(view, sockets, view.get("SizeRw"))
        return Audit("container", container.name, container.id, sort_findings(findings))

    def audit_host(self, backup_repo: str | None = None, backup_max_age: float = 24 * 3600) -> Audit:
        """Audit the host's Dockerbank set-up: API socket and listeners, registries, directory modes,
        user namespaces, and volumes whose last backup in ``backup_repo`` (default: the root's own
        repository) is older than ``backup_max_age`` seconds."""
        from dockerbank.audit import hostcheck

        socket = Path(self.config.run_root) / "docker.sock"
        facts = hostcheck.HostFacts(str(socket))
        try:
            st = os.stat(socket)
            facts.socket_stat = (st.st_mode, st.st_uid, st.st_gid)
        except FileNotFoundError:
            pass
        cmdlines = _cmdlines()
        facts.services = hostcheck.service_argvs(cmdlines)
        facts.registries = hostcheck.registry_argvs(cmdlines)
        try:
            from dockerbank.registry.registries import RegistriesConfig

            facts.insecure_registries = sorted(RegistriesConfig.load(self.config.root).insecure)
        except Exception as exc:  # noqa: BLE001 - a broken registries.json is a finding here, not a failure
            facts.problems.append(f"registries.json could not be read: {exc}")
        from dockerbank.host.permissions import findings as open_paths

        facts.open_paths = open_paths(self.config, repair=False)
        from dockerbank.host.subids import mode_facts

        mode = mode_facts(self.engine.containers.default_userns(), self.config.root)
        facts.userns_default = mode.default_userns.partition(":")[0]
        facts.rootless = mode.rootless
        if mode.rootless:
            from dockerbank.host.rootless import ROOTLESS_NETWORK

            facts.rootless_limits = ([] if mode.limits_full else [mode.limits]) + ([] if mode.slirp else [ROOTLESS_NETWORK])
            facts.userns_default = "auto"   # its containers are in the user's namespace already (CIS 2.8 holds)
        notes = [f"user namespaces (--userns=auto): {mode.layers}"] if mode.layers else []
        if mode.rootless and mode.limits_full:   # nothing to fix: the note says which controllers it uses
            notes.append(f"rootless resource limits: {mode.limits}")
        if not mode.unshare:
            facts.userns_problem = "--userns=auto needs unshare(1) from util-linux"
        try:
            facts.backup_repository, facts.unprotected = self._unprotected(backup_repo, backup_max_age)
        except (DockerbankError, OSError) as exc:
            facts.problems.append(f"the backup repository could not be read: {exc}")
        findings = hostcheck.check(facts)
        return Audit("host", os.uname().nodename, str(self.config.root), sort_findings(findings), notes=notes)

    def _unprotected(self, repo: str | None, max_age: float) -> tuple[str, dict[str, float | None]]:
        """(repository, volume -> seconds since its last backup or None for never) of the volumes
        unprotected for longer than ``max_age`` (the same summary as the backup metrics)."""
        import time
        from types import SimpleNamespace

        from dockerbank.backup.repository import open_repository
        from dockerbank.monitor import backups, verifylog
        from dockerbank.monitor.readings import parse_rfc3339

        repository = open_repository(self.engine, repo)
        snapshots = repository.snapshots() if repository.exists() else []
        volumes = [SimpleNamespace(name=v.name, created=parse_rfc3339(v.created)) for v in self.engine.volumes.list()]
        containers = [SimpleNamespace(name=c.name, labels=c.config.labels) for c in self.engine.containers.list()]
        summary = backups.summarize(snapshots, verifylog.load(self.config.root, repository.url), volumes,
                                    containers, time.time())
        saved = {name for kind, name in summary.items if kind == "volume"}
        return repository.url, {name: age if name in saved else None
                                for name, age in summary.volume_age.items() if age > max_age}

    # --- the cached, content-derived part --------------------------------------------------

    def _scan(self, image_id: str, image_config: dict, use_cache: bool) -> tuple[dict, bool]:
        path = self.cache_dir / f"{dg.hex_of(image_id)}.json"
        if use_cache:
            try:
                data = json.loads(path.read_text())
                if data.get("version") == CACHE_VERSION and data.get("image") == image_id:
                    return data, True
            except (OSError, ValueError):
                pass  # no cache yet, or a damaged one: scan again
        data = self._fresh_scan(image_id, image_config)
        self._store(path, data)
        return data, False

    def _fresh_scan(self, image_id: str, image_config: dict) -> dict:
        from dockerbank.audit import configcheck, inventory
        from dockerbank.audit.layerscan import LayerSource, scan_layers

        diff_ids = list((image_config.get("rootfs") or {}).get("diff_ids") or [])
        steps = [str(h.get("created_by") or "") for h in image_config.get("history") or [] if not h.get("empty_layer")]
        if len(steps) != len(diff_ids):
            steps = [""] * len(diff_ids)
        sources = [LayerSource(i, diff_id, steps[i - 1], self._opener(diff_id))
                   for i, diff_id in enumerate(diff_ids, start=1)]
        result = scan_layers(sources)
        inv: Inventory = inventory.build(result.collected)
        findings = configcheck.check_static(image_config) + result.findings + inv.findings
        findings += _license_findings(inv.packages)
        return {
            "version": CACHE_VERSION, "image": image_id,
            "complete": result.complete and inv.complete,
            "findings": [f.to_dict() for f in findings],
            "packages": [p.to_dict() for p in inv.packages],
            "os": inv.os,
        }

    def _opener(self, diff_id: str):
        return lambda: self.images.layer_tar(diff_id)

    def _store(self, path: Path, data: dict) -> None:
        """Write the cache atomically, closed to other users (findings name where secrets are)."""
        try:
            self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.cache_dir)
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle, separators=(",", ":"))
            os.replace(tmp, path)
            self._forget_removed()
        except OSError:
            pass  # a cache that cannot be written only costs the next audit its speed

    def _forget_removed(self) -> None:
        """Drop cached results of images no longer in the store (removed by rmi or prune)."""
        known = {dg.hex_of(record.id) for record in self.images.list()}
        for entry in os.listdir(self.cache_dir):
            if entry.endswith(".json") and entry[:-5] not in known:
                try:
                    os.unlink(self.cache_dir / entry)
                except OSError:
                    pass


def _license_findings(packages: list[Package]) -> list[Finding]:
    """Components whose license forbids redistribution (the image must stay in private registries)."""
    from dockerbank.audit import licenses
    from dockerbank.audit.findings import finding

    out = []
    for pkg in packages:
        banned = sorted(licenses.ids_in(pkg.license) & licenses.NON_REDISTRIBUTABLE)
        if banned:
            out.append(finding("not-redistributable", f"{pkg.type} {pkg.name} {pkg.version}",
                               f"{pkg.name} is licensed {', '.join(banned)}, which forbids redistribution: label "
                               "the image org.dockerbank.redistributable=false", "medium"))
    return out


def _cmdlines() -> list[list[str]]:
    """argv of the host's processes (those that vanish or hide while read are skipped)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        if raw:
            out.append([part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")])
    return out
