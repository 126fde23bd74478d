"""Kubernetes manifests of a normalised compose project (pure).

Each service becomes a workload (a Deployment, a Pod with ``--type pod``, or a StatefulSet when
it keeps a database in a named volume) and a Service that gives it the DNS name it has in the
stack; named volumes become PersistentVolumeClaims, compose ``secrets``/``configs`` Secrets and
ConfigMaps, ``deploy.resources`` requests and limits, healthchecks liveness and readiness probes.
A database's dump recipe becomes Velero's backup hook annotations, so a cluster backup of its
volume holds a consistent dump, as ``dockerbank backup`` does with ``x-dockerbank-backup: dump``.

The side effects are handed in: ``image_facts`` (an image's config from the store, or None),
``read_file`` (a secret's or config's file) and ``is_private`` (the root's registries.json).
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dockerbank.compose.model import Project, parse_volume, replicas
from dockerbank.compose.options import image_of, parse_bytes
from dockerbank.compose.plan import BACKUP_KEY, parse_duration
from dockerbank.kube import names as nm

KINDS = ("deployment", "pod")
DUMP_FILE = ".dockerbank-dump.sql"
#: environment variables whose values go into a Secret rather than the manifest in clear
_SENSITIVE = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.IGNORECASE)
#: a service that is a container of a pod (kube.containers sets it for a pod's members): the pod's name
POD_KEY = "x-dockerbank-pod"
_ANNOTATION_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


@dataclass
class GenerateOptions:
    """``kube generate``'s choices."""

    kind: str = "deployment"        # the workload of a service that is no database: deployment | pod
    registry: str | None = None     # rewrite image references to this registry
    storage: str = "1Gi"            # the storage request of each PersistentVolumeClaim
    #: where kube play keeps the files of ConfigMaps and Secrets (``<root>/kube``): a bind mount
    #: from there is that ConfigMap or Secret again, not a hostPath
    played_files: str | None = None


@dataclass
class Generated:
    """The manifests (in the order ``kubectl apply`` wants them) and what could not be carried."""

    manifests: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


ImageFacts = Callable[[str], "dict[str, Any] | None"]


def _no_facts(image: str) -> dict[str, Any] | None:
    return None


def rewrite_image(image: str, registry: str) -> str:
    """``image`` as it is named in ``registry``: the name ``push --all-from-stack`` pushes it as."""
    from dockerbank.engine.stacks import target_name

    return target_name(image, registry)


def registry_host(registry: str) -> str:
    """The registry's ``host[:port]`` (``--registry`` may name a path below it)."""
    return registry.split("/", 1)[0]


def check_images(images: dict[str, dict[str, Any] | None], registry: str, is_private: Callable[[str], bool]) -> None:
    """Refuse (one line naming them) to name images labelled non-redistributable in a registry
    that is not listed as private: the push policy's rule, applied to the manifests."""
    from dockerbank.errors import PolicyRefused
    from dockerbank.registry.policy import LABEL, is_redistributable

    host = registry_host(registry)
    if is_private(host):
        return
    refused = sorted(name for name, config in images.items() if config is not None and not is_redistributable(config))
    if refused:
        raise PolicyRefused(
            f"refusing to rewrite {', '.join(refused)} to {registry}: labelled {LABEL}=false (built from "
            f"licensed source) and {host} is not a private registry; list it under \"private\" in "
            f"<root>/registries.json if it is one")


def generate(project: Project, opts: GenerateOptions, *, image_facts: ImageFacts = _no_facts,
             read_file: Callable[[str], bytes] | None = None,
             is_private: Callable[[str], bool] = lambda host: False,
             read_dir: Callable[[str], dict[str, bytes]] | None = None) -> Generated:
    """The manifests of ``project`` (see the module's docstring)."""
    from dockerbank.errors import UsageError

    if opts.kind not in KINDS:
        raise UsageError(f"invalid --type {opts.kind!r}: use pod or deployment")
    facts = {image_of(project, s): image_facts(image_of(project, s)) for s in project.services}
    if opts.registry:
        check_images(facts, opts.registry, is_private)
    out = Generated()
    builder = _Builder(project, opts, facts, read_file or _read_bytes, out)
    builder.read_dir = read_dir or _read_dir
    for service in project.services:
        builder.service(service)
    out.manifests = builder.ordered()
    return out


