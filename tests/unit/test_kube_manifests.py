"""kube: compose projects and containers to manifests (validated against the Kubernetes 1.29-1.33
schemas, strict), manifests to compose projects, unsupported items, the license rule. Pure."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import kubernetes_validate
import pytest
import yaml

from dockerbank.compose.loader import LoadOptions, load
from dockerbank.compose.model import normalize
from dockerbank.container.model import ContainerConfig
from dockerbank.errors import PolicyRefused
from dockerbank.kube import fields, play
from dockerbank.kube.containers import project_of
from dockerbank.kube.generate import GenerateOptions, generate, to_yaml

VERSIONS = ("1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0")

STACK = """\
name: shop
services:
  db:
    image: postgres:16
    environment: {POSTGRES_PASSWORD: s3cret, POSTGRES_DB: shop}
    volumes: [dbdata:/var/lib/postgresql/data]
    x-dockerbank-backup: dump
    healthcheck: {test: ["CMD-SHELL", "pg_isready -U postgres"], interval: 5s, timeout: 3s, retries: 5,
                  start_period: 10s}
  web:
    image: registry.example:5000/team/web:1.2
    ports: ["8080:80", "127.0.0.1:8443:443/tcp"]
    depends_on: {db: {condition: service_healthy}}
    secrets: [api_key]
    configs: [{source: nginx, target: /etc/nginx/conf.d/default.conf}]
    deploy:
      replicas: 2
      resources: {limits: {cpus: "0.5", memory: 256M}, reservations: {cpus: "0.25", memory: 64M}}
  cache: {image: "redis:7", expose: ["6379"]}
  worker:
    image: busybox
    command: sh -c "while true; do sleep 1; done"
    volumes: ["/srv/in:/in:ro", "/scratch", "shared:/shared"]
    tmpfs: [/tmp]
    user: "1000:1000"
  proxy:
    image: licensed/proxy:3
    cap_add: [NET_ADMIN]
    read_only: true
    stop_grace_period: 30s
    volumes: ["shared:/shared"]
