"""Calls to the OCI runtime (crun or runc): start, kill, delete, state, pause, resume.

``create`` and ``exec`` are made by conmon (see :mod:`dockerbank.runtime.conmon`). Every call
runs the runtime binary directly (no shell); on hybrid-cgroup hosts crun is started from a
private mount namespace without /sys/fs/cgroup/unified (:func:`private_ns_prefix`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cached_property
from pathlib import Path

from dockerbank import faults
from dockerbank.errors import Conflict, DockerbankError, NotFound, RuntimeFailure
from dockerbank.runtime.detect import HYBRID_UNIFIED, RuntimeChoice

# Run the command that follows in a mount namespace of its own, a slave of the host's (later host
# mounts such as overlay roots stay visible; our unmount of the cgroup2 mount does not propagate
# back), without the cgroup2 mount crun refuses. A command prefix, not a preexec_fn: no Python code
# runs between fork and exec, which is unsafe in a threaded process (the API service). Costs 2-4 ms
# a call more than the in-process unshare it replaces (two small execs and one umount): see
# bench/runtime_ns_cost.py.
_UNMOUNT_THEN_EXEC = f'umount -l {HYBRID_UNIFIED} 2>/dev/null; exec "$0" "$@"'


# crun refuses the hybrid layout only where it sets a container's cgroups up. Its other calls
# (start, state, kill, pause, resume, delete) work from the host's namespace (crun 1.8 here: a
# paused container's freezer reads FROZEN, delete removes the cgroups in every hierarchy), so they
# run without the prefix's two extra execs and a start's critical path has none of them.
NAMESPACED = frozenset({"create", "run", "update"})  # exec joins the cgroups: no prefix (runtime.conmon)


def private_ns_prefix() -> list[str]:
    """The argv prefix that runs a command in a private mount namespace without the cgroup2 mount."""
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    return [unshare, "--mount", "--propagation", "slave", "--", "/bin/sh", "-c", _UNMOUNT_THEN_EXEC]


PREFIX = {"create": "failed to create task: OCI runtime create failed: unable to start container process: ",
          "exec": "OCI runtime exec failed: exec failed: unable to start container process: "}
_NOT_FOUND_IN_PATH = re.compile(r"executable file [`\"']?([^`\"' ]+)[`\"']? not found in \$PATH")


def classify_start_error(message: str, command: str, phase: str = "create") -> DockerbankError:
    """Map a runtime's create/start error to Docker's message and exit code (126/127/125)."""
    text = message.strip()
    match = _NOT_FOUND_IN_PATH.search(text)
    if match and "/" in match.group(1):
        return RuntimeFailure(PREFIX[phase] +
                              f'exec: "{command}": stat {command}: no such file or directory: unknown', exit_code=127)
    if match:
        return RuntimeFailure(PREFIX[phase] +
                              f'exec: "{match.group(1)}": executable file not found in $PATH: unknown', exit_code=127)
    lowered = text.lower()
    if ("executable" in lowered or "exec" in lowered) and "no such file or directory" in lowered:
        return RuntimeFailure(PREFIX[phase] +
                              f'exec: "{command}": stat {command}: no such file or directory: unknown', exit_code=127)
    if "permission denied" in lowered and ("exec" in lowered or "open" in lowered):
        return RuntimeFailure(PREFIX[phase] +
                              f'exec: "{command}": permission denied: unknown', exit_code=126)
    if "exec format error" in lowered:
        return RuntimeFailure(PREFIX[phase] +
                              f'exec: "{command}": exec format error: unknown', exit_code=126)
    return RuntimeFailure(f"OCI runtime create failed: {text}", exit_code=125)


class OciRuntime:
    """One runtime binary with its own state directory (``--root``) in the run root."""

    def __init__(self, choice: RuntimeChoice, state_root: Path):
        self.choice = choice
        self.state_root = state_root

    @property
    def name(self) -> str:
        return self.choice.name

    @property
    def path(self) -> str:
        """The runtime binary (what it compiled, e.g. seccomp programs, is cached per binary)."""
        return self.choice.path

    def state_dir(self, cid: str) -> Path:
        """The runtime's own state directory of container ``cid``."""
        return self.state_root / cid

    @cached_property
    def prefix(self) -> list[str]:
        """What runs before the runtime (or a conmon that calls it directly): the private mount
        namespace on hybrid-cgroup hosts, nothing elsewhere."""
        return private_ns_prefix() if self.choice.private_ns else []

    def argv(self, *args: str) -> list[str]:
        """The full command line of one runtime call (``args[0]`` its subcommand), with the
        namespace prefix where the runtime sets cgroups up (:data:`NAMESPACED`)."""
        prefix = self.prefix if args and args[0] in NAMESPACED else []
        return [*prefix, self.choice.path, f"--root={self.state_root}", *args]

    def conmon_args(self, private_ns_here: bool, sets_cgroups_up: bool = True) -> list[str]:
        """conmon's runtime options. A conmon started in our private namespace (``private_ns_here``,
        behind :attr:`prefix`) runs the runtime as is, and so does one whose runtime call sets no
        cgroups up (``sets_cgroups_up`` False: an exec joins the container's). One that stays in
        the host's mount namespace (its exit command unmounts the container's root and tears its
        network down there) gets, on hybrid-cgroup hosts, a wrapper doing for crun what
        :attr:`prefix` does for this process's own calls (three more small execs per create).
        The wrapper is run by /bin/sh, so a run root mounted noexec does not matter."""
        root = f"--runtime-arg=--root={self.state_root}"
        if private_ns_here or not sets_cgroups_up or not self.choice.private_ns:
            return ["-r", self.choice.path, root]
        wrapper = self.state_root.parent / "runtime-private-ns.sh"
        text = (
            "# conmon's runtime on a hybrid-cgroup host: crun in a mount namespace of its own, a slave of\n"
            "# the host's, without the cgroup2 mount crun refuses (written by dockerbank)\n"
            "exec unshare --mount --propagation slave -- /bin/sh -c "
            f"'umount -l {HYBRID_UNIFIED} 2>/dev/null; exec \"$0\" \"$@\"' {self.choice.path} \"$@\"\n"
        )
        try:
            current = wrapper.read_text()
        except OSError:
            current = None
        if current != text:
            wrapper.parent.mkdir(parents=True, exist_ok=True)
            tmp = wrapper.with_name(f".{wrapper.name}.{os.getpid()}")
            tmp.write_text(text)
            os.replace(tmp, wrapper)
        return ["-r", "/bin/sh", f"--runtime-arg={wrapper}", root]

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        faults.point(f"runtime.{args[0] if args else 'run'}")
        try:
            result = subprocess.run(self.argv(*args), stdin=subprocess.DEVNULL, capture_output=True, check=False)
        except OSError as exc:
            raise RuntimeFailure(f"cannot run {self.choice.path}: {exc}") from exc
        if check and result.returncode != 0:
            raise self._error(args, result.stderr.decode(errors="replace"))
        return result

    def _error(self, args: tuple[str, ...], stderr: str) -> DockerbankError:
        text = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status from {args[0]}"
        text = re.sub(r'^time="[^"]*" level=\w+ msg="(.*)"$', r"\1", text)
        lowered = text.lower()
        if "does not exist" in lowered or "no such file" in lowered or "not found" in lowered:
            return NotFound(f"{self.name} {args[0]}: {text}")
        if "not running" in lowered or "is paused" in lowered or "not paused" in lowered:
            return Conflict(f"{self.name} {args[0]}: {text}")
        return RuntimeFailure(f"{self.name} {args[0]} failed: {text}")

    def start(self, cid: str) -> None:
        self._run("start", cid)

    def kill(self, cid: str, signal: str | int = "TERM", all_processes: bool = False) -> None:
        sig = str(signal)
        if sig.upper().startswith("SIG"):
            sig = sig[3:]
        args = ["kill", *(["--all"] if all_processes else []), cid, sig]
        self._run(*args)

    def signal(self, cid: str, pid: int, sig: int) -> None:
        """Signal the container's init directly (its pid from conmon): no runtime process to start
        (an exec of the runtime costs milliseconds); one that is gone already is fine."""
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def delete(self, cid: str, force: bool = False) -> None:
        """Remove the runtime's state and cgroup; a container the runtime never knew is fine."""
        result = self._run("delete", *(["--force"] if force else []), cid, check=False)
        if result.returncode != 0:
            err = result.stderr.decode(errors="replace")
            if "does not exist" in err or "No such file" in err or "not found" in err.lower():
                return
            raise self._error(("delete",), err)

    def state(self, cid: str) -> dict:
        result = self._run("state", cid)
        return json.loads(result.stdout)

    def pause(self, cid: str) -> None:
        self._run("pause", cid)

    def resume(self, cid: str) -> None:
        self._run("resume", cid)

    def update(self, cid: str, resources: dict) -> None:
        """Change a running container's cgroup limits (``<runtime> update --resources``, OCI
        ``linux.resources`` JSON), as ``docker update`` does through runc."""
        import tempfile

        self.state_root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.state_root, prefix=".update-", suffix=".json") as handle:
            json.dump(resources, handle)
            handle.flush()
            self._run("update", f"--resources={handle.name}", cid)
