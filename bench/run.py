"""Run the benchmarks: Dockerbank against docker and podman on the same work, in the same run.

    /opt/dockerbank-venv/bin/python bench/run.py                  # every benchmark, 5 rounds
    /opt/dockerbank-venv/bin/python bench/run.py image_archive -r 3
    /opt/dockerbank-venv/bin/python bench/run.py --tools dockerbank,docker

Writes bench/RESULTS.md (a Markdown table of medians and ratios per benchmark) and prints it.
Each benchmark is a module in bench/benchmarks/ (see bench/harness.py for the interface).
"""

from __future__ import annotations

import argparse
import compileall
import importlib
import pkgutil
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness


def main(argv: list[str] | None = None) -> int:
    import benchmarks

    available = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(available)})")
    parser.add_argument("-r", "--rounds", type=int, default=5)
    parser.add_argument("--tools", default="dockerbank,docker,podman", help="comma-separated tools to time")
    parser.add_argument("--work", default=str(HERE / "work"), help="work directory (on the disk under test)")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args(argv)
    names = args.names or available
    unknown = [n for n in names if n not in available]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}")
    tools = [t for t in args.tools.split(",") if t]
    for tool in tools:
        if not tool.startswith("dockerbank") and shutil.which(tool) is None:  # dockerbank-inproc: helper off
            parser.error(f"{tool} is not installed (scripts/setup.sh --with-tests installs the peers)")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    # Dockerbank is timed as installed: with current bytecode. Stale .pyc files (sources edited
    # since setup, PYTHONDONTWRITEBYTECODE set) would add a compile to every CLI call.
    compileall.compile_dir(str(HERE.parent / "src"), quiet=1)
    sections: dict[str, str] = {}
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {module.TITLE}", flush=True)
        # a module's EXTRA_TOOLS (e.g. bare crun/runc) join its own table when installed
        extra = [t for t in getattr(module, "EXTRA_TOOLS", []) if t not in tools and shutil.which(t)]
        ctx = harness.Context(work=work, rounds=args.rounds, tools=tools + extra)
        state = module.prepare(ctx)
        try:
            results = harness.run_cases(module.cases(ctx, state), args.rounds,
                                        log=lambda line: print(line, flush=True))
        finally:
            if hasattr(module, "cleanup"):
                module.cleanup(ctx, state)
        sections[name] = harness.section(name, module.TITLE, results, ctx.tools, args.rounds,
                                         list(getattr(module, "NOTES", [])))
    output = Path(args.output)
    existing = output.read_text() if output.exists() else ""
    output.write_text(harness.merge(existing, sections))
    print("\n\n".join(sections.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
