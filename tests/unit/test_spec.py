"""The pure OCI spec builder: Docker's defaults and every option mapped to the runtime config."""

from __future__ import annotations

import pytest

from dockerbank.errors import InvalidArgument
from dockerbank.runtime import spec as sp
from dockerbank.runtime.detect import decide


def cfg(**kw):
    base = {"path": "sh", "args": ["-c", "true"], "env": [], "hostname": "abc"}
    base.update(kw)
    return base


def build(config=None, **inputs):
    return sp.build_spec(config or cfg(), sp.SpecInputs(rootfs="/r", **inputs))


def test_default_namespaces_caps_and_paths():
    spec = build()
    kinds = [n["type"] for n in spec["linux"]["namespaces"]]
    assert sorted(kinds) == ["ipc", "mount", "network", "pid", "uts"]
    assert spec["process"]["capabilities"]["bounding"] == list(sp.DEFAULT_CAPS)
    assert "CAP_SYS_ADMIN" not in spec["process"]["capabilities"]["effective"]
    assert "/proc/kcore" in spec["linux"]["maskedPaths"]
    assert "/proc/sys" in spec["linux"]["readonlyPaths"]
    dests = [m["destination"] for m in spec["mounts"]]
    for path in ("/proc", "/dev", "/dev/pts", "/sys", "/dev/shm", "/dev/mqueue"):
        assert path in dests
    assert spec["process"]["args"] == ["sh", "-c", "true"]
    assert spec["process"]["env"][0].startswith("PATH=")
    assert "HOSTNAME=abc" in spec["process"]["env"]
    assert spec["hostname"] == "abc"
    assert spec["root"] == {"path": "/r", "readonly": False}


def test_seccomp_default_profile_follows_caps():
    spec = build()
    seccomp = spec["linux"]["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO"
    assert seccomp["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = {n for rule in seccomp["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" and "args" not in rule
             for n in rule["names"]}
    assert "read" in names and "arch_prctl" in names
    assert "mount" not in names and "unshare" not in names and "reboot" not in names
    clone3 = [r for r in seccomp["syscalls"] if r["names"] == ["clone3"]]
    assert clone3 == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    admin = sp.seccomp_for(sp.capabilities(["SYS_ADMIN"], [], False))
    admin_names = {n for rule in admin["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for n in rule["names"]}
    assert "mount" in admin_names and "unshare" in admin_names
    assert not [r for r in admin["syscalls"] if r["names"] == ["clone3"]]


def test_rlimits_clamped_to_host_hard_limit():
    assert build(hard_limits={"RLIMIT_NOFILE": 20000})["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000}]
    assert build(hard_limits={"RLIMIT_NOFILE": 10 ** 7})["process"]["rlimits"][0]["hard"] == sp.DEFAULT_NOFILE


def test_resources_limits():
    res = build(cfg(memory=64 << 20, nano_cpus=1_500_000_000, cpu_shares=512, pids_limit=50,
                    blkio_weight=300))["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert res["cpu"] == {"period": 100000, "quota": 150000, "shares": 512}
    assert res["pids"] == {"limit": 50}
    assert res["blockIO"] == {"weight": 300}
    res = build(cfg(memory=64 << 20, memory_swap=-1, blkio_weight=300), has_swap_limit=True,
                has_blkio_weight=False)["linux"]["resources"]
    assert res["memory"]["swap"] == -1 and "blockIO" not in res
    res = build(cfg(memory=64 << 20, memory_swap=100 << 20), has_swap_limit=False)["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20}


def test_device_rules_have_no_negative_wildcards():
    for rule in build()["linux"]["resources"]["devices"]:
        assert rule.get("major", 0) >= 0 and rule.get("minor", 0) >= 0


def test_cap_add_drop_and_all():
    assert "CAP_NET_ADMIN" in sp.capabilities(["net_admin"], [], False)
    assert "CAP_CHOWN" not in sp.capabilities([], ["CHOWN"], False)
    assert sp.capabilities([], ["ALL"], False) == []
    assert sp.capabilities(["NET_RAW"], ["ALL"], False) == ["CAP_NET_RAW"]
    assert sp.capabilities(["ALL"], [], False) == list(sp.ALL_CAPS)
    with pytest.raises(InvalidArgument):
        sp.capabilities(["NOPE"], [], False)


def test_privileged_read_only_no_new_privs_and_host_network():
    spec = build(cfg(privileged=True, read_only=True, security_opt=["no-new-privileges"]), netns=None)
    assert "seccomp" not in spec["linux"]
    assert spec["linux"]["maskedPaths"] == []
    assert spec["process"]["capabilities"]["bounding"] == list(sp.ALL_CAPS)
    assert spec["process"]["noNewPrivileges"] is True
    assert spec["root"]["readonly"] is True
    assert "network" not in [n["type"] for n in spec["linux"]["namespaces"]]
    assert spec["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]


def test_user_mounts_override_defaults_and_etc_files_and_init():
    spec = build(mounts=[{"destination": "/dev/shm", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}],
                 etc_files={"/etc/hosts": "/x/hosts"}, init_path="/usr/bin/tini", uid=1000, gid=1000,
                 additional_gids=(10,))
    shm = [m for m in spec["mounts"] if m["destination"] == "/dev/shm"]
    assert shm == [{"destination": "/dev/shm", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}]
    assert {"destination": "/etc/hosts", "type": "bind", "source": "/x/hosts",
            "options": ["rbind", "rprivate"]} in spec["mounts"]
    assert spec["process"]["args"][:2] == ["/dev/init", "--"]
    assert spec["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [10]}


def test_uid_mappings_add_user_namespace():
    maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    spec = build(uid_mappings=maps, gid_mappings=maps)
    assert {"type": "user"} in spec["linux"]["namespaces"]
    assert spec["linux"]["uidMappings"] == maps


def test_tty_sets_term_and_terminal():
    spec = build(cfg(tty=True))
    assert spec["process"]["terminal"] is True and "TERM=xterm" in spec["process"]["env"]


def test_runtime_detection_prefers_crun_with_workaround_on_hybrid():
    hybrid = ("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
              "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n")
    v2 = "31 23 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    both = {"crun": "/usr/bin/crun", "runc": "/usr/bin/runc"}
    assert decide(hybrid, both).private_ns is True and decide(hybrid, both).name == "crun"
    assert decide(v2, both).private_ns is False
    assert decide(hybrid, {"runc": "/usr/bin/runc"}).name == "runc"
    assert decide(hybrid, both, forced="runc").name == "runc"


def test_caps_limited_to_the_host_bounding_set():
    host = sp.caps_of_mask(0x000001FFFEFFFFFF)  # this build host: no CAP_SYS_RESOURCE
    assert "CAP_SYS_RESOURCE" not in host and "CAP_SYS_ADMIN" in host
    spec = build(cfg(privileged=True), host_caps=host)
    assert "CAP_SYS_RESOURCE" not in spec["process"]["capabilities"]["bounding"]
    assert "CAP_SYS_ADMIN" in spec["process"]["capabilities"]["bounding"]
