"""--userns=auto: root's containers in user namespaces of their own (issue 21, item 1).

Real crun/runc, real ID-mapped overlay layers, real /etc/subuid: the first --userns=auto of a host
adds the ``dockerbank`` user's range (the same line scripts/setup.sh would add).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest

from dockerbank.host import subids
from tests.conftest import remove_containers, require_binary, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def uroot(busybox_tar):
    """A root holding busybox under directories every user may enter (pytest's tmp dirs are 0700:
    a container's unprivileged root could not walk through them to its root filesystem)."""
    require_binary("conmon")
    base = Path(tempfile.mkdtemp(prefix="dbuserns-", dir="/var/tmp"))
    os.chmod(base, 0o711)
    root = base / "root"
    with open(busybox_tar, "rb") as handle:
        run_cli(root, "import", "-", "busybox:latest", input=handle.read())
    yield root
    remove_containers(root)
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(str(root) + "-run", ignore_errors=True)


def db(root: Path, *args: str, **kwargs):
    return run_cli(root, *args, **kwargs)


def inspect(root: Path, name: str) -> dict:
    return json.loads(db(root, "inspect", name).stdout)[0]


def test_root_in_the_container_is_a_subordinate_id_on_the_host(uroot):
    out = db(uroot, "run", "--name", "ua", "--userns=auto", "--network", "none", "-v", "data:/data", "busybox", "sh",
             "-c", "cat /proc/self/uid_map; id -u; stat -c %u /bin/busybox; echo x > /f; echo y > /data/v; "
                   "chmod 600 /data/v").stdout.decode().split()
    inner, host, size = int(out[0]), int(out[1]), int(out[2])
    uids = subids.user_ranges()[0]
    assert inner == 0 and size == 65536 and any(r.start <= host and host + size <= r.end for r in uids)
    assert out[3:5] == ["0", "0"]          # root inside, and the image's files are root's (ID-mapped layer)
    container = inspect(uroot, "ua")
    assert container["HostConfig"]["UsernsMode"] == "auto"
    upper = Path(container["GraphDriver"]["Data"]["UpperDir"])
    written = os.stat(upper / "f")
    assert (written.st_uid, written.st_gid) == (host, os.stat(upper).st_gid) and written.st_uid != 0
    volume = uroot / "volumes" / "data" / "_data"
    assert os.stat(volume / "v").st_uid == host and os.stat(volume).st_uid == host
    # the shared image layer on disk is unchanged: still host root's
    lower = Path(container["GraphDriver"]["Data"]["LowerDir"].split(":")[-1])
    assert os.stat(lower / "bin" / "busybox").st_uid == 0
    # nothing opened to other users: enter-only root, container directory only for its root's group
    assert stat.S_IMODE(os.stat(uroot).st_mode) == 0o711
    cdir = upper.parent
    assert stat.S_IMODE(os.stat(cdir).st_mode) == 0o710 and os.stat(cdir).st_gid != 0
    assert stat.S_IMODE(os.stat(uroot / "volumes" / "data").st_mode) == 0o710
    check = db(uroot, "system", "check", "--dry-run", check=False).stdout.decode()
    assert "open to other users" not in check     # (other roots' leftovers in the shared cgroup may show)
    assert not [f for f in json.loads(db(uroot, "audit", "host", "--format", "json").stdout)["Findings"]
                if f["rule"] == "root-dir-perms"]
    # cp into it: the files become the container root's (host: its subordinate ID), not nobody's
    source = uroot.parent / "cp-source"
    source.write_text("copied\n")
    db(uroot, "cp", str(source), "ua:/copied")
    assert os.stat(upper / "copied").st_uid == host
    # commit writes the container's view of owners (0), never the subordinate host IDs
    db(uroot, "commit", "ua", "snap:1")
    saved = db(uroot, "save", "snap:1").stdout
    owners = set()
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        for member in outer.getmembers():
            if member.name.endswith(".tar") or "/blobs/" in member.name:
                data = outer.extractfile(member)
                try:
                    with tarfile.open(fileobj=io.BytesIO(data.read() if data else b"")) as layer:
                        owners |= {(m.name, m.uid) for m in layer.getmembers()}
                except tarfile.TarError:
                    continue
    assert ("f", 0) in owners and not [o for o in owners if o[1] >= 65536]


def test_a_container_of_one_mapping_cannot_read_anothers_files(uroot, tmp_path):
    shared = Path(tempfile.mkdtemp(dir="/var/tmp"))
    try:
        os.chmod(shared, 0o1777)
        db(uroot, "run", "-d", "--name", "one", "--userns=auto", "--network", "none", "-v", f"{shared}:/s", "busybox",
           "sh", "-c", "echo secret > /s/own; chmod 600 /s/own; touch /s/done; sleep 60")
        import time

        deadline = time.monotonic() + 20
        while not (shared / "done").exists():
            assert time.monotonic() < deadline, "the first container never wrote its file"
            time.sleep(0.05)
        other = db(uroot, "run", "--rm", "--userns=auto", "--network", "none", "-v", f"{shared}:/s", "busybox", "sh",
                   "-c", "cat /proc/self/uid_map; cat /s/own", check=False)
        first = inspect(uroot, "one")["State"]["Pid"]
        mine = Path(f"/proc/{first}/uid_map").read_text().split()
        theirs = other.stdout.decode().split()
        assert theirs[1] != mine[1]                      # another range, allocated without overlap
        assert int(theirs[1]) >= int(mine[1]) + int(mine[2]) or int(theirs[1]) + int(theirs[2]) <= int(mine[1])
        assert other.returncode == 1 and b"Permission denied" in other.stderr and b"secret" not in other.stdout
        # the same file, read by a container of the first one's mapping is fine
        assert db(uroot, "exec", "one", "cat", "/s/own").stdout == b"secret\n"
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_userns_bad_input_is_one_line_and_creates_nothing(uroot):
    before = db(uroot, "ps", "-aq").stdout
    for args, words in ((["--userns=auto:size=2147483648"], "no free range"), (["--userns=keep-id"], "invalid USER mode"),
                        (["--userns=auto", "--privileged"], "incompatible"),
                        (["--userns=auto", "--network", "host"], "incompatible")):
        done = db(uroot, "run", "--rm", *args, "busybox", "true", check=False)
        err = done.stderr.decode()
        assert done.returncode == 125 and words in err and len(err.strip().splitlines()) == 1, err
    assert db(uroot, "ps", "-aq").stdout == before
    assert not [p for p in (uroot / "containers").iterdir()] if (uroot / "containers").exists() else True
    # the root-wide default
    assert db(uroot, "system", "userns-default").stdout == b"host\n"
    db(uroot, "system", "userns-default", "auto")
    assert db(uroot, "run", "--rm", "--network", "none", "busybox", "cat", "/proc/self/uid_map").stdout.split()[1] != b"0"
    assert db(uroot, "run", "--rm", "--userns=host", "--network", "none", "busybox", "cat",
              "/proc/self/uid_map").stdout.split()[:2] == [b"0", b"0"]
    info = db(uroot, "info").stdout.decode()
    assert "Rootless: false" in info and "default --userns=auto" in info


COPY_ROAD = {"DOCKERBANK_IDMAP": "off"}   # the fallback of kernels that cannot ID-map overlay layers


def _wait(condition, what: str, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_the_copy_road_keeps_the_same_properties_and_removes_copies_with_the_last_user(uroot):
    shared = Path(tempfile.mkdtemp(dir="/var/tmp"))
    copies = uroot / "overlay-idmap"
    try:
        os.chmod(shared, 0o1777)
        db(uroot, "run", "-d", "--name", "one", "--userns=auto", "--network", "none", "-v", f"{shared}:/s", "busybox",
           "sh", "-c", "stat -c %u:%g /bin/busybox > /s/owner; echo secret > /s/own; chmod 600 /s/own; echo x > /f; "
                       "touch /s/done; sleep 60", env=COPY_ROAD)
        _wait(lambda: (shared / "done").exists(), "the first container never wrote its file")
        assert (shared / "owner").read_text() == "0:0\n"        # the image's files are root's inside
        container = inspect(uroot, "one")
        host = int(Path(f"/proc/{container['State']['Pid']}/uid_map").read_text().split()[1])
        upper = Path(container["GraphDriver"]["Data"]["UpperDir"])
        assert os.stat(upper / "f").st_uid == host and host != 0   # root's file: a subordinate ID on the host
        # the copy: one per mapping, owned by the mapping's root; the shared layer on disk unchanged
        [folder] = [p for p in copies.iterdir() if p.is_dir()]
        layer = next(p for p in folder.iterdir() if p.name != "users")
        assert os.stat(layer / "bin" / "busybox").st_uid == host and os.stat(folder / "users" / container["Id"])
        lower = Path(container["GraphDriver"]["Data"]["LowerDir"].split(":")[-1])
        assert os.stat(lower / "bin" / "busybox").st_uid == 0
        # a second mapping: its own copy, and the first one's file stays unreadable to it
        other = db(uroot, "run", "--rm", "--userns=auto", "--network", "none", "-v", f"{shared}:/s", "busybox", "sh",
                   "-c", "cat /proc/self/uid_map; stat -c %u /bin/busybox; cat /s/own", check=False, env=COPY_ROAD)
        theirs = other.stdout.decode().split()
        assert int(theirs[1]) != host and theirs[3] == "0"
        assert other.returncode == 1 and b"Permission denied" in other.stderr and b"secret" not in other.stdout
        # the --rm container's copies go with it (its teardown runs after the command), the first one's stay
        _wait(lambda: [p.name for p in copies.iterdir() if p.is_dir()] == [folder.name],
              "the removed container's layer copies stayed")
        assert db(uroot, "exec", "one", "cat", "/s/own").stdout == b"secret\n"
        info = db(uroot, "info", env=COPY_ROAD).stdout.decode()
        assert "copied per mapping" in info and "DOCKERBANK_IDMAP=off" in info
        notes = json.loads(db(uroot, "audit", "host", "--format", "json", env=COPY_ROAD).stdout)["Notes"]
        assert "image layers copied per mapping" in notes[0]
        assert "image layers ID-mapped" in db(uroot, "audit", "host", check=False).stdout.decode()  # the kernel's road
        db(uroot, "rm", "-f", "one")
        assert not [p for p in copies.iterdir() if p.is_dir()]   # removed with the last user
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_a_shifted_layer_copy_keeps_links_devices_xattrs_setuid_and_capabilities(tmp_path):
    import struct

    from dockerbank.host.layercopy import copy_shifted

    src = tmp_path / "layer"
    (src / "d").mkdir(parents=True)
    os.setxattr(src / "d", "trusted.overlay.opaque", b"y")
    (src / "tool").write_bytes(b"#!/bin/sh\n")
    os.chmod(src / "tool", 0o4755)
    os.link(src / "tool", src / "d" / "tool-link")
    os.chown(src / "d", 1000, 1000)
    os.mknod(src / "gone", stat.S_IFCHR | 0o000, os.makedev(0, 0))     # an overlay whiteout
    os.symlink("tool", src / "ln")
    (src / "ping").write_bytes(b"")
    caps = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)          # cap_net_raw, effective (v2)
    os.setxattr(src / "ping", "security.capability", caps)
    maps = [{"containerID": 0, "hostID": 300000, "size": 65536}]
    copy_shifted(src, tmp_path / "copy", maps, maps)
    out = tmp_path / "copy"
    assert os.stat(out).st_uid == 300000 and os.stat(out / "d").st_uid == 301000
    assert os.getxattr(out / "d", "trusted.overlay.opaque") == b"y"
    st = os.stat(out / "tool")
    assert st.st_uid == 300000 and stat.S_IMODE(st.st_mode) == 0o4755 and st.st_nlink == 2   # shifted once
    assert os.stat(out / "d" / "tool-link").st_ino == st.st_ino
    gone = os.lstat(out / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0 and gone.st_uid == 300000
    assert os.readlink(out / "ln") == "tool" and os.lstat(out / "ln").st_uid == 300000
    value = os.getxattr(out / "ping", "security.capability")
    assert struct.unpack("<IIIIII", value)[0] >> 24 == 3 and struct.unpack("<IIIIII", value)[5] == 300000
    assert os.stat(src / "tool").st_uid == 0 and not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
