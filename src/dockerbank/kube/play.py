"""Kubernetes objects as a compose project that compose's ``Stack`` runs (pure).

- each container of a Pod, Deployment or StatefulSet is a compose service (``WORKLOAD`` for a
  pod of one container, ``WORKLOAD-CONTAINER`` otherwise); ``replicas`` is the service's scale.
  A ``Pod`` (with ``real_pods``, when the engine has pods) is run by the runner as a real pod
  (:attr:`PlayPlan.pods`: an infra container holds its network, IPC and UTS namespaces, its
  ports and DNS names); otherwise, and for the templates of Deployments and StatefulSets, the
  further containers join the first one's network namespace (``network_mode: service:FIRST``):
  either way they talk over ``localhost``;
- a Service adds its name as a DNS alias of the workloads it selects, and publishes its ports on
  the host when it is a NodePort (``nodePort``) or LoadBalancer (``port``); a container's
  ``hostPort`` is published as podman does;
- a PersistentVolumeClaim is a named volume (the name in ``dockerbank.org/volume-name`` when
  ``generate`` wrote it, so the stack finds its data again), a StatefulSet's claim template the
  volume ``TEMPLATE-NAME-0``; emptyDir an anonymous volume (a volume of the pod's own when
  several containers share it), hostPath a bind mount;
- ConfigMaps and Secrets are files under ``files_dir`` (written by the runner) mounted read-only,
  and the values of ``env``/``envFrom`` references.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from typing import Any

from dockerbank.compose.model import Project
from dockerbank.compose.plan import BACKUP_KEY
from dockerbank.errors import DockerbankError
from dockerbank.kube import fields as fl
from dockerbank.kube import names as nm

WORKLOADS = ("Pod", "Deployment", "StatefulSet")
#: pod annotations that describe a cluster's machinery, not the container: not copied to labels
_MACHINE_ANNOTATIONS = ("velero.io/", "kubernetes.io/", "k8s.io/", nm.PREFIX)


class KubeFileError(DockerbankError):
    """A Kubernetes file ``play``/``down`` cannot run as it is (one line per problem)."""

    exit_code = 125

    def __init__(self, path: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} unsupported item(s); nothing was created "
                         f"(--ignore-unsupported runs the rest)" if problems else path)


@dataclass
class PodPlan:
    """A ``Pod`` run as a real pod: its name, its containers' compose services (the first holds
    the pod's ports and DNS aliases) and their names (podman's ``POD-CONTAINER``)."""

    name: str
    services: list[str]
    container_names: list[str]
    hostname: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class PlayPlan:
    """What ``play`` creates: the project compose runs, the ConfigMap/Secret files it mounts,
    and the pod-own volumes ``down`` removes."""

    project: Project
    files: dict[str, bytes] = field(default_factory=dict)
    pod_volumes: list[str] = field(default_factory=list)
    pods: list[PodPlan] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load_documents(text: str, path: str) -> list[dict[str, Any]]:
    """The objects of a YAML stream (``List`` kinds flattened); one line naming the file on bad YAML."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        docs = [d for d in yaml.load_all(text, Loader=loader) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise DockerbankError(f"{path}:{where} invalid YAML: {getattr(exc, 'problem', None) or exc}",
                              exit_code=125) from None
    out: list[dict[str, Any]] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "List":
            out.extend(doc.get("items") or [])
        else:
            out.append(doc)
    return out


def project_name(docs: list[Any], path: str) -> str:
    """The stack's name: ``app.kubernetes.io/part-of`` (which ``generate`` writes), else the file's name."""
    for doc in docs:
        meta = doc.get("metadata") if isinstance(doc, dict) else None
        labels = meta.get("labels") if isinstance(meta, dict) else None
        part = labels.get(nm.LABEL_PART_OF) if isinstance(labels, dict) else None
        if part:
            return nm.dns_label(str(part))
    stem = os.path.basename(path).rsplit(".", 1)[0]
    return nm.dns_label(stem) if stem else "kube"


