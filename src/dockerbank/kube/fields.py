"""What ``kube play`` supports of Kubernetes objects, as data, and the check that names the rest (pure).

A schema is a dict of field -> ``USED`` (carried out), ``IGNORED`` (meaningless on one host:
accepted, no effect), a nested dict, or a one-item list ``[schema]`` for a list of objects.
Anything else in a document is one line: ``KIND NAME: PATH: not supported``.
"""

from __future__ import annotations

from typing import Any

USED = "used"
IGNORED = "ignored"

SUPPORTED_KINDS = ("Pod", "Deployment", "StatefulSet", "Service", "PersistentVolumeClaim", "ConfigMap", "Secret")

_META = {"name": USED, "labels": USED, "annotations": USED, "namespace": IGNORED, "creationTimestamp": IGNORED,
         "uid": IGNORED, "resourceVersion": IGNORED, "generation": IGNORED, "managedFields": IGNORED}
_KEY_REF = {"name": USED, "key": USED, "optional": USED}
_PROBE = {"exec": {"command": USED}, "periodSeconds": USED, "timeoutSeconds": USED, "failureThreshold": USED,
          "initialDelaySeconds": USED, "successThreshold": IGNORED}
_CONTAINER = {
    "name": USED, "image": USED, "command": USED, "args": USED, "workingDir": USED,
    "env": [{"name": USED, "value": USED,
             "valueFrom": {"configMapKeyRef": _KEY_REF, "secretKeyRef": _KEY_REF}}],
    "envFrom": [{"configMapRef": {"name": USED, "optional": USED}, "secretRef": {"name": USED, "optional": USED},
                 "prefix": USED}],
    "ports": [{"containerPort": USED, "hostPort": USED, "hostIP": USED, "protocol": USED, "name": USED}],
    "volumeMounts": [{"name": USED, "mountPath": USED, "readOnly": USED, "subPath": USED}],
    "resources": {"limits": {"cpu": USED, "memory": USED}, "requests": IGNORED},
    "livenessProbe": _PROBE, "readinessProbe": _PROBE,
    "securityContext": {"privileged": USED, "readOnlyRootFilesystem": USED, "runAsUser": USED, "runAsGroup": USED,
                        "capabilities": {"add": USED, "drop": USED}},
    "stdin": USED, "tty": USED, "imagePullPolicy": IGNORED, "terminationMessagePath": IGNORED,
    "terminationMessagePolicy": IGNORED,
}
_ITEMS = [{"key": USED, "path": USED}]
_VOLUME = {
    "name": USED, "persistentVolumeClaim": {"claimName": USED, "readOnly": USED},
    "emptyDir": {"medium": USED, "sizeLimit": IGNORED}, "hostPath": {"path": USED, "type": IGNORED},
    "configMap": {"name": USED, "items": _ITEMS, "optional": USED, "defaultMode": IGNORED},
    "secret": {"secretName": USED, "items": _ITEMS, "optional": USED, "defaultMode": IGNORED},
}
_POD_SPEC = {
    "containers": [_CONTAINER], "volumes": [_VOLUME], "restartPolicy": USED, "hostname": USED,
    "terminationGracePeriodSeconds": USED, "dnsPolicy": IGNORED, "schedulerName": IGNORED,
    "enableServiceLinks": IGNORED, "securityContext": {},
}
_TEMPLATE = {"metadata": _META, "spec": _POD_SPEC}
_SELECTOR = {"matchLabels": USED}
_CLAIM_SPEC = {"accessModes": IGNORED, "resources": IGNORED, "storageClassName": IGNORED, "volumeMode": IGNORED}
_TOP = {"apiVersion": USED, "kind": USED, "metadata": _META, "status": IGNORED}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Pod": {**_TOP, "spec": _POD_SPEC},
    "Deployment": {**_TOP, "spec": {"replicas": USED, "selector": _SELECTOR, "template": _TEMPLATE,
                                    "strategy": IGNORED, "revisionHistoryLimit": IGNORED,
                                    "progressDeadlineSeconds": IGNORED, "minReadySeconds": IGNORED}},
    "StatefulSet": {**_TOP, "spec": {"replicas": USED, "selector": _SELECTOR, "template": _TEMPLATE,
                                     "serviceName": USED, "podManagementPolicy": IGNORED, "updateStrategy": IGNORED,
                                     "revisionHistoryLimit": IGNORED, "minReadySeconds": IGNORED,
                                     "volumeClaimTemplates": [{"apiVersion": IGNORED, "kind": IGNORED,
                                                               "metadata": _META, "spec": _CLAIM_SPEC}]}},
    "Service": {**_TOP, "spec": {"selector": USED, "type": USED, "clusterIP": USED, "clusterIPs": IGNORED,
                                 "ports": [{"name": USED, "port": USED, "targetPort": USED, "protocol": USED,
                                            "nodePort": USED}],
                                 "sessionAffinity": IGNORED, "ipFamilies": IGNORED, "ipFamilyPolicy": IGNORED,
                                 "internalTrafficPolicy": IGNORED, "publishNotReadyAddresses": IGNORED}},
    "PersistentVolumeClaim": {**_TOP, "spec": _CLAIM_SPEC},
    "ConfigMap": {**_TOP, "data": USED, "binaryData": USED, "immutable": IGNORED},
    "Secret": {**_TOP, "data": USED, "stringData": USED, "type": USED, "immutable": IGNORED},
}


