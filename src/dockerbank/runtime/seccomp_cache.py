"""crun's compiled seccomp filters, kept per profile so that a container start skips libseccomp.

crun compiles the spec's seccomp JSON with libseccomp at every ``create`` (~20 ms here for
Docker's default profile, a tenth of a ``run --rm``) and leaves the BPF program in
``<state_root>/<id>/seccomp.bpf``. Given the annotation ``run.oci.seccomp_bpf_data`` (the program,
base64) it loads that as is and ignores the JSON. So the first container of a profile is compiled
by crun as usual, its program is copied here, and later containers of the same profile carry it.

The key covers everything the program depends on: the profile, crun and libseccomp (their files'
size and mtime: an upgrade changes them) and the kernel release. The cache lives in the run root,
which a reboot empties. runc ignores the annotation and compiles the JSON itself.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import os
from pathlib import Path

ANNOTATION = "run.oci.seccomp_bpf_data"
LIBSECCOMP_GLOBS = ("/lib/*-linux-gnu/libseccomp.so.2*", "/usr/lib/*-linux-gnu/libseccomp.so.2*",
                    "/usr/lib64/libseccomp.so.2*", "/lib64/libseccomp.so.2*")


def cache_key(profile: dict, identity: str) -> str:
    """The file name of a profile's program for one crun/libseccomp/kernel ``identity`` (pure)."""
    text = json.dumps(profile, sort_keys=True, separators=(",", ":")) + "\n" + identity
    return hashlib.sha256(text.encode()).hexdigest()


def runtime_identity(runtime_path: str) -> str:
    """What the compiled program depends on besides the profile: crun, libseccomp, the kernel."""
    parts = [os.uname().release, os.uname().machine]
    for path in [runtime_path, *sorted(p for pattern in LIBSECCOMP_GLOBS for p in glob.glob(pattern))]:
        try:
            st = os.stat(path)
        except OSError:
            continue
        parts.append(f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


class SeccompCache:
    """Compiled programs in ``directory``, for the runtime at ``runtime_path``."""

    def __init__(self, directory: Path, runtime_path: str):
        self.directory = directory
        self.runtime_path = runtime_path

    def annotate(self, spec: dict) -> str | None:
        """Put the cached program of the spec's profile into its annotations. Returns the key
        when the runtime must compile it (call :meth:`remember` after ``create``), else None."""
        profile = spec.get("linux", {}).get("seccomp")
        if not profile:
            return None
        key = cache_key(profile, runtime_identity(self.runtime_path))
        try:
            program = (self.directory / key).read_bytes()
        except OSError:
            return key
        spec.setdefault("annotations", {})[ANNOTATION] = base64.b64encode(program).decode()
        return None

    def remember(self, key: str, state_dir: Path) -> None:
        """Keep the program crun compiled for a container (``<state_root>/<id>``); best effort."""
        target = self.directory / key
        try:
            program = (state_dir / "seccomp.bpf").read_bytes()
            if not program or len(program) % 8:  # whole sock_filter instructions, or nothing is kept
                return
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = target.with_name(f".{key}.{os.getpid()}")
            tmp.write_bytes(program)
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        except OSError:
            pass
