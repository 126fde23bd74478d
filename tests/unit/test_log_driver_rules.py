"""Log drivers, pure parts: validation of --log-driver/--log-opt, conmon's arguments, RFC 5424
and GELF 1.1 messages, GELF chunking, following a log that conmon starts afresh."""

from __future__ import annotations

import gzip
import json
import os
import zlib

import pytest

from dockerbank.container import logconfig, logs, logship
from dockerbank.container.logrotate import Rotation
from dockerbank.errors import InvalidArgument


def test_unknown_driver_and_option_are_one_line_exit_125():
    with pytest.raises(InvalidArgument) as err:
        logconfig.parse("fluentd", [])
    assert err.value.exit_code == 125 and "unknown log driver 'fluentd'" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(InvalidArgument, match="unknown log opt 'max-bogus' for json-file log driver"):
        logconfig.parse("json-file", ["max-bogus=1"])
    with pytest.raises(InvalidArgument, match="unknown log opt 'max-size' for none log driver"):
        logconfig.parse("none", ["max-size=1m"])
    for driver, opts, message in [
        ("k8s-file", ["max-size=lots"], "invalid max-size"),
        ("k8s-file", ["max-file=0"], "invalid max-file"),
        ("k8s-file", ["max-size"], "use KEY=VALUE"),
        ("syslog", ["syslog-address=http://x"], "invalid syslog-address"),
        ("syslog", ["syslog-facility=nope"], "invalid syslog-facility"),
        ("gelf", [], "gelf needs"),
        ("gelf", ["gelf-address=udp://graylog"], "use udp://HOST:PORT"),
        ("gelf", ["gelf-address=udp://g:12201", "gelf-compression-type=lz4"], "gzip, zlib or none"),
    ]:
        with pytest.raises(InvalidArgument, match=message) as err:
            logconfig.parse(driver, opts)
        assert err.value.exit_code == 125


def test_valid_configs_and_conmon_arguments():
    assert logconfig.parse(None).to_dict() == {"Type": "k8s-file", "Config": {}}
    local = logconfig.parse("json-file", ["max-size=10k", "max-file=3"])
    assert local.max_size == 10240 and local.readable and not local.remote
    assert logconfig.conmon_log_args(local, "/b/ctr.log") == ["-l", "k8s-file:/b/ctr.log", "--log-size-max", "10240"]
    assert logconfig.conmon_log_args(logconfig.parse("none"), "/b/ctr.log") == ["-l", "none:"]
    remote = logconfig.parse("syslog", {"syslog-address": "tcp://10.0.0.1:514", "tag": "{{.Name}}"})
    # the local copy of a remote driver is bounded as docker's dual-logging cache (20m, 5 files, gzip)
    assert remote.remote and logconfig.conmon_log_args(remote, "/b/ctr.log") == [
        "-l", "k8s-file:/b/ctr.log", "--log-size-max", str(20 << 20)]
    assert remote.rotation == Rotation(20 << 20, 5, True) and logconfig.needs_keeper(remote)
    assert logconfig.parse("gelf", ["gelf-address=udp://127.0.0.1:12201"]).config["gelf-address"]
    assert logconfig.parse_size("2m") == 2 << 20 and logconfig.parse_size("100") == 100


def source() -> logship.Source:
    return logship.Source("a" * 64, "web", "nginx:1", "sha256:" + "b" * 64, "nginx -g daemon off;",
                          "2026-12-05T00:00:00Z", {"team": "lab", "other": "x"})


def test_rfc5424_as_dockers_syslog_driver_sends_it():
    line = logship.rfc5424(b"hello\n", "stderr", 1796440000.25, hostname="h1", tag="web", facility=19)
    assert line == f"<155>1 2026-12-05T03:06:40Z h1 web {os.getpid()} web - hello".encode()
    micro = logship.rfc5424(b"x\n", "stdout", 1796440000.25, hostname="h1", tag="t", facility=3, micro=True)
    assert micro.startswith(b"<30>1 2026-12-05T03:06:40.250000Z h1 t ")
    assert logship.rfc3164(b"x\n", "stdout", 1796440000, hostname="h1", tag="t", facility=3).startswith(
        b"<30>Dec  5 03:06:40 h1 t[")
    assert source().tag(None) == "a" * 12
    assert source().tag("{{.Name}}/{{.ImageName}}") == "web/nginx:1"


