"""Batch commands: ``stop`` of 10 containers and ``rm -f`` of 50 running ones in one CLI call.

docker (and now Dockerbank: engine.container_ops runs the items of a batch in parallel threads)
stop many containers within one grace period; a one-by-one loop would take one per container.
The containers run ``sleep`` under a shell that ignores SIGTERM, so every stop waits its whole
grace period (``-t 2``) and then kills: the figure shows whether the periods overlap.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from harness import Case, Context, host_load, sh

IMAGE = "dockerbank-bench/busybox:batch"
LABEL = "dockerbank-bench=batch"
STOPPED, GRACE = 10, 2
REMOVED = int(os.environ.get("BENCH_REMOVED", "50"))  # issue 19: rm -f of 50
TITLE = f"Batch commands: stop of {STOPPED} (TERM ignored, -t {GRACE}) and rm -f of {REMOVED} running (busybox)"
ENGINES = ("dockerbank", "docker", "podman")
PODMAN_GLOBAL = ["--runtime", "runc"]  # this host: crun refuses the hybrid cgroups
PODMAN_RUN = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
NOTES = [
    (f"Batch: `stop -t {GRACE}` of {STOPPED} containers whose PID 1 is a shell ignoring SIGTERM (each stop waits "
     f"the whole grace period, then kills) and `rm -f` of {REMOVED} running `sleep` containers, each one CLI call; "
     "the containers are started untimed before each round (`--network none`). One grace period in all means "
     "the stops ran in parallel."),
]


@dataclass
class State:
    env: dict
    root: Path
    ids: dict[str, list[str]] = field(default_factory=dict)
    load_at_start: str = ""


def _engine(tool: str, *args: str) -> list[str]:
    if tool == "podman":
        if args and args[0] in ("run", "create"):
            return ["podman", *PODMAN_GLOBAL, args[0], *PODMAN_RUN, *args[1:]]
        return ["podman", *PODMAN_GLOBAL, *args]
    return [tool, *args]


def _start(tool: str, env: dict, count: int, script: str) -> list[str]:
    def one(_i: int) -> str:
        done = subprocess.run(_engine(tool, "run", "-d", "--network", "none", "--label", LABEL, IMAGE, "sh", "-c",
                                      script), env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} run exited {done.returncode}: {done.stderr[-500:]}")
        return done.stdout.strip()

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


def _remove_labelled(tool: str, env: dict) -> None:
    ids = subprocess.run(_engine(tool, "ps", "-aq", "--filter", f"label={LABEL}"), env=env, capture_output=True,
                         text=True, check=False).stdout.split()
    if ids:
        subprocess.run(_engine(tool, "rm", "-f", *ids), env=env, capture_output=True, check=False)


def prepare(ctx: Context) -> State:
    from dockerbank.image.baseimage import busybox_rootfs_tar

    work = ctx.work / "batch"
    work.mkdir(parents=True, exist_ok=True)
    rootfs_tar = busybox_rootfs_tar(work / "busybox.tar")
    root = ctx.work / "dockerbank-batch-root"
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
    if "dockerbank" in ctx.tools:
        _remove_labelled("dockerbank", env)
    shutil.rmtree(root, ignore_errors=True)
    state = State(env, root)
    for tool in ctx.tools:
        if tool in ENGINES:
            _remove_labelled(tool, env)
            subprocess.run(_engine(tool, "rmi", "-f", IMAGE), env=env, capture_output=True, check=False)
            sh(*_engine(tool, "import", "--change", 'CMD ["sh"]', str(rootfs_tar), IMAGE), env=env)
    state.load_at_start = host_load()
    return state



def cases(ctx: Context, state: State) -> list[Case]:
    env = state.env
    out: list[Case] = []
    for tool in (t for t in ctx.tools if t in ENGINES):
        def start_stopped(t: str = tool) -> None:
            state.ids[t] = _start(t, env, STOPPED, "trap '' TERM; sleep 100000 & wait; sleep 100000")

        def stop(t: str = tool) -> None:
            sh(*_engine(t, "stop", "-t", str(GRACE), *state.ids[t]), env=env)

        out.append(Case(f"stop {STOPPED} (-t {GRACE}, TERM ignored)", tool, stop, before=start_stopped,
                        after=lambda t=tool: _remove_labelled(t, env)))
    for tool in (t for t in ctx.tools if t in ENGINES):
        def start_removed(t: str = tool) -> None:
            state.ids[t] = _start(t, env, REMOVED, "sleep 100000")

        def remove(t: str = tool) -> None:
            sh(*_engine(t, "rm", "-f", *state.ids[t]), env=env)

        out.append(Case(f"rm -f {REMOVED} running", tool, remove, before=start_removed))
    return out


def cleanup(ctx: Context, state: State) -> None:
    if state.load_at_start:
        NOTES[1:] = [f"Host load (shared machine): at the first timing {state.load_at_start}; at the last {host_load()} "
                     "(PSI avg10: the share of time some task waited for a CPU)."]
    for tool in ctx.tools:
        if tool in ENGINES:
            _remove_labelled(tool, state.env)
            subprocess.run(_engine(tool, "rmi", "-f", IMAGE), env=state.env, capture_output=True, check=False)
    shutil.rmtree(state.root, ignore_errors=True)
