"""Container command latency: run --rm, create + start, exec, ps with 50 running; memory per container.

Dockerbank against docker (dockerd 20.10), podman 4.3 and the bare OCI runtimes (``crun run``,
``runc run`` on a bundle with the same busybox rootfs) on the same image. Every tool is timed as
its users call it (a CLI process). The memory figure is the proportional set size (PSS) of the
per-container processes while 50 containers run: Dockerbank's and podman's conmon, docker's
containerd-shim; the resident daemons (dockerd, containerd) are listed apart.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import statistics
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from harness import Case, Context, host_load, sh

TITLE = "Containers: run --rm, create + start, exec, ps with 50 running (busybox)"
IMAGE = "dockerbank-bench/busybox:ctr"
LABEL = "dockerbank-bench=containers"
RUNNING = int(os.environ.get("BENCH_RUNNING", "50"))
EXTRA_TOOLS = ["crun", "runc"]   # bare OCI runtimes: the floor under every engine
ENGINES = ("dockerbank", "docker", "podman")
# Dockerbank with its warm helper off (DOCKERBANK_WARM=0: every command in-process), on the same
# root and containers as "dockerbank"; `--tools dockerbank,dockerbank-inproc,docker,podman`
INPROC = "dockerbank-inproc"
# Dockerbank with the netavark subprocess for networks (DOCKERBANK_NETWORK_BACKEND=netavark), same root and
# containers as "dockerbank"; `--tools dockerbank,dockerbank-netavark,docker`
NETAVARK = "dockerbank-netavark"
VARIANTS = (INPROC, NETAVARK)
# podman on this host: crun refuses the hybrid cgroups and its default rlimits exceed the hard ones
PODMAN_GLOBAL = ["--runtime", "runc"]
PODMAN_RUN = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
NOTES = [
    ("Containers: the same busybox rootfs (imported into each engine as one image) runs `true`; the rows time "
    "the CLI process end to end (Python start-up included for Dockerbank). `run --rm` uses each engine's "
    "default network (docker and Dockerbank: the bridge; podman 4.3 as root: netavark's bridge). "
    "`create + start` creates a detached `sleep` container and starts it (both CLI calls timed; the container "
    "is removed untimed). `exec` runs `true` in a running container. `ps` lists 50 running containers (labelled, "
    "no other running ones). podman runs with `--runtime runc` and explicit `--ulimit`s (this host). Bare "
    "`crun`/`runc` run a bundle (`<runtime> spec` + the rootfs, no network set-up, no image store); crun is "
    "started from a private mount namespace without /sys/fs/cgroup/unified (the hybrid-cgroup workaround "
    "Dockerbank uses, runtime/oci.py)."),
    ("`dockerbank` is the CLI as installed: its client hands each command to the warm helper (docs/warm.md; started "
     "on demand by the preparation's first call, as by a user's first command); `dockerbank-inproc` is the same "
     "CLI with `DOCKERBANK_WARM=0` (every command in its own interpreter, imports included) on the same root and "
     "containers."),
]


@dataclass
class State:
    env: dict
    root: Path
    bundle: Path
    running: dict[str, str] = field(default_factory=dict)   # tool -> id of a running container for exec
    many: dict[str, list[str]] = field(default_factory=dict)  # tool -> the 50 running containers
    bare: list[tuple[str, str]] = field(default_factory=list)  # (runtime, id) of bare containers to delete
    load_at_start: str = ""


def _engine(tool: str, *args: str) -> list[str]:
    """argv of an engine command; podman gets this host's runtime and rlimit options."""
    if tool in VARIANTS:
        return ["dockerbank", *args]
    if tool == "podman":
        if args and args[0] in ("run", "create"):
            return ["podman", *PODMAN_GLOBAL, args[0], *PODMAN_RUN, *args[1:]]
        return ["podman", *PODMAN_GLOBAL, *args]
    return [tool, *args]


def _out(argv: list[str], env: dict) -> str:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr[-500:]}")
    return result.stdout.strip()


# --- bare runtimes ----------------------------------------------------------------------------

