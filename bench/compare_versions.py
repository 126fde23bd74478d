"""Two installs of Dockerbank side by side: the same container commands, interleaved, medians.

    python bench/compare_versions.py --old /work/wt/old/.venv/bin/dockerbank \\
        --new /opt/dockerbank-venv/bin/dockerbank --rounds 15

Why: on a machine shared with other work, a ratio to docker moves with the load (a Python CLI
suffers more from a busy CPU than docker's Go client talking to a warm daemon). Two versions of
Dockerbank timed in alternation under the same load answer the question "did this change make
the commands slower?" without that bias. Each install gets its own root; only `--network none`
is used so the two never share a bridge.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMAGE = "dockerbank-bench/busybox:versions"
RUNNING = 20


def _env(root: Path) -> dict[str, str]:
    return dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=f"{root}-run")


def _run(binary: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([binary, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{binary} {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout.strip()


def _timed(binary: str, env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    _run(binary, env, *args)
    return time.perf_counter() - start


def _prepare(binary: str, root: Path, rootfs: Path) -> dict[str, str]:
    env = _env(root)
    _run(binary, env, "import", "--change", 'CMD ["sh"]', str(rootfs), IMAGE)
    for i in range(RUNNING):
        _run(binary, env, "run", "-d", "--network", "none", "--label", "bench=versions", IMAGE, "sleep", "3600")
    _run(binary, env, "run", "-d", "--network", "none", "--name", "execme", IMAGE, "sleep", "3600")
    return env


def _cases(binary: str, env: dict[str, str]) -> dict[str, float]:
    out = {"run --rm --network none true": _timed(binary, env, "run", "--rm", "--network", "none", IMAGE, "true")}
    start = time.perf_counter()
    cid = _run(binary, env, "create", "--network", "none", IMAGE, "sleep", "60")
    _run(binary, env, "start", cid)
    out["create + start"] = time.perf_counter() - start
    out["exec CTR true"] = _timed(binary, env, "exec", "execme", "true")
    out[f"ps ({RUNNING + 1} running)"] = _timed(binary, env, "ps")
    out["rm -f (1 running)"] = _timed(binary, env, "rm", "-f", cid)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", required=True, help="the dockerbank executable of the older install")
    parser.add_argument("--new", required=True, help="the dockerbank executable of the newer install")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--note", default="", help="what the two versions are (goes into RESULTS.md)")
    parser.add_argument("--write", action="store_true", help="put the table into bench/RESULTS.md")
    args = parser.parse_args()
    from dockerbank.image.baseimage import busybox_rootfs_tar

    work = Path(tempfile.mkdtemp(prefix="db-versions-", dir="/var/tmp"))
    rootfs = busybox_rootfs_tar(work / "busybox.tar")
    installs = {"old": args.old, "new": args.new}
    envs = {name: _prepare(binary, work / name, rootfs) for name, binary in installs.items()}
    load_before = Path("/proc/loadavg").read_text().split()[0]
    times: dict[str, dict[str, list[float]]] = {}
    try:
        for round_ in range(args.rounds):
            order = list(installs) if round_ % 2 == 0 else list(reversed(installs))
            for name in order:
                for case, seconds in _cases(installs[name], envs[name]).items():
                    times.setdefault(case, {}).setdefault(name, []).append(seconds)
    finally:
        for name, binary in installs.items():
            ids = _ids(binary, envs[name])
            if ids:
                subprocess.run([binary, "rm", "-f", *ids], env=envs[name], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
    load_after = Path("/proc/loadavg").read_text().split()[0]
    lines = ["## Two versions of Dockerbank, interleaved: did the commands get slower?", "",
             (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · {os.cpu_count()} CPUs · "
              f"{args.rounds} interleaved rounds, medians · loadavg {load_before} before, {load_after} after"), "",
             f"old = `{args.old}`, new = `{args.new}`", "",
             "| command | old | new | new/old |", "|---|---|---|---|"]
    for case, by in times.items():
        old, new = statistics.median(by["old"]), statistics.median(by["new"])
        lines.append(f"| {case} | {old * 1000:.1f} ms | {new * 1000:.1f} ms | {new / old:.2f} |")
    lines += ["", f"- {args.note}" if args.note else "- (no note)", ""]
    print("\n".join(lines))
    if args.write:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import harness

        body = "\n".join(lines)
        harness.write_section("compare_versions", f"<!-- bench:compare_versions -->\n{body}\n<!-- /bench:compare_versions -->")
    return 0


def _ids(binary: str, env: dict[str, str]) -> list[str]:
    done = subprocess.run([binary, "ps", "-aq"], env=env, capture_output=True, text=True, check=False)
    return done.stdout.split()


if __name__ == "__main__":
    raise SystemExit(main())
