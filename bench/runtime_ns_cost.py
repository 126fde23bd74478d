"""Cost of starting crun in a private mount namespace: a preexec_fn against a command prefix.

On hybrid-cgroup hosts every runtime call (and a conmon that runs crun itself) starts in a mount
namespace without /sys/fs/cgroup/unified. Dockerbank did that with a ``preexec_fn`` (ctypes
unshare + mount + umount2 in the child between fork and exec), which runs Python code in a forked
child: unsafe in a threaded process (the API service). It now runs ``unshare --mount
--propagation slave -- /bin/sh -c 'umount -l ...; exec "$0" "$@"'`` in front of the command
(:func:`dockerbank.runtime.oci.private_ns_prefix`). Rows, median of N, interleaved:

- ``crun --version`` as is (no namespace), with the old preexec_fn, with the prefix;
- the same for ``crun state <missing>`` (a call that reads crun's state root).

    /opt/dockerbank-venv/bin/python bench/runtime_ns_cost.py [--runs 40]

The preexec_fn lives here only, to measure the alternative; it is not product code.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dockerbank.runtime.detect import HYBRID_UNIFIED  # noqa: E402
from dockerbank.runtime.oci import private_ns_prefix  # noqa: E402

CLONE_NEWNS, MS_REC, MS_SLAVE, MNT_DETACH = 0x00020000, 0x4000, 1 << 19, 2


def old_preexec() -> None:
    """What Dockerbank ran between fork and exec before (runtime/oci.py, private_ns_preexec)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    if libc.mount(b"none", b"/", None, MS_REC | MS_SLAVE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rslave /")
    libc.umount2(HYBRID_UNIFIED.encode(), MNT_DETACH)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args(argv)
    crun = shutil.which("crun")
    if crun is None:
        parser.error("crun is not installed")
    state_root = tempfile.mkdtemp(prefix="dockerbank-bench-crun-")
    calls = {"crun --version": [crun, "--version"],
             "crun state <missing>": [crun, f"--root={state_root}", "state", "missing"]}
    ways = {"as is": ([], None), "preexec_fn (old)": ([], old_preexec), "prefix (new)": (private_ns_prefix(), None)}
    rows = []
    try:
        for label, command in calls.items():
            times: dict[str, list[float]] = {way: [] for way in ways}
            for i in range(args.runs + 3):
                for way, (prefix, preexec) in ways.items():
                    start = time.perf_counter()
                    subprocess.run([*prefix, *command], capture_output=True, preexec_fn=preexec, check=False)
                    if i >= 3:
                        times[way].append(time.perf_counter() - start)
            medians = {way: statistics.median(values) * 1000 for way, values in times.items()}
            rows.append((label, medians))
    finally:
        shutil.rmtree(state_root, ignore_errors=True)
    print(f"| call | {' | '.join(ways)} | prefix - preexec_fn |")
    print(f"|---|{'---|' * (len(ways) + 1)}")
    for label, medians in rows:
        cells = " | ".join(f"{medians[way]:.2f} ms" for way in ways)
        print(f"| {label} | {cells} | {medians['prefix (new)'] - medians['preexec_fn (old)']:+.2f} ms |")
    print(f"\nload: {os.getloadavg()[0]:.2f} (1 min) · median of {args.runs}, interleaved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
