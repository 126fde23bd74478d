"""``kube generate`` and ``kube play``/``down`` of a 5-service stack, Dockerbank against podman
(``podman kube play``/``generate``/``down``) on the same file and the same image.

    /opt/dockerbank-venv/bin/python bench/kube_play.py            # 5 rounds
    /opt/dockerbank-venv/bin/python bench/kube_play.py -r 3

The stack (busybox: an httpd "database" with a volume, a web service with a published port, three
more) is written as manifests once by ``dockerbank kube generate --type pod`` (Pods, as podman
writes and plays them); the image is built by ``dockerbank build`` and loaded into podman from
``dockerbank save``. Rows: ``kube generate`` of the compose file (no container needed; the issue's
bound is 0.5 s), ``kube generate`` of the running stack against ``podman kube generate`` of its 5
pods, ``kube play`` (until the command returns, every container started) and ``kube down``.
podman runs with runc and explicit ulimits (CONTAINERS_CONF; crun and the default nproc limit fail
on this host) and needs catatonit for its infra containers. Writes a section into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from harness import run, timed  # noqa: E402

IMAGE = "kbench:1"
# PID 1 ignores SIGTERM unless it traps it: trap it, so both tools' down stops at once
HTTPD = "sh -c 'trap \"exit 0\" TERM; httpd -f -p {port} -h {dir} & wait'"
LOOP = "sh -c 'trap \"exit 0\" TERM; while true; do sleep 1; done'"
STACK = f"""\
name: kbench
services:
  db:
    image: {IMAGE}
    command: {HTTPD.format(port=5432, dir="/data")}
    volumes: [data:/data]
  web:
    image: {IMAGE}
    command: {HTTPD.format(port=80, dir="/srv")}
    ports: ["18480:80"]
    depends_on: [db]
  cache:
    image: {IMAGE}
    command: {LOOP}
  worker:
    image: {IMAGE}
    command: {LOOP}
    environment: {{MODE: batch}}
  proxy:
    image: {IMAGE}
    command: {LOOP}
    healthcheck: {{test: ["CMD", "true"], interval: 5s}}
volumes: {{data: {{}}}}
"""
PODS = ("cache", "db", "proxy", "web", "worker")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-r", "--rounds", type=int, default=5)
    parser.add_argument("--work", default=str(HERE / "work"))
    args = parser.parse_args(argv)
    box = harness.scratch_root(args.work, "kube-play")
    scratch, env, db = box.dir, box.env, box.db
    (scratch / "context").mkdir()
    penv = harness.podman_env(scratch)
    compose = scratch / "compose.yaml"
    compose.write_text(STACK)
    manifest = scratch / "kbench.yaml"
    # the base image has no PATH; podman's kube play (unlike its run) adds none
    (scratch / "context" / "Dockerfile").write_text("FROM busybox\nENV PATH=/usr/sbin:/usr/bin:/sbin:/bin\n")
    run(*db, "base-image", "busybox", env=env)
    run(*db, "build", "-q", "-t", IMAGE, str(scratch / "context"), env=env)
    run(*db, "save", "-o", str(scratch / "image.tar"), IMAGE, env=env)
    run("podman", "load", "-i", str(scratch / "image.tar"), env=penv)
    run(*db, "kube", "generate", "--stack", str(compose), "--type", "pod", "-f", str(manifest), env=env)

    rows = ["kube generate (compose file)", "kube generate (running stack)", "kube play", "kube down"]
    times: dict[tuple[str, str], list[float]] = {}
    load_start = os.getloadavg()
    for n in range(args.rounds):
        times.setdefault((rows[0], "dockerbank"), []).append(
            timed(*db, "kube", "generate", "--stack", str(compose), "--type", "pod", env=env))
        for tool in ("dockerbank", "podman"):
            if tool == "dockerbank":
                play = timed(*db, "kube", "play", str(manifest), env=env)
                gen = timed(*db, "kube", "generate", "--stack", "kbench", "--type", "pod", env=env)
                down = timed(*db, "kube", "down", str(manifest), env=env)
            else:
                play = timed("podman", "kube", "play", str(manifest), env=penv)
                pods = run("podman", "pod", "ls", "-q", *[f"--filter=name=^{p}$" for p in PODS], env=penv).split()
                gen = timed("podman", "kube", "generate", *pods, env=penv)
                down = timed("podman", "kube", "down", str(manifest), env=penv)
                subprocess.run(["podman", "volume", "rm", "-f", "data"], env=penv, capture_output=True)
                subprocess.run(["podman", "volume", "rm", "-f", "kbench-data"], env=penv, capture_output=True)
            for row, value in ((rows[1], gen), (rows[2], play), (rows[3], down)):
                times.setdefault((row, tool), []).append(value)
            print(f"  round {n + 1}/{args.rounds} {tool:<10} play {play:.3f} s  generate {gen:.3f} s  "
                  f"down {down:.3f} s", flush=True)
    load_end = os.getloadavg()
    run(*db, "volume", "rm", "-f", "kbench_data", env=env)

    def med(row: str, tool: str) -> float | None:
        values = times.get((row, tool))
        return statistics.median(values) if values else None

    results = []
    for row in rows:
        result = harness.Result(row)
        for tool in ("dockerbank", "podman"):
            if (row, tool) in times:
                result.samples[tool] = times[(row, tool)]
        results.append(result)
    notes = [
        "The same manifest file for both (5 Pods of one container, a PVC, Services; written by "
        "`dockerbank kube generate --type pod`); the image built by `dockerbank build` and loaded into "
        "podman 4.3 from `dockerbank save`.",
        "`kube play` is timed until the command returns with every container started; both make a pod "
        "with an infra container per Pod (Dockerbank: the engine's pods, independent pods in parallel, on "
        "one network of the stack; its `kube down` removes the pods in parallel, then the network).",
        f"`kube generate` of the compose file: {med(rows[0], 'dockerbank'):.3f} s (bound: 0.5 s), a whole "
        "CLI call (Python start-up included).",
        "podman 4.3.1 cannot play Velero's hook annotations (it limits annotation values to 63 "
        "characters) nor a Secret referenced by `secretKeyRef` from the same file: the bench stack has "
        "neither; Dockerbank's own tests play both.",
        f"Host load (1-min average) {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end, "
        f"{os.cpu_count()} CPUs shared with other work.",
    ]
    section = harness.section("kube_play", "kube generate / play / down: a 5-service stack against podman",
                              results, ["dockerbank", "podman"], args.rounds, notes)
    harness.publish("kube_play", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
