"""Subordinate ID ranges (``/etc/subuid``, ``/etc/subgid``): parsed and chosen by pure functions,
read and appended by two small ones.

Root's user-namespaced containers take their host IDs from the ranges of the user ``dockerbank``
(Podman uses ``containers``, Docker's userns-remap ``dockremap``). When that user has no range
yet, the first ``--userns=auto`` adds one in both files, above every range already given out, so
no ordinary user's rootless containers ever share IDs with root's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dockerbank.errors import InvalidArgument

SUBUID = Path("/etc/subuid")
SUBGID = Path("/etc/subgid")
USER = "dockerbank"
#: what the first use adds: 2^16 containers of 65536 IDs each, above 2^31 (Podman's advice for its
#: ``containers`` user), far above useradd's ranges (SUB_UID_MIN 100000 .. SUB_UID_MAX 600100000)
DEFAULT_START = 2 ** 31
DEFAULT_COUNT = 2 ** 30
ID_MAX = 2 ** 32 - 2        # (uid_t)-1 is "no ID"


@dataclass(frozen=True)
class Range:
    """One line of a subordinate ID file."""

    owner: str
    start: int
    count: int

    @property
    def end(self) -> int:
        return self.start + self.count


def parse(text: str) -> list[Range]:
    """The well-formed lines of ``/etc/subuid`` text (``name:start:count``), pure; others are skipped
    like shadow's tools do."""
    ranges = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit() or not parts[0]:
            continue
        ranges.append(Range(parts[0], int(parts[1]), int(parts[2])))
    return ranges


def of_user(ranges: list[Range], names: tuple[str, ...]) -> list[Range]:
    """The ranges given to a user (by name or numeric ID, as shadow accepts both), in file order."""
    return [r for r in ranges if r.owner in names and r.count > 0]


