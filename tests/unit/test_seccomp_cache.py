"""The cache of crun's compiled seccomp programs (runtime/seccomp_cache.py), on plain files."""

import base64

from dockerbank.runtime.seccomp_cache import ANNOTATION, SeccompCache, cache_key, file_name

PROFILE = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}


def test_first_start_compiles_later_ones_carry_the_program(tmp_path):
    cache = SeccompCache(tmp_path / "cache", "/bin/true")
    spec = {"linux": {"seccomp": dict(PROFILE)}}
    key = cache.annotate(spec)
    assert key is not None and ANNOTATION not in spec.get("annotations", {})
    state = tmp_path / "state"
    state.mkdir()
    program = bytes(range(16))
    (state / "seccomp.bpf").write_bytes(program)
    cache.remember(key, state)
    again = {"linux": {"seccomp": dict(PROFILE)}, "annotations": {"io.container.manager": "dockerbank"}}
    assert cache.annotate(again) is None
    assert base64.b64decode(again["annotations"][ANNOTATION]) == program
    assert again["annotations"]["io.container.manager"] == "dockerbank"


def test_the_key_follows_profile_and_runtime_and_nothing_odd_is_kept(tmp_path):
    assert cache_key(PROFILE, "crun-a") != cache_key(PROFILE, "crun-b")
    assert cache_key(PROFILE, "x") != cache_key({**PROFILE, "defaultAction": "SCMP_ACT_KILL"}, "x")
    assert cache_key(PROFILE, "x") == cache_key(dict(reversed(list(PROFILE.items()))), "x")
    cache = SeccompCache(tmp_path / "cache", "/bin/true")
    assert cache.annotate({"linux": {}}) is None  # no profile (privileged, unconfined): nothing to do
    state = tmp_path / "state"
    state.mkdir()
    (state / "seccomp.bpf").write_bytes(b"12345")  # not whole 8-byte instructions
    key = cache.annotate({"linux": {"seccomp": PROFILE}})
    cache.remember(key, state)
    cache.remember(key, tmp_path / "missing")  # a runtime that left no program (runc): no error
    assert not (tmp_path / "cache" / file_name(key)).exists()


def test_a_file_name_shared_by_another_key_is_a_miss(tmp_path):
    cache = SeccompCache(tmp_path / "cache", "/bin/true")
    key = cache.annotate({"linux": {"seccomp": PROFILE}})
    state = tmp_path / "state"
    state.mkdir()
    (state / "seccomp.bpf").write_bytes(bytes(8))
    cache.remember(key, state)
    (tmp_path / "cache" / f"{file_name(key)}.key").write_text("another profile")  # as if checksums collided
    spec = {"linux": {"seccomp": PROFILE}}
    assert cache.annotate(spec) == key and ANNOTATION not in spec.get("annotations", {})