volumes: {dbdata: {}, shared: {}}
secrets: {api_key: {file: ./api_key.txt}}
configs: {nginx: {file: ./nginx.conf}}
"""
FILES = {"/p/compose.yaml": STACK, "/p/api_key.txt": "key123\n", "/p/nginx.conf": "server {}\n"}
LICENSED = {"config": {"Labels": {"org.dockerbank.redistributable": "false"}}}


def _project():
    loaded = load(LoadOptions(cwd="/p"), FILES.__getitem__, FILES.__contains__)
    return normalize(loaded, FILES.__getitem__)


def _generate(**opts):
    facts = {"licensed/proxy:3": LICENSED, "postgres:16": {"config": {"ExposedPorts": {"5432/tcp": {}}}}}
    return generate(_project(), GenerateOptions(**opts), image_facts=facts.get,
                    read_file=lambda path: FILES[path].encode(), is_private=lambda host: host == "private.lan:5000")


def _by(manifests, kind, name):
    return next(m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name)


@pytest.mark.parametrize("kind", ["deployment", "pod"])
def test_every_manifest_validates_strictly_against_kubernetes_1_29_to_1_33(kind):
    result = _generate(kind=kind)
    docs = list(yaml.safe_load_all(to_yaml(result.manifests)))
    assert len(docs) == len(result.manifests) >= 12
    for version in VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)  # raises on an unknown field


def test_a_database_with_a_volume_is_a_statefulset_with_velero_dump_hooks():
    manifests = _generate().manifests
    db = _by(manifests, "StatefulSet", "db")
    annotations = db["spec"]["template"]["metadata"]["annotations"]
    command = json.loads(annotations["pre.hook.backup.velero.io/command"])
    assert command == ["/bin/sh", "-c",
                       'pg_dumpall -U "${POSTGRES_USER:-postgres}" > /var/lib/postgresql/data/.dockerbank-dump.sql']
    assert annotations["pre.hook.backup.velero.io/container"] == "db"
    assert annotations["backup.velero.io/backup-volumes"] == "dbdata"
    assert json.loads(annotations["post.hook.backup.velero.io/command"])[-1].startswith("rm -f ")
    template = db["spec"]["volumeClaimTemplates"][0]
    assert template["metadata"] == {"name": "dbdata", "annotations": {"dockerbank.org/volume-name": "shop_dbdata"}}
    assert _by(manifests, "Service", "db")["spec"]["clusterIP"] == "None"
    container = db["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"] == {"exec": {"command": ["/bin/sh", "-c", "pg_isready -U postgres"]},
                                          "periodSeconds": 5, "timeoutSeconds": 3, "initialDelaySeconds": 10,
                                          "failureThreshold": 5}
    # the password is in a Secret, not in the manifest in clear
    env = {e["name"]: e for e in container["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "db-env", "key": "POSTGRES_PASSWORD"}
    assert base64.b64decode(_by(manifests, "Secret", "db-env")["data"]["POSTGRES_PASSWORD"]) == b"s3cret"
    assert "s3cret" not in to_yaml([db])


def test_resources_ports_secrets_configs_and_shared_claims():
    manifests = _generate().manifests
    web = _by(manifests, "Deployment", "web")["spec"]
    container = web["template"]["spec"]["containers"][0]
    assert web["replicas"] == 2
    assert container["resources"] == {"limits": {"cpu": "500m", "memory": "256Mi"},
                                      "requests": {"cpu": "250m", "memory": "64Mi"}}
    assert {p["containerPort"]: p.get("hostPort") for p in container["ports"]} == {80: 8080, 443: 8443}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/run/secrets/api_key"]["subPath"] == "api_key"
    assert _by(manifests, "ConfigMap", "shop-nginx")["data"] == {"nginx": "server {}\n"}
    assert base64.b64decode(_by(manifests, "Secret", "shop-api-key")["data"]["api_key"]) == b"key123\n"
    assert _by(manifests, "PersistentVolumeClaim", "shop-shared")["spec"]["accessModes"] == ["ReadWriteMany"]
    assert [p["port"] for p in _by(manifests, "Service", "cache")["spec"]["ports"]] == [6379]
    deps = json.loads(_by(manifests, "Deployment", "web")["metadata"]["annotations"]["dockerbank.org/depends-on"])
    assert deps == {"db": "service_healthy"}


def test_images_are_rewritten_but_a_non_redistributable_one_never_to_a_public_registry():
    with pytest.raises(PolicyRefused) as err:
        _generate(registry="registry.public.example/team")
    assert "licensed/proxy:3" in err.value.message and "org.dockerbank.redistributable=false" in err.value.message
    images = {m["metadata"]["name"]: m["spec"]["template"]["spec"]["containers"][0]["image"]
              for m in _generate(registry="private.lan:5000/team").manifests if m["kind"] == "Deployment"}
    assert images["proxy"] == "private.lan:5000/team/licensed/proxy:3"
    assert images["web"] == "private.lan:5000/team/team/web:1.2"
    assert images["cache"] == "private.lan:5000/team/redis:7"


def test_containers_become_a_project_and_valid_manifests():
    config = ContainerConfig(
        image="postgres:16", image_id="x", path="postgres", cmd=["postgres"], env=["PATH=/usr/bin", "POSTGRES_PASSWORD=pw"],
        labels={"org.dockerbank.backup.consistency": "dump"},
        mounts=[{"type": "volume", "source": "pgdata", "target": "/var/lib/postgresql/data"},
                {"type": "bind", "source": "/etc/localtime", "target": "/etc/localtime", "read_only": True}],
        network={"ports": ["15432:5432"]}, memory=128 * 1024 ** 2, nano_cpus=1_500_000_000,
        healthcheck={"Test": ["CMD", "pg_isready"], "Interval": 2_000_000_000, "Retries": 3},
        restart_policy={"Name": "always"})
    project = project_of([SimpleNamespace(id="c1", name="pg", config=config)], "solo", {"postgres:16": ["PATH=/usr/bin"]})
    assert project.services["pg"]["environment"] == {"POSTGRES_PASSWORD": "pw"}
    assert project.volumes == {"pgdata": {"name": "pgdata"}}
    manifests = generate(project, GenerateOptions()).manifests
    for doc in manifests:
        kubernetes_validate.validate(doc, "1.33.0", strict=True)
    sts = _by(manifests, "StatefulSet", "pg")["spec"]
    container = sts["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "1500m", "memory": "128Mi"}
    assert container["ports"][0]["hostPort"] == 15432
    assert sts["volumeClaimTemplates"][0]["metadata"]["annotations"]["dockerbank.org/volume-name"] == "pgdata"


def test_play_of_what_generate_wrote_is_the_stack_again():
    manifests = _generate().manifests
    docs = play.load_documents(to_yaml(manifests), "shop.yaml")
    result = play.plan(docs, "/k/shop.yaml", "/files")
    project = result.project
    assert project.name == "shop" and result.problems == []
    assert set(project.services) == {"db", "web", "cache", "worker", "proxy"}
    db = project.services["db"]
    assert db["environment"] == {"POSTGRES_PASSWORD": "s3cret", "POSTGRES_DB": "shop"}
    assert db["volumes"] == [{"type": "volume", "source": "shop_dbdata", "target": "/var/lib/postgresql/data",
                              "read_only": False}]
    assert project.volumes["shop_dbdata"] == {"name": "shop_dbdata"}
    assert db["x-dockerbank-backup"] == "dump"
    assert db["healthcheck"]["test"] == ["CMD-SHELL", "pg_isready -U postgres"]
    web = project.services["web"]
    assert web["scale"] == 2 and web["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert {"target": 443, "published": 8443, "host_ip": "127.0.0.1"} in web["ports"]
    assert web["deploy"]["resources"]["limits"] == {"memory": 256 * 1024 ** 2, "cpus": 0.5}
    files = {m["target"]: m["source"] for m in web["volumes"]}
    assert result.files[files["/run/secrets/api_key"]] == b"key123\n"
    assert result.files[files["/etc/nginx/conf.d/default.conf"]] == b"server {}\n"
    assert project.services["worker"]["user"] == "1000:1000"
    assert {"type": "tmpfs", "source": "", "target": "/tmp", "read_only": False} in project.services["worker"]["volumes"]


def test_pods_of_several_containers_share_the_first_ones_network_and_services_alias_and_publish():
    docs = play.load_documents("""\
