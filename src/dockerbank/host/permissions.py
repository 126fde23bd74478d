"""Dockerbank's directories, closed to other users of the host.

Docker's data directory once let any local user walk containers' root filesystems and run their
setuid programs (CVE-2021-41091; Docker closed it with a 0710 ``/var/lib/docker``), and Podman keeps
its storage 0700. Dockerbank holds research data (volumes, backups) and secrets (``-e`` passwords
in container configs), so its root, run root, backup repositories and registry storage are 0700,
and the files that carry data or secrets are 0600 below them as a second wall.

Containers are unaffected: crun sets up their mounts as root, and a process inside reaches its
volumes through its own mount namespace, never through these host paths. A user-namespaced
container (``--userns=auto``) is the exception: its runtime works as the container's root, an
unprivileged host ID that must walk to its root filesystem, /etc files and volumes. For it the
root and the containers and volumes directories become 0711 (enter, never list: Docker's
userns-remap does the same) and its own directories 0710 with the group of its root, a
subordinate ID that no real user has, so still no other user reads anything.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dockerbank import faults

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from collections.abc import Iterable

    from dockerbank.config import Config

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
TRAVERSE_DIR = 0o711     # the root and the containers/volumes directories once --userns=auto is used
USERNS_DIR = 0o710       # a user-namespaced container's or volume's directory (group: its root)


def open_to_others(mode: int, wanted: int) -> int:
    """The permission bits of ``mode`` beyond ``wanted`` (0 when closed enough), pure."""
    return stat.S_IMODE(mode) & ~wanted & 0o777


def private_dir(path: Path, allow: int = PRIVATE_DIR) -> Path:
    """``path`` as a directory only its owner can enter: created 0700 (with missing parents),
    or tightened when it exists with more bits than ``allow`` and belongs to us. Returns ``path``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)  # e.g. <root>/containers: closed too
        try:
            os.mkdir(path, PRIVATE_DIR)
        except FileExistsError:
            pass  # a concurrent command made it: its mode is checked below
        st = os.stat(path)
    if open_to_others(st.st_mode, allow) and st.st_uid == os.geteuid():
        os.chmod(path, PRIVATE_DIR)  # another user's directory is theirs to close: check reports it
    return path


def write_private(path: Path, data: bytes | str) -> None:
    """Write ``path`` (0600, created or truncated) through a temporary name, so a reader sees the
    old content or the new, never a half-written file, and no other user ever sees it."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)  # an old tmp file of a crashed writer may have had other bits
        os.write(fd, data.encode() if isinstance(data, str) else data)
    finally:
        os.close(fd)
    faults.point("file.written")
    os.replace(tmp, path)


def create_private_file(path: Path) -> None:
    """Make sure ``path`` exists and is 0600 (before a library such as SQLite creates it 0644;
    SQLite gives its -wal and -shm files the database file's mode)."""
    # Never open an existing database here: closing any descriptor of a file drops every POSIX
    # lock this process holds on it (SQLite's locks of another Engine in another thread), and a
    # writer of another process then corrupts the database. Create with O_EXCL, chmod by path.
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE))
        return
    except FileExistsError:
        pass
    if open_to_others(os.stat(path).st_mode, PRIVATE_FILE):
        os.chmod(path, PRIVATE_FILE)


def close_root(config: Config) -> None:
    """Create or close the root and the run root; called when an engine first opens its root.

    Costs two ``stat`` calls when both are closed. A root left open by an older Dockerbank (or by
    a hand's chmod) is closed at once, and its sensitive files are tightened with it."""
    loose = [path for path, allow in ((config.root, TRAVERSE_DIR), (config.run_root, PRIVATE_DIR))
             if _is_open(path, allow)]
    private_dir(config.root, TRAVERSE_DIR)
    private_dir(config.run_root)
    if loose:
        tighten(config)


def _is_open(path: Path, allow: int = PRIVATE_DIR) -> bool:
    try:
        return bool(open_to_others(os.stat(path).st_mode, allow))
    except FileNotFoundError:
        return False


def sensitive_paths(config: Config) -> Iterable[tuple[Path, int]]:
    """Each path that must be closed and the most it may allow: the root and run root, the state
    database with its WAL files, every container's directory with its runtime config (environment
    variables: passwords), exec specs and logs, and every volume's directory (user data)."""
    yield config.root, TRAVERSE_DIR
    yield config.run_root, PRIVATE_DIR
    yield config.containers_dir, TRAVERSE_DIR
    yield config.volumes_dir, TRAVERSE_DIR
    subgids = _subordinate_gids()
    for suffix in ("", "-wal", "-shm"):
        yield config.db_path.with_name(config.db_path.name + suffix), PRIVATE_FILE
    yield config.root / "events.jsonl", PRIVATE_FILE
    yield config.root / "events.jsonl.1", PRIVATE_FILE
    for base, names in ((config.containers_dir, ("config.json", "ctr.log")), (config.volumes_dir, ())):
        for entry in _children(base):
            yield entry, USERNS_DIR if _gid_of(entry) in subgids else PRIVATE_DIR
            for name in names:
                yield entry / name, PRIVATE_FILE
            for session in _children(entry / "exec"):
                yield session / "process.json", PRIVATE_FILE
                yield session / "exec.log", PRIVATE_FILE


class _Ranges:
    """Membership in the ``dockerbank`` user's subordinate GIDs (the groups of user-namespaced
    containers' directories)."""

    def __init__(self, ranges: list[tuple[int, int]]):
        self.ranges = ranges

    def __contains__(self, gid: object) -> bool:
        return isinstance(gid, int) and any(start <= gid < end for start, end in self.ranges)


def _subordinate_gids() -> _Ranges:
    from dockerbank.host import subids

    return _Ranges([(r.start, r.end) for r in subids.user_ranges()[1]])


def _gid_of(path: Path) -> int:
    try:
        return os.lstat(path).st_gid
    except OSError:
        return 0


def _children(path: Path) -> list[Path]:
    try:
        return [entry for entry in path.iterdir() if entry.is_dir() and not entry.is_symlink()]
    except OSError:
        return []


def findings(config: Config, repair: bool) -> list[str]:
    """``system check`` and ``audit host``: one line per path open to other users (closed when
    ``repair``)."""
    lines = []
    for path, wanted in sensitive_paths(config):
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            continue
        extra = open_to_others(st.st_mode, wanted)
        if not extra:
            continue
        lines.append(f"{path} is mode {stat.S_IMODE(st.st_mode):04o}, open to other users (want {wanted:04o})"
                     + (": closed" if repair else ""))
        if repair:
            os.chmod(path, wanted)
    return lines


def tighten(config: Config) -> None:
    """Close every sensitive path of a root at once (an older root, or a loosened one)."""
    findings(config, repair=True)
