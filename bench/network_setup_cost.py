"""Cost of giving one container a network: the in-process driver (product) against netavark.

Rows, median of N, steady state (the network's bridge already up because one other endpoint
is attached), one published port each, on a user network (aardvark-dns entry + SIGHUP):

- each driver's ``setup``/``teardown`` alone (netavark: the subprocess; in-process: netlink + one
  ``iptables-save``/``iptables-restore`` + aardvark-dns's file),
- Dockerbank's whole ``attach``/``detach`` with each driver (pin netns, SQLite, driver),
- 5 containers attached at once from 5 processes on one network (a compose ``up``), wall time:
  netavark runs under a host-wide lock, the in-process driver under a shared per-network lock.

    /opt/dockerbank-venv/bin/python bench/network_setup_cost.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PARALLEL = 5


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f} ms"


BACKENDS = {"netavark": "netavark (subprocess)", "inprocess": "in-process (netlink + 1 iptables-restore)"}


def measure_dockerbank(work: Path, runs: int) -> dict[str, tuple[list[float], list[float]]]:
    """Both drivers, each on a root of its own, interleaved run by run (the host's load hits both alike)."""
    from dockerbank.config import Config
    from dockerbank.engine import Engine
    from dockerbank.network.netavark import build_options
    from dockerbank.network.ports import parse_publish
    from dockerbank.network.service import AttachRequest, make_driver

    engines, keepers = {}, {}
    rows: dict[str, tuple[list[float], list[float]]] = {}
    for backend in BACKENDS:
        engine = Engine(Config(work / f"root-{backend}", work / f"run-{backend}"))
        os.environ["DOCKERBANK_NETWORK_BACKEND"] = backend
        engine.networks._driver = make_driver(engine.config.run_root / "netavark")
        engine.networks.release_wait = 0
        engine.networks.create("bench")
        keepers[backend] = secrets.token_hex(32)
        engine.networks.attach(AttachRequest(keepers[backend], "keeper", ["bench"]))
        engines[backend] = engine
        for kind in ("driver alone", "whole attach/detach"):
            rows[f"{BACKENDS[backend]}: {kind}"] = ([], [])
    try:
        for i in range(runs):
            for backend, engine in engines.items():
                service = engine.networks
                whole_up, whole_down = rows[f"{BACKENDS[backend]}: whole attach/detach"]
                raw_up, raw_down = rows[f"{BACKENDS[backend]}: driver alone"]
                cid = secrets.token_hex(32)
                start = time.perf_counter()
                service.attach(AttachRequest(cid, f"c{i}", ["bench"], parse_publish("127.0.0.1:39003:80")))
                whole_up.append(time.perf_counter() - start)
                # the same container's teardown + setup by the driver alone
                pairs = service._attached(cid)
                options = build_options(cid, f"c{i}", None, pairs, [p for _, ep in pairs for p in ep.ports])
                path = service.netns_path(cid)
                start = time.perf_counter()
                service.driver.teardown(path, options)
                raw_down.append(time.perf_counter() - start)
                start = time.perf_counter()
                service.driver.setup(path, options)
                raw_up.append(time.perf_counter() - start)
                start = time.perf_counter()
                service.detach(cid)
                whole_down.append(time.perf_counter() - start)
        parallel = {backend: ([], []) for backend in BACKENDS}
        for _ in range(max(3, runs // 4)):
            for backend, engine in engines.items():
                ups, downs = measure_parallel(engine, backend)
                parallel[backend][0].append(ups)
                parallel[backend][1].append(downs)
        for backend, values in parallel.items():
            rows[f"{BACKENDS[backend]}: {PARALLEL} processes attach at once (wall), then detach at once"] = values
    finally:
        for backend, engine in engines.items():
            engine.networks.detach(keepers[backend])
            engine.close()
    return rows


WORKER = """
import sys, secrets
from pathlib import Path
from dockerbank.config import Config
from dockerbank.engine import Engine
from dockerbank.network.service import AttachRequest
engine = Engine(Config(Path(sys.argv[1]), Path(sys.argv[2])))
engine.networks.release_wait = 0
cid = secrets.token_hex(32)
sys.stdin.readline()                      # go
engine.networks.attach(AttachRequest(cid, "p" + cid[:8], ["bench"]))
print("up", flush=True)
sys.stdin.readline()                      # go again
engine.networks.detach(cid)
print("down", flush=True)
"""


def measure_parallel(engine, backend: str) -> tuple[float, float]:
    """Wall time of PARALLEL processes (already started and imported) attaching at once, then detaching."""
    env = dict(os.environ, DOCKERBANK_NETWORK_BACKEND=backend)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(engine.config.root), str(engine.config.run_root)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(PARALLEL)]
    time.sleep(1.5)  # imports done before the clock starts
    times = []
    for phase in ("up", "down"):
        start = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("\n")
            proc.stdin.flush()
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if line != phase:
                raise RuntimeError(f"worker said {line!r}")
        times.append(time.perf_counter() - start)
    for proc in procs:
        proc.wait(timeout=30)
    return times[0], times[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    rows: dict[str, tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="dockerbank-netcost-") as tmp:
        work = Path(tmp)
        rows.update(measure_dockerbank(work, args.runs))
    load = Path("/proc/loadavg").read_text().split()[:3]
    lines = [f"Network set-up cost of one container, user network, 1 published port, median of {args.runs} "
             f"(load average at the end: {' '.join(load)}, 2 CPUs shared)", "",
             "| path | setup | teardown |", "|---|---|---|"]
    for label, (up, down) in rows.items():
        lines.append(f"| {label} | {_ms(up) if up else 'n/a'} | {_ms(down) if down else 'n/a'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
