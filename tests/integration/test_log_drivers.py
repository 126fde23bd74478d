"""Log drivers on real containers: Debian's rsyslog receives a container's lines (UDP and TCP,
RFC 5424), a GELF receiver written from the GELF 1.1 specification decodes chunked, compressed
messages with docker's fields (and null-terminated ones over TCP), syslog over TLS arrives in
RFC 5425 frames, an unreachable endpoint loses only the remote copies (counted in the metrics),
max-size bounds the local log, max-file/compress keep rotated files as docker's json-file does,
a root's config.json gives the default driver, and a bad driver or option creates nothing."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import threading
import time
import zlib
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import require_binary

pytestmark = pytest.mark.integration


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what: str, check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    pytest.fail(f"{what} not reached within {timeout:.0f} s (last: {last!r})")


def test_rsyslog_receives_lines_over_udp_and_tcp(ctr, tmp_path):
    rsyslogd = require_binary("rsyslogd")
    udp, tcp = free_port(socket.SOCK_DGRAM), free_port()
    out = tmp_path / "received.log"
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(f"""global(workDirectory="{tmp_path}")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="{udp}")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
template(name="fields" type="string" string="%syslogfacility-text%|%syslogseverity-text%|%app-name%|%msg%\\n")
*.* action(type="omfile" file="{out}" template="fields")
""")
    daemon = subprocess.Popen([rsyslogd, "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslogd.pid")],
                              stdout=subprocess.DEVNULL, stderr=open(tmp_path / "rsyslogd.err", "wb"))
    try:
        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", tcp), timeout=1).close()
                return True
            except OSError:
                return daemon.poll() is not None and pytest.fail((tmp_path / "rsyslogd.err").read_text())
        wait_for("rsyslogd listening", listening)
        ctr("run", "-d", "--name", "viaudp", "--log-driver", "syslog", "--log-opt",
            f"syslog-address=udp://127.0.0.1:{udp}", "--log-opt", "syslog-facility=local3",
            "--log-opt", "tag={{.Name}}", "busybox", "sh", "-c", "echo hello over udp; echo trouble >&2")
        ctr("run", "-d", "--name", "viatcp", "--log-driver", "syslog", "--log-opt",
            f"syslog-address=tcp://127.0.0.1:{tcp}", "busybox", "echo", "hello over tcp")
        short = ctr("inspect", "-f", "{{.Id}}", "viatcp").stdout.decode().strip()[:12]
        expected = {"local3|info|viaudp|hello over udp", "local3|err|viaudp|trouble",
                    f"daemon|info|{short}|hello over tcp"}
        wait_for("the lines in rsyslog's file",
                 lambda: out.exists() and expected <= set(out.read_text().splitlines()))
        # dual logging: the local copy is complete
        assert ctr("logs", "viaudp").stdout.decode() == "hello over udp\n"
    finally:
        daemon.terminate()
        daemon.wait(10)


class GelfReceiver:
    """A GELF 1.1 UDP input from the specification: chunks (0x1e 0x0f, 8-byte message id,
    sequence number, sequence count) reassembled, then gzip (0x1f 0x8b), zlib (0x78) or plain JSON."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.messages: list[dict] = []
        self.chunked = 0
        self.compressions: set[str] = set()
        self._pending: dict[bytes, dict[int, bytes]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if data[:2] == b"\x1e\x0f":
                message_id, number, count = data[2:10], data[10], data[11]
                parts = self._pending.setdefault(message_id, {})
                parts[number] = data[12:]
                if len(parts) < count:
                    continue
                del self._pending[message_id]
                data = b"".join(parts[i] for i in range(count))
                self.chunked += 1
            if data[:2] == b"\x1f\x8b":
                data, kind = gzip.decompress(data), "gzip"
            elif data[:1] == b"\x78":
                data, kind = zlib.decompress(data), "zlib"
            else:
                kind = "none"
            self.compressions.add(kind)
            self.messages.append(json.loads(data))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def test_gelf_receiver_decodes_chunked_compressed_messages_with_dockers_fields(ctr):
    receiver = GelfReceiver()
    try:
        cid = ctr("run", "-d", "--name", "graylogged", "--label", "team=lab", "--log-driver", "gelf",
                  "--log-opt", f"gelf-address=udp://127.0.0.1:{receiver.port}", "--log-opt", "labels=team",
                  "busybox", "sh", "-c",
                  "echo first; head -c 6000 /dev/urandom | base64 -w 0; echo; echo oops >&2").stdout.decode().strip()
        wait_for("three GELF messages", lambda: len(receiver.messages) >= 3)
    finally:
        receiver.close()
    by_text = {m["short_message"][:5]: m for m in receiver.messages}
    first, oops = by_text["first"], by_text["oops"]
    assert first["version"] == "1.1" and first["level"] == 6 and oops["level"] == 3
    assert first["_container_name"] == "graylogged" and first["_container_id"] == cid
    assert first["_image_name"] == "busybox" and first["_tag"] == cid[:12] and first["_team"] == "lab"
    assert first["host"] == socket.gethostname() and abs(first["timestamp"] - time.time()) < 120
    long_line = [m for m in receiver.messages if len(m["short_message"]) == 8000]
    assert len(long_line) == 1              # one line of 8000 base64 characters, one message
    assert receiver.chunked >= 1 and receiver.compressions == {"gzip"}


def metrics(ctr) -> dict:
    text = ctr("system", "metrics").stdout.decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_unreachable_endpoint_loses_only_remote_copies_and_counts_them(ctr):
    closed = free_port()   # nothing listens here
    ctr("run", "-d", "--name", "lonely", "--log-driver", "syslog", "--log-opt",
        f"syslog-address=tcp://127.0.0.1:{closed}", "busybox", "sh", "-c",
        "for i in 1 2 3 4 5; do echo line $i; done; sleep 1")

    def lost() -> float:
        found = [v for (name, labels), v in metrics(ctr).items()
                 if name == "dockerbank_container_log_messages_lost_total" and ("name", "lonely") in labels]
        return found[0] if found and found[0] == 5 else 0
    wait_for("5 lost messages in the metrics", lost)
    assert ctr("wait", "lonely").stdout.decode().strip() == "0"
    assert ctr("logs", "lonely").stdout.decode() == "".join(f"line {i}\n" for i in range(1, 6))


def test_max_size_bounds_the_local_log(ctr, root):
    ctr("run", "--name", "chatty", "--log-opt", "max-size=10k", "--log-opt", "max-file=2", "busybox", "sh", "-c",
        "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done")
    cid = ctr("inspect", "-f", "{{.Id}}", "chatty").stdout.decode().strip()
    logs = sorted((root / "containers" / cid).glob("ctr.log*"))
    assert 1 <= len(logs) <= 2 and all(p.stat().st_size <= 10 * 1024 for p in logs)
    tail = ctr("logs", "chatty").stdout.decode().splitlines()
    assert tail[-1] == "line 2999" and len(tail) < 3000
    config = json.loads(ctr("inspect", "-f", "{{json .HostConfig.LogConfig}}", "chatty").stdout)
    assert config == {"Type": "k8s-file", "Config": {"max-size": "10k", "max-file": "2"}}


def test_bad_driver_or_option_creates_nothing(ctr):
    for args, message in ((["--log-driver", "fluentd"], "unknown log driver 'fluentd'"),
                          (["--log-opt", "max-sise=1m"], "unknown log opt 'max-sise' for k8s-file log driver"),
                          (["--log-driver", "gelf"], "gelf needs --log-opt gelf-address")):
        done = ctr("run", "--name", "never", *args, "busybox", "true", check=False)
        assert done.returncode == 125
        err = done.stderr.decode().strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert ctr("ps", "-aq").stdout.decode().strip() == ""
    done = ctr("run", "--name", "silent", "--log-driver", "none", "busybox", "echo", "hi")
    assert done.stdout == b"hi\n"           # attached output does not go through the log
    refused = ctr("logs", "silent", check=False)
    assert refused.returncode == 1 and b"does not support reading" in refused.stderr


def test_lines_survive_when_the_shipper_reads_from_a_restarted_log(ctr, root):
    """The shipper follows the local copy by name: conmon replacing it (max-size) does not stop it, and the
    lines of the replaced file are read to its end (a file replaced twice between two reads, 50 ms apart,
    would lose the middle one: max-size is meant to be far larger than 50 ms of output)."""
    receiver = GelfReceiver()
    try:
        ctr("run", "-d", "--name", "rotating", "--log-opt", "max-size=8k", "--log-driver", "gelf",
            "--log-opt", f"gelf-address=udp://127.0.0.1:{receiver.port}", "--log-opt", "gelf-compression-type=none",
            "busybox", "sh", "-c", "i=0; while [ $i -lt 600 ]; do echo line $i; i=$((i+1)); usleep 2000; done")
        wait_for("the last line shipped", lambda: any(m["short_message"] == "line 599" for m in receiver.messages),
                 timeout=60)
    finally:
        receiver.close()
    assert receiver.compressions == {"none"}
    assert {m["short_message"] for m in receiver.messages} == {f"line {i}" for i in range(600)}
    assert Path(root).exists()


class StreamReceiver:
    """A TCP (optionally TLS) listener that splits what it receives by ``framing``: ``null`` (GELF
    over TCP: JSON documents ended by a null byte) or ``octet`` (RFC 5425: ``LENGTH SP MESSAGE``)."""

    def __init__(self, framing: str, tls_files: tuple[Path, Path] | None = None):
        import ssl

        self.framing = framing
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.ctx = None
        if tls_files:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(*tls_files)
        self.messages: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            if self.ctx is not None:
                conn = self.ctx.wrap_socket(conn, server_side=True)
            conn.settimeout(0.2)
            buffer = b""
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                buffer += data
                buffer = self._split(buffer)
            conn.close()

    def _split(self, buffer: bytes) -> bytes:
        while True:
            if self.framing == "null":
                if b"\0" not in buffer:
                    return buffer
                message, buffer = buffer.split(b"\0", 1)
            else:
                length, space, rest = buffer.partition(b" ")
                if not space or len(rest) < int(length):
                    return buffer
                message, buffer = rest[:int(length)], rest[int(length):]
            self.messages.append(message)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()


def test_gelf_over_tcp_is_null_terminated_json(ctr):
    receiver = StreamReceiver("null")
    try:
        ctr("run", "-d", "--name", "gelftcp", "--log-driver", "gelf", "--log-opt",
            f"gelf-address=tcp://127.0.0.1:{receiver.port}", "busybox", "sh", "-c", "echo one; echo two")
        wait_for("two GELF documents", lambda: len(receiver.messages) >= 2)
    finally:
        receiver.close()
    documents = [json.loads(m) for m in receiver.messages]
    assert [d["short_message"] for d in documents] == ["one", "two"]
    assert documents[0]["_container_name"] == "gelftcp" and documents[0]["version"] == "1.1"


def test_syslog_over_tls_with_octet_counting(ctr, tmp_path):
    openssl = require_binary("openssl")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    receiver = StreamReceiver("octet", (cert, key))
    try:
        ctr("run", "-d", "--name", "secure", "--log-driver", "syslog",
            "--log-opt", f"syslog-address=tcp+tls://localhost:{receiver.port}",
            "--log-opt", f"syslog-tls-ca-cert={cert}", "--log-opt", "tag={{.Name}}",
            "busybox", "sh", "-c", "echo over tls; echo with a space >&2")
        wait_for("two RFC 5425 frames", lambda: len(receiver.messages) >= 2)
    finally:
        receiver.close()
    first, second = (m.decode() for m in receiver.messages[:2])
    assert first.startswith("<30>1 ") and first.endswith(" secure - over tls")
    assert second.startswith("<27>1 ") and second.endswith(" - with a space")


def _log_files(root: Path, cid: str) -> list[Path]:
    return sorted((root / "containers" / cid).glob("ctr.log*"))


def _unpacked_size(path: Path) -> int:
    return len(gzip.decompress(path.read_bytes())) if path.name.endswith(".gz") else path.stat().st_size


def test_rotation_keeps_at_most_max_file_files_of_at_most_max_size(ctr, root):
    ctr("run", "--name", "rotated", "--log-opt", "max-size=4k", "--log-opt", "max-file=3", "--log-opt", "compress=true",
        "busybox", "sh", "-c", "i=0; while [ $i -lt 600 ]; do echo line $i; i=$((i+1)); usleep 500; done")
    cid = ctr("inspect", "-f", "{{.Id}}", "rotated").stdout.decode().strip()
    names = wait_for("two gzipped rotated files", lambda: [p.name for p in _log_files(root, cid)]
                     if {"ctr.log.1.gz", "ctr.log.2.gz"} <= {p.name for p in _log_files(root, cid)} else None)
    files = _log_files(root, cid)
    assert len(files) <= 3 and all(_unpacked_size(p) <= 4096 for p in files), names
    lines = ctr("logs", "rotated").stdout.decode().splitlines()
    first = int(lines[0].split()[1])
    # what is kept is whole: the newest lines, none missing between the files
    assert lines == [f"line {i}" for i in range(first, 600)] and 600 - first > 2 * 4096 // 60
    assert ctr("logs", "--tail", "2", "rotated").stdout.decode() == "line 598\nline 599\n"


def test_root_default_log_driver_from_config_json(ctr, root):
    (root / "config.json").write_text(json.dumps({"log-driver": "local",
                                                  "log-opts": {"max-size": "2k", "max-file": "2"}}))
    ctr("run", "--name", "defaulted", "busybox", "sh", "-c",
        "i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); usleep 500; done")
    config = json.loads(ctr("inspect", "-f", "{{json .HostConfig.LogConfig}}", "defaulted").stdout)
    assert config == {"Type": "local", "Config": {"max-size": "2k", "max-file": "2"}}
    cid = ctr("inspect", "-f", "{{.Id}}", "defaulted").stdout.decode().strip()
    wait_for("a gzipped rotated file (local compresses)", lambda: (root / "containers" / cid / "ctr.log.1.gz").exists())
    files = _log_files(root, cid)
    assert len(files) <= 2 and all(_unpacked_size(p) <= 2048 for p in files)
    assert ctr("logs", "--tail", "1", "defaulted").stdout.decode() == "line 199\n"
    assert ctr("info", "--format", "{{.LoggingDriver}}").stdout.decode() == "local\n"
    # a container that names its driver keeps its own
    ctr("create", "--name", "own", "--log-driver", "json-file", "busybox", "true")
    assert json.loads(ctr("inspect", "-f", "{{json .HostConfig.LogConfig}}", "own").stdout)["Type"] == "json-file"
    # a bad default: one line naming the file and the option, exit 125, nothing created
    (root / "config.json").write_text(json.dumps({"log-opts": {"max-sise": "1m"}}))
    done = ctr("run", "--name", "never", "busybox", "true", check=False)
    err = done.stderr.decode().strip()
    assert done.returncode == 125 and "config.json: unknown log opt 'max-sise'" in err and len(err.splitlines()) == 1
    assert "never" not in ctr("ps", "-a", "--format", "{{.Names}}").stdout.decode().split()
    assert ctr("info", "--format", "{{.LoggingDriver}}").stdout.decode() == "k8s-file\n"   # info still answers


def test_an_unreachable_gelf_endpoint_does_not_block_the_container(ctr):
    """GELF over UDP to a port nobody listens on: every line kept locally, the lost ones counted."""
    closed = free_port(socket.SOCK_DGRAM)
    started = time.monotonic()
    ctr("run", "--name", "nograylog", "--log-driver", "gelf", "--log-opt", f"gelf-address=udp://127.0.0.1:{closed}",
        "busybox", "sh", "-c", "i=0; while [ $i -lt 5000 ]; do echo line $i; i=$((i+1)); done")
    assert time.monotonic() - started < 30
    assert len(ctr("logs", "nograylog").stdout.splitlines()) == 5000

    def lost() -> float:
        found = [v for (name, labels), v in metrics(ctr).items()
                 if name == "dockerbank_container_log_messages_lost_total" and ("name", "nograylog") in labels]
        return found[0] if found and found[0] > 0 else 0
    wait_for("lost GELF messages in the metrics", lost)


def test_an_endpoint_that_never_reads_does_not_block_the_container(ctr):
    """A syslog endpoint that accepts connections and never reads: the container's 20,000 lines are
    written at conmon's pace and all kept locally (the closed-port test above counts the lost ones)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=1)   # never accept()ed: never read
    port = listener.getsockname()[1]
    try:
        started = time.monotonic()
        ctr("run", "--name", "stuck", "--log-driver", "syslog", "--log-opt", f"syslog-address=tcp://127.0.0.1:{port}",
            "busybox", "sh", "-c", "i=0; while [ $i -lt 20000 ]; do echo line $i padding-padding-padding; "
            "i=$((i+1)); done")
        elapsed = time.monotonic() - started
        assert ctr("logs", "--tail", "1", "stuck").stdout.decode() == "line 19999 padding-padding-padding\n"
        assert len(ctr("logs", "stuck").stdout.splitlines()) == 20000
        assert elapsed < 30, elapsed
    finally:
        listener.close()
