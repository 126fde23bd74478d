"""The benchmark harness: time Dockerbank and its peers on the same work, in the same run.

A benchmark module (``bench/benchmarks/<name>.py``) defines::

    TITLE = "image save/load (200 MB, 5 layers)"
    def prepare(ctx: Context) -> object: ...          # build inputs once (not timed)
    def cases(ctx: Context, state) -> list[Case]: ... # one Case per (row, tool)
    def cleanup(ctx: Context, state) -> None: ...     # optional

Each Case has an untimed ``before`` (reset state, e.g. remove the image before a load) and a
timed ``run``; both are argument-less callables, usually subprocesses of the real CLIs. The
harness runs every case ``rounds`` times, interleaving tools round by round so that a
change in the machine's load hits all tools alike, and reports medians and ratios.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SUBJECT = "dockerbank"


@dataclass
class Context:
    """What every benchmark gets: a work directory (on the disk under test) and the round count."""

    work: Path
    rounds: int
    tools: list[str]


@dataclass
class Case:
    row: str
    tool: str
    run: Callable[[], None]
    before: Callable[[], None] | None = None
    after: Callable[[], None] | None = None


@dataclass
class Result:
    row: str
    samples: dict[str, list[float]] = field(default_factory=dict)

    def median(self, tool: str) -> float | None:
        values = self.samples.get(tool)
        return statistics.median(values) if values else None


def sh(*args: str, env: dict | None = None, stdin=None, stdout=subprocess.DEVNULL) -> None:
    """Run a command; raise with its stderr if it fails (a failed run must not count as a fast one)."""
    result = subprocess.run(list(args), env=env, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}: {result.stderr.decode(errors='replace')[-500:]}")


def run(*args: str, env: dict | None = None) -> str:
    """Run a command and return its stdout; raise with its stderr's tail if it fails."""
    done = subprocess.run(list(args), env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-800:]}")
    return done.stdout


def timed(*args: str, env: dict | None = None) -> float:
    """The wall time of one ``run`` of a command (after a sync, so earlier writes do not land on it)."""
    os.sync()
    start = time.perf_counter()
    run(*args, env=env)
    return time.perf_counter() - start


def host_load() -> str:
    """The host's load (the machine is shared: absolute times move with it, ratios much less)."""
    try:
        loadavg = Path("/proc/loadavg").read_text().split()[0]
        pressure = Path("/proc/pressure/cpu").read_text().split()[2].split("=")[1]
    except (OSError, IndexError):
        return "unknown"
    return f"loadavg {loadavg}, CPU pressure {pressure}%"


def run_cases(cases: list[Case], rounds: int, log: Callable[[str], None] = print) -> list[Result]:
    results: dict[str, Result] = {}
    for case in cases:
        results.setdefault(case.row, Result(case.row))
    for round_no in range(rounds):
        for case in cases:
            if case.before:
                case.before()
            os.sync()  # write back the previous case's dirty pages now, not during this timing
            start = time.perf_counter()
            case.run()
            elapsed = time.perf_counter() - start
            if case.after:
                case.after()
            results[case.row].samples.setdefault(case.tool, []).append(elapsed)
            log(f"  round {round_no + 1}/{rounds} {case.row:<28} {case.tool:<10} {elapsed:8.3f} s")
    return list(results.values())


def _fmt(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:.3f} s"


def section(name: str, title: str, results: list[Result], tools: list[str], rounds: int, notes: list[str]) -> str:
    """One benchmark's table: medians per tool and the ratio Dockerbank / peer (below 1 = Dockerbank faster)."""
    peers = [t for t in tools if t != SUBJECT]
    lines = [f"<!-- bench:{name} -->", f"## {title}", "",
             f"{platform.node()} · {_cpu_count()} CPUs · Linux {platform.release()} · "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · median of {rounds} rounds", ""]
    header = ["benchmark", SUBJECT, *peers, *[f"{SUBJECT}/{p}" for p in peers]]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for result in results:
        own = result.median(SUBJECT)
        cells = [result.row, _fmt(own)]
        cells += [_fmt(result.median(p)) for p in peers]
        for peer in peers:
            other = result.median(peer)
            cells.append("–" if own is None or not other else f"{own / other:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {n}" for n in notes]
    lines += ["", f"<!-- /bench:{name} -->"]
    return "\n".join(lines)


HEADER = """# Benchmark results

Written by `bench/run.py` (see bench/README.md). Ratio = Dockerbank / peer: below 1.00 means
Dockerbank is faster. Each benchmark's section is replaced when that benchmark runs again;
the others are kept.
"""


def write_section(name: str, section: str) -> None:
    """Put one benchmark's section into bench/RESULTS.md in place of its old one (the standalone
    bench scripts; run.py writes several at once through :func:`merge`)."""
    output = Path(__file__).resolve().parent / "RESULTS.md"
    existing = output.read_text() if output.exists() else ""
    output.write_text(merge(existing, {name: section}))


def publish(name: str, section: str, scratch: Path | None = None) -> None:
    """The end of a standalone bench script: its section into RESULTS.md and onto stdout, its
    scratch directory removed."""
    write_section(name, section)
    print(section)
    if scratch is not None:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class Scratch:
    """An emptied work directory with a Dockerbank root of its own inside."""

    dir: Path
    root: Path
    env: dict[str, str]              # selects the root for the CLI
    db: list[str]                    # the Dockerbank CLI as this interpreter runs it


def scratch_root(work: str | Path, name: str) -> Scratch:
    """``work/name`` emptied and created, with ``root`` (and ``root-run``) as Dockerbank's root."""
    import shutil
    import sys

    directory = Path(work) / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    root = directory / "root"
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
    return Scratch(directory, root, env, [sys.executable, "-m", "dockerbank"])


def podman_env(directory: Path) -> dict[str, str]:
    """podman 4.3 as it works on this host: runc (its crun fails on the hybrid cgroups) and explicit
    ulimits, through a containers.conf written into ``directory``."""
    conf = directory / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
                    '[engine]\nruntime = "runc"\n')
    return dict(os.environ, CONTAINERS_CONF=str(conf))


def merge(existing: str, sections: dict[str, str]) -> str:
    """Put each new section in place of the old one of the same benchmark; keep the rest in order."""
    blocks: dict[str, str] = {}
    order: list[str] = []
    marker = "<!-- bench:"
    rest = existing
    while marker in rest:
        start = rest.index(marker)
        name = rest[start + len(marker): rest.index(" -->", start)]
        end_marker = f"<!-- /bench:{name} -->"
        end = rest.find(end_marker, start)
        if end < 0:
            break
        blocks[name] = rest[start: end + len(end_marker)]
        order.append(name)
        rest = rest[end + len(end_marker):]
    for name, text in sections.items():
        if name not in blocks:
            order.append(name)
        blocks[name] = text
    return HEADER + "\n" + "\n\n".join(blocks[n] for n in order) + "\n"


def _cpu_count() -> int:
    return os.cpu_count() or 0