apiVersion: v1
kind: Pod
metadata: {name: duo, labels: {app: duo}}
spec:
  containers:
  - {name: a, image: busybox, ports: [{containerPort: 80, name: http}], volumeMounts: [{name: s, mountPath: /s}]}
  - {name: b, image: busybox, ports: [{containerPort: 81, hostPort: 9081}], volumeMounts: [{name: s, mountPath: /t}]}
  volumes: [{name: s, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: front}
spec:
  type: NodePort
  selector: {app: duo}
  ports: [{port: 80, targetPort: http, nodePort: 30080}]
""", "duo.yaml")
    result = play.plan(docs, "/k/duo.yaml", "/files")
    a, b = result.project.services["duo-a"], result.project.services["duo-b"]
    assert b["network_mode"] == "service:duo-a" and "ports" not in b
    assert {"target": 81, "published": 9081} in a["ports"] and {"target": 80, "published": 30080} in a["ports"]
    assert a["networks"]["default"]["aliases"] == ["front"]
    assert result.pod_volumes == ["duo_duo_s"]
    assert a["volumes"][0]["source"] == b["volumes"][0]["source"] == "duo_duo_s"


def test_unsupported_kinds_and_fields_are_one_line_each_and_refuse_everything():
    text = """\
apiVersion: batch/v1
kind: Job
metadata: {name: once}
---
apiVersion: v1
kind: Pod
metadata: {name: odd}
spec:
  hostNetwork: true
  containers:
  - name: c
    image: busybox
    livenessProbe: {httpGet: {path: /, port: 80}}
    env: [{name: X, valueFrom: {secretKeyRef: {name: missing, key: k}}}]
"""
    docs = play.load_documents(text, "bad.yaml")
    with pytest.raises(play.KubeFileError) as err:
        play.plan(docs, "/k/bad.yaml", "/files")
    assert err.value.exit_code == 125 and "nothing was created" in err.value.message
    assert err.value.problems == [
        "Job once: kind Job not supported (supported: " + ", ".join(fields.SUPPORTED_KINDS) + ")",
        "Pod odd: spec.hostNetwork: not supported",
        "Pod odd: spec.containers[0].livenessProbe.httpGet: not supported",
        "Pod odd: spec.containers[0].livenessProbe: only exec probes are supported",
        "Pod odd: spec.containers[0].env[0].valueFrom.secretKeyRef: no Secret missing in the file",
    ]
    allowed = play.plan(docs, "/k/bad.yaml", "/files", ignore_unsupported=True)
    assert set(allowed.project.services) == {"odd"} and "healthcheck" not in allowed.project.services["odd"]


def test_bad_yaml_is_one_line_naming_the_file():
    with pytest.raises(Exception) as err:
        play.load_documents("a: [1,\n", "broken.yaml")
    assert err.value.message.startswith("broken.yaml: line ") and "\n" not in err.value.message


def test_the_members_of_a_pod_become_one_pod_of_several_containers():
    server = ContainerConfig(image="busybox", image_id="x", path="httpd", cmd=["httpd", "-f", "-p", "8081"],
                             network={"ports": ["18081:8081"]},
                             mounts=[{"type": "volume", "source": "site", "target": "/www"}])
    client = ContainerConfig(image="busybox", image_id="x", path="sh", cmd=["sh", "-c", "sleep 1d"],
                             mounts=[{"type": "volume", "source": "site", "target": "/site", "read_only": True}])
    members = [SimpleNamespace(id="a1", name="duo-server", config=server),
               SimpleNamespace(id="b2", name="duo-client", config=client)]
    project = project_of(members, "duo", pods={"a1": "duo", "b2": "duo"})
    manifests = generate(project, GenerateOptions()).manifests
    for doc in manifests:
        kubernetes_validate.validate(doc, "1.33.0", strict=True)
    pod = _by(manifests, "Pod", "duo")
    assert [c["name"] for c in pod["spec"]["containers"]] == ["client", "server"]
    assert pod["spec"]["volumes"] == [{"name": "site", "persistentVolumeClaim": {"claimName": "site"}}]
    assert [p["port"] for p in _by(manifests, "Service", "duo")["spec"]["ports"]] == [8081]
    # and play makes them one pod again
    result = play.plan(play.load_documents(to_yaml(manifests), "duo.yaml"), "/k/duo.yaml", "/f", real_pods=True)
    assert [(p.name, p.container_names) for p in result.pods] == [("duo", ["duo-client", "duo-server"])]
    assert "network_mode" not in result.project.services["duo-server"]


def test_pods_start_after_the_pods_they_depend_on():
    from dockerbank.kube.runner import _pod_order

    text = "".join(f"""---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, annotations: {{dockerbank.org/depends-on: '{deps}'}}}}