def _runtime_prefix(runtime: str) -> list[str]:
    """crun on a hybrid-cgroup host runs in a private mount namespace (Dockerbank's own prefix)."""
    if runtime != "crun":
        return []
    from dockerbank.runtime.detect import decide
    from dockerbank.runtime.oci import private_ns_prefix

    with open("/proc/self/mountinfo") as handle:
        choice = decide(handle.read(), {"crun": shutil.which("crun") or "crun"}, "crun")
    return private_ns_prefix() if choice.private_ns else []


def _bare(runtime: str, *args: str) -> None:
    """One call of a bare runtime; stderr to a file (a detached container keeps a pipe open forever)."""
    state_root = f"/run/dockerbank-bench-{runtime}"
    with tempfile.TemporaryFile() as err:
        result = subprocess.run([*_runtime_prefix(runtime), runtime, f"--root={state_root}", *args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, check=False)
        if result.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{runtime} {' '.join(args)} exited {result.returncode}: "
                               f"{err.read().decode(errors='replace')[-500:]}")


def _make_bundle(work: Path, rootfs_tar: Path) -> Path:
    bundle = work / "bundle"
    if (bundle / "config.json").exists():
        return bundle
    shutil.rmtree(bundle, ignore_errors=True)
    (bundle / "rootfs").mkdir(parents=True)
    subprocess.run(["tar", "-C", str(bundle / "rootfs"), "-xf", str(rootfs_tar)], check=True)
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["true"]
    spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    spec["root"]["readonly"] = False
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def _bundle_with(bundle: Path, args: list[str]) -> Path:
    """A sibling bundle running ``args`` (same rootfs)."""
    other = bundle.with_name(bundle.name + "-" + "-".join(args).replace("/", "_"))
    if not other.exists():
        other.mkdir()
        os.symlink(bundle / "rootfs", other / "rootfs")
        spec = json.loads((bundle / "config.json").read_text())
        spec["process"]["args"] = args
        spec["root"]["path"] = str(bundle / "rootfs")
        (other / "config.json").write_text(json.dumps(spec))
    return other


# --- preparation ------------------------------------------------------------------------------

def _start_detached(tool: str, env: dict, name: str) -> str:
    return _out(_engine(tool, "run", "-d", "--name", name, "--label", LABEL, IMAGE, "sleep", "100000"), env)


def _remove_labelled(tool: str, env: dict) -> None:
    ids = subprocess.run(_engine(tool, "ps", "-aq", "--filter", f"label={LABEL}"), env=env, capture_output=True,
                         text=True, check=False).stdout.split()
    for start in range(0, len(ids), 25):
        subprocess.run(_engine(tool, "rm", "-f", *ids[start:start + 25]), env=env, capture_output=True, check=False)


def prepare(ctx: Context) -> State:
    from dockerbank.image.baseimage import busybox_rootfs_tar

    work = ctx.work / "containers"
    work.mkdir(parents=True, exist_ok=True)
    rootfs_tar = busybox_rootfs_tar(work / "busybox.tar")
    root = ctx.work / "dockerbank-containers-root"
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
    if "dockerbank" in ctx.tools:
        _remove_labelled("dockerbank", env)  # what an interrupted run left, before its root goes
    shutil.rmtree(root, ignore_errors=True)
    state = State(env, root, _make_bundle(work, rootfs_tar))
    try:
        for tool in ctx.tools:
            if tool not in ENGINES:
                continue
            _remove_labelled(tool, env)
            subprocess.run(_engine(tool, "rmi", "-f", IMAGE), env=env, capture_output=True, check=False)
            sh(*_engine(tool, "import", "--change", 'CMD ["sh"]', str(rootfs_tar), IMAGE), env=env)
            sh(*_engine(tool, "run", "--rm", IMAGE, "true"), env=env)  # warm: networks, caches
            names = [f"bench-ps-{tool}-{i}" for i in range(RUNNING)]
            with ThreadPoolExecutor(4) as pool:
                state.many[tool] = list(pool.map(lambda n, t=tool: _start_detached(t, env, n), names))
            state.running[tool] = state.many[tool][0]
        for variant in VARIANTS:
            if variant in ctx.tools and "dockerbank" in state.running:
                state.running[variant] = state.running["dockerbank"]  # same root, same containers
        for runtime in ("crun", "runc"):
            if runtime in ctx.tools:
                cid = f"bench-exec-{secrets.token_hex(4)}"
                _bare(runtime, "run", "-d", "--bundle", str(_bundle_with(state.bundle, ["sleep", "100000"])), cid)
                state.bare.append((runtime, cid))
                state.running[runtime] = cid
    except BaseException:
        cleanup(ctx, state)
        raise
    NOTES[2:] = [_memory_note(state, ctx.tools)]
    state.load_at_start = host_load()
    return state



