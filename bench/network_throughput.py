"""HTTP throughput through a published port: Dockerbank vs ``docker run -p`` in the same run.

busybox httpd serves a 10 MB file inside the container's network namespace; curl fetches it
repeatedly over 127.0.0.1 through the published port. Also a row for the same httpd on the
host without any forwarding (the ceiling). Prints a Markdown table, ratio vs docker per row.

    /opt/dockerbank-venv/bin/python bench/network_throughput.py [--rounds 5] [--fetches 20]

Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILE_SIZE = 10 * 1000 * 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(["curl", "-s", "-o", "/dev/null", "--max-time", "2", f"http://127.0.0.1:{port}/big"])
        if done.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing serves http://127.0.0.1:{port}/big")


def throughput(port: int, fetches: int, rounds: int) -> float:
    """Median MB/s of ``rounds`` curl runs, each fetching the file ``fetches`` times on one connection."""
    url = f"http://127.0.0.1:{port}/big"
    args = ["curl", "-s", "--fail"]
    for _ in range(fetches):
        args += [url, "-o", "/dev/null"]
    speeds = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(args, check=True)
        speeds.append(fetches * FILE_SIZE / (time.perf_counter() - start) / 1e6)
    return statistics.median(speeds)


def bench_host(www: Path, fetches: int, rounds: int) -> float:
    port = free_port()
    proc = subprocess.Popen(["busybox", "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", str(www)])
    try:
        wait_http(port)
        return throughput(port, fetches, rounds)
    finally:
        proc.kill()
        proc.wait()


def bench_dockerbank(www: Path, work: Path, fetches: int, rounds: int) -> tuple[float, str]:
    """A container started by ``dockerbank run -p`` when the CLI has it, else the network layer
    with busybox httpd joined to the container's netns (the same data path: veth + DNAT)."""
    from dockerbank.config import Config
    from dockerbank.engine import Engine
    from dockerbank.network.ports import parse_publish
    from dockerbank.network.service import AttachRequest

    port = free_port()
    root = work / "dockerbank-root"
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(work / "dockerbank-run"))
    has_run = subprocess.run([sys.executable, "-m", "dockerbank", "run", "--help"], env=env,
                             capture_output=True).returncode == 0
    if has_run:
        subprocess.run([sys.executable, "-m", "dockerbank", "base-image", "busybox"], env=env, check=True,
                       capture_output=True)
        name = "bench-" + secrets.token_hex(4)
        subprocess.run([sys.executable, "-m", "dockerbank", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80",
                        "-v", f"{www}:/www:ro", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"],
                       env=env, check=True, capture_output=True)
        try:
            wait_http(port)
            return throughput(port, fetches, rounds), "dockerbank run -p"
        finally:
            subprocess.run([sys.executable, "-m", "dockerbank", "rm", "-f", name], env=env, capture_output=True)
    engine = Engine(Config(root, work / "dockerbank-run"))
    container_id = secrets.token_hex(32)
    settings = engine.networks.attach(AttachRequest(container_id, "bench", ["bridge"],
                                                    parse_publish(f"127.0.0.1:{port}:80")))
    proc = subprocess.Popen(["nsenter", f"--net={settings['SandboxKey']}", "busybox", "httpd", "-f", "-p", "80",
                             "-h", str(www)])
    try:
        wait_http(port)
        return throughput(port, fetches, rounds), "dockerbank network (netavark) + httpd in its netns"
    finally:
        proc.kill()
        proc.wait()
        engine.networks.detach(container_id)
        engine.close()


def bench_docker(www: Path, work: Path, fetches: int, rounds: int) -> float | None:
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return None
    from dockerbank.image.baseimage import busybox_rootfs_tar

    image = "dockerbank-bench-busybox"
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
        tar = busybox_rootfs_tar(work / "busybox.tar")
        subprocess.run(["docker", "import", str(tar), image], check=True, capture_output=True)
    port = free_port()
    name = "dockerbank-bench-" + secrets.token_hex(4)
    subprocess.run(["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", "-v", f"{www}:/www:ro",
                    image, "httpd", "-f", "-p", "80", "-h", "/www"], check=True, capture_output=True)
    try:
        wait_http(port)
        return throughput(port, fetches, rounds)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fetches", type=int, default=20)
    parser.add_argument("--output", type=Path, default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dockerbank-bench-") as tmp:
        work = Path(tmp)
        www = work / "www"
        www.mkdir()
        (www / "big").write_bytes(os.urandom(FILE_SIZE))
        www.chmod(0o755)
        docker = bench_docker(www, work, args.fetches, args.rounds)
        ours, how = bench_dockerbank(www, work, args.fetches, args.rounds)
        host = bench_host(www, args.fetches, args.rounds)
    rows = [("docker run -p (docker-proxy for 127.0.0.1)", docker), (how, ours), ("busybox httpd on the host, no forwarding", host)]
    lines = [f"HTTP throughput through a published port: 10 MB file x {args.fetches} fetches over 127.0.0.1, "
             f"median of {args.rounds}", "", "| engine | MB/s | ratio vs docker |", "|---|---|---|"]
    for label, value in rows:
        ratio = f"{value / docker:.2f}" if value and docker else "n/a"
        lines.append(f"| {label} | {value:.0f} |" if value else f"| {label} | n/a |")
        lines[-1] += f" {ratio} |"
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