spec: {{containers: [{{name: c, image: busybox}}]}}
""" for name, deps in (("app", '{"db": "service_healthy"}'), ("db", '{"store": "service_started"}'),
                       ("store", "{}")))
    result = play.plan(play.load_documents(text, "x.yaml"), "/k/x.yaml", "/f", real_pods=True)
    assert [p.name for p in result.pods] == ["app", "db", "store"]
    assert [p.name for p in _pod_order(result)] == ["store", "db", "app"]


def test_files_kube_play_wrote_become_their_configmap_and_secret_again():
    config = ContainerConfig(image="busybox", image_id="x", path="httpd",
                             mounts=[{"type": "bind", "source": "/r/kube/web/configmap/site", "target": "/www",
                                      "read_only": True},
                                     {"type": "bind", "source": "/r/kube/web/secret/tok/key", "target": "/run/key",
                                      "read_only": True}])
    project = project_of([SimpleNamespace(id="c1", name="web", config=config)], "web")
    files = {"/r/kube/web/configmap/site": {"index.html": b"hi"}, "/r/kube/web/secret/tok": {"key": b"k"}}
    manifests = generate(project, GenerateOptions(played_files="/r/kube"), read_dir=files.__getitem__).manifests
    for doc in manifests:
        kubernetes_validate.validate(doc, "1.33.0", strict=True)
    assert _by(manifests, "ConfigMap", "site")["data"] == {"index.html": "hi"}
    assert _by(manifests, "Secret", "tok")["data"] == {"key": "aw=="}
    pod = _by(manifests, "Deployment", "web")["spec"]["template"]["spec"]
    assert {"name": "configmap-site", "configMap": {"name": "site"}} in pod["volumes"]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/run/key"]["subPath"] == "key" and "subPath" not in mounts["/www"]
    assert not any("hostPath" in v for v in pod["volumes"])
