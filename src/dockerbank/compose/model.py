"""The normalised project (pure): the merged files in one canonical shape, the shape
docker-compose 1.29's ``config`` prints (environment and labels as mappings, ``env_file`` read
into ``environment``, ports in the long syntax, ``depends_on`` with conditions, absolute paths).

:func:`normalize` makes it; :func:`config_document` renders ``compose config``; the plan and the
executor read services through the small accessors here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dockerbank.compose.interpolate import parse_env_file
from dockerbank.compose.loader import Loaded
from dockerbank.compose.schema import fail

DEFAULT_VERSION = "3.9"


@dataclass
class Project:
    """A normalised project: its name, where it lives and its resources."""

    name: str
    working_dir: str
    config_files: list[str]
    services: dict[str, dict[str, Any]]
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: str = DEFAULT_VERSION
    extensions: dict[str, Any] = field(default_factory=dict)
    env_files: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)

    def where(self, service: str) -> str:
        """The file that defined ``service`` (for error lines)."""
        return self.origin.get(service, self.config_files[0])

    def service(self, name: str) -> dict[str, Any]:
        from dockerbank.errors import NotFound

        if name not in self.services:
            raise NotFound(f"no such service: {name}")
        return self.services[name]

    # resource names as docker-compose 1.29 gives them
    def network_name(self, key: str) -> str:
        net = self.networks.get(key) or {}
        ext = net.get("external")
        if isinstance(ext, dict) and ext.get("name"):
            return ext["name"]
        return net.get("name") or (key if ext else f"{self.name}_{key}")

    def volume_name(self, key: str) -> str:
        vol = self.volumes.get(key) or {}
        ext = vol.get("external")
        if isinstance(ext, dict) and ext.get("name"):
            return ext["name"]
        return vol.get("name") or (key if ext else f"{self.name}_{key}")

    def service_networks(self, name: str) -> dict[str, dict[str, Any]]:
        """The networks a service joins (``default`` when it names none) with their options."""
        svc = self.services[name]
        if svc.get("network_mode"):
            return {}
        nets = svc.get("networks") or {"default": None}
        return {key: dict(value or {}) for key, value in nets.items()}

    def uses_default_network(self) -> bool:
        return any("default" in self.service_networks(n) for n in self.services)


def normalize(loaded: Loaded, read: Callable[[str], str] | None = None) -> Project:
    """The canonical project of a merged, validated load."""
    from dockerbank.compose.loader import _read, _read_file

    read = read or _read_file
    data = loaded.data
    services: dict[str, dict[str, Any]] = {}
    for name in sorted(data.get("services") or {}):
        svc = dict(data["services"][name])
        where = loaded.origin.get(name, loaded.config_files[0])
        environment: dict[str, Any] = {}
        for path in svc.pop("env_file", None) or []:
            environment.update(parse_env_file(_read(read, path), path))
        environment.update(svc.get("environment") or {})
        if environment:
            svc["environment"] = environment
        if "labels" in svc:
            svc["labels"] = {k: ("" if v is None else str(v)) for k, v in svc["labels"].items()}
        if "ports" in svc:
            svc["ports"] = [p for i, raw in enumerate(svc["ports"])
                            for p in normalize_port(raw, where, f"services.{name}.ports[{i}]")]
        for key in ("dns", "dns_search", "tmpfs"):
            if isinstance(svc.get(key), str):
                svc[key] = [svc[key]]
        if "volumes" in svc:
            svc["volumes"] = [normalize_volume(v) for v in svc["volumes"]]
        for key in ("secrets", "configs"):
            if key in svc:
                svc[key] = [{"source": v} if isinstance(v, str) else v for v in svc[key]]
        limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        if "cpus" in limits:
            try:
                limits["cpus"] = float(limits["cpus"])
            except ValueError:
                raise fail(where, f"services.{name}.deploy.resources.limits.cpus",
                           f"not a number: {limits['cpus']!r}") from None
        if svc.get("restart") is not None:
            _check_restart(svc["restart"], where, name)
        services[name] = svc
    extensions = {k: v for k, v in data.items() if k.startswith("x-")}
    return Project(
        name=loaded.name, working_dir=loaded.working_dir, config_files=loaded.config_files, services=services,
        networks={k: dict(v or {}) for k, v in (data.get("networks") or {}).items()},
        volumes={k: dict(v or {}) for k, v in (data.get("volumes") or {}).items()},
        secrets={k: dict(v or {}) for k, v in (data.get("secrets") or {}).items()},
        configs={k: dict(v or {}) for k, v in (data.get("configs") or {}).items()},
        version=str(data.get("version") or DEFAULT_VERSION), extensions=extensions,
        env_files=loaded.env_files, environment=loaded.environment, origin=dict(loaded.origin),
    )


def _check_restart(value: str, where: str, name: str) -> None:
    policy, _, count = value.partition(":")
    if policy not in ("no", "always", "unless-stopped", "on-failure") or (count and not count.isdigit()):
        raise fail(where, f"services.{name}.restart",
                   f"invalid restart policy {value!r}: use no, always, unless-stopped or on-failure[:N]")


_PORT_RE = re.compile(r"^(?:(?:(?P<ip>[\d.]+|\[[0-9a-fA-F:]+\]):)?(?P<published>[\d-]*):)?(?P<target>[\d-]+)"
                      r"(?:/(?P<proto>tcp|udp|sctp))?$")


def _port_range(text: str, where: str, path: str) -> list[int]:
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise fail(where, path, f"invalid port {text!r}") from None
    if not (0 < first <= last <= 65535):
        raise fail(where, path, f"invalid port range {text!r}")
    return list(range(first, last + 1))


def normalize_port(raw: Any, where: str, path: str) -> list[Any]:
    """A ``ports`` entry as docker-compose 1.29 prints it: a mapping ``{target, published,
    protocol}``, or the short string when it binds a host address (ranges expanded)."""
    if isinstance(raw, dict):
        mapping = dict(raw)
        for key in ("target", "published"):
            if key in mapping and isinstance(mapping[key], str) and mapping[key].isdigit():
                mapping[key] = int(mapping[key])
        return [mapping]
    match = _PORT_RE.match(str(raw))
    if match is None:
        raise fail(where, path, f"invalid port specification {raw!r}")
    targets = _port_range(match["target"], where, path)
    published = _port_range(match["published"], where, path) if match["published"] else []
    if published and len(published) != len(targets):
        if len(targets) == 1:
            targets = targets * len(published)
        else:
            raise fail(where, path, f"port ranges of different lengths in {raw!r}")
    proto = match["proto"] or "tcp"
    out: list[Any] = []
    for i, target in enumerate(targets):
        pub = published[i] if published else None
        if match["ip"]:
            suffix = "" if proto == "tcp" else f"/{proto}"
            out.append(f"{match['ip']}:{pub if pub is not None else ''}:{target}{suffix}")
            continue
        item: dict[str, Any] = {"target": target}
        if pub is not None:
            item["published"] = pub
        if proto != "tcp":
            item["protocol"] = proto
        out.append(item)
    return out


def port_flag(port: Any) -> str:
    """A normalised ``ports`` entry as the engine's ``-p`` value."""
    if isinstance(port, str):
        return port
    proto = port.get("protocol") or "tcp"
    suffix = "" if proto == "tcp" else f"/{proto}"
    host = port.get("host_ip")
    published = port.get("published")
    if host:
        return f"{host}:{published or ''}:{port['target']}{suffix}"
    if published:
        return f"{published}:{port['target']}{suffix}"
    return f"{port['target']}{suffix}"


