"""Containers described as a compose project (pure), so ``kube generate CONTAINER...`` and
``--stack`` of a stack whose file is gone share one translation to manifests with compose files."""

from __future__ import annotations

from typing import Any

from dockerbank.compose.model import Project, normalize_port
from dockerbank.compose.plan import BACKUP_KEY, LABEL_PROJECT, LABEL_SERVICE

_DROPPED_LABEL_PREFIXES = ("com.docker.compose.", "io.podman.", "org.dockerbank.backup.consistency")


def _seconds(ns: Any) -> str | None:
    return f"{int(ns) / 1e9:g}s" if ns else None


def service_of(config: Any, image_env: list[str] | None = None) -> dict[str, Any]:
    """A compose service (in the normalised shape) of a container's ``ContainerConfig``;
    ``image_env``: the image's own environment, left out of the service's."""
    inherited = set(image_env or [])
    svc: dict[str, Any] = {"image": config.image}
    if config.entrypoint:
        svc["entrypoint"] = list(config.entrypoint)
    if config.cmd:
        svc["command"] = list(config.cmd)
    env = {}
    for item in config.env:
        if item in inherited:
            continue
        key, _, value = item.partition("=")
        env[key] = value
    if env:
        svc["environment"] = env
    labels = {k: v for k, v in config.labels.items() if not k.startswith(_DROPPED_LABEL_PREFIXES)}
    if labels:
        svc["labels"] = labels
    mode = config.labels.get("org.dockerbank.backup.consistency")
    if mode:
        svc[BACKUP_KEY] = mode
    for key, value in (("working_dir", config.workdir), ("user", config.user), ("hostname", config.hostname)):
        if value:
            svc[key] = value
    for key, value in (("privileged", config.privileged), ("read_only", config.read_only),
                       ("tty", config.tty), ("stdin_open", config.open_stdin)):
        if value:
            svc[key] = True
    if config.cap_add:
        svc["cap_add"] = list(config.cap_add)
    if config.cap_drop:
        svc["cap_drop"] = list(config.cap_drop)
    net = config.network or {}
    ports = [p for raw in net.get("ports") or [] for p in normalize_port(raw, "container", "ports")]
    if ports:
        svc["ports"] = ports
    if net.get("expose"):
        svc["expose"] = list(net["expose"])
    volumes = []
    for raw in config.mounts:
        if raw.get("from_container") or raw.get("origin") == "image":
            continue
        kind = raw.get("type", "volume")
        volumes.append({"type": kind, "source": raw.get("source", "") if kind != "tmpfs" else "",
                        "target": raw["target"], "read_only": bool(raw.get("read_only"))})
    if volumes:
        svc["volumes"] = volumes
    limits: dict[str, Any] = {}
    if config.memory:
        limits["memory"] = config.memory
    if config.nano_cpus:
        limits["cpus"] = config.nano_cpus / 1e9
    if limits:
        svc["deploy"] = {"resources": {"limits": limits}}
    policy = (config.restart_policy or {}).get("Name") or "no"
    svc["restart"] = policy
    hc = config.healthcheck or {}
    test = hc.get("Test")
    if test and test[0] in ("CMD", "CMD-SHELL"):
        health: dict[str, Any] = {"test": list(test)}
        for key, name in (("Interval", "interval"), ("Timeout", "timeout"), ("StartPeriod", "start_period")):
            if _seconds(hc.get(key)):
                health[name] = _seconds(hc.get(key))
        if hc.get("Retries"):
            health["retries"] = int(hc["Retries"])
        svc["healthcheck"] = health
    if config.stop_timeout is not None:
        svc["stop_grace_period"] = f"{config.stop_timeout}s"
    return svc


def project_of(containers: list[Any], name: str, image_env: dict[str, list[str]] | None = None,
               pods: dict[str, str] | None = None) -> Project:
    """A project of ``containers`` (each a ``Container`` with ``name`` and ``config``): one service
    per container, or per compose service (its first container) when they carry compose labels;
    ``pods`` (container ID -> pod name) groups a pod's members into one Pod.
    Named volumes keep their names (``name:`` set), so ``play`` mounts the same data."""
    services: dict[str, dict[str, Any]] = {}
    volumes: dict[str, dict[str, Any]] = {}
    for container in sorted(containers, key=lambda c: c.name):
        labels = container.config.labels
        service = labels.get(LABEL_SERVICE) or container.name.lstrip("/")
        if service in services:  # a further replica of a compose service
            deploy = services[service].setdefault("deploy", {})
            deploy["replicas"] = deploy.get("replicas", 1) + 1
            continue
        svc = service_of(container.config, (image_env or {}).get(container.config.image))
        if svc.get("hostname") == container.id[:12]:
            del svc["hostname"]  # the engine's default, not the user's choice
        pod = (pods or {}).get(container.id)
        if pod:
            from dockerbank.kube.generate import POD_KEY

            svc[POD_KEY] = pod
        for vol in svc.get("volumes") or []:
            if vol["type"] == "volume" and vol["source"]:
                volumes[vol["source"]] = {"name": vol["source"]}
        services[service] = svc
    project_name = name or next((c.config.labels.get(LABEL_PROJECT) for c in containers
                                 if c.config.labels.get(LABEL_PROJECT)), "") or "dockerbank"
    return Project(name=project_name, working_dir="/", config_files=["(containers)"], services=services,
                   volumes=volumes)
