"""``registry serve`` ends cleanly on SIGTERM and SIGINT, as ``system service`` does: it stops
listening, lets a request in flight finish within its grace (2 s), cuts one that does not, exits 0
with one log line and no traceback, and leaves a storage that is consistent (read as files, as the
fault injection tests read it after a SIGKILL) and whose cut upload session can be resumed."""

from __future__ import annotations

import hashlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import signal_and_wait

from tests.registry_checks import check_storage, sha256_file

MIB = 1 << 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


class Server:
    """``dockerbank registry serve`` as a process, its stderr in a file."""

    def __init__(self, tmp_path: Path, warm: str = "1"):
        self.port = _free_port()
        self.storage = tmp_path / "registry"
        self.log = tmp_path / f"serve-{self.port}.log"
        root = tmp_path / "root"
        env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run",
                   DOCKERBANK_WARM=warm)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dockerbank", "registry", "serve", "--listen", f"127.0.0.1:{self.port}",
                 "--storage", str(self.storage)], stdout=subprocess.DEVNULL, stderr=log, env=env)
        _wait(lambda: self.proc.poll() is not None or _listening(self.port), 60, "registry serve listens")
        assert self.proc.poll() is None, f"registry serve exited {self.proc.returncode}: {self.log.read_text()}"

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def stop(self, signum: int = signal.SIGTERM, bound: float = 15.0) -> float:
        """Send ``signum``; the process must end within ``bound`` seconds: exit 0, the ready line and
        one stop line on stderr, no traceback, the port closed. Returns how long it took."""
        code, took = signal_and_wait(self.proc, signum, bound, "registry serve")
        err = self.log.read_text()
        assert code == 0, f"registry serve ended {code} on {signum.name}: {err}"
        assert "Traceback" not in err and "Error" not in err, err
        lines = err.strip().splitlines()
        assert len(lines) == 2 and lines[0].startswith("Serving registry on"), err
        assert lines[1] == f"Registry on http://127.0.0.1:{self.port} stopped ({signum.name})", err
        assert not _listening(self.port), "the port still accepts connections"
        return took

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def servers(tmp_path):
    started: list[Server] = []

    def start(warm: str = "1") -> Server:
        server = Server(tmp_path, warm)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.mark.parametrize("signum,warm", [(signal.SIGTERM, "1"), (signal.SIGINT, "0")],
                         ids=["SIGTERM-warm", "SIGINT-in-process"])
def test_idle_server_ends_cleanly(servers, signum, warm):
    """Idle: the signal (through the warm helper's forwarding, and in-process) ends it at once."""
    server = servers(warm)
    assert server.stop(signum, bound=10) < 5


def _start_upload(server: Server, name: str) -> str:
    conn = server.connection()
    conn.request("POST", f"/v2/{name}/blobs/uploads/")
    response = conn.getresponse()
    response.read()
    assert response.status == 202, response.status
    conn.close()
    return response.headers["Location"]


def _open_chunked(server: Server, method: str, path: str) -> http.client.HTTPConnection:
    conn = server.connection()
    conn.putrequest(method, path)
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    return conn


def _send_chunk(conn: http.client.HTTPConnection, data: bytes) -> None:
    conn.send(b"%x\r\n" % len(data) + data + b"\r\n")


def _session_bytes(server: Server, location: str) -> int:
    path = server.storage / "uploads" / location.rstrip("/").rsplit("/", 1)[1] / "data"
    return path.stat().st_size if path.exists() else 0


def test_push_in_flight_finishes_or_is_cut_and_storage_stays_consistent(servers, tmp_path):
    """Two uploads in flight at the SIGTERM: one whose body ends within the grace completes (201,
    its blob in the store), one that stalls is cut after the grace; the process still ends within
    a bound with exit 0; the storage is consistent, and after a restart the cut session reports
    the bytes it holds and is completed from there into a blob of the right digest."""
    server = servers()
    done_data, cut_data = os.urandom(3 * MIB), os.urandom(3 * MIB)
    done_digest = "sha256:" + hashlib.sha256(done_data).hexdigest()
    cut_digest = "sha256:" + hashlib.sha256(cut_data).hexdigest()
    done_at, cut_at = _start_upload(server, "stop/done"), _start_upload(server, "stop/cut")

    # the one that will finish: a monolithic PUT with its body all sent but the closing chunk
    done = _open_chunked(server, "PUT", f"{done_at}?digest={done_digest}")
    _send_chunk(done, done_data)
    # the one that stalls: a PATCH that has sent 2 MiB of its 3
    cut = _open_chunked(server, "PATCH", cut_at)
    _send_chunk(cut, cut_data[:2 * MIB])
    # both handlers are inside their bodies (the server writes whole MiBs as they arrive)
    _wait(lambda: _session_bytes(server, done_at) >= 2 * MIB and _session_bytes(server, cut_at) >= MIB,
          30, "the server writes both uploads")

    server.proc.send_signal(signal.SIGTERM)
    _wait(lambda: not _listening(server.port), 10, "the server stops listening on SIGTERM")
    done.send(b"0\r\n\r\n")   # the finished upload's end arrives after the signal, within the grace
    answer = done.getresponse()
    answer.read()
    assert answer.status == 201, f"an upload ending within the grace got {answer.status}"
    assert answer.headers["Docker-Content-Digest"] == done_digest
    took = server.stop(signal.SIGTERM, bound=15)   # (the second SIGTERM is ignored: the stop is under way)
    print(f"stopped {took:.2f} s after the signal with a stalled upload in flight")
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        _send_chunk(cut, cut_data[2 * MIB:])
        cut.send(b"0\r\n\r\n")
        cut.getresponse().read()

    check_storage(server.storage, "after a SIGTERM with uploads in flight", after_gc=False)
    blob = server.storage / "blobs" / "sha256" / done_digest.split(":", 1)[1]
    assert blob.is_file() and sha256_file(blob) == done_digest.split(":", 1)[1]
    assert (server.storage / "repositories" / "stop" / "done" / "_layers" / blob.name).exists()
    assert not (server.storage / "blobs" / "sha256" / cut_digest.split(":", 1)[1]).exists()

    again = servers()   # another port, the same storage: the cut session resumes where its data ends
    again.storage = server.storage
    conn = again.connection()
    conn.request("GET", cut_at)
    status = conn.getresponse()
    status.read()
    held = _session_bytes(again, cut_at)
    assert status.status == 204 and status.headers["Range"] == f"0-{held - 1}", (status.status, status.headers)
    assert MIB <= held <= 2 * MIB
    conn.request("PATCH", cut_at, body=cut_data[held:],
                 headers={"Content-Type": "application/octet-stream",
                          "Content-Range": f"{held}-{len(cut_data) - 1}"})
    patched = conn.getresponse()
    patched.read()
    assert patched.status == 202, patched.status
    conn.request("PUT", f"{cut_at}?digest={cut_digest}")
    put = conn.getresponse()
    put.read()
    assert put.status == 201, put.status
    conn.close()
    assert sha256_file(again.storage / "blobs" / "sha256" / cut_digest.split(":", 1)[1]) == cut_digest[7:]
    check_storage(again.storage, "after the cut upload was resumed", after_gc=False)
    again.stop(signal.SIGTERM, bound=10)
