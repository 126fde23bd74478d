"""A pod's life, Dockerbank against podman on the same command lines and the same image:
``pod create -p`` (infra container made), ``run -d --pod`` of two members (the first starts the
infra), ``pod stop``, ``pod start``, ``pod restart`` and ``pod rm -f``.

    /opt/dockerbank-venv/bin/python bench/pod_lifecycle.py            # 5 rounds
    /opt/dockerbank-venv/bin/python bench/pod_lifecycle.py -r 3

The members trap SIGTERM (a PID 1 ignores it otherwise), so both tools' stops end at once.
podman runs with runc and explicit ulimits (CONTAINERS_CONF; crun and its default nproc limit
fail on this host) and builds its pause image from catatonit; Dockerbank's infra image is built
from busybox-static on first use (before the timed rounds, as podman's). The image is
``dockerbank base-image busybox``, loaded into podman from ``dockerbank save``. Writes a section
into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from harness import run, timed  # noqa: E402

IMAGE = "localhost/busybox:latest"
MEMBER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
WEB = ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 80 -h /etc & wait"]
ROWS = ("pod create -p", "run -d --pod (1st: starts the infra)", "run -d --pod (2nd)", "pod stop",
        "pod start", "pod restart", "pod rm -f")


def one_round(cli: list[str], env: dict, port: int) -> list[float]:
    """The rows' times of one pod's life with ``cli`` (a tool's command line prefix)."""
    return [
        timed(*cli, "pod", "create", "--name", "bench", "-p", f"127.0.0.1:{port}:80", env=env),
        timed(*cli, "run", "-d", "--pod", "bench", "--name", "bench-web", IMAGE, *WEB, env=env),
        timed(*cli, "run", "-d", "--pod", "bench", "--name", "bench-worker", IMAGE, *MEMBER, env=env),
        timed(*cli, "pod", "stop", "bench", env=env),
        timed(*cli, "pod", "start", "bench", env=env),
        timed(*cli, "pod", "restart", "bench", env=env),
        timed(*cli, "pod", "rm", "-f", "bench", env=env),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-r", "--rounds", type=int, default=5)
    parser.add_argument("--work", default=str(HERE / "work"))
    args = parser.parse_args(argv)
    box = harness.scratch_root(args.work, "pod-lifecycle")
    scratch, env, db = box.dir, box.env, box.db
    penv = harness.podman_env(scratch)
    run(*db, "base-image", "busybox", "-t", IMAGE, env=env)
    run(*db, "save", "-o", str(scratch / "image.tar"), IMAGE, env=env)
    run("podman", "load", "-i", str(scratch / "image.tar"), env=penv)
    for cli, tool_env in ((db, env), (["podman"], penv)):  # untimed: each builds its pause image
        subprocess.run([*cli, "pod", "rm", "-f", "bench"], env=tool_env, capture_output=True)
        one_round(cli, tool_env, 18590)
    times: dict[tuple[str, str], list[float]] = {}
    load_start = os.getloadavg()
    for n in range(args.rounds):
        for tool, cli, tool_env in (("dockerbank", db, env), ("podman", ["podman"], penv)):
            values = one_round(cli, tool_env, 18590)
            for row, value in zip(ROWS, values):
                times.setdefault((row, tool), []).append(value)
            print(f"  round {n + 1}/{args.rounds} {tool:<10} " + "  ".join(f"{v:.3f}" for v in values), flush=True)
    load_end = os.getloadavg()
    results = []
    for row in ROWS:
        result = harness.Result(row)
        for tool in ("dockerbank", "podman"):
            result.samples[tool] = times[(row, tool)]
        results.append(result)
    notes = [
        "One pod with a published port and two busybox members (an httpd and a shell loop, both trapping "
        "SIGTERM); each row is one CLI call until it returns, Python's start-up included for Dockerbank.",
        "Both make an infra container per pod holding the network, IPC and UTS namespaces; podman's is "
        "catatonit in `localhost/podman-pause`, Dockerbank's a busybox-static shell in "
        "`localhost/dockerbank-pause`, both built on this host before the timed rounds.",
        "podman 4.3.1 with runc (its crun and default ulimits fail on this host); Dockerbank picks crun.",
        f"Host load (1-min average) {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end, "
        f"{os.cpu_count()} CPUs shared with other work.",
    ]
    section = harness.section("pod_lifecycle", "Pods: create, members, stop/start/restart, rm against podman",
                              results, ["dockerbank", "podman"], args.rounds, notes)
    harness.publish("pod_lifecycle", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