def _read_dir(path: str) -> dict[str, bytes]:
    import os

    return {name: _read_bytes(os.path.join(path, name)) for name in sorted(os.listdir(path))
            if os.path.isfile(os.path.join(path, name))}


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    """Manifests as one YAML stream (``---`` between documents), keys in the order written."""
    import yaml

    base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class Dumper(base):  # type: ignore[misc,valid-type]
        def ignore_aliases(self, data):  # a probe used twice is written twice, not as &id001
            return True

    return "---\n".join(yaml.dump(m, Dumper=Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)
                        for m in manifests)


class _Builder:
    """One pass over the services, collecting the objects they share (PVCs, Secrets, ConfigMaps)."""

    def __init__(self, project: Project, opts: GenerateOptions, facts: dict[str, dict[str, Any] | None],
                 read_file: Callable[[str], bytes], out: Generated):
        self.project, self.opts, self.facts, self.read_file, self.out = project, opts, facts, read_file, out
        self.configmaps: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}
        self.claims: dict[str, dict[str, Any]] = {}
        self.services: list[dict[str, Any]] = []
        self.workloads: list[dict[str, Any]] = []
        self.claim_users: dict[str, int] = {}
        self.groups: dict[str, dict[str, Any]] = {}   # Pods of several containers, by name
        self.read_dir: Callable[[str], dict[str, bytes]] = _read_dir

    def _join_pod(self, name: str, labels: dict[str, str], container: dict[str, Any], volumes: list[dict[str, Any]],
                  annotations: dict[str, str], ports: list[dict[str, Any]], svc: dict[str, Any]) -> None:
        """Add a container to the Pod ``name`` of several containers (a Dockerbank pod's members)."""
        pod = self.groups.setdefault(name, {"labels": labels, "containers": [], "volumes": {}, "annotations": {},
                                            "ports": [], "restart": svc.get("restart")})
        renamed = {}
        for vol in volumes:
            same = pod["volumes"].get(vol["name"])
            if same is not None and same != vol:  # another volume of the same name in another container
                new = nm.dns_label(f"{container['name']}-{vol['name']}")
                renamed[vol["name"]] = new
                vol = {**vol, "name": new}
            pod["volumes"].setdefault(vol["name"], vol)
        for mount in container.get("volumeMounts") or []:
            mount["name"] = renamed.get(mount["name"], mount["name"])
        pod["containers"].append(container)
        pod["annotations"].update(annotations)
        pod["ports"].extend(p for p in ports if p not in pod["ports"])

    def _emit_pods(self) -> None:
        for name, pod in self.groups.items():
            volumes = list(pod["volumes"].values())
            self._claims_of_pod(name, volumes)
            meta: dict[str, Any] = {"name": name, "labels": dict(pod["labels"])}
            if pod["annotations"]:
                meta["annotations"] = pod["annotations"]
            spec: dict[str, Any] = {"containers": pod["containers"], "restartPolicy": _restart_policy(pod["restart"])}
            if volumes:
                spec["volumes"] = volumes
            self.workloads.append({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
            self.services.append(self._service_object(name, pod["labels"], pod["ports"], False))

    def ordered(self) -> list[dict[str, Any]]:
        self._emit_pods()
        for key, claim in self.claims.items():
            if self.claim_users.get(key, 0) > 1:  # shared by several pods: Kubernetes must allow that
                claim["spec"]["accessModes"] = ["ReadWriteMany"]
        return [*self.configmaps.values(), *self.secrets.values(), *self.claims.values(), *self.services,
                *self.workloads]

    def warn(self, service: str, text: str) -> None:
        self.out.warnings.append(f"service {service}: {text}")

    # one service ------------------------------------------------------------------------------
    def service(self, service: str) -> None:
        project, svc = self.project, self.project.services[service]
        group = svc.get(POD_KEY)
        name = nm.dns_label(group or service)
        cname = nm.dns_label(service.removeprefix(f"{group}-")) if group else name
        image = image_of(project, service)
        config = self.facts.get(image) or {}
        env = self._environment(svc)
        labels = {nm.LABEL_NAME: name, nm.LABEL_PART_OF: nm.dns_label(project.name)}
        container: dict[str, Any] = {"name": cname, "image": rewrite_image(image, self.opts.registry)
                                     if self.opts.registry else image}
        if svc.get("entrypoint") is not None:
            container["command"] = _words(svc["entrypoint"])
        if svc.get("command") is not None:
            container["args"] = _words(svc["command"])
        if svc.get("working_dir"):
            container["workingDir"] = svc["working_dir"]
        container_env = self._env_entries(service, cname if not group else f"{name}-{cname}", env, labels)
        if container_env:
            container["env"] = container_env
        ports = self._ports(service, svc, config)
        if ports:
            container["ports"] = ports
        volumes, mounts, db_mount = self._volumes(service, svc, name)
        if mounts:
            container["volumeMounts"] = mounts
        resources = self._resources(service, svc)
        if resources:
            container["resources"] = resources
        probe = self._probe(service, svc)
        if probe:
            container["livenessProbe"] = probe
            container["readinessProbe"] = dict(probe)
        security = self._security(service, svc)
        if security:
            container["securityContext"] = security
        if svc.get("tty"):
            container["tty"] = True
        if svc.get("stdin_open"):
            container["stdin"] = True
        pod: dict[str, Any] = {"containers": [container]}
        if volumes:
            pod["volumes"] = volumes
        if svc.get("hostname"):
            pod["hostname"] = nm.dns_label(svc["hostname"])
        grace = parse_duration(svc.get("stop_grace_period"))
        if grace is not None:
            pod["terminationGracePeriodSeconds"] = int(grace)
        annotations = self._annotations(service, svc, cname, image, env, db_mount)
        if "pre.hook.backup.velero.io/command" in annotations:
            # Velero's file-system backup takes these volumes (with the dump in them) where no
            # volume snapshots are set up
            annotations["backup.velero.io/backup-volumes"] = ",".join(
                v["name"] for v in volumes if "_dockerbank_volume" in v)
        recipe_db = db_mount is not None and self._recipe(svc, image, env) is not None
        database = db_mount is not None and (recipe_db or svc.get(BACKUP_KEY) == "dump")
        meta: dict[str, Any] = {"name": name, "labels": dict(labels)}
        workload_annotations = {nm.ANN_SERVICE: service}
        deps = {dep: (spec or {}).get("condition", "service_started") for dep, spec in (svc.get("depends_on") or {}).items()}
        if deps:
            workload_annotations[nm.ANN_DEPENDS] = json.dumps(deps, sort_keys=True)
        meta["annotations"] = workload_annotations
        template_meta: dict[str, Any] = {"labels": dict(labels)}
        if annotations:
            template_meta["annotations"] = annotations
        count = replicas(svc)
        if group:
            self._join_pod(name, labels, container, volumes, annotations, ports, svc)
            return
        if self.opts.kind == "pod":
            if count != 1:
                self.warn(service, f"{count} replicas: a Pod runs one (use --type deployment)")
            pod["restartPolicy"] = _restart_policy(svc.get("restart"))
            meta_pod = dict(meta)
            meta_pod["labels"] = dict(labels)
            if annotations:
                meta_pod["annotations"] = {**workload_annotations, **annotations}
            self._claims_of_pod(service, volumes)
            self.workloads.append({"apiVersion": "v1", "kind": "Pod", "metadata": meta_pod, "spec": pod})
        elif database:
            templates = self._claim_templates(volumes, mounts, service)
            spec: dict[str, Any] = {"serviceName": name, "replicas": count,
                                    "selector": {"matchLabels": dict(labels)},
                                    "template": {"metadata": template_meta, "spec": pod}}
            if templates:
                spec["volumeClaimTemplates"] = templates
            if not pod.get("volumes"):
                pod.pop("volumes", None)
            if count != 1:
                self.warn(service, f"{count} replicas of a database: each gets a volume of its own")
            self.workloads.append({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta, "spec": spec})
        else:
            self._claims_of_pod(service, volumes, count)
            spec = {"replicas": count, "selector": {"matchLabels": dict(labels)},
                    "template": {"metadata": template_meta, "spec": pod}}
            self.workloads.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec})
        self.services.append(self._service_object(name, labels, ports, database))

    # pieces -----------------------------------------------------------------------------------
    def _environment(self, svc: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for key, value in (svc.get("environment") or {}).items():
            if value is None:
                value = self.project.environment.get(key)
                if value is None:
                    continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            env[key] = str(value)
        return env

    def _env_entries(self, service: str, name: str, env: dict[str, str], labels: dict[str, str]) -> list[dict[str, Any]]:
        """Plain variables as values; those that look like passwords from a Secret ``NAME-env``."""
        out: list[dict[str, Any]] = []
        hidden: dict[str, str] = {}
        for key, value in env.items():
            if _SENSITIVE.search(key):
                hidden[key] = value
                out.append({"name": key, "valueFrom": {"secretKeyRef": {"name": f"{name}-env", "key": key}}})
            else:
                out.append({"name": key, "value": value})
        if hidden:
            self.secrets[f"{name}-env"] = {
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": f"{name}-env", "labels": dict(labels)}, "type": "Opaque",
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in hidden.items()}}
        return out

    def _ports(self, service: str, svc: dict[str, Any], config: dict[str, Any]) -> list[dict[str, Any]]:
        """Container ports: the file's ``ports`` (published ones as ``hostPort``), ``expose`` and
        the image's ``EXPOSE``, each once."""
        found: dict[tuple[int, str], dict[str, Any]] = {}

        def add(target: Any, proto: str = "tcp", host_port: Any = None, host_ip: str | None = None) -> None:
            try:
                port = int(target)
            except (TypeError, ValueError):
                self.warn(service, f"port {target!r} is not a single port: left out")
                return
            entry = found.setdefault((port, proto), {"containerPort": port})
            if proto != "tcp":
                entry["protocol"] = proto.upper()
            if host_port not in (None, "", 0):
                entry["hostPort"] = int(host_port)
                if host_ip and host_ip not in ("0.0.0.0", "::"):
                    entry["hostIP"] = host_ip

        for raw in svc.get("ports") or []:
            if isinstance(raw, dict):
                add(raw.get("target"), raw.get("protocol") or "tcp", raw.get("published"), raw.get("host_ip"))
                continue
            text, _, proto = str(raw).partition("/")
            ip, _, rest = text.rpartition("]:") if text.startswith("[") else ("", "", text)
            parts = rest.split(":")
            ip = ip.lstrip("[") or (parts[0] if len(parts) == 3 else "")
            add(parts[-1], proto or "tcp", parts[-2] if len(parts) >= 2 else None, ip)
        for raw in svc.get("expose") or []:
            target, _, proto = str(raw).partition("/")
            add(target, proto or "tcp")
        for raw in ((config.get("config") or {}).get("ExposedPorts") or {}):
            target, _, proto = str(raw).partition("/")
            add(target, proto or "tcp")
        for entry in found.values():
            entry["name"] = f"{entry.get('protocol', 'TCP').lower()}-{entry['containerPort']}"[:15]
        return list(found.values())

    def _volumes(self, service: str, svc: dict[str, Any], name: str):
        """Pod volumes and container mounts; the mount path of the first named volume (a database
        keeps its data there) or None."""
        volumes: list[dict[str, Any]] = []
        mounts: list[dict[str, Any]] = []
        used: set[str] = set()
        first_named: str | None = None

        def volume_name(base: str) -> str:
            candidate, n = nm.dns_label(base), 2
            while candidate in used:
                candidate, n = f"{nm.dns_label(base)[:58]}-{n}", n + 1
            used.add(candidate)
            return candidate

        for raw in svc.get("volumes") or []:
            vol = parse_volume(raw)
            mount: dict[str, Any] = {"mountPath": vol["target"]}
            if vol["read_only"]:
                mount["readOnly"] = True
            if vol["type"] == "volume" and vol["source"]:
                key = vol["source"]
                vname = volume_name(key)
                real = self.project.volume_name(key)
                volumes.append({"name": vname, "persistentVolumeClaim": {"claimName": nm.dns_label(real)},
                                "_dockerbank_volume": real})
                if first_named is None:
                    first_named = vol["target"]
            elif vol["type"] == "volume":
                vname = volume_name("anonymous")
                volumes.append({"name": vname, "emptyDir": {}})
            elif vol["type"] == "bind" and self._played(vol["source"]) is not None:
                kind, obj, sub = self._played(vol["source"])  # type: ignore[misc]
                vname = volume_name(f"{kind}-{obj}")
                ref = {"configMap": {"name": obj}} if kind == "configmap" else {"secret": {"secretName": obj}}
                volumes.append({"name": vname, **ref})
                mount["readOnly"] = True
                if sub:
                    mount["subPath"] = sub
            elif vol["type"] == "bind":
                vname = volume_name("host-" + vol["source"].strip("/").replace("/", "-"))
                volumes.append({"name": vname, "hostPath": {"path": vol["source"]}})
                self.warn(service, f"bind mount {vol['source']} became a hostPath volume (it ties the pod to a node)")
            elif vol["type"] == "tmpfs":
                vname = volume_name("tmpfs")
                volumes.append({"name": vname, "emptyDir": {"medium": "Memory"}})
            else:
                self.warn(service, f"volume of type {vol['type']!r} left out")
                continue
            mount["name"] = vname
            mounts.append(mount)
        for item in svc.get("tmpfs") or []:
            vname = volume_name("tmpfs")
            volumes.append({"name": vname, "emptyDir": {"medium": "Memory"}})
            mounts.append({"name": vname, "mountPath": str(item).split(":", 1)[0]})
        for kind in ("secrets", "configs"):
            for ref in svc.get(kind) or []:
                source = ref["source"]
                target = ref.get("target") or source
                if not target.startswith("/"):
                    target = ("/run/secrets/" if kind == "secrets" else "/") + target
                obj = self._file_object(kind, source)
                if obj is None:
                    self.warn(service, f"{kind[:-1]} {source!r} has no file or content: left out")
                    continue
                vname = volume_name(f"{kind[:-1]}-{source}")
                key = _data_key(source)
                if kind == "secrets":
                    volumes.append({"name": vname, "secret": {"secretName": obj, "items": [{"key": key, "path": key}]}})
                else:
                    volumes.append({"name": vname, "configMap": {"name": obj, "items": [{"key": key, "path": key}]}})
                mounts.append({"name": vname, "mountPath": target, "subPath": key, "readOnly": True})
        return volumes, mounts, first_named

    def _played(self, source: str) -> tuple[str, str, str] | None:
        """``(configmap|secret, NAME, KEY or '')`` of a bind mount of kube play's files, whose
        ConfigMap or Secret is written once from those files; None for any other path."""
        base = (self.opts.played_files or "").rstrip("/")
        if not base or not source.startswith(base + "/"):
            return None
        parts = source[len(base) + 1:].split("/")
        if len(parts) not in (3, 4) or parts[1] not in ("configmap", "secret"):
            return None
        kind, obj = parts[1], nm.dns_label(parts[2], limit=253)
        target = self.configmaps if kind == "configmap" else self.secrets
        if obj not in target:
            data = self.read_dir("/".join([base, *parts[:3]]))
            meta = {"name": obj, "labels": {nm.LABEL_PART_OF: nm.dns_label(self.project.name)}}
            if kind == "secret":
                target[obj] = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
                               "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}
            else:
                text = {}
                for k, v in data.items():
                    try:
                        text[k] = v.decode()
                    except UnicodeDecodeError:
                        text = {}
                        break
                body = {"data": text} if text or not data else \
                    {"binaryData": {k: base64.b64encode(v).decode() for k, v in data.items()}}
                target[obj] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, **body}
        return kind, obj, parts[3] if len(parts) == 4 else ""

    def _file_object(self, kind: str, source: str) -> str | None:
        """The Secret or ConfigMap holding compose's ``secrets``/``configs`` entry ``source``."""
        definition = getattr(self.project, kind).get(source) or {}
        if definition.get("file"):
            data = self.read_file(definition["file"])
        elif definition.get("content") is not None:
            data = str(definition["content"]).encode()
        elif definition.get("environment"):
            data = str(self.project.environment.get(definition["environment"], "")).encode()
        else:
            return None
        name = nm.dns_label(f"{self.project.name}-{source}", limit=253)
        key = _data_key(source)
        labels = {nm.LABEL_PART_OF: nm.dns_label(self.project.name)}
        if kind == "secrets":
            self.secrets[name] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "labels": labels},
                                  "type": "Opaque", "data": {key: base64.b64encode(data).decode()}}
        else:
            try:
                body: dict[str, Any] = {"data": {key: data.decode()}}
            except UnicodeDecodeError:
                body = {"binaryData": {key: base64.b64encode(data).decode()}}
            self.configmaps[name] = {"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": name, "labels": labels}, **body}
        return name

    def _claims_of_pod(self, service: str, volumes: list[dict[str, Any]], count: int = 1) -> None:
        for vol in volumes:
            real = vol.pop("_dockerbank_volume", None)
            if real is None:
                continue
            claim = vol["persistentVolumeClaim"]["claimName"]
            self.claim_users[claim] = self.claim_users.get(claim, 0) + count
            self.claims.setdefault(claim, self._claim(claim, real))

    def _claim(self, name: str, real: str, template: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "annotations": {nm.ANN_VOLUME: real}}
        if not template:
            meta["labels"] = {nm.LABEL_PART_OF: nm.dns_label(self.project.name)}
        claim = {"metadata": meta, "spec": {"accessModes": ["ReadWriteOnce"],
                                            "resources": {"requests": {"storage": self.opts.storage}}}}
        return claim if template else {"apiVersion": "v1", "kind": "PersistentVolumeClaim", **claim}

    def _claim_templates(self, volumes: list[dict[str, Any]], mounts, service: str) -> list[dict[str, Any]]:
        """A StatefulSet's named volumes as ``volumeClaimTemplates`` (the pod's volume entries go)."""
        templates = []
        for vol in list(volumes):
            real = vol.pop("_dockerbank_volume", None)
            if real is None:
                continue
            volumes.remove(vol)
            templates.append(self._claim(vol["name"], real, template=True))
        return templates

    def _resources(self, service: str, svc: dict[str, Any]) -> dict[str, Any]:
        where, path = self.project.where(service), f"services.{service}.deploy.resources"
        res = (svc.get("deploy") or {}).get("resources") or {}
        out: dict[str, Any] = {}
        for key, section in (("limits", res.get("limits") or {}), ("requests", res.get("reservations") or {})):
            memory = section.get("memory", svc.get("mem_limit") if key == "limits" else svc.get("mem_reservation"))
            cpus = section.get("cpus", svc.get("cpus") if key == "limits" else None)
            values: dict[str, str] = {}
            if cpus:
                values["cpu"] = nm.cpu_quantity(float(cpus))
            if memory:
                values["memory"] = nm.memory_quantity(parse_bytes(memory, where, f"{path}.{key}.memory"))
            if values:
                out[key] = values
        return out

    def _probe(self, service: str, svc: dict[str, Any]) -> dict[str, Any] | None:
        hc = svc.get("healthcheck")
        if not hc or hc.get("disable"):
            return None
        test = hc.get("test")
        if isinstance(test, str):
            command = ["/bin/sh", "-c", test]
        elif isinstance(test, list) and test and test[0] == "CMD-SHELL":
            command = ["/bin/sh", "-c", " ".join(test[1:])]
        elif isinstance(test, list) and test and test[0] == "CMD":
            command = list(test[1:])
        else:
            return None
        probe: dict[str, Any] = {"exec": {"command": command}}
        for key, field_ in (("interval", "periodSeconds"), ("timeout", "timeoutSeconds"),
                            ("start_period", "initialDelaySeconds")):
            value = parse_duration(hc.get(key))
            if value is not None:
                probe[field_] = nm.seconds(value) if field_ != "initialDelaySeconds" else int(value)
        if hc.get("retries") is not None:
            probe["failureThreshold"] = max(1, int(hc["retries"]))
        return probe

    def _security(self, service: str, svc: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if svc.get("privileged"):
            out["privileged"] = True
        if svc.get("read_only"):
            out["readOnlyRootFilesystem"] = True
        caps: dict[str, list[str]] = {}
        if svc.get("cap_add"):
            caps["add"] = [c.upper().removeprefix("CAP_") for c in svc["cap_add"]]
        if svc.get("cap_drop"):
            caps["drop"] = [c.upper().removeprefix("CAP_") for c in svc["cap_drop"]]
        if caps:
            out["capabilities"] = caps
        user = str(svc.get("user") or "")
        if user:
            uid, _, gid = user.partition(":")
            if uid.isdigit() and (not gid or gid.isdigit()):
                out["runAsUser"] = int(uid)
                if gid:
                    out["runAsGroup"] = int(gid)
            else:
                self.warn(service, f"user {user!r} is a name: Kubernetes takes numeric IDs only (left out)")
        return out

    def _recipe(self, svc: dict[str, Any], image: str, env: dict[str, str]):
        from dockerbank.backup.consistency import recipe_for

        return recipe_for(image, [f"{k}={v}" for k, v in env.items()], dict(svc.get("labels") or {}))

    def _annotations(self, service: str, svc: dict[str, Any], name: str, image: str, env: dict[str, str],
                     db_mount: str | None) -> dict[str, str]:
        """The pod's annotations: the service's labels (where Kubernetes allows the key), the
        backup mode and, for a database dumped on backup, Velero's hooks."""
        out = {k: str(v) for k, v in (svc.get("labels") or {}).items() if _ANNOTATION_KEY.match(k)}
        mode = svc.get(BACKUP_KEY)
        if mode is not None:
            out[nm.ANN_BACKUP] = str(mode)
        recipe = self._recipe(svc, image, env)
        if recipe is None or db_mount is None or mode not in (None, "dump"):
            if mode == "dump" and recipe is None:
                self.warn(service, "x-dockerbank-backup: dump without a dump recipe: no Velero hook")
            return out
        dump_path = f"{db_mount.rstrip('/')}/{DUMP_FILE}"
        # Velero runs the command in the container before it reads the volumes: the dump lands in the
        # volume, so the backup holds a consistent copy beside the raw files; the post hook removes it
        out.update({
            "pre.hook.backup.velero.io/container": name,
            "pre.hook.backup.velero.io/command": json.dumps(["/bin/sh", "-c", f"{recipe.dump} > {dump_path}"]),
            "pre.hook.backup.velero.io/on-error": "Fail",
            "pre.hook.backup.velero.io/timeout": "10m",
            "post.hook.backup.velero.io/container": name,
            "post.hook.backup.velero.io/command": json.dumps(["/bin/sh", "-c", f"rm -f {dump_path}"]),
        })
        return out

    def _service_object(self, name: str, labels: dict[str, str], ports: list[dict[str, Any]],
                        database: bool) -> dict[str, Any]:
        """The Service that gives the workload its stack DNS name (headless when it has no port)."""
        spec: dict[str, Any] = {"selector": dict(labels)}
        if ports:
            spec["ports"] = [{"name": p["name"], "port": p["containerPort"], "targetPort": p["containerPort"],
                              "protocol": p.get("protocol", "TCP")} for p in ports]
        if not ports or database:
            spec["clusterIP"] = "None"   # a StatefulSet's governing Service is headless
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": dict(labels)}, "spec": spec}


def _data_key(name: str) -> str:
    """A ConfigMap/Secret key (``[-._a-zA-Z0-9]+``) for compose's secret or config ``name``."""
    return re.sub(r"[^-._a-zA-Z0-9]", "-", name) or "data"


def _words(value: Any) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _restart_policy(restart: str | None) -> str:
    policy = (restart or "no").split(":", 1)[0]
    return {"no": "Never", "on-failure": "OnFailure"}.get(policy, "Always")