def test_gelf_message_chunks_and_compression_round_trip():
    message = logship.gelf_message(b"boom\n", "stderr", 1796440000.5, hostname="h1", source=source(),
                                   tag="web", labels={"team": "lab"})
    assert message["version"] == "1.1" and message["short_message"] == "boom" and message["level"] == 3
    assert message["_container_name"] == "web" and message["_image_name"] == "nginx:1"
    assert message["_team"] == "lab" and "_other" not in message and message["timestamp"] == 1796440000.5
    small = logship.gelf_payload(message, "gzip")
    assert json.loads(gzip.decompress(small)) == message
    assert json.loads(zlib.decompress(logship.gelf_payload(message, "zlib"))) == message
    assert logship.gelf_chunks(small, b"12345678") == [small]
    big = os.urandom(5000)
    chunks = logship.gelf_chunks(big, b"ABCDEFGH", size=1420)
    assert len(chunks) == 4 and all(len(c) <= 1420 for c in chunks)
    assert all(c[:2] == b"\x1e\x0f" and c[2:10] == b"ABCDEFGH" and c[11] == 4 for c in chunks)
    assert b"".join(c[12:] for c in sorted(chunks, key=lambda c: c[10])) == big
    assert logship.gelf_chunks(os.urandom(129 * 1408 + 1), b"ABCDEFGH") == []   # over 128 chunks: not sendable


def test_follow_reads_a_log_that_conmon_started_afresh(tmp_path):
    path = tmp_path / "ctr.log"
    path.write_bytes(b"2026-12-05T00:00:00.000000001Z stdout F one\n2026-12-05T00:00:00.000000002Z stdout P tw\n")
    rounds = iter([True, True, False])
    follower = logs.follow(path, 0, lambda: next(rounds), interval=0)
    first = next(follower)
    assert (first.stream, first.data) == ("stdout", b"one\n")
    assert next(follower).data == b"tw"          # a partial entry (no newline)
    replacement = tmp_path / "new"
    replacement.write_bytes(b"2026-12-05T00:00:01Z stderr F three\n")
    os.replace(replacement, path)                # conmon's --log-size-max: a new file under the same name
    third = next(follower)
    assert (third.stream, third.data) == ("stderr", b"three\n")
    assert list(follower) == []


def test_sender_counts_an_unreachable_endpoint_as_lost():
    assert logship.Sender("tcp://127.0.0.1:9", timeout=0.5).send([b"x"]) is False
    assert logship.Sender("unixgram:///nonexistent/dev-log").send([b"x"]) is False
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:   # a UDP port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    udp = logship.Sender(f"udp://127.0.0.1:{port}")
    assert False in [udp.send([b"x"]) for _ in range(3)]   # the host's "port unreachable" counts as lost


def test_stream_framing_and_tls_or_tcp_options():
    assert logship.frame(b"<30>1 x", "octet") == b"7 <30>1 x"
    assert logship.frame(b"{}", "null") == b"{}\0"
    assert logship.frame(b"m", "newline") == b"m\n"
    assert logconfig.parse("syslog", ["syslog-address=tcp+tls://logs:6514", "syslog-tls-skip-verify=true"]).remote
    for driver, opts, message in [
        ("syslog", ["syslog-address=tcp://logs:514", "syslog-tls-ca-cert=/ca.pem"], "needs a tcp\\+tls://"),
        ("syslog", ["syslog-address=tcp+tls://logs:6514", "syslog-tls-cert=/c.pem"], "go together"),
        ("gelf", ["gelf-address=tcp://g:12201", "gelf-compression-type=gzip"], "for gelf over udp only"),
        ("gelf", ["gelf-address=udp://g:12201", "gelf-tcp-max-reconnect=3"], "for a tcp:// gelf-address"),
    ]:
        with pytest.raises(InvalidArgument, match=message):
            logconfig.parse(driver, opts)
    assert logconfig.parse("gelf", ["gelf-address=tcp://g:12201", "gelf-tcp-max-reconnect=3"]).remote