def free_start(ranges: list[Range], count: int) -> int | None:
    """Where a new range of ``count`` IDs may start without overlapping any existing one, pure:
    at ``DEFAULT_START`` when that is free, else above the highest range; None when nothing fits."""
    def clashes(start: int) -> bool:
        return any(start < r.end and r.start < start + count for r in ranges)

    if not clashes(DEFAULT_START) and DEFAULT_START + count <= ID_MAX:
        return DEFAULT_START
    top = max((r.end for r in ranges), default=0)
    start = -(-top // 65536) * 65536
    return start if start + count <= ID_MAX else None


def read(path: Path) -> list[Range]:
    """The ranges of one file; a missing file has none."""
    try:
        return parse(path.read_text())
    except FileNotFoundError:
        return []


def _names(user: str) -> tuple[str, ...]:
    import pwd

    try:
        return (user, str(pwd.getpwnam(user).pw_uid))
    except KeyError:
        return (user,)


def user_ranges(user: str = USER, *, uid_file: Path = SUBUID, gid_file: Path = SUBGID) -> tuple[list[Range], list[Range]]:
    """The user's subordinate UID and GID ranges."""
    names = _names(user)
    return of_user(read(uid_file), names), of_user(read(gid_file), names)


def ensure_user_ranges(user: str = USER, *, uid_file: Path = SUBUID, gid_file: Path = SUBGID,
                       count: int = DEFAULT_COUNT) -> tuple[list[Range], list[Range], bool]:
    """The user's ranges, adding ``count`` IDs to both files when the user has none in
    either (the same start in both, free in both). Returns (uids, gids, added). A user with a
    range in only one file is an operator's half-done edit: one line says what to add, nothing
    is written."""
    uids, gids = user_ranges(user, uid_file=uid_file, gid_file=gid_file)
    if uids and gids:
        return uids, gids, False
    if uids or gids:
        missing, present = (gid_file, uid_file) if uids else (uid_file, gid_file)
        raise InvalidArgument(f"user {user} has subordinate IDs in {present} but none in {missing}: "
                              f"add a line '{user}:<start>:<count>' to {missing}", exit_code=125)
    start = free_start(read(uid_file) + read(gid_file), count)
    if start is None:
        raise InvalidArgument(f"no free range of {count} subordinate IDs for user {user}: add a line "
                              f"'{user}:<start>:<count>' to {uid_file} and {gid_file}", exit_code=125)
    line = f"{user}:{start}:{count}\n"
    written: list[tuple[Path, str | None]] = []
    try:
        for path in (uid_file, gid_file):
            old = path.read_text() if path.exists() else None
            _write(path, (old or "") + ("" if not old or old.endswith("\n") else "\n") + line)
            written.append((path, old))
    except OSError as exc:
        for path, old in written:  # nothing half-created: the first file goes back as it was
            if old is None:
                path.unlink(missing_ok=True)
            else:
                _write(path, old)
        raise InvalidArgument(f"cannot add subordinate IDs for user {user} to {exc.filename or uid_file}: "
                              f"{exc.strerror}; add the line '{line.strip()}' to {uid_file} and {gid_file}",
                              exit_code=125) from None
    uids, gids = user_ranges(user, uid_file=uid_file, gid_file=gid_file)
    return uids, gids, True


def _write(path: Path, text: str) -> None:
    """Replace ``path`` through a temporary name (mode 0644 like shadow's files)."""
    tmp = path.with_name(path.name + ".dockerbank-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@dataclass(frozen=True)
class ModeFacts:
    """What ``system info`` and ``audit host`` say about user namespaces and rootless mode."""

    rootless: bool                 # this process is not root
    ranges: list[Range]            # the dockerbank user's subordinate UIDs (empty: added at first use)
    layers: str                    # how --userns=auto containers get their image layers (idmaproad.Road)
    default_userns: str            # the root's default --userns ("host" when never set)
    unshare: bool                  # util-linux's unshare(1), which makes the mapping namespaces
    slirp: bool = True             # slirp4netns: rootless networks' way out and published ports
    limits: str = ""               # rootless: which cgroup controllers it may use (cgdelegation statement)
    limits_full: bool = False      # rootless: every controller Docker's limits need is delegated

    def lines(self) -> list[str]:
        """The ``system info`` lines (pure)."""
        if self.rootless:
            from dockerbank.host.rootless import ROOTLESS_NETWORK

            given = ", ".join(f"{r.start}-{r.end - 1}" for r in self.ranges) or "none"
            nets = ("Rootless Networks: bridge and user networks (DNS) in the user's own network namespace; "
                    "slirp4netns is the way out and carries published ports" if self.slirp
                    else f"Rootless Networks: internal only: {ROOTLESS_NETWORK}")
            return [f" Rootless: true (the user is root of its own user namespace; its subordinate IDs {given} "
                    "are IDs 1.. there)", f" {nets}", f" Rootless Limits: {self.limits}"]
        if self.ranges:
            given = ", ".join(f"{r.start}-{r.end - 1}" for r in self.ranges)
            source = f"user {USER} in {SUBUID}: {given}"
        else:
            source = f"user {USER} has none yet: the first --userns=auto adds {DEFAULT_COUNT} IDs to {SUBUID}, {SUBGID}"
        layers = self.layers
        return [" Rootless: false (root's engine)",
                f" User Namespaces: default --userns={self.default_userns}; auto: {source}; {layers}"
                + ("" if self.unshare else "; unshare(1) missing (util-linux)")]


def mode_facts(default_userns: str, root: Path) -> ModeFacts:
    """Gather :class:`ModeFacts` from the host (``default_userns``: the root's setting; ``root``:
    whose cached answer says which road the image layers of --userns=auto take)."""
    import shutil

    from dockerbank.host.rootless import rootless_uid, user_name

    default = default_userns or "host"
    uid = rootless_uid()
    ranges = user_ranges(user_name(uid))[0] if uid is not None else user_ranges()[0]
    layers = ""
    if uid is None:   # a rootless engine has no --userns=auto (its containers share the user's namespace)
        from dockerbank.host.idmaproad import road

        layers = road(root).describe()
    limits, full = "", False
    if uid is not None:
        from dockerbank.host.cgdelegation import current

        limits, full = current().statement(), not current().missing
    return ModeFacts(uid is not None, ranges, layers, default,
                     shutil.which("unshare") is not None, shutil.which("slirp4netns") is not None, limits, full)


def drop_user_ranges(user: str, *, uid_file: Path = SUBUID, gid_file: Path = SUBGID) -> None:
    """Remove the user's lines from both files (what a benchmark added for a peer)."""
    for path in (uid_file, gid_file):
        lines = path.read_text().splitlines(keepends=True)
        _write(path, "".join(line for line in lines if not line.startswith(f"{user}:")))