def plan(docs: list[Any], path: str, files_dir: str, *, ignore_unsupported: bool = False,
         real_pods: bool = False) -> PlayPlan:
    """The plan of ``docs`` (see the module's docstring). Problems refuse everything (raise
    KubeFileError) unless ``ignore_unsupported``; then they are warnings and those items are skipped."""
    problems = [line for doc in docs for line in fl.unsupported(doc)]
    # the rest is read from the pruned documents (shapes as the schema says), so the references
    # they make (ConfigMaps, Secrets, volumes) are checked too before anything is refused or made
    docs = [fl.prune(doc) for doc in docs if isinstance(doc, dict) and fl.kind_of(doc) in fl.SCHEMAS]
    name = project_name(docs, path)
    project = Project(name=name, working_dir=os.path.dirname(os.path.abspath(path)),
                      config_files=[os.path.abspath(path)], services={})
    result = PlayPlan(project)
    kept = docs
    try:
        objects = _Objects(kept)
    except (TypeError, ValueError, AttributeError) as exc:
        raise DockerbankError(f"{path}: invalid ConfigMap or Secret data ({exc})", exit_code=125) from None
    translator = _Translator(result, objects, files_dir, real_pods)
    for kinds, step in ((WORKLOADS, translator.workload), (("Service",), translator.service),
                        (("PersistentVolumeClaim",), translator.claim)):
        for doc in kept:
            if doc.get("kind") in kinds:
                try:
                    step(doc)
                except (TypeError, ValueError, AttributeError, KeyError) as exc:
                    # a value of the wrong type where the schema has a field of ours
                    translator.problems.append(f"{fl.describe(doc)}: invalid value ({type(exc).__name__}: {exc})")
    result.problems = problems + translator.problems
    if result.problems and not ignore_unsupported:
        raise KubeFileError(path, result.problems)
    result.warnings.extend(result.problems)
    if not project.services:
        raise DockerbankError(f"{path}: no Pod, Deployment or StatefulSet to run", exit_code=125)
    return result


class _Objects:
    """ConfigMaps and Secrets of the file by name, their values decoded."""

    def __init__(self, docs: list[dict[str, Any]]):
        self.data: dict[tuple[str, str], dict[str, bytes]] = {}
        for doc in docs:
            kind, name = doc.get("kind"), (doc.get("metadata") or {}).get("name")
            if kind == "ConfigMap":
                values = {k: str(v).encode() for k, v in (doc.get("data") or {}).items()}
                values.update({k: base64.b64decode(v) for k, v in (doc.get("binaryData") or {}).items()})
            elif kind == "Secret":
                values = {k: base64.b64decode(v) for k, v in (doc.get("data") or {}).items()}
                values.update({k: str(v).encode() for k, v in (doc.get("stringData") or {}).items()})
            else:
                continue
            self.data[(kind, str(name))] = values

    def get(self, kind: str, name: str) -> dict[str, bytes] | None:
        return self.data.get((kind, name))