# --- memory -----------------------------------------------------------------------------------

def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _processes() -> list[tuple[int, str, str]]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out.append((int(entry), comm, cmdline))
    return out


def _memory_note(state: State, tools: list[str]) -> str:
    """Median PSS of the per-container monitor over the 50 running containers of each engine."""
    procs = _processes()
    parts = []
    monitors = {"dockerbank": "conmon", "podman": "conmon", "docker": "containerd-shim"}
    for tool, ids in state.many.items():
        full = []
        for cid in ids:
            if tool == "podman" and len(cid) < 64:
                continue
            pids = [pid for pid, comm, cmd in procs if comm.startswith(monitors[tool]) and cid in cmd]
            full.append(sum(_pss_kib(p) for p in pids))
        full = [k for k in full if k]
        if full:
            parts.append(f"{tool} {statistics.median(full) / 1024:.2f} MiB ({monitors[tool]})")
    daemons = []
    for name in ("dockerd", "containerd"):
        pss = sum(_pss_kib(pid) for pid, comm, _ in procs if comm == name)
        if pss:
            daemons.append(f"{name} {pss / 1024:.1f} MiB")
    helpers = _helpers()
    helper = ""
    if helpers:
        rss = sum(_status_kib(pid, "VmRSS:") for pid in helpers)
        helper = (f" Dockerbank's warm helper (docs/warm.md, the CLI's resident interpreter; no container depends "
                  f"on it): {sum(_pss_kib(p) for p in helpers) / 1024:.1f} MiB PSS, {rss / 1024:.1f} MiB RSS"
                  f" ({len(helpers)} process{'es' if len(helpers) > 1 else ''}).")
    text = (f"Memory per running container (median PSS of its monitor process, {RUNNING} running `sleep` "
            f"containers per engine): " + ", ".join(parts) + ". Resident daemons: " +
            (", ".join(daemons) + " (docker)" if daemons else "none") +
            "; Dockerbank and podman keep none (conmon is the only process besides the container's own)." + helper)
    return text


def _helpers() -> list[int]:
    """The warm helpers of the ``dockerbank`` on PATH: the pids in the socket directory's lock
    files (the command processes they fork share their command line, and other installations'
    helpers are not ours)."""
    found = []
    venv_bin = os.path.dirname(_interpreter())
    for lock in Path("/run/dockerbank-warm").glob("*.lock"):
        try:
            pid = int(lock.read_text().split()[0])
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if "dockerbank.warm.helper" in cmd and cmd.startswith(venv_bin + "/"):
            found.append(pid)
    return found


def _interpreter() -> str:
    """The interpreter of the ``dockerbank`` on PATH (other installations' helpers are not ours)."""
    try:
        with open(shutil.which("dockerbank") or "", "rb") as handle:
            first = handle.readline().decode(errors="replace")
    except OSError:
        return "?"
    return first[2:].strip().split()[0] if first.startswith("#!") else "?"


def _status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# --- cases ------------------------------------------------------------------------------------

def _timed(argv: list[str], env: dict):
    return lambda: sh(*argv, env=env)


def _create_start(tool: str, env: dict, holder: dict):
    def run() -> None:
        name = f"bench-cs-{secrets.token_hex(4)}"
        holder[tool] = _out(_engine(tool, "create", "--name", name, "--label", LABEL, IMAGE, "sleep", "100000"), env)
        sh(*_engine(tool, "start", holder[tool]), env=env)
    return run


