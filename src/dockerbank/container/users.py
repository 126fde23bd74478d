"""``-u user[:group]`` resolved against the image's /etc/passwd and /etc/group (pure parsing)."""

from __future__ import annotations

from dockerbank.errors import InvalidArgument


def _entries(text: str, minimum: int) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= minimum:
            rows.append(parts)
    return rows


def resolve_user(spec: str, passwd: str, group: str) -> tuple[int, int, tuple[int, ...]]:
    """(uid, gid, additional gids) for ``spec`` like Docker (runc's user.GetExecUser).

    Numeric values need no entry (an unknown uid gets gid 0, as docker gives it); names must exist.
    The supplementary groups are the primary group, then the groups listing the user by name (what
    docker hands the runtime: ``id`` shows ``groups=0(root)`` for root).
    """
    user, _, grp = (spec or "0").partition(":")
    users = _entries(passwd, 7)
    groups = _entries(group, 4)
    uid, gid, name = 0, 0, "root"
    if user.isdigit():
        uid = int(user)
        match = next((u for u in users if u[2] == user), None)
        if match:
            gid, name = int(match[3]), match[0]
        else:
            gid, name = 0, ""
    else:
        match = next((u for u in users if u[0] == user), None)
        if match is None:
            raise InvalidArgument(f"unable to find user {user}: no matching entries in passwd file", exit_code=126)
        uid, gid, name = int(match[2]), int(match[3]), user
    if grp:
        if grp.isdigit():
            gid = int(grp)
        else:
            match = next((g for g in groups if g[0] == grp), None)
            if match is None:
                raise InvalidArgument(f"unable to find group {grp}: no matching entries in group file", exit_code=126)
            gid = int(match[2])
    extra = tuple(sorted({int(g[2]) for g in groups if name and name in g[3].split(",") and int(g[2]) != gid}))
    return uid, gid, (gid, *extra)
