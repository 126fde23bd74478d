"""Convergence as docker-compose does it (pure): compare what a service wants with the
containers that carry its labels, and decide per container what to do.

Labels follow docker-compose 1.29 (``com.docker.compose.*``), so ``docker-compose ps`` over the
API and ``dockerbank compose ps`` see the same project. A container is current when its
``config-hash`` label and its image match; ``up`` again on an unchanged file plans nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from dockerbank.compose.model import Project, replicas

LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
LABEL_NUMBER = "com.docker.compose.container-number"
LABEL_ONEOFF = "com.docker.compose.oneoff"
LABEL_CONFIG_HASH = "com.docker.compose.config-hash"
LABEL_VERSION = "com.docker.compose.version"
LABEL_WORKING_DIR = "com.docker.compose.project.working_dir"
LABEL_CONFIG_FILES = "com.docker.compose.project.config_files"
LABEL_ENV_FILE = "com.docker.compose.project.environment_file"
LABEL_NETWORK = "com.docker.compose.network"
LABEL_VOLUME = "com.docker.compose.volume"
LABEL_BACKUP = "org.dockerbank.backup.consistency"
# docker-compose parses this label as a version (and warns below 1.21): the labels are 1.29's
COMPOSE_VERSION = "1.29.2"
BACKUP_KEY = "x-dockerbank-backup"
BACKUP_MODES = ("dump", "pause", "stop", "none")

# keys that change how many containers there are, not what one container is
_NOT_HASHED = ("scale", "profiles", "depends_on")


def config_hash(project: Project, service: str) -> str:
    """The ``config-hash`` label of a service's containers: sha256 of its normalised definition
    and of the definitions of the networks, volumes, secrets and configs it uses."""
    svc = {k: v for k, v in project.services[service].items() if k not in _NOT_HASHED}
    deploy = dict(svc.get("deploy") or {})
    deploy.pop("replicas", None)
    if deploy:
        svc["deploy"] = deploy
    else:
        svc.pop("deploy", None)
    used = {
        "networks": {k: project.networks.get(k) for k in project.service_networks(service)},
        "secrets": {s["source"]: project.secrets.get(s["source"]) for s in svc.get("secrets") or []},
        "configs": {s["source"]: project.configs.get(s["source"]) for s in svc.get("configs") or []},
    }
    dump = json.dumps({"service": svc, "uses": used}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(dump.encode()).hexdigest()


def container_name(project: Project, service: str, number: int) -> str:
    """``container_name`` or docker-compose 1.29's ``PROJECT_SERVICE_N``."""
    explicit = project.services[service].get("container_name")
    return explicit or f"{project.name}_{service}_{number}"


def container_labels(project: Project, service: str, number: int, digest: str, oneoff: bool = False) -> dict[str, str]:
    """The labels a service's container gets: the service's own, compose's, and the backup mode."""
    svc = project.services[service]
    labels = dict(svc.get("labels") or {})
    labels.update({
        LABEL_PROJECT: project.name, LABEL_SERVICE: service, LABEL_NUMBER: str(number),
        LABEL_ONEOFF: "True" if oneoff else "False", LABEL_CONFIG_HASH: digest, LABEL_VERSION: COMPOSE_VERSION,
        LABEL_WORKING_DIR: project.working_dir, LABEL_CONFIG_FILES: ",".join(project.config_files),
    })
    if project.env_files:
        labels[LABEL_ENV_FILE] = ",".join(project.env_files)
    mode = svc.get(BACKUP_KEY)
    if mode is not None:
        labels[LABEL_BACKUP] = str(mode)
    return labels


@dataclass(frozen=True)
class Existing:
    """What the plan needs to know of a container that exists."""

    id: str
    name: str
    labels: dict[str, str]
    status: str
    image_id: str = ""

    @property
    def service(self) -> str:
        return self.labels.get(LABEL_SERVICE, "")

    @property
    def number(self) -> int:
        try:
            return int(self.labels.get(LABEL_NUMBER, "0"))
        except ValueError:
            return 0


