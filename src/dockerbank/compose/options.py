"""A service's container as the engine's ``CreateOptions`` (pure but for MountSpec parsing,
which is the engine's own pure parser): the one place compose's keys meet the engine's options."""

from __future__ import annotations

import re
import shlex
from dataclasses import fields
from typing import Any

from dockerbank.compose.model import Project, parse_volume, port_flag
from dockerbank.compose.plan import container_labels, container_name, healthcheck_config, parse_duration
from dockerbank.compose.schema import fail

_BYTES = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)b?$", re.IGNORECASE)
_FACTOR = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


def parse_bytes(value: Any, where: str, path: str) -> int:
    """Compose's byte values: ``64M``, ``1gb``, ``512k``, a number of bytes."""
    if isinstance(value, (int, float)):
        return int(value)
    match = _BYTES.match(str(value).strip())
    if match is None:
        raise fail(where, path, f"invalid byte value {value!r} (use e.g. 64M, 1g)")
    return int(float(match[1]) * _FACTOR[match[2].lower()])


def _words(value: Any) -> list[str] | None:
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def image_of(project: Project, service: str) -> str:
    """The image a service runs: ``image``, or docker-compose 1.29's ``PROJECT_SERVICE`` for a build."""
    svc = project.services[service]
    return svc.get("image") or f"{project.name}_{service}"


