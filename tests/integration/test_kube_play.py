"""``kube generate`` / ``kube play`` / ``kube down`` on a real stack: a "database" (busybox httpd
serving the files of its volume, with a dump recipe) and a web service that reaches it by its
service name. The stack is generated, taken down, played from the manifests and works again
with its data; a file with unsupported items creates nothing."""

from __future__ import annotations

import json
import time

import pytest
import yaml

pytestmark = pytest.mark.integration

STACK = """\
services:
  db:
    image: busybox
    command: httpd -f -p 5432 -h /data
    volumes: [data:/data]
    labels:
      org.dockerbank.backup.dump: tar -C /data -cf - .
    x-dockerbank-backup: dump
  web:
    image: busybox
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.2; done'
    depends_on: [db]
    environment:
      DB_URL: http://db:5432/value
volumes:
  data: {}
"""


def _wait(check, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _fetch(ctr, container: str) -> bytes | None:
    done = ctr("exec", container, "wget", "-qO-", "http://db:5432/value", check=False)
    return done.stdout if done.returncode == 0 else None


def test_generate_down_play_brings_the_stack_back(ctr, tmp_path):
    project = tmp_path / "kshop"
    project.mkdir()
    (project / "compose.yaml").write_text(STACK)
    ctr("compose", "-f", str(project / "compose.yaml"), "up", "-d")
    ctr("exec", "kshop_db_1", "sh", "-c", "echo stored-before > /data/value")
    assert _wait(lambda: _fetch(ctr, "kshop_web_1"), "web to reach db") == b"stored-before\n"

    manifest = tmp_path / "kshop.yaml"
    ctr("kube", "generate", "--stack", "kshop", "-f", str(manifest))
    docs = list(yaml.safe_load_all(manifest.read_text()))
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert ("StatefulSet", "db") in kinds and ("Deployment", "web") in kinds and ("Service", "db") in kinds
    db = next(d for d in docs if d["kind"] == "StatefulSet")
    hook = json.loads(db["spec"]["template"]["metadata"]["annotations"]["pre.hook.backup.velero.io/command"])
    assert hook[:2] == ["/bin/sh", "-c"] and hook[2].startswith("tar -C /data -cf - . > /data/")

    ctr("compose", "-f", str(project / "compose.yaml"), "down")  # keeps the volume, as compose does
    assert ctr("ps", "-aq", "--filter", "label=com.docker.compose.project=kshop").stdout == b""

    played = ctr("kube", "play", str(manifest))
    assert b"Stack: kshop" in played.stdout
    # the web reaches the db by its Service's name, and the db serves the data it had
    assert _wait(lambda: _fetch(ctr, "kshop_web_1"), "web to reach db after play") == b"stored-before\n"
    env = json.loads(ctr("inspect", "kshop_web_1").stdout)[0]["Config"]["Env"]
    assert "DB_URL=http://db:5432/value" in env
    labels = json.loads(ctr("inspect", "kshop_db_1").stdout)[0]["Config"]["Labels"]
    assert labels["org.dockerbank.backup.consistency"] == "dump"

    again = ctr("kube", "play", str(manifest), check=False)  # already there: refused, nothing touched
    assert again.returncode == 125 and b"already has containers" in again.stderr

    ctr("kube", "down", str(manifest))
    assert ctr("ps", "-aq", "--filter", "label=com.docker.compose.project=kshop").stdout == b""
    assert b"kshop_data" in ctr("volume", "ls", "-q").stdout  # user data stays

    # the same stack as Pods: real pods, the db's pod first, the web's reaching it by name
    pods = tmp_path / "kshop-pods.yaml"
    ctr("kube", "generate", "--stack", str(project / "compose.yaml"), "--type", "pod", "-f", str(pods))
    ctr("kube", "play", str(pods))
    assert sorted(ctr("pod", "ls", "--format", "{{.Name}}").stdout.split()) == [b"db", b"web"]
    assert _wait(lambda: _fetch(ctr, "web-web"), "web to reach db in pods") == b"stored-before\n"
    ctr("kube", "down", str(pods))
    assert ctr("pod", "ls", "-q").stdout == b"" and b"kshop_data" in ctr("volume", "ls", "-q").stdout


def test_pod_of_two_containers_shares_localhost_and_configmap_files(ctr, tmp_path):
    manifest = tmp_path / "pod.yaml"
    manifest.write_text("""\
apiVersion: v1
kind: ConfigMap
metadata: {name: site}
data: {index.html: hello-from-configmap}
---
apiVersion: v1
kind: Pod
metadata: {name: duo, labels: {app: duo}}
spec:
  containers:
  - name: server
    image: busybox
    command: [httpd, -f, -p, "8081", -h, /www]
    volumeMounts: [{name: site, mountPath: /www}]
  - name: client
    image: busybox
    command: [sh, -c, 'trap "exit 0" TERM; while true; do sleep 0.2; done']
  volumes:
  - {name: site, configMap: {name: site}}
""")
    ctr("kube", "play", str(manifest))
    # duo-client in a real pod (podman's POD-CONTAINER), pod_duo-client_1 without pods
    client = ctr("ps", "-q", "--filter", "name=duo-client").stdout.decode().split()
    assert len(client) == 1

    def fetch():
        done = ctr("exec", client[0], "wget", "-qO-", "http://localhost:8081/index.html", check=False)
        return done.stdout if done.returncode == 0 else None

    assert _wait(fetch, "the client to reach the server over localhost") == b"hello-from-configmap"
    # generate of the pod: one Pod of its two containers
    docs = list(yaml.safe_load_all(ctr("kube", "generate", "duo").stdout))
    pod = next(d for d in docs if d["kind"] == "Pod")
    assert sorted(c["name"] for c in pod["spec"]["containers"]) == ["client", "server"]
    assert {"name": "configmap-site", "configMap": {"name": "site"}} in pod["spec"]["volumes"]
    assert next(d for d in docs if d["kind"] == "ConfigMap")["data"] == {"index.html": "hello-from-configmap"}
    stack = list(yaml.safe_load_all(ctr("kube", "generate", "--stack", "pod").stdout))  # the stack play named
    assert [len(d["spec"]["containers"]) for d in stack if d["kind"] == "Pod"] == [2]
    ctr("kube", "down", str(manifest))
    assert ctr("ps", "-aq").stdout == b""


def test_unsupported_items_refuse_before_anything_is_created(ctr, tmp_path):
    manifest = tmp_path / "bad.yaml"
    manifest.write_text("""\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: edge}
spec: {}
---
apiVersion: v1
kind: Pod
metadata: {name: odd}
spec:
  initContainers: [{name: init, image: busybox}]
  containers:
  - name: main
    image: busybox
    lifecycle: {preStop: {exec: {command: [true]}}}
""")
    done = ctr("kube", "play", str(manifest), check=False)
    assert done.returncode == 125
    lines = done.stderr.decode().strip().splitlines()
    assert "Ingress edge: kind Ingress not supported" in lines[0]
    assert any(line == "Pod odd: spec.initContainers: not supported" for line in lines)
    assert any(line == "Pod odd: spec.containers[0].lifecycle: not supported" for line in lines)
    assert "Traceback" not in done.stderr.decode()
    assert ctr("ps", "-aq").stdout == b"" and ctr("volume", "ls", "-q").stdout == b""

    ran = ctr("kube", "play", "--ignore-unsupported", str(manifest))
    assert b"WARN: Pod odd: spec.initContainers: not supported" in ran.stderr
    assert ctr("ps", "-aq", "--filter", "name=odd-main").stdout.strip()  # in pod odd (podman's POD-CONTAINER)
    ctr("kube", "down", str(manifest))


def test_push_all_from_stack_and_generate_follow_the_license_rule(ctr, root, server, tmp_path):
    import urllib.request

    context = tmp_path / "licensed"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nLABEL org.dockerbank.redistributable=false\n")
    ctr("build", "-q", "-t", "licensed:1", str(context))
    project = tmp_path / "lic"
    project.mkdir()
    (project / "compose.yaml").write_text(
        "services:\n  app: {image: 'licensed:1', command: 'true'}\n  tool: {image: busybox, command: 'true'}\n")
    ctr("compose", "-f", str(project / "compose.yaml"), "up", "-d")
    registry = f"{server.address}/mirror"

    def catalog() -> list[str]:
        with urllib.request.urlopen(f"http://{server.address}/v2/_catalog") as response:
            return json.load(response)["repositories"]

    refused = ctr("push", "--all-from-stack", "lic", "--registry", registry, check=False)
    assert refused.returncode != 0 and b"licensed:1" in refused.stderr and b"nothing was pushed" in refused.stderr
    assert catalog() == []
    gen = ctr("kube", "generate", "--stack", "lic", "--registry", registry, check=False)
    assert gen.returncode != 0 and b"org.dockerbank.redistributable=false" in gen.stderr and gen.stdout == b""

    (root / "registries.json").write_text(json.dumps({"private": [server.address]}))
    pushed = ctr("push", "--all-from-stack", "lic", "--registry", registry).stdout.decode()
    assert f"licensed:1 -> {registry}/licensed:1" in pushed and f"busybox -> {registry}/busybox:latest" in pushed
    assert sorted(catalog()) == ["mirror/busybox", "mirror/licensed"]
    docs = list(yaml.safe_load_all(ctr("kube", "generate", "--stack", "lic", "--registry", registry).stdout))
    images = sorted(d["spec"]["template"]["spec"]["containers"][0]["image"] for d in docs if d["kind"] == "Deployment")
    assert images == [f"{registry}/busybox:latest", f"{registry}/licensed:1"]