@dataclass
class Action:
    """One step for one container: ``create``, ``recreate``, ``start``, ``keep`` or ``remove``."""

    kind: str
    service: str
    number: int
    container: Existing | None = None


@dataclass
class ServicePlan:
    service: str
    actions: list[Action] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return any(a.kind != "keep" for a in self.actions)


def project_containers(existing: list[Existing], project_name: str, oneoff: bool = False) -> list[Existing]:
    """The containers of a project (one-off ``run`` containers apart), by service and number."""
    wanted = "True" if oneoff else "False"
    found = [c for c in existing if c.labels.get(LABEL_PROJECT) == project_name
             and c.labels.get(LABEL_ONEOFF, "False") == wanted]
    return sorted(found, key=lambda c: (c.service, c.number, c.name))


def plan_service(project: Project, service: str, mine: list[Existing], *, digest: str, image_id: str,
                 scale: int | None = None, force_recreate: bool = False, no_recreate: bool = False) -> ServicePlan:
    """What ``up`` does for one service, given its containers (``mine``) and its current hash/image."""
    want = replicas(project.services[service]) if scale is None else scale
    if want > 1 and project.services[service].get("container_name"):
        from dockerbank.compose.schema import fail

        raise fail(project.where(service), f"services.{service}.container_name",
                   f"a service with container_name cannot be scaled to {want} containers")
    plan = ServicePlan(service)
    mine = sorted(mine, key=lambda c: c.number)
    keep, extra = mine[:want], mine[want:]
    for container in keep:
        stale = (container.labels.get(LABEL_CONFIG_HASH) != digest
                 or (image_id and container.image_id and container.image_id != image_id))
        if (stale or force_recreate) and not no_recreate:
            plan.actions.append(Action("recreate", service, container.number, container))
        elif container.status in ("running", "paused", "restarting"):
            plan.actions.append(Action("keep", service, container.number, container))
        else:
            plan.actions.append(Action("start", service, container.number, container))
    taken = {c.number for c in keep}
    number = 1
    for _ in range(want - len(keep)):
        while number in taken:
            number += 1
        taken.add(number)
        plan.actions.append(Action("create", service, number))
    for container in extra:
        plan.actions.append(Action("remove", service, container.number, container))
    return plan


def orphans(project: Project, mine: list[Existing]) -> list[Existing]:
    """Containers of the project whose service is no longer in the file."""
    return [c for c in mine if c.service not in project.services]


def parse_duration(text: str | int | float | None, where: str = "", path: str = "") -> float | None:
    """A compose duration (``1m30s``, ``500ms``, ``2h``, ``1d``, a bare number of seconds) in seconds."""
    from dockerbank.units import go_duration_ns

    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text)
    value = go_duration_ns(text.replace(" ", ""), days=True)
    if value is not None:
        return value / 1e9
    try:
        return float(text)
    except ValueError:
        from dockerbank.compose.schema import fail

        raise fail(where, path, f"invalid duration {text!r} (use e.g. 1m30s, 500ms)") from None


def healthcheck_config(svc: dict[str, Any], where: str, path: str) -> dict[str, Any] | None:
    """A service's ``healthcheck`` as Docker's ``Config.Healthcheck`` (durations in ns)."""
    hc = svc.get("healthcheck")
    if hc is None:
        return None
    if hc.get("disable"):
        return {"Test": ["NONE"]}
    test = hc.get("test")
    out: dict[str, Any] = {}
    if isinstance(test, str):
        out["Test"] = ["CMD-SHELL", test]
    elif isinstance(test, list):
        out["Test"] = list(test)
        if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            from dockerbank.compose.schema import fail

            raise fail(where, f"{path}.test", "a list must start with CMD, CMD-SHELL or NONE")
    for key, name in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod"),
                      ("start_interval", "StartInterval")):
        seconds = parse_duration(hc.get(key), where, f"{path}.{key}")
        if seconds is not None:
            out[name] = int(seconds * 1e9)
    if hc.get("retries") is not None:
        out["Retries"] = int(hc["retries"])
    return out
