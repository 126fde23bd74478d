"""The warm helper's wire format, socket naming and socket directory checks (pure, no helper)."""

from __future__ import annotations

import os

from dockerbank.warm import client, wire


def test_request_round_trip_keeps_every_byte():
    env = {b"PATH": b"/usr/bin", b"EMPTY": b"", b"WEIRD": b"a=b=c \xff\n"}
    argv = ["run", "--rm", "", "busybox", "sh", "-c", "echo 'x y'", "caf\udcc3"]
    request = wire.encode_request(b"who\nami", "/usr/bin/dockerbank", argv, 0o027, env)
    assert request[:1] == b"R" and int(request[1:11]) == len(request) - 11
    who, umask, argv0, back, env_back = wire.decode_request(request[11:])
    assert (who, umask, argv0, back, env_back) == (b"who\nami", 0o027, "/usr/bin/dockerbank", argv, env)


def test_request_without_arguments_or_environment():
    request = wire.encode_request(b"w", "dockerbank", [], 0o022, {})
    assert wire.decode_request(request[11:]) == (b"w", 0o022, "dockerbank", [], {})


def test_socket_name_is_a_stable_hash_of_the_identity():
    assert wire.fnv64(b"") == "cbf29ce484222325"   # FNV-1a's offset basis
    assert wire.fnv64(b"a") == "af63dc4c8601ec8c"  # the published FNV-1a 64 test vector
    assert wire.fnv64(b"x" * 3) != wire.fnv64(b"x" * 4)


def test_identity_names_interpreter_source_user_and_environment(monkeypatch):
    mine = wire.identity()
    assert wire.package_dir().encode() in mine and b"Uid:" in mine and b"mnt:[" in mine
    monkeypatch.setenv("PYTHONSOMETHING", "1")
    other = wire.identity()
    assert other != mine and b"PYTHONSOMETHING=1" in other
    monkeypatch.delenv("PYTHONSOMETHING")
    monkeypatch.setenv("DOCKERBANK_ROOT", "/elsewhere")  # the root is the command's business, not the helper's
    assert wire.identity() == mine


def test_socket_directory_must_be_private(tmp_path):
    uid = os.getuid()
    fresh = tmp_path / "fresh"
    assert wire.private_dir(str(fresh), uid) == str(fresh)
    assert fresh.stat().st_mode & 0o777 == 0o700
    fresh.chmod(0o755)
    assert wire.private_dir(str(fresh), uid) is None   # others could read or plant sockets
    fresh.chmod(0o700)
    assert wire.private_dir(str(fresh), uid + 1) is None  # another user's
    link = tmp_path / "link"
    link.symlink_to(fresh)
    assert wire.private_dir(str(link), uid) is None
    assert wire.private_dir(str(tmp_path / "missing" / "deeper"), uid) is None


def test_conmons_exit_command_never_starts_a_helper():
    assert client.exit_command(["--root", "/r", "--runroot", "/rr", "container", "cleanup", "abc"])
    assert client.exit_command(["--root=/r", "container", "cleanup", "abc"])
    assert client.exit_command(["container", "cleanup", "abc"])
    assert not client.exit_command(["container", "ls"])
    assert not client.exit_command(["--root", "/r", "ps"])
    assert not client.exit_command(["run", "--rm", "busybox", "container", "cleanup"])
