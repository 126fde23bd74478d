"""Nothing the API service's threads run changes process-wide state (issue 11 item 2)."""

from __future__ import annotations

import re
from pathlib import Path

from dockerbank.host.fs import umask_of
from dockerbank.host.overlay import kernel_has_lowerdir_plus, options_string
from dockerbank.runtime.detect import RuntimeChoice
from dockerbank.runtime.oci import OciRuntime

SRC = Path(__file__).resolve().parents[2] / "src" / "dockerbank"
FORBIDDEN = re.compile(r"\bos\.(chdir|fchdir|umask)\(|preexec_fn\s*=|\bsignal(s)?\.signal\(|\bos\.fork\(")
# where these may stay, and why
ALLOWED = {
    "container/lifecycle.py": "Attachment.run: the CLI's signal proxy, only ever in the main thread",
    "host/detach.py": "run_detached forks only when the process has a single thread, with SIGHUP/SIGINT "
                      "blocked over the fork only; its child ignores them (a process of its own)",
    "host/rootless.py": "enter: a rootless CLI joins its user's namespaces at start, single-threaded, before "
                        "any engine exists; setns(mnt) moves the cwd, which is put back",
    "warm/client.py": "the CLI's own process (one thread): reads its umask, forwards its signals, forks the helper",
    "warm/helper.py": "the helper has one thread and forks a process per command, which takes on the caller's "
                      "directory, umask and environment (each command's process-wide state is its own)",
}


def test_no_chdir_umask_preexec_or_signal_handlers_in_src():
    found = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if FORBIDDEN.search(code) and rel not in ALLOWED:
                found.append(f"{rel}:{number}: {line.strip()}")
    assert found == []


def test_umask_is_read_from_proc_status():
    assert umask_of("Name:\tpython3\nUmask:\t0027\nState:\tR\n") == 0o027
    assert umask_of("Name:\tpython3\n") is None


def test_new_mount_api_only_from_6_8():
    assert kernel_has_lowerdir_plus("6.18.44-fc-v1147")
    assert kernel_has_lowerdir_plus("6.8.0")
    assert not kernel_has_lowerdir_plus("6.7.12")
    assert not kernel_has_lowerdir_plus("5.10.0-28-amd64")
    assert not kernel_has_lowerdir_plus("garbage")
    assert options_string(["/a", "/b"], "/u", "/w") == "lowerdir=/a:/b,upperdir=/u,workdir=/w"


def test_runtime_calls_carry_the_namespace_prefix_on_hybrid_hosts(tmp_path):
    hybrid = OciRuntime(RuntimeChoice("crun", "/usr/bin/crun", True), tmp_path / "runtime")
    argv = hybrid.argv("update", "--resources=r.json", "c1")
    assert argv[0].endswith("unshare") and "--mount" in argv and "slave" in argv
    assert argv[-5:] == ["/usr/bin/crun", f"--root={tmp_path / 'runtime'}", "update", "--resources=r.json", "c1"]
    # calls that set no cgroups up run as they are (no two extra execs on a start's critical path)
    assert hybrid.argv("start", "c1") == ["/usr/bin/crun", f"--root={tmp_path / 'runtime'}", "start", "c1"]
    plain = OciRuntime(RuntimeChoice("runc", "/usr/bin/runc"), tmp_path / "runtime")
    assert plain.argv("start", "c1") == ["/usr/bin/runc", f"--root={tmp_path / 'runtime'}", "start", "c1"]