def test_rotation_options_as_dockers_json_file_and_local_drivers():
    assert logconfig.parse("json-file").rotation == Rotation()           # docker's json-file: unbounded
    assert not logconfig.needs_keeper(logconfig.parse("k8s-file", ["max-size=1m"]))   # one file: conmon alone
    kept = logconfig.parse("k8s-file", ["max-size=1m", "max-file=3", "compress=true"])
    assert kept.rotation == Rotation(1 << 20, 3, True) and logconfig.needs_keeper(kept)
    assert logconfig.parse("local").rotation == Rotation(20 << 20, 5, True)   # docker's local defaults
    assert logconfig.parse("local", ["max-file=1"]).rotation == Rotation(20 << 20, 1, False)
    cache = logconfig.parse("gelf", ["gelf-address=udp://h:1", "cache-max-size=1k", "cache-max-file=2"])
    assert cache.rotation == Rotation(1024, 2, True)
    assert logconfig.parse("none").rotation == Rotation() and not logconfig.needs_keeper(logconfig.parse("none"))
    for opts, message in ((["compress=true"], "compress cannot be true when max-file is less than 2"),
                          (["max-size=1m", "compress=yes"], "invalid compress 'yes'"),
                          (["max-file=0"], "invalid max-file '0'")):
        with pytest.raises(InvalidArgument, match=message) as err:
            logconfig.parse("json-file", opts)
        assert err.value.exit_code == 125
    with pytest.raises(InvalidArgument, match="unknown log opt 'cache-disabled' for gelf"):
        logconfig.parse("gelf", ["gelf-address=udp://h:1", "cache-disabled=true"])


def test_root_default_driver_follows_dockers_daemon_json_rule():
    from dockerbank import settings

    default = logconfig.root_default(settings.parse('{"log-driver": "local", "log-opts": {"max-file": "3"}}'))
    assert default == logconfig.LogConfig("local", {"max-file": "3"})
    # no driver named: the default driver, and its options when the container gives none
    assert logconfig.with_default(None, (), default) == ("local", {"max-file": "3"})
    assert logconfig.with_default(None, ["max-size=1m"], default) == ("local", ["max-size=1m"])
    assert logconfig.with_default("json-file", (), default) == ("json-file", ())
    assert logconfig.with_default(None, (), None) == (None, ())
    assert logconfig.root_default(settings.parse("{}")) is None
    for text, message in (('{"log-driver": "fluentd"}', "config.json: unknown log driver 'fluentd'"),
                          ('{"log-opts": {"max-sise": "1m"}}', "config.json: unknown log opt 'max-sise'"),
                          ('{"debug": true}', "config.json: unknown setting 'debug'"),
                          ('{"log-opts": {"max-file": 3}}', "log-opts must map names to strings"),
                          ("{", "config.json: not valid JSON")):
        with pytest.raises(InvalidArgument, match=message) as err:
            logconfig.root_default(settings.parse(text))
        assert err.value.exit_code == 125 and "\n" not in str(err.value)


def _entry(n: int) -> bytes:
    return b"2026-12-05T00:00:%02d.000000000Z stdout F line %d\n" % (n, n)


def _conmon_replaces(path, data: bytes) -> None:
    """What conmon's --log-size-max does: a new file renamed over the live one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@pytest.mark.parametrize("compress", [False, True])
def test_keeper_keeps_at_most_max_file_files_and_logs_reads_them_in_order(tmp_path, compress):
    from dockerbank.container.logrotate import Keeper, log_files

    path = tmp_path / "ctr.log"
    path.write_bytes(_entry(0))
    keeper = Keeper(path, Rotation(64, 3, compress))
    assert keeper.step() is False                       # holds the live file
    for n in range(1, 6):
        _conmon_replaces(path, _entry(n))
        assert keeper.step() is True
    keeper.close()                                      # the gzips of the worker thread are done
    names = sorted(p.name for p in tmp_path.glob("ctr.log*"))
    suffix = ".gz" if compress else ""
    assert names == ["ctr.log", f"ctr.log.1{suffix}", f"ctr.log.2{suffix}"]
    if compress:
        assert gzip.decompress((tmp_path / "ctr.log.1.gz").read_bytes()) == _entry(4)
    entries, offset = logs.read_entries(str(path))
    assert [e.data for e in entries] == [b"line 3\n", b"line 4\n", b"line 5\n"] and offset == len(_entry(5))
    # replaced but not rotated yet (the keeper is between two looks): still read, in order
    _conmon_replaces(path, _entry(6))
    assert [p.name for p in log_files(path)][-2:] == [".ctr.log.held", "ctr.log"]
    assert [e.data for e in logs.read_entries(str(path), tail=2)[0]] == [b"line 5\n", b"line 6\n"]


def test_keeper_starts_a_restarted_container_in_a_fresh_file(tmp_path):
    from dockerbank.container.logrotate import Keeper

    path = tmp_path / "ctr.log"
    path.write_bytes(_entry(1))
    keeper = Keeper(path, Rotation(64, 2, False))
    keeper.start_afresh()
    assert not path.exists() and (tmp_path / "ctr.log.1").read_bytes() == _entry(1)
    keeper.start_afresh()                               # nothing new: nothing moves
    assert (tmp_path / "ctr.log.1").read_bytes() == _entry(1)
