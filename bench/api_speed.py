"""The Docker Engine API service against dockerd, with the real docker CLI and docker-compose 1.29 as clients.

    /opt/dockerbank-venv/bin/python bench/api_speed.py                # 11 rounds, writes bench/RESULTS.md
    /opt/dockerbank-venv/bin/python bench/api_speed.py -r 5 --running 10 --no-write

One run times the same client commands against both engines, interleaved round by round (a
change of the machine's load hits both alike): the client talks to dockerd on its default
socket, and to ``dockerbank system service`` (started here on a scratch root, as its users run
it) through ``DOCKER_HOST=unix://...``. Both engines run the same busybox rootfs, imported into
each from one tarball (nothing is pulled). Rows:

- ``docker run --rm IMAGE true`` (default bridge network), with the docker CLI on PATH and, when
  installed, Debian's docker 20.10 CLI (``/usr/bin/docker``) as a second client;
- ``docker exec CTR true`` in a running container;
- ``docker ps`` with ``--running`` (50) running containers of each engine;
- ``docker-compose up -d`` of a 5-service stack (its project network, each service ``sleep``s;
  ``down -t 0`` untimed between rounds);
- 20 ``docker run --rm IMAGE true`` at once: the wall time until the last one has exited.

The notes give the service's memory (RSS and PSS of its process, idle and with the containers
running) beside dockerd's and containerd's, and the host's load at the start and the end:
other work on the machine moves single figures; the medians and the interleaving are what to
read.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402

NAME = "api_speed"
IMAGE = "dockerbank-bench/busybox:api"
LABEL = "dockerbank-bench=api"
PROJECT = "apibench"
ENGINES = ("dockerbank", "dockerd")
STACK = f"""\
version: "3.8"
services:
{"".join(f'''  s{i}:
    image: {IMAGE}
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
''' for i in range(1, 6))}"""


def load() -> str:
    try:
        loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        pressure = Path("/proc/pressure/cpu").read_text().split()[2].split("=")[1]
    except (OSError, IndexError):
        return "unknown"
    return f"loadavg {loadavg}, CPU pressure avg60 {pressure}%"


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB (smaps_rollup)."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def pids_of(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


class Bench:
    def __init__(self, work: Path, rounds: int, running: int, concurrent: int, cli: str, second_cli: str | None):
        self.work, self.rounds, self.running, self.concurrent = work, rounds, running, concurrent
        self.cli, self.second_cli = cli, second_cli
        self.root = work / "api-root"
        self.sock = work / "api.sock"
        self.service: subprocess.Popen | None = None
        self.config_dir = work / "docker-config"   # no user's contexts or credential helpers
        self.notes: list[str] = []

    # --- environment ------------------------------------------------------------------------

    def env(self, engine: str) -> dict[str, str]:
        env = dict(os.environ, DOCKER_CONFIG=str(self.config_dir))
        env.pop("DOCKER_CONTEXT", None)
        if engine == "dockerbank":
            env["DOCKER_HOST"] = f"unix://{self.sock}"
        else:
            env.pop("DOCKER_HOST", None)
        return env

    def docker(self, engine: str, *args: str, cli: str | None = None, check: bool = True) -> str:
        done = subprocess.run([cli or self.cli, *args], env=self.env(engine), capture_output=True, text=True)
        if check and done.returncode != 0:
            raise RuntimeError(f"{engine}: docker {' '.join(args)} exited {done.returncode}: {done.stderr[-500:]}")
        return done.stdout.strip()

    def dockerbank(self, *args: str) -> None:
        harness.sh(sys.executable, "-m", "dockerbank", "--root", str(self.root), "--runroot",
                   str(self.root) + "-run", *args)

    def start_service(self) -> None:
        log = open(self.work / "api-service.log", "wb")
        # in this process, not a warm helper's (docs/warm.md): its pid is the service whose memory is stated
        self.service = subprocess.Popen(
            [sys.executable, "-m", "dockerbank", "--root", str(self.root), "--runroot", str(self.root) + "-run",
             "system", "service", "-H", f"unix://{self.sock}"], stdout=subprocess.DEVNULL, stderr=log,
            env=dict(os.environ, DOCKERBANK_WARM="0"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(str(self.sock))
                return
            except OSError:
                if self.service.poll() is not None:
                    raise RuntimeError(f"the service exited: {(self.work / 'api-service.log').read_text()[-500:]}")
                time.sleep(0.05)
        raise RuntimeError("the service did not listen within 30 s")

    def stop_service(self) -> None:
        if self.service is not None and self.service.poll() is None:
            self.service.send_signal(signal.SIGTERM)
            try:
                self.service.wait(20)
            except subprocess.TimeoutExpired:
                self.service.kill()

    def prepare(self) -> None:
        from dockerbank.image.baseimage import busybox_rootfs_tar

        self.work.mkdir(parents=True, exist_ok=True)
        self.config_dir.mkdir(exist_ok=True)
        rootfs = busybox_rootfs_tar(self.work / "busybox.tar")
        if self.root.exists():  # a root an earlier, interrupted run left: its containers go first
            self.start_service()
            self.clean("dockerbank")
            self.stop_service()
            shutil.rmtree(self.root, ignore_errors=True)
        self.dockerbank("import", "--change", 'CMD ["sh"]', str(rootfs), IMAGE)
        self.start_service()
        self.docker("dockerd", "import", "--change", 'CMD ["sh"]', str(rootfs), IMAGE)
        (self.work / "compose").mkdir(exist_ok=True)
        (self.work / "compose" / "docker-compose.yml").write_text(STACK)
        for engine in ENGINES:
            self.clean(engine)

    def clean(self, engine: str) -> None:
        self.compose(engine, "down", "-t", "0", check=False)
        ids = self.docker(engine, "ps", "-aq", "--filter", f"label={LABEL}", check=False).split()
        if ids:
            self.docker(engine, "rm", "-f", *ids, check=False)

    def compose(self, engine: str, *args: str, check: bool = True) -> None:
        done = subprocess.run(["docker-compose", "--no-ansi", "-p", PROJECT, *args], cwd=self.work / "compose",
                              env=self.env(engine), capture_output=True, text=True)
        if check and done.returncode != 0:
            raise RuntimeError(f"{engine}: docker-compose {' '.join(args)}: {done.stderr[-500:]}")

    # --- rows -------------------------------------------------------------------------------

    def run_rm(self, cli: str | None = None) -> dict[str, harness.Result]:
        def case(engine: str):
            return lambda: self.docker(engine, "run", "--rm", "--label", LABEL, IMAGE, "true", cli=cli)

        label = "docker run --rm true" + (f" ({self.version(cli)} CLI)" if cli else "")
        return self.timed(label, {e: case(e) for e in ENGINES})

    def exec_row(self) -> dict[str, harness.Result]:
        ids = {e: self.docker(e, "run", "-d", "--label", LABEL, IMAGE, "sleep", "3600") for e in ENGINES}
        try:
            return self.timed("docker exec CTR true",
                              {e: (lambda e=e: self.docker(e, "exec", ids[e], "true")) for e in ENGINES})
        finally:
            for engine, cid in ids.items():
                self.docker(engine, "rm", "-f", cid, check=False)

    def ps_row(self) -> dict[str, harness.Result]:
        for engine in ENGINES:
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda _: self.docker(engine, "run", "-d", "--label", LABEL, IMAGE, "sleep", "3600"),
                              range(self.running)))
        self.memory_note(f"with {self.running} running containers each")
        return self.timed(f"docker ps ({self.running} running)",
                          {e: (lambda e=e: self.docker(e, "ps")) for e in ENGINES})

    def compose_row(self) -> dict[str, harness.Result]:
        def up(engine: str):
            return lambda: self.compose(engine, "up", "-d")

        def down(engine: str):
            return lambda: self.compose(engine, "down", "-t", "0")

        return self.timed("docker-compose up -d (5 services)", {e: up(e) for e in ENGINES},
                          after={e: down(e) for e in ENGINES})

    def concurrent_row(self) -> dict[str, harness.Result]:
        def burst(engine: str):
            def run() -> None:
                with ThreadPoolExecutor(self.concurrent) as pool:
                    list(pool.map(lambda _: self.docker(engine, "run", "--rm", "--label", LABEL, IMAGE, "true"),
                                  range(self.concurrent)))
            return run

        return self.timed(f"{self.concurrent} concurrent docker run --rm (total)", {e: burst(e) for e in ENGINES})

    def timed(self, row: str, runs: dict, after: dict | None = None) -> dict[str, harness.Result]:
        cases = [harness.Case(row, "dockerbank" if e == "dockerbank" else "docker", fn,
                              after=(after or {}).get(e)) for e, fn in runs.items()]
        for case in cases:  # one untimed warm-up each (first-use costs: page cache, imports)
            case.run()
            if case.after:
                case.after()
        return {row: r for r in harness.run_cases(cases, self.rounds) for row in [r.row]}

    # --- notes ------------------------------------------------------------------------------

    def version(self, cli: str | None) -> str:
        out = subprocess.run([cli or self.cli, "--version"], capture_output=True, text=True).stdout
        return out.split(",")[0].replace("Docker version ", "docker ").strip()

    def memory_note(self, when: str) -> None:
        assert self.service is not None
        rss, pss = memory_kib(self.service.pid)
        peers = []
        for name in ("dockerd", "containerd"):
            for pid in pids_of(name):
                p_rss, p_pss = memory_kib(pid)
                peers.append(f"{name} RSS {mib(p_rss)} / PSS {mib(p_pss)}")
        self.notes.append(f"Memory {when}: the Dockerbank service RSS {mib(rss)} / PSS {mib(pss)}; "
                          + "; ".join(peers) + ".")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-r", "--rounds", type=int, default=11)
    parser.add_argument("--running", type=int, default=50, help="running containers for the ps row")
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--cli", default=shutil.which("docker") or "docker", help="the docker CLI (default: PATH's)")
    parser.add_argument("--second-cli", default="/usr/bin/docker", help="a second docker CLI for the run --rm row")
    parser.add_argument("--rows", default="run,exec,compose,concurrent,ps")
    parser.add_argument("--no-write", action="store_true", help="print, do not write bench/RESULTS.md")
    parser.add_argument("--work", default=str(HERE / "work" / "api"))
    args = parser.parse_args(argv)
    for binary in (args.cli, "docker-compose"):
        if not shutil.which(binary):
            raise SystemExit(f"{binary} is not installed (scripts/setup.sh --with-tests)")
    second = args.second_cli if (os.path.exists(args.second_cli)
                                 and os.path.realpath(args.second_cli) != os.path.realpath(args.cli)) else None
    bench = Bench(Path(args.work), args.rounds, args.running, args.concurrent, args.cli, second)
    if subprocess.run([args.cli, "info"], env=bench.env("dockerd"), capture_output=True).returncode != 0:
        raise SystemExit("dockerd does not answer: scripts/start-services.sh")
    load_start = load()
    results: dict[str, harness.Result] = {}
    rows = args.rows.split(",")
    try:
        bench.prepare()
        bench.memory_note("idle (image imported, no container)")
        if "run" in rows:
            results.update(bench.run_rm())
            if second:
                results.update(bench.run_rm(second))
        if "exec" in rows:
            results.update(bench.exec_row())
        if "compose" in rows:
            results.update(bench.compose_row())
        if "concurrent" in rows:
            results.update(bench.concurrent_row())
        if "ps" in rows:
            results.update(bench.ps_row())
    finally:
        for engine in ENGINES:
            try:
                bench.clean(engine)
            except Exception as exc:  # the figures above stay valid; say what was left
                print(f"clean-up of {engine} failed: {exc}", file=sys.stderr)
        bench.stop_service()
    notes = [
        f"Client: {bench.version(None)} CLI (API version negotiated with each engine) and docker-compose 1.29; "
        f"dockerd {bench.docker('dockerd', 'version', '--format', '{{.Server.Version}}', check=False)} with "
        "containerd and runc; Dockerbank: `dockerbank system service` on a unix socket, its own root, started by "
        "this script (DOCKERBANK_WARM=0: in its own process, not a warm helper's). Same busybox rootfs in "
        "both, default bridge network. Each row: one untimed warm-up per "
        "engine, then the rounds interleaved; medians.",
        *bench.notes,
        f"Host load at start: {load_start}; at end: {load()} (the {os.cpu_count()} CPUs' load includes this "
        "run's own containers). Absolute figures move with the load; the ratios compare interleaved rounds.",
    ]
    text = harness.section(NAME, "Docker Engine API: the docker CLI and docker-compose against the service and "
                           "dockerd", list(results.values()), ["dockerbank", "docker"], args.rounds, notes)
    print(text)
    if not args.no_write:
        harness.write_section(NAME, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
