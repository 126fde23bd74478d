"""User namespaces and rootless mode (issue 21): `run --rm true` side by side with podman.

Rows (median of N rounds, tools interleaved round by round, the same busybox rootfs in both):

- root, `run --rm --network none true` without a user namespace (the reference);
- root, `--userns=auto`: Dockerbank's own range of the ``dockerbank`` user's subordinate IDs and
  ID-mapped image layers, against podman's ``--userns=auto`` (ranges of the ``containers`` user,
  added to /etc/subuid and /etc/subgid here when missing, as podman's docs ask);
- rootless, `run --rm --network none true` by the same ordinary user (made here with useradd,
  removed afterwards): Dockerbank in its namespace holder against podman rootless.

podman runs with ``--runtime runc`` and explicit ``--ulimit``s (crun refuses this host's hybrid
cgroups, as in bench/benchmarks/containers.py). The ordinary user runs Dockerbank with the host's
python of the same version and this tree on PYTHONPATH (Python start-up included).

A second section times the copy road of ``--userns=auto`` (kernels whose overlayfs cannot ID-map
lower layers, forced here with ``DOCKERBANK_IDMAP=off``) against the ID-mapped road on this
kernel: ``run --rm`` with a new mapping (the image's layers copied with shifted owners, and
removed again with the container) and ``start -a`` of a container whose mapping's copies exist,
for busybox and, when the suite's cached debootstrap tarball is there, Debian minbase.

    /opt/dockerbank-venv/bin/python bench/userns_rootless.py [--rounds 15] [--copy-only]
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Case, run_cases, section, sh, write_section  # noqa: E402

from dockerbank.host import subids  # noqa: E402

USER = "dbbench"
PODMAN = ["podman", "--runtime", "runc"]
PODMAN_RUN = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
PYTHON = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
SRC = str(Path(__file__).resolve().parents[1] / "src")


def as_user(uid: int, gid: int, home: str, argv: list[str], env: dict[str, str]):
    """A callable that runs ``argv`` as the ordinary user (fails loudly)."""
    def run() -> None:
        done = subprocess.run(argv, user=uid, group=gid, extra_groups=[], cwd=home, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} as {USER} exited {done.returncode}: {done.stderr.decode()[-400:]}")
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--copy-only", action="store_true", help="only the copy road's section")
    args = parser.parse_args(argv)
    if args.copy_only:
        return copy_road(args.rounds)
    for tool in ("podman", "runc", "conmon", "newuidmap"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (scripts/setup.sh --with-tests)")
    from dockerbank.image.baseimage import busybox_rootfs_tar

    work = Path(tempfile.mkdtemp(prefix="dbbench-userns-", dir="/var/tmp"))
    os.chmod(work, 0o755)
    rootfs = busybox_rootfs_tar(work / "busybox.tar")
    os.chmod(rootfs, 0o644)
    root = work / "root"
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
    db = [sys.executable, "-m", "dockerbank"]
    created_user = added = False
    try:
        sh(*db, "import", str(rootfs), "bb:1", env=env)
        sh(*PODMAN, "import", str(rootfs), "localhost/bbbench:1")
        # podman's --userns=auto takes its IDs from user "containers" (removed again afterwards if added here)
        added = subids.ensure_user_ranges("containers", count=65536 * 64)[2]
        try:
            pwd.getpwnam(USER)
        except KeyError:
            sh("useradd", "-m", "-s", "/bin/sh", USER)
            created_user = True
        user = pwd.getpwnam(USER)
        uid, gid, home = user.pw_uid, user.pw_gid, user.pw_dir
        runtime = f"/tmp/{USER}-xdg"
        os.makedirs(runtime, mode=0o700, exist_ok=True)
        os.chown(runtime, uid, gid)
        uenv = {"HOME": home, "USER": USER, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "XDG_RUNTIME_DIR": runtime,
                "PYTHONPATH": f"{SRC}:{sysconfig.get_paths()['purelib']}"}
        udb = [PYTHON, "-m", "dockerbank"]
        context = str(work / "ctx")
        os.mkdir(context)
        (Path(context) / "Dockerfile").write_text("FROM bb:1\nRUN echo built > /built\nCOPY data /data\n")
        (Path(context) / "Containerfile").write_text("FROM localhost/bbbench:1\nRUN echo built > /built\n"
                                                     "COPY data /data\n")
        (Path(context) / "data").write_bytes(os.urandom(1 << 20))
        for entry in Path(context).iterdir():
            os.chmod(entry, 0o644)
        as_user(uid, gid, home, [*udb, "import", str(rootfs), "bb:1"], uenv)()
        as_user(uid, gid, home, [*PODMAN, "import", str(rootfs), "localhost/bbbench:1"], uenv)()
        cases = [
            Case("root: run --rm (no userns)", "dockerbank",
                 lambda: sh(*db, "run", "--rm", "--network", "none", "bb:1", "true", env=env)),
            Case("root: run --rm (no userns)", "podman",
                 lambda: sh(*PODMAN, "run", *PODMAN_RUN, "--rm", "--network", "none", "localhost/bbbench:1", "true")),
            Case("root: run --rm --userns=auto", "dockerbank",
                 lambda: sh(*db, "run", "--rm", "--userns=auto", "--network", "none", "bb:1", "true", env=env)),
            Case("root: run --rm --userns=auto", "podman",
                 lambda: sh(*PODMAN, "run", *PODMAN_RUN, "--rm", "--userns=auto", "--network", "none",
                            "localhost/bbbench:1", "true")),
            Case("rootless: run --rm", "dockerbank",
                 as_user(uid, gid, home, [*udb, "run", "--rm", "--network", "none", "bb:1", "true"], uenv)),
            Case("rootless: run --rm", "podman",
                 as_user(uid, gid, home, [*PODMAN, "run", *PODMAN_RUN, "--rm", "--network", "none",
                                          "localhost/bbbench:1", "true"], uenv)),
            Case("rootless: run --rm (default network)", "dockerbank",
                 as_user(uid, gid, home, [*udb, "run", "--rm", "bb:1", "true"], uenv)),
            Case("rootless: run --rm (default network)", "podman",
                 as_user(uid, gid, home, [*PODMAN, "run", *PODMAN_RUN, "--rm", "localhost/bbbench:1", "true"], uenv)),
            Case("rootless: build (2 steps, no cache)", "dockerbank",
                 as_user(uid, gid, home, [*udb, "build", "-q", "--lint=off", "--no-cache", "-t", "b:1", context], uenv)),
            Case("rootless: build (2 steps, no cache)", "podman",
                 as_user(uid, gid, home, [*PODMAN, "build", "-q", "--no-cache", "--network", "host", "-t", "b:1",
                                          "-f", f"{context}/Containerfile", context], uenv)),
        ]
        for case in cases:   # warm both (first namespace holder, podman's pause process, caches)
            case.run()
        load_before = os.getloadavg()[0]
        results = run_cases(cases, args.rounds)
        load_after = os.getloadavg()[0]
        notes = [
            "Rows time the CLI process end to end on the same busybox rootfs (`true`). `--network none` rows: no "
            "network work; default network: rootless Dockerbank's bridge (netavark in the user's network namespace, "
            "slirp4netns started once with it) against rootless podman's per-container slirp4netns. podman 4.3 runs "
            "with `--runtime runc` and explicit `--ulimit`s (this host's hybrid cgroups).",
            "build: `FROM` the busybox image, `RUN echo`, `COPY` of 1 MB, `--no-cache` (podman: buildah inside, "
            "`--network host` as Dockerbank's RUN steps).",
            "`--userns=auto`: each container its own range of subordinate IDs (Dockerbank: user `dockerbank`, "
            "podman: user `containers`" + (", added for this run" if added else "") + "); Dockerbank mounts the "
            "image layers ID-mapped (Linux 6.18), nothing is copied or chowned.",
            f"Rootless: user `{USER}` (useradd's subordinate IDs); Dockerbank joins its namespace holder (started by "
            "the warm-up run) with setns, podman its pause process; both with runc, no cgroups (none delegated).",
            f"Host load (1 min) {load_before:.2f} before, {load_after:.2f} after; 2 CPUs shared with other sessions.",
        ]
        text = section("userns_rootless", "User namespaces and rootless mode (issue 21)", results,
                       ["dockerbank", "podman"], args.rounds, notes)
        write_section("userns_rootless", text)
        print(text)
        copy_road(args.rounds)
    finally:
        try:
            user = pwd.getpwnam(USER)
            pause = Path(f"/tmp/{USER}-xdg/dockerbank/pause.pid")
            if pause.exists():
                try:
                    os.kill(int(pause.read_text().split()[0]), 9)
                except (ProcessLookupError, ValueError):
                    pass
            if created_user:
                subprocess.run(["pkill", "-KILL", "-U", str(user.pw_uid)], check=False)  # the bench user's own
                subprocess.run(["userdel", "-r", "-f", USER], check=False, capture_output=True)
                shutil.rmtree(f"/tmp/{USER}-xdg", ignore_errors=True)
        except KeyError:
            pass
        subprocess.run([*PODMAN, "rmi", "-f", "localhost/bbbench:1"], capture_output=True, check=False)
        if added:
            subids.drop_user_ranges("containers")
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(str(root) + "-run", ignore_errors=True)
    return 0


DEBIAN_TAR = Path(os.environ.get("DOCKERBANK_TEST_CACHE", "/var/cache/dockerbank-test")) / "debian-bookworm-minbase.tar"


def _layer_size(root: Path) -> tuple[int, int]:
    """(bytes, entries) of the image layers under ``root`` (what the copy road copies)."""
    total = entries = 0
    for dirpath, dirnames, filenames in os.walk(root / "layers"):
        for name in (*dirnames, *filenames):
            entries += 1
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total, entries


def _copy_split(root: Path, scratch: Path) -> tuple[float, float, float]:
    """Medians of 3 of (cp -a, owner shift, removal) of the largest layer of ``root``."""
    import statistics
    import time

    from dockerbank.host import layercopy

    maps = [{"containerID": 0, "hostID": 300000, "size": 65536}]
    layer = max((p / "diff" for p in (root / "layers").iterdir() if (p / "diff").is_dir()),
                key=lambda p: sum(1 for _ in os.walk(p)))
    samples: list[tuple[float, float, float]] = []
    for _ in range(3):
        os.sync()
        start = time.perf_counter()
        sh("cp", "-a", "--reflink=auto", str(layer), str(scratch))
        copied = time.perf_counter()
        layercopy.shift_tree(scratch, maps, maps)
        shifted = time.perf_counter()
        shutil.rmtree(scratch)
        samples.append((copied - start, shifted - copied, time.perf_counter() - shifted))
    return tuple(statistics.median(s[i] for s in samples) for i in range(3))  # type: ignore[return-value]


def copy_road(rounds: int) -> int:
    """The copy road's section: ``DOCKERBANK_IDMAP=off`` against the ID-mapped road, same root."""
    import time

    from dockerbank.image.baseimage import busybox_rootfs_tar

    work = Path(tempfile.mkdtemp(prefix="dbbench-copy-", dir="/var/tmp"))
    os.chmod(work, 0o711)
    db = [sys.executable, "-m", "dockerbank"]
    images = [("busybox", busybox_rootfs_tar(work / "busybox.tar"))]
    if DEBIAN_TAR.exists():
        images.append(("Debian minbase", DEBIAN_TAR))
    roots = {label: work / f"root{i}" for i, (label, _tar) in enumerate(images)}
    try:
        sizes = {}
        for label, tar in images:
            env = dict(os.environ, DOCKERBANK_ROOT=str(roots[label]), DOCKERBANK_RUNROOT=str(roots[label]) + "-run")
            sh(*db, "import", str(tar), "img:1", env=env)
            sizes[label] = _layer_size(roots[label])
        cases = []
        for label, _tar in images:
            root = roots[label]
            base = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
            copy_env = dict(base, DOCKERBANK_IDMAP="off")
            mapped_env = dict(base, DOCKERBANK_IDMAP="on")

            def settled(root: Path = root) -> None:
                """Untimed: the detached teardown of the last --rm (its unmount, and on the copy road
                the removal of its mapping's copies) is over, so the next run gets a new copy."""
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    copies = root / "overlay-idmap"
                    present = set(os.listdir(root / "containers"))
                    busy = [name for name in present if name.startswith(".rm-")]
                    for folder in (p for p in copies.iterdir() if p.is_dir()) if copies.is_dir() else ():
                        users = os.listdir(folder / "users") if (folder / "users").is_dir() else []
                        busy += [folder.name] if not users or set(users) - present else []
                    if not busy:
                        return
                    time.sleep(0.05)
                raise RuntimeError(f"the teardown of a --rm container in {root} did not finish")

            run = ["run", "--rm", "--userns=auto", "--network", "none", "img:1", "true"]
            cases += [
                Case(f"{label}: run --rm, new mapping", "dockerbank",
                     lambda e=copy_env: sh(*db, *run, env=e), after=settled),
                Case(f"{label}: run --rm, new mapping", "ID-mapped",
                     lambda e=mapped_env: sh(*db, *run, env=e), after=settled),
            ]
            sh(*db, "create", "--name", "copied", "--userns=auto", "--network", "none", "img:1", "true", env=copy_env)
            sh(*db, "create", "--name", "mapped", "--userns=auto", "--network", "none", "img:1", "true", env=mapped_env)
            cases += [
                Case(f"{label}: start -a, the mapping's copies made", "dockerbank",
                     lambda e=copy_env: sh(*db, "start", "-a", "copied", env=e)),
                Case(f"{label}: start -a, the mapping's copies made", "ID-mapped",
                     lambda e=mapped_env: sh(*db, "start", "-a", "mapped", env=e)),
            ]
        for case in cases:   # warm: the start rows' first start makes the copies
            case.run()
            if case.after:
                case.after()
        load_before = os.getloadavg()[0]
        results = run_cases(cases, rounds)
        load_after = os.getloadavg()[0]
        split = _copy_split(roots[images[-1][0]], work / "split")
        described = "; ".join(f"{label} {size / 1e6:.1f} MB in {entries} entries"
                              for label, (size, entries) in sizes.items())
        notes = [
            "dockerbank: the copy road (`DOCKERBANK_IDMAP=off`), what kernels whose overlayfs cannot ID-map lower "
            "layers (< 5.19) get: at the first mount of a mapping each image layer is copied (`cp -a`) and its "
            "owners shifted into the mapping (setuid bits and file capabilities put back), shared by the "
            "mapping's containers and removed with the last one. ID-mapped: the same root and image on this "
            "kernel's road (`DOCKERBANK_IDMAP=on`), nothing copied.",
            f"Image layers (disk usage): {described}. Where the time goes ({images[-1][0]}, median of 3, after "
            f"the rounds): `cp -a` {split[0]:.2f} s, the owner shift {split[1]:.2f} s, removing the copy "
            f"{split[2]:.2f} s (in the detached teardown, after `run --rm` returned): the copy is this VM disk's "
            "write speed, the shift is small.",
            "`run --rm, new mapping`: every round copies anew (the previous container's copies are gone: the "
            "untimed wait after each run lets its detached teardown finish); `start -a`: a created container whose "
            "first start (warm-up) made its mapping's copies, started again (`true`).",
            "podman 4.3 has no switch to its chown road on a kernel with ID-mapped mounts, and its fuse-overlayfs "
            "road as root failed here (runc: permission denied on merged/etc/hosts), so no peer column.",
            "`os.sync()` before each timing (the harness): the copies' write-back is not charged to the next row. "
            f"Host load (1 min) {load_before:.2f} before, {load_after:.2f} after; 2 CPUs shared with other sessions.",
        ]
        text = section("userns_copy_road", "User namespaces: the copy road of --userns=auto (issue 21)", results,
                       ["dockerbank", "ID-mapped"], rounds, notes)
        write_section("userns_copy_road", text)
        print(text)
    finally:
        for root in roots.values():
            env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
            subprocess.run([*db, "rm", "-f", "copied", "mapped"], env=env, capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
        for root in roots.values():
            shutil.rmtree(str(root) + "-run", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