def create_options(project: Project, service: str, number: int, digest: str, *, network_ids: dict[str, str],
                   volume_names: dict[str, str], container_of_service=None, oneoff: bool = False,
                   name: str | None = None, command: list[str] | None = None):
    """The ``CreateOptions`` of container ``number`` of ``service`` (its first network only:
    the others are joined by ``extra_networks``)."""
    from dockerbank.volume import mounts as mnt
    from dockerbank.container.options import CreateOptions

    svc = project.services[service]
    where = project.where(service)
    path = f"services.{service}"
    env = []
    for key, value in (svc.get("environment") or {}).items():
        if value is None:
            value = project.environment.get(key)
            if value is None:
                continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        env.append(f"{key}={value}")
    specs = []
    for i, raw in enumerate(svc.get("volumes") or []):
        vol = parse_volume(raw)
        ro = ",ro" if vol["read_only"] else ""
        try:
            if vol["type"] == "tmpfs":
                specs.append(mnt.parse_tmpfs(vol["target"]))
            elif vol["type"] == "bind":
                bind = vol.get("bind") or {}
                text = f"type=bind,source={vol['source']},target={vol['target']}{',readonly' if ro else ''}"
                if bind.get("propagation"):
                    text += f",bind-propagation={bind['propagation']}"
                if isinstance(raw, str) or bind.get("create_host_path"):
                    mode = vol.get("mode") or ("ro" if ro else "rw")
                    specs.append(mnt.parse_volume(f"{vol['source']}:{vol['target']}:{mode}"))
                else:
                    specs.append(mnt.parse_mount(text))
            elif vol["source"]:
                mode = "ro" if vol["read_only"] else "rw"
                nocopy = ",nocopy" if (vol.get("volume") or {}).get("nocopy") else ""
                specs.append(mnt.parse_volume(f"{volume_names[vol['source']]}:{vol['target']}:{mode}{nocopy}"))
            else:
                specs.append(mnt.parse_volume(vol["target"]))
        except Exception as exc:  # the engine's parser words it; the file and key are ours
            message = getattr(exc, "message", str(exc))
            raise fail(where, f"{path}.volumes[{i}]", message) from None
    for item in svc.get("tmpfs") or []:
        specs.append(mnt.parse_tmpfs(item))
    for kind, default_dir in (("secrets", "/run/secrets/"), ("configs", "/")):
        defs = getattr(project, kind)
        for i, ref in enumerate(svc.get(kind) or []):
            definition = defs[ref["source"]]
            if not definition.get("file"):
                raise fail(where, f"{path}.{kind}[{i}]",
                           f"{kind[:-1]} {ref['source']!r}: only file-based {kind} are supported")
            target = ref.get("target") or ref["source"]
            if not target.startswith("/"):
                target = default_dir + target
            specs.append(mnt.parse_volume(f"{definition['file']}:{target}:ro"))
    limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    memory = limits.get("memory", svc.get("mem_limit"))
    cpus = limits.get("cpus", svc.get("cpus"))
    pids = limits.get("pids", svc.get("pids_limit"))
    restart = svc.get("restart") or _deploy_restart(svc) or "no"
    networks = project.service_networks(service)
    network_mode = svc.get("network_mode") or ""
    if network_mode.startswith("service:"):
        other = network_mode.split(":", 1)[1]
        if container_of_service is None:
            raise fail(where, f"{path}.network_mode", f"service {other!r} has no container")
        network_mode = f"container:{container_of_service(other)}"
    first = next(iter(networks), None)
    aliases: list[str] = []
    if first is not None:
        aliases = [service, *(networks[first].get("aliases") or [])]
    stop_timeout = parse_duration(svc.get("stop_grace_period"), where, f"{path}.stop_grace_period")
    hc = healthcheck_config(svc, where, f"{path}.healthcheck")
    extra: dict[str, Any] = {}
    known = {f.name for f in fields(CreateOptions)}
    if hc is not None:
        if "healthcheck" not in known:
            raise fail(where, f"{path}.healthcheck", "healthchecks need an engine with healthcheck support")
        extra["healthcheck"] = hc
    pid = svc.get("pid") or ""
    if pid.startswith("service:"):
        if container_of_service is None:
            raise fail(where, f"{path}.pid", f"service {pid.split(':', 1)[1]!r} has no container")
        pid = f"container:{container_of_service(pid.split(':', 1)[1])}"
    extra_hosts = svc.get("extra_hosts") or {}
    network_options = {
        "ports": [port_flag(p) for p in svc.get("ports") or []], "publish_all": False,
        "expose": [str(p) for p in svc.get("expose") or []],
        "ip": (networks[first].get("ipv4_address") if first else None) or None,
        "ip6": (networks[first].get("ipv6_address") if first else None) or None,
        "aliases": aliases if first not in (None,) and not network_mode else [],
        "dns": list(svc.get("dns") or []), "dns_search": list(svc.get("dns_search") or []),
        "dns_options": list(svc.get("dns_opt") or []),
        "add_hosts": [f"{h}:{ip}" for h, ip in extra_hosts.items()],
    }
    return CreateOptions(
        image=image_of(project, service),
        command=command if command is not None else (_words(svc.get("command")) or []),
        entrypoint=_words(svc.get("entrypoint")),
        name=name or container_name(project, service, number), env=env, workdir=svc.get("working_dir"),
        user=svc.get("user"), hostname=svc.get("hostname"),
        labels=container_labels(project, service, number, digest, oneoff),
        tty=bool(svc.get("tty")), interactive=bool(svc.get("stdin_open")), mounts=specs,
        read_only=bool(svc.get("read_only")), privileged=bool(svc.get("privileged")),
        cap_add=list(svc.get("cap_add") or []), cap_drop=list(svc.get("cap_drop") or []),
        security_opt=list(svc.get("security_opt") or []), devices=list(svc.get("devices") or []),
        init=bool(svc.get("init")), restart=restart,
        memory=parse_bytes(memory, where, f"{path}.deploy.resources.limits.memory") if memory else 0,
        memory_swap=parse_bytes(svc["memswap_limit"], where, f"{path}.memswap_limit") if svc.get("memswap_limit") else 0,
        nano_cpus=int(float(cpus) * 1e9) if cpus else 0, cpu_shares=int(svc.get("cpu_shares") or 0),
        pids_limit=int(pids or 0),
        network=network_mode or (network_ids[first] if first else "none"), network_options=network_options,
        stop_signal=svc.get("stop_signal"), stop_timeout=int(stop_timeout) if stop_timeout is not None else None,
        pid_mode=pid, cgroupns_mode=svc.get("cgroup") or "", isolation=svc.get("isolation") or "",
        mac_address=svc.get("mac_address") or "", group_add=[str(g) for g in svc.get("group_add") or []],
        cpuset_cpus=str(svc.get("cpuset") or ""), ipc_mode=_ipc(svc.get("ipc") or "", container_of_service),
        shm_size=parse_bytes(svc["shm_size"], where, f"{path}.shm_size") if svc.get("shm_size") else 0,
        ulimits=[{"Name": name, "Soft": v if isinstance(v, int) else v.get("soft", 0),
                  "Hard": v if isinstance(v, int) else v.get("hard", 0)} for name, v in (svc.get("ulimits") or {}).items()],
        sysctls=_pairs(svc.get("sysctls")), oom_score_adj=int(svc.get("oom_score_adj") or 0),
        **extra,
    )


def _ipc(value: str, container_of_service) -> str:
    """compose's ``ipc``: a mode, or ``service:NAME`` (that service's container, as ``container:``)."""
    if value.startswith("service:") and container_of_service is not None:
        return f"container:{container_of_service(value.split(':', 1)[1])}"
    return value


def _pairs(value: Any) -> dict[str, str]:
    """``sysctls`` as a mapping or a list of ``KEY=VALUE``."""
    if isinstance(value, list):
        return {k: v for k, _, v in (str(item).partition("=") for item in value)}
    return {str(k): str(v) for k, v in (value or {}).items()}


def extra_networks(project: Project, service: str, network_ids: dict[str, str]) -> list[tuple[str, list[str]]]:
    """The networks after the first a service's containers join, with their aliases."""
    networks = project.service_networks(service)
    return [(network_ids[key], [service, *(opts.get("aliases") or [])]) for key, opts in list(networks.items())[1:]]


def _deploy_restart(svc: dict[str, Any]) -> str | None:
    policy = (svc.get("deploy") or {}).get("restart_policy")
    if not policy:
        return None
    condition = policy.get("condition", "any")
    if condition == "any":
        return "always"
    if condition == "on-failure":
        return f"on-failure:{policy['max_attempts']}" if policy.get("max_attempts") else "on-failure"
    return "no"
