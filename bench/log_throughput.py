"""Log throughput: a container printing 100 MB of lines, Dockerbank (conmon's k8s-file) vs docker
(json-file), the same rotated (max-size 10m, max-file 3, compress), and both with the gelf driver
(Dockerbank: local copy + shipper; docker: its gelf driver with its local cache).

    /opt/dockerbank-venv/bin/python bench/log_throughput.py            # 100 MB (gelf: 2 MB), 3 rounds
    /opt/dockerbank-venv/bin/python bench/log_throughput.py --mb 20 -r 1

Each round runs ``sh -c 'yes <100 characters> | head -c N'`` detached and times until the
container has exited (``run -d`` + ``wait``): the writer of the log is the bottleneck, so the time
is how long the container's output was held up. The same busybox rootfs is imported into both.
Writes a section into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402

LINE = "x" * 99
ROTATED = "rotated: max-size 10m, max-file 3, compress"
IMAGE = "dockerbank-bench/log-busybox"


def _kept_files(live: Path, timeout: float = 30.0) -> str:
    """The log files left once rotation has settled (Dockerbank's keeper gzips after the exit)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(".pending." in p.name or p.name.endswith(".tmp") for p in live.parent.iterdir()):
            break
        time.sleep(0.1)
    files = sorted(p for p in live.parent.iterdir() if p.name.startswith(live.name))
    return f"{len(files)} files (" + ", ".join(f"{p.name[len(live.name):] or 'live'} {p.stat().st_size / 1e6:.1f} MB"
                                             for p in files) + ")"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--gelf-mb", type=int, default=2, help="smaller: docker's gelf driver is slow")
    parser.add_argument("-r", "--rounds", type=int, default=3)
    parser.add_argument("--work", default=str(HERE / "work"))
    args = parser.parse_args(argv)
    box = harness.scratch_root(args.work, "log-throughput")
    scratch, env, db = box.dir, box.env, box.db
    harness.sh(*db, "base-image", "busybox", env=env)
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        from dockerbank.image.baseimage import busybox_rootfs_tar

        harness.sh("docker", "import", str(busybox_rootfs_tar(scratch / "busybox.tar")), IMAGE)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # a GELF endpoint that never reads: drops
    sink.bind(("127.0.0.1", 0))
    gelf = ["--log-driver", "gelf", "--log-opt", f"gelf-address=udp://127.0.0.1:{sink.getsockname()[1]}"]
    def script(mb: int) -> str:
        return f"yes {LINE} | head -c {mb * 1024 * 1024}"

    rotated = ["--log-opt", "max-size=10m", "--log-opt", "max-file=3", "--log-opt", "compress=true"]
    size_of = {"k8s-file / json-file": args.mb, ROTATED: args.mb, "gelf over UDP": args.gelf_mb}
    rows = {"k8s-file / json-file": ([], ["--log-driver", "json-file"]),
            ROTATED: (rotated, ["--log-driver", "json-file", *rotated]), "gelf over UDP": (gelf, gelf)}
    kept: dict[str, str] = {}
    version = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                             text=True).stdout.strip()
    times: dict[tuple[str, str], list[float]] = {}
    sizes: dict[str, int] = {}
    load_start = os.getloadavg()[0]
    for n in range(args.rounds):
        for row, (own, theirs) in rows.items():
            for tool in ("dockerbank", "docker"):
                name = f"logbench{n}{ {'k8s-file / json-file': 'f', ROTATED: 'r'}.get(row, 'g') }"
                if tool == "dockerbank":
                    cmd, extra, image, e = db, own, "busybox", env
                else:
                    cmd, extra, image, e = ["docker"], theirs, IMAGE, None
                os.sync()
                start = time.perf_counter()
                cid = subprocess.run([*cmd, "run", "-d", "--name", name, "--network", "none", *extra, image,
                                      "sh", "-c", script(size_of[row])], env=e, capture_output=True, check=True).stdout.decode().strip()
                code = subprocess.run([*cmd, "wait", cid], env=e, capture_output=True, check=True).stdout.strip()
                elapsed = time.perf_counter() - start
                assert code == b"0", (tool, code)
                if n == 0 and row != "gelf over UDP":
                    path = subprocess.run([*cmd, "inspect", "-f", "{{.LogPath}}", cid], env=e, capture_output=True,
                                          check=True).stdout.decode().strip()
                    if row == ROTATED:
                        kept[tool] = _kept_files(Path(path))
                    else:
                        sizes[tool] = os.path.getsize(path)
                subprocess.run([*cmd, "rm", "-f", cid], env=e, capture_output=True)
                times.setdefault((row, tool), []).append(elapsed)
                print(f"  round {n + 1} {row:<22} {tool:<10} {elapsed:7.2f} s", flush=True)
    sink.close()
    load_end = os.getloadavg()[0]
    lines = ["<!-- bench:log_throughput -->", f"## Log throughput: a container printing {args.mb} MB of lines", "",
             (f"{os.uname().nodename} · {os.cpu_count()} CPUs · Linux {os.uname().release} · "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · median of {args.rounds} rounds · "
              f"bench/log_throughput.py · load average {load_start:.1f} at the start, {load_end:.1f} at the end"), "",
             "| driver | output | dockerbank | docker | dockerbank/docker | dockerbank MB/s | docker MB/s |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        own, theirs = statistics.median(times[(row, "dockerbank")]), statistics.median(times[(row, "docker")])
        mb = size_of[row]
        lines.append(f"| {row} | {mb} MB | {own:.2f} s | {theirs:.2f} s | {own / theirs:.2f} | {mb / own:.1f} | "
                     f"{mb / theirs:.1f} |")
    lines += ["",
              (f"- Time from `run -d` to the container's exit (`wait`), CLI start-up included; the output is "
               f"{args.mb} MB of 100-byte lines, so the log writer sets the pace and the time is how long the "
               "container's writes were held up. Dockerbank: conmon's k8s-file (`<RFC3339Nano> stdout F <line>`, "
               f"{sizes.get('dockerbank', 0) / 1e6:.0f} MB on disk); docker: dockerd's json-file via "
               f"containerd-shim's FIFO ({sizes.get('docker', 0) / 1e6:.0f} MB on disk)."),
              (f"- {ROTATED}: the same output rotated as docker's `--log-opt max-size=10m --log-opt max-file=3 "
               "--log-opt compress=true`. Dockerbank: conmon starts a new file past 10 MiB and the log keeper "
               "process keeps and gzips the replaced ones (in a thread, beside the container); docker: dockerd "
               f"rotates and compresses in its json-file writer. Kept after the run: Dockerbank "
               f"{kept.get('dockerbank', '?')}; docker {kept.get('docker', '?')}."),
              ("- gelf (a smaller output: docker's gelf driver is slow here, see MB/s): Dockerbank's container writes only to conmon's local log; the shipper follows it on its "
               "own (to a UDP socket that never reads: datagrams dropped), so the container is never slower than "
               f"with k8s-file. docker {version} encodes and sends each line in dockerd and keeps its local cache too."),
              "", "<!-- /bench:log_throughput -->"]
    section = "\n".join(lines)
    harness.publish("log_throughput", section, scratch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