def kind_of(doc: dict[str, Any]) -> str:
    """The document's kind ('' when it names none, or not as a string)."""
    kind = doc.get("kind")
    return kind if isinstance(kind, str) else ""


def describe(doc: dict[str, Any]) -> str:
    """``KIND NAME`` of a document, for error lines."""
    meta = doc.get("metadata")
    name = (meta.get("name") if isinstance(meta, dict) else None) or "(unnamed)"
    return f"{doc.get('kind') or '(no kind)'} {name}"


def unsupported(doc: Any) -> list[str]:
    """One line per kind or field of ``doc`` that ``play`` cannot carry out."""
    if not isinstance(doc, dict):
        return [f"document of type {type(doc).__name__}: not a Kubernetes object"]
    kind = kind_of(doc)
    if kind not in SCHEMAS:
        return [f"{describe(doc)}: kind {kind} not supported (supported: {', '.join(SUPPORTED_KINDS)})"]
    out: list[str] = []
    _walk(doc, SCHEMAS[kind], "", describe(doc), out)
    doc = prune(doc)  # the checks below read the shapes the schema promises
    if kind == "Service":
        service_type = (doc.get("spec") or {}).get("type", "ClusterIP")
        if service_type not in ("ClusterIP", "NodePort", "LoadBalancer"):
            out.append(f"{describe(doc)}: spec.type {service_type}: not supported")
    for path, spec in _pod_specs(doc):
        for i, c in enumerate(spec.get("containers") or []):
            for probe in ("livenessProbe", "readinessProbe"):
                if isinstance(c, dict) and isinstance(c.get(probe), dict) and "exec" not in c[probe]:
                    out.append(f"{describe(doc)}: {path}containers[{i}].{probe}: only exec probes are supported")
    return out


def _pod_specs(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if doc.get("kind") == "Pod":
        return [("spec.", doc.get("spec") or {})]
    if doc.get("kind") in ("Deployment", "StatefulSet"):
        return [("spec.template.spec.", ((doc.get("spec") or {}).get("template") or {}).get("spec") or {})]
    return []


def _walk(value: Any, schema: Any, path: str, what: str, out: list[str]) -> None:
    if schema in (USED, IGNORED):
        return
    if isinstance(schema, list):
        if not isinstance(value, list):
            out.append(f"{what}: {path}: expected a list")
            return
        for i, item in enumerate(value):
            _walk(item, schema[0], f"{path}[{i}]", what, out)
        return
    if not isinstance(value, dict):
        out.append(f"{what}: {path}: expected a mapping")
        return
    for key, item in value.items():
        sub = f"{path}.{key}" if path else str(key)
        if key not in schema:
            out.append(f"{what}: {sub}: not supported")
        else:
            _walk(item, schema[key], sub, what, out)


def prune(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without what :func:`unsupported` names (``--ignore-unsupported``): unknown fields
    and mappings or lists of the wrong shape are left out; a kind of no schema is kept as it is."""
    schema = SCHEMAS.get(kind_of(doc))
    return _pruned(doc, schema) if schema is not None else doc


def _pruned(value: Any, schema: Any) -> Any:
    if schema in (USED, IGNORED):
        return value
    if isinstance(schema, list):
        return [_pruned(item, schema[0]) for item in value if isinstance(item, dict) or schema[0] in (USED, IGNORED)] \
            if isinstance(value, list) else []
    if not isinstance(value, dict):
        return {}
    return {k: _pruned(v, schema[k]) for k, v in value.items() if k in schema}
