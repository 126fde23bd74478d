"""crun's compiled seccomp filters, kept per profile so that a container start skips libseccomp.

crun compiles the spec's seccomp JSON with libseccomp at every ``create`` (~20 ms here for
Docker's default profile, a tenth of a ``run --rm``) and leaves the BPF program in
``<state_root>/<id>/seccomp.bpf``. Given the annotation ``run.oci.seccomp_bpf_data`` (the program,
base64) it loads that as is and ignores the JSON. So the first container of a profile is compiled
by crun as usual, its program is copied here, and later containers of the same profile carry it.

The key covers everything the program depends on: the profile, crun and libseccomp (their files'
size and mtime: an upgrade changes them) and the kernel release. It is stored in full next to the
program (``<name>.key``) and compared on every lookup, so the file name can be a cheap checksum
(zlib; hashlib and base64 would add ~10 ms of imports to every start). The cache lives in the run
root, which a reboot empties. runc ignores the annotation and compiles the JSON itself.
"""

from __future__ import annotations

import binascii
import glob
import json
import os
import zlib
from pathlib import Path

ANNOTATION = "run.oci.seccomp_bpf_data"
# The soname link in each library directory (its target, the versioned file, is what an upgrade
# changes): a literal last component is a stat, where ``libseccomp.so.2*`` listed the ~2600
# entries of /lib/x86_64-linux-gnu (~5 ms of every container start).
LIBSECCOMP_GLOBS = ("/lib/*-linux-gnu/libseccomp.so.2", "/usr/lib/*-linux-gnu/libseccomp.so.2",
                    "/usr/lib64/libseccomp.so.2", "/lib64/libseccomp.so.2")


def cache_key(profile: dict, identity: str) -> str:
    """What a profile's program depends on: the profile and crun/libseccomp/kernel ``identity`` (pure)."""
    return json.dumps(profile, sort_keys=True, separators=(",", ":")) + "\n" + identity


def file_name(key: str) -> str:
    """The cache file of a key: a checksum, not a proof (the key is compared in full) (pure)."""
    data = key.encode()
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def runtime_identity(runtime_path: str) -> str:
    """What the compiled program depends on besides the profile: crun, libseccomp, the kernel."""
    parts = [os.uname().release, os.uname().machine]
    seen = set()
    for path in [runtime_path, *sorted(p for pattern in LIBSECCOMP_GLOBS for p in glob.glob(pattern))]:
        try:
            st = os.stat(path)
        except OSError:
            continue
        real = os.path.realpath(path)
        if real not in seen:  # /lib is /usr/lib on a merged-/usr host: one library, named once
            seen.add(real)
            parts.append(f"{real}:{st.st_size}:{st.st_mtime_ns}")
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
        name = file_name(key)
        try:
            if (self.directory / f"{name}.key").read_text() != key:
                return key
            program = (self.directory / name).read_bytes()
        except OSError:
            return key
        spec.setdefault("annotations", {})[ANNOTATION] = binascii.b2a_base64(program, newline=False).decode()
        return None

    def remember(self, key: str, state_dir: Path) -> None:
        """Keep the program crun compiled for a container (``<state_root>/<id>``); best effort."""
        name = file_name(key)
        try:
            program = (state_dir / "seccomp.bpf").read_bytes()
            if not program or len(program) % 8:  # whole sock_filter instructions, or nothing is kept
                return
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            # the program first, its key last: a key file always names a complete program
            for target, data in ((self.directory / name, program), (self.directory / f"{name}.key", key.encode())):
                tmp = target.with_name(f".{target.name}.{os.getpid()}")
                tmp.write_bytes(data)
                os.chmod(tmp, 0o600)
                os.replace(tmp, target)
        except OSError:
            pass