def _remove_created(tool: str, env: dict, holder: dict):
    def after() -> None:
        cid = holder.pop(tool, None)
        if cid:
            subprocess.run(_engine(tool, "rm", "-f", cid), env=env, capture_output=True, check=False)
    return after


def _bare_run(runtime: str, bundle: Path):
    return lambda: _bare(runtime, "run", "--bundle", str(bundle), f"bench-run-{secrets.token_hex(4)}")


def _bare_create_start(runtime: str, bundle: Path, holder: dict):
    def run() -> None:
        cid = f"bench-cs-{secrets.token_hex(4)}"
        holder[runtime] = cid
        _bare(runtime, "create", "--bundle", str(bundle), cid)
        _bare(runtime, "start", cid)
    return run


def _bare_delete(runtime: str, holder: dict):
    def after() -> None:
        cid = holder.pop(runtime, None)
        if cid:
            subprocess.run([*_runtime_prefix(runtime), runtime, f"--root=/run/dockerbank-bench-{runtime}", "delete",
                            "--force", cid], capture_output=True, check=False)
    return after


def _env(tool: str, env: dict) -> dict:
    if tool == NETAVARK:
        return dict(env, DOCKERBANK_NETWORK_BACKEND="netavark")
    return dict(env, DOCKERBANK_WARM="0") if tool == INPROC else env


def cases(ctx: Context, state: State) -> list[Case]:
    engines = [t for t in ctx.tools if t in ENGINES or t in VARIANTS]
    bares = [t for t in ctx.tools if t in EXTRA_TOOLS]
    sleeper = _bundle_with(state.bundle, ["sleep", "100000"])
    out: list[Case] = []
    env = state.env
    for tool in engines:
        out.append(Case("run --rm true", tool, _timed(_engine(tool, "run", "--rm", IMAGE, "true"), _env(tool, env))))
    for tool in engines:
        out.append(Case("run --rm --network none true", tool,
                        _timed(_engine(tool, "run", "--rm", "--network", "none", IMAGE, "true"), _env(tool, env))))
    for runtime in bares:
        out.append(Case("run --rm --network none true", runtime, _bare_run(runtime, state.bundle)))
    holder: dict[str, str] = {}
    for tool in engines:
        out.append(Case("create + start (detached sleep)", tool, _create_start(tool, _env(tool, env), holder),
                        after=_remove_created(tool, env, holder)))
    for runtime in bares:
        out.append(Case("create + start (detached sleep)", runtime, _bare_create_start(runtime, sleeper, holder),
                        after=_bare_delete(runtime, holder)))
    for tool in engines:
        out.append(Case("exec CTR true", tool,
                        _timed(_engine(tool, "exec", state.running[tool], "true"), _env(tool, env))))
    for runtime in bares:
        cid = state.running[runtime]
        out.append(Case("exec CTR true", runtime, lambda r=runtime, c=cid: _bare(r, "exec", c, "true")))
    for tool in engines:
        out.append(Case(f"ps ({RUNNING} running)", tool,
                        _timed(_engine(tool, "ps", "--filter", f"label={LABEL}"), _env(tool, env))))
    return out


def cleanup(ctx: Context, state: State) -> None:
    if state.load_at_start:
        NOTES.append(f"Host load (shared machine): at the first timing {state.load_at_start}; at the last {host_load()} "
                     "(PSI avg10: the share of time some task waited for a CPU).")
    for tool in ctx.tools:
        if tool in ENGINES:
            _remove_labelled(tool, state.env)
            subprocess.run(_engine(tool, "rmi", "-f", IMAGE), env=state.env, capture_output=True, check=False)
    for runtime, cid in state.bare:
        subprocess.run([*_runtime_prefix(runtime), runtime, f"--root=/run/dockerbank-bench-{runtime}", "delete",
                        "--force", cid], capture_output=True, check=False)
    if "dockerbank" in ctx.tools:
        subprocess.run(["dockerbank", "system", "check"], env=state.env, capture_output=True, check=False)
    shutil.rmtree(state.root, ignore_errors=True)
    shutil.rmtree(str(state.root) + "-run", ignore_errors=True)