def normalize_volume(raw: Any) -> Any:
    """A short ``volumes`` entry with its mode spelt out (``data:/data:rw``), as 1.29 prints it."""
    if not isinstance(raw, str):
        return raw
    parts = raw.split(":")
    if len(parts) == 2:
        return f"{parts[0]}:{parts[1]}:rw"
    return raw


def parse_volume(raw: Any) -> dict[str, Any]:
    """A ``volumes`` entry (short or long) as ``{type, source, target, read_only, ...}``."""
    if isinstance(raw, dict):
        out = dict(raw)
        out.setdefault("type", "volume")
        out.setdefault("source", "")
        out["read_only"] = bool(out.get("read_only"))
        return out
    parts = raw.split(":")
    if len(parts) == 1:
        return {"type": "volume", "source": "", "target": parts[0], "read_only": False}
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) > 2 else "rw"
    kind = "bind" if source.startswith("/") else "volume"
    return {"type": kind, "source": source, "target": target, "read_only": "ro" in mode.split(","),
            "mode": mode}


def depends_on(svc: dict[str, Any]) -> dict[str, str]:
    """``{dependency: condition}`` of a normalised service."""
    return {dep: (spec or {}).get("condition", "service_started") for dep, spec in (svc.get("depends_on") or {}).items()}


def replicas(svc: dict[str, Any]) -> int:
    """How many containers a service wants (``scale``, else ``deploy.replicas``, else 1)."""
    if svc.get("scale") is not None:
        return int(svc["scale"])
    deploy = svc.get("deploy") or {}
    return int(deploy["replicas"]) if deploy.get("replicas") is not None else 1


def config_document(project: Project) -> dict[str, Any]:
    """``compose config``: the normalised project as docker-compose 1.29 prints it (plus the
    top-level ``x-*`` extensions, which the Compose Specification keeps)."""
    doc: dict[str, Any] = {}
    if project.networks:
        doc["networks"] = project.networks
    if project.secrets:
        doc["secrets"] = project.secrets
    if project.configs:
        doc["configs"] = project.configs
    doc["services"] = project.services
    doc["version"] = project.version
    if project.volumes:
        doc["volumes"] = project.volumes
    doc.update(project.extensions)
    return doc


def dump_yaml(doc: dict[str, Any]) -> str:
    """YAML with sorted keys and block style, as docker-compose prints it."""
    import yaml

    base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class Dumper(base):  # type: ignore[misc,valid-type]
        def ignore_aliases(self, data):  # a service extended twice is printed twice, not as &id001
            return True

    def escaped(dumper, text: str):  # the output loads again to the same project: "$" stays literal
        return base.represent_str(dumper, text.replace("$", "$$"))

    Dumper.add_representer(str, escaped)
    return yaml.dump(doc, Dumper=Dumper, default_flow_style=False, sort_keys=True, allow_unicode=True)


def topological_levels(project: Project, names: list[str] | None = None) -> list[list[str]]:
    """Services in waves: each wave depends only on earlier ones (independent ones together)."""
    wanted = set(names if names is not None else project.services)
    # a named service pulls in what it depends on
    stack = list(wanted)
    while stack:
        for dep in depends_on(project.services[stack.pop()]):
            if dep in project.services and dep not in wanted:
                wanted.add(dep)
                stack.append(dep)
    levels: list[list[str]] = []
    done: set[str] = set()
    while len(done) < len(wanted):
        wave = sorted(n for n in wanted - done
                      if all(d in done or d not in wanted for d in depends_on(project.services[n])))
        if not wave:  # a cycle: the loader refuses those, this is a guard
            raise fail(project.config_files[0], "services", "dependency cycle")
        levels.append(wave)
        done.update(wave)
    return levels