class _Translator:
    def __init__(self, result: PlayPlan, objects: _Objects, files_dir: str, real_pods: bool = False):
        self.result, self.objects, self.files_dir, self.real_pods = result, objects, files_dir, real_pods
        self.project = result.project
        self.problems: list[str] = []
        self.pods: list[tuple[dict[str, str], str, list[str], dict[str, int]]] = []  # labels, first, services, port names

    # workloads ----------------------------------------------------------------------------------
    def workload(self, doc: dict[str, Any]) -> None:
        kind, meta = doc["kind"], doc.get("metadata") or {}
        what = fl.describe(doc)
        name = str(meta.get("name") or "")
        if not name:
            self.problems.append(f"{what}: metadata.name: missing")
            return
        spec = doc.get("spec") or {}
        if kind == "Pod":
            pod_meta, pod, count = meta, spec, 1
        else:
            template = spec.get("template") or {}
            pod_meta, pod = template.get("metadata") or {}, template.get("spec") or {}
            count = int(spec.get("replicas", 1))
        containers = [c for c in pod.get("containers") or [] if isinstance(c, dict)]
        if not containers:
            self.problems.append(f"{what}: no containers")
            return
        base = str((meta.get("annotations") or {}).get(nm.ANN_SERVICE) or name)
        claims = {}
        if kind == "StatefulSet":
            if count != 1 and spec.get("volumeClaimTemplates"):
                self.problems.append(f"{what}: spec.replicas {count} with volumeClaimTemplates: one volume per "
                                     "replica is not supported (use replicas: 1)")
                count = 1
            for tpl in spec.get("volumeClaimTemplates") or []:
                tmeta = tpl.get("metadata") or {}
                claims[str(tmeta.get("name"))] = str((tmeta.get("annotations") or {}).get(nm.ANN_VOLUME)
                                                     or f"{tmeta.get('name')}-{name}-0")
        labels = {str(k): str(v) for k, v in (pod_meta.get("labels") or {}).items()}
        annotations = {str(k): str(v) for k, v in (pod_meta.get("annotations") or {}).items()}
        workload_annotations = meta.get("annotations") or {}
        restart = {"Never": "no", "OnFailure": "on-failure"}.get(str(pod.get("restartPolicy")), "always") \
            if kind == "Pod" else "always"
        volumes = {str(v.get("name")): v for v in pod.get("volumes") or [] if isinstance(v, dict)}
        services = [base if len(containers) == 1 else f"{base}-{c.get('name')}" for c in containers]
        first = services[0]
        shared = self._shared_empty_dirs(containers, volumes, base)
        port_names: dict[str, int] = {}
        for i, container in enumerate(containers):
            svc = self._container(what, f"{self._spec_path(kind)}containers[{i}]", container, volumes, claims,
                                  shared, port_names)
            svc["restart"] = restart
            svc_labels = dict(labels)
            svc_labels.update({k: v for k, v in annotations.items() if not any(m in k for m in _MACHINE_ANNOTATIONS)})
            if svc_labels:
                svc["labels"] = svc_labels
            mode = annotations.get(nm.ANN_BACKUP)
            if mode:
                svc[BACKUP_KEY] = mode
            if count != 1:
                svc["scale"] = count
            if pod.get("terminationGracePeriodSeconds") is not None:
                svc["stop_grace_period"] = f"{int(pod['terminationGracePeriodSeconds'])}s"
            if i == 0:
                if pod.get("hostname"):
                    svc["hostname"] = str(pod["hostname"])
                deps = workload_annotations.get(nm.ANN_DEPENDS)
                if deps:
                    try:
                        svc["depends_on"] = {str(k): {"condition": str(v)} for k, v in json.loads(deps).items()}
                    except (ValueError, AttributeError):
                        self.problems.append(f"{what}: metadata.annotations.{nm.ANN_DEPENDS}: not a JSON object")
            else:
                # the pod's network namespace is the first container's: ports are published there
                self.project.services[first].setdefault("ports", []).extend(svc.pop("ports", []))
                first_expose = self.project.services[first].setdefault("expose", [])
                first_expose.extend(svc.pop("expose", []))
                if kind != "Pod" or not self.real_pods:
                    svc["network_mode"] = f"service:{first}"
                    svc.setdefault("depends_on", {})[first] = {"condition": "service_started"}
                if count != 1:
                    self.problems.append(f"{what}: spec.replicas {count} of a pod of several containers: "
                                         "not supported (use replicas: 1)")
                    svc.pop("scale", None)
            self.project.services[services[i]] = svc
        self.pods.append((labels, first, services, port_names))
        if kind == "Pod" and self.real_pods:
            self.result.pods.append(PodPlan(name, services, [f"{name}-{c.get('name')}" for c in containers],
                                            str(pod["hostname"]) if pod.get("hostname") else None, labels))

    @staticmethod
    def _spec_path(kind: str) -> str:
        return "spec." if kind == "Pod" else "spec.template.spec."

    def _shared_empty_dirs(self, containers, volumes, base: str) -> dict[str, str]:
        """emptyDir volumes mounted by several containers of a pod: a named volume of the pod's own."""
        users: dict[str, int] = {}
        for c in containers:
            for m in c.get("volumeMounts") or []:
                users[str(m.get("name"))] = users.get(str(m.get("name")), 0) + 1
        out = {}
        for vname, count in users.items():
            vol = volumes.get(vname) or {}
            if count > 1 and isinstance(vol.get("emptyDir"), dict) and vol["emptyDir"].get("medium") != "Memory":
                real = f"{self.project.name}_{base}_{vname}"
                out[vname] = real
                self.project.volumes[real] = {"name": real}
                self.result.pod_volumes.append(real)
        return out

    def _container(self, what: str, path: str, c: dict[str, Any], volumes, claims, shared,
                   port_names: dict[str, int]) -> dict[str, Any]:
        svc: dict[str, Any] = {}
        if not c.get("image"):
            self.problems.append(f"{what}: {path}.image: missing")
        svc["image"] = str(c.get("image") or "")
        if c.get("command") is not None:
            svc["entrypoint"] = [str(x) for x in c["command"]]
        if c.get("args") is not None:
            svc["command"] = [str(x) for x in c["args"]]
        if c.get("workingDir"):
            svc["working_dir"] = str(c["workingDir"])
        env = self._env(what, path, c)
        if env:
            svc["environment"] = env
        ports, expose = [], []
        for j, p in enumerate(c.get("ports") or []):
            target = p.get("containerPort")
            proto = str(p.get("protocol") or "TCP").lower()
            if not isinstance(target, int):
                self.problems.append(f"{what}: {path}.ports[{j}].containerPort: not a number")
                continue
            if p.get("name"):
                port_names[str(p["name"])] = target
            if p.get("hostPort"):
                entry: dict[str, Any] = {"target": target, "published": int(p["hostPort"])}
                if p.get("hostIP"):
                    entry["host_ip"] = str(p["hostIP"])
                if proto != "tcp":
                    entry["protocol"] = proto
                ports.append(entry)
            else:
                expose.append(f"{target}/{proto}")
        if ports:
            svc["ports"] = ports
        if expose:
            svc["expose"] = expose
        mounts = self._mounts(what, path, c, volumes, claims, shared)
        if mounts:
            svc["volumes"] = mounts
        limits = ((c.get("resources") or {}).get("limits") or {})
        deploy_limits: dict[str, Any] = {}
        try:
            if limits.get("memory") is not None:
                deploy_limits["memory"] = int(nm.parse_quantity(limits["memory"]))
            if limits.get("cpu") is not None:
                deploy_limits["cpus"] = nm.parse_quantity(limits["cpu"])
        except ValueError as exc:
            self.problems.append(f"{what}: {path}.resources.limits: {exc}")
        if deploy_limits:
            svc["deploy"] = {"resources": {"limits": deploy_limits}}
        probe = c.get("livenessProbe") or c.get("readinessProbe")
        if isinstance(probe, dict) and isinstance(probe.get("exec"), dict):
            command = [str(x) for x in probe["exec"].get("command") or []]
            shell = len(command) == 3 and command[0] in ("/bin/sh", "sh") and command[1] == "-c"
            # generate writes CMD-SHELL as sh -c: it comes back as CMD-SHELL
            health: dict[str, Any] = {"test": ["CMD-SHELL", command[2]] if shell else ["CMD", *command]}
            for key, name, default in (("periodSeconds", "interval", 10), ("timeoutSeconds", "timeout", 1),
                                       ("initialDelaySeconds", "start_period", None)):
                value = probe.get(key, default)
                if value is not None:
                    health[name] = f"{int(value)}s"
            health["retries"] = int(probe.get("failureThreshold", 3))
            svc["healthcheck"] = health
        sec = c.get("securityContext") or {}
        if sec.get("privileged"):
            svc["privileged"] = True
        if sec.get("readOnlyRootFilesystem"):
            svc["read_only"] = True
        if sec.get("runAsUser") is not None:
            svc["user"] = str(sec["runAsUser"]) + (f":{sec['runAsGroup']}" if sec.get("runAsGroup") is not None else "")
        caps = sec.get("capabilities") or {}
        if caps.get("add"):
            svc["cap_add"] = [str(x) for x in caps["add"]]
        if caps.get("drop"):
            svc["cap_drop"] = [str(x) for x in caps["drop"]]
        if c.get("tty"):
            svc["tty"] = True
        if c.get("stdin"):
            svc["stdin_open"] = True
        return svc

    def _ref(self, what: str, path: str, kind: str, name: str, optional: bool) -> dict[str, bytes] | None:
        values = self.objects.get(kind, name)
        if values is None and not optional:
            self.problems.append(f"{what}: {path}: no {kind} {name} in the file")
        return values

    def _env(self, what: str, path: str, c: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for j, ref in enumerate(c.get("envFrom") or []):
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if key in ref:
                    values = self._ref(what, f"{path}.envFrom[{j}].{key}", kind, str(ref[key].get("name")),
                                       bool(ref[key].get("optional")))
                    for k, v in (values or {}).items():
                        env[f"{ref.get('prefix') or ''}{k}"] = v.decode(errors="replace")
        for j, item in enumerate(c.get("env") or []):
            key = str(item.get("name"))
            if "value" in item:
                env[key] = "" if item["value"] is None else str(item["value"])
                continue
            source = item.get("valueFrom") or {}
            for ref_key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if ref_key in source:
                    ref = source[ref_key]
                    values = self._ref(what, f"{path}.env[{j}].valueFrom.{ref_key}", kind, str(ref.get("name")),
                                       bool(ref.get("optional")))
                    if values is not None and str(ref.get("key")) in values:
                        env[key] = values[str(ref.get("key"))].decode(errors="replace")
                    elif values is not None and not ref.get("optional"):
                        self.problems.append(f"{what}: {path}.env[{j}]: {kind} {ref.get('name')} has no key "
                                             f"{ref.get('key')}")
        return env

    def _mounts(self, what: str, path: str, c, volumes, claims, shared) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for j, m in enumerate(c.get("volumeMounts") or []):
            vname, target = str(m.get("name")), str(m.get("mountPath") or "")
            read_only = bool(m.get("readOnly"))
            sub = m.get("subPath")
            where = f"{path}.volumeMounts[{j}]"
            if vname in claims:
                out.append(self._named(claims[vname], target, read_only))
                continue
            vol = volumes.get(vname)
            if vol is None:
                self.problems.append(f"{what}: {where}.name: no volume {vname} in the pod")
                continue
            if sub and not ("configMap" in vol or "secret" in vol):
                self.problems.append(f"{what}: {where}.subPath: only for configMap and secret volumes")
                continue
            if "persistentVolumeClaim" in vol:
                claim = str(vol["persistentVolumeClaim"].get("claimName"))
                out.append(self._named(claim, target, read_only or bool(vol["persistentVolumeClaim"].get("readOnly"))))
            elif "emptyDir" in vol:
                if vname in shared:
                    out.append({"type": "volume", "source": shared[vname], "target": target, "read_only": read_only})
                elif (vol["emptyDir"] or {}).get("medium") == "Memory":
                    out.append({"type": "tmpfs", "source": "", "target": target, "read_only": False})
                else:
                    out.append({"type": "volume", "source": "", "target": target, "read_only": read_only})
            elif "hostPath" in vol:
                out.append({"type": "bind", "source": str(vol["hostPath"].get("path")), "target": target,
                            "read_only": read_only})
            elif "configMap" in vol or "secret" in vol:
                kind, ref = ("ConfigMap", vol["configMap"]) if "configMap" in vol else ("Secret", vol["secret"])
                name = str(ref.get("name") if kind == "ConfigMap" else ref.get("secretName"))
                values = self._ref(what, f"volumes.{vname}", kind, name, bool(ref.get("optional")))
                if values is None:
                    continue
                directory = os.path.join(self.files_dir, kind.lower(), name)
                items = {str(i["key"]): str(i.get("path") or i["key"]) for i in ref.get("items") or []} \
                    or {k: k for k in values}
                for key, rel in items.items():
                    if key not in values:
                        self.problems.append(f"{what}: volumes.{vname}: {kind} {name} has no key {key}")
                        continue
                    if os.path.isabs(rel) or ".." in rel.split("/"):
                        self.problems.append(f"{what}: volumes.{vname}: item path {rel!r} leaves the volume")
                        continue
                    self.result.files[os.path.join(directory, rel)] = values[key]
                source = os.path.join(directory, str(sub)) if sub else directory
                if sub and os.path.join(directory, str(sub)) not in self.result.files:
                    self.problems.append(f"{what}: {where}.subPath: {kind} {name} has no item {sub}")
                    continue
                out.append({"type": "bind", "source": source, "target": target, "read_only": True})
            else:
                self.problems.append(f"{what}: volumes.{vname}: no supported volume source")
        return out

    def _named(self, volume: str, target: str, read_only: bool) -> dict[str, Any]:
        self.project.volumes.setdefault(volume, {"name": volume})
        return {"type": "volume", "source": volume, "target": target, "read_only": read_only}

    # services and claims --------------------------------------------------------------------------
    def service(self, doc: dict[str, Any]) -> None:
        spec = doc.get("spec") or {}
        what = fl.describe(doc)
        name = str((doc.get("metadata") or {}).get("name") or "")
        selector = {str(k): str(v) for k, v in (spec.get("selector") or {}).items()}
        kind = spec.get("type", "ClusterIP")
        matched = [p for p in self.pods if selector and all(p[0].get(k) == v for k, v in selector.items())]
        if not matched:
            self.result.warnings.append(f"{what}: selects no pod of the file: left out")
            return
        for labels, first, _services, port_names in matched:
            svc = self.project.services[first]
            nets = svc.setdefault("networks", {"default": {"aliases": []}})
            aliases = nets["default"].setdefault("aliases", [])
            if name and name not in aliases and name != first:
                aliases.append(name)
            for j, port in enumerate(spec.get("ports") or []):
                target = port.get("targetPort", port.get("port"))
                if isinstance(target, str) and not target.isdigit():
                    if target not in port_names:
                        self.problems.append(f"{what}: spec.ports[{j}].targetPort: no container port named {target}")
                        continue
                    target = port_names[target]
                target = int(target)
                proto = str(port.get("protocol") or "TCP").lower()
                published = port.get("nodePort") if kind == "NodePort" else port.get("port") \
                    if kind == "LoadBalancer" else None
                if published:
                    entry: dict[str, Any] = {"target": target, "published": int(published)}
                    if proto != "tcp":
                        entry["protocol"] = proto
                    if entry not in svc.setdefault("ports", []):
                        svc["ports"].append(entry)
                elif port.get("port") is not None and int(port["port"]) != target:
                    self.result.warnings.append(
                        f"{what}: spec.ports[{j}]: port {port['port']} differs from targetPort {target}; "
                        f"locally {name} answers on {target} only (no service proxy)")

    def claim(self, doc: dict[str, Any]) -> None:
        meta = doc.get("metadata") or {}
        claim = str(meta.get("name") or "")
        real = str((meta.get("annotations") or {}).get(nm.ANN_VOLUME) or claim)
        # mounts name the claim; the volume behind it keeps the name generate recorded
        for svc in self.project.services.values():
            for vol in svc.get("volumes") or []:
                if vol.get("type") == "volume" and vol.get("source") == claim:
                    vol["source"] = real
        self.project.volumes.pop(claim, None)
        self.project.volumes[real] = {"name": real}
