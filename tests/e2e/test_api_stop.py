"""``system service`` ends cleanly on SIGTERM and SIGINT, as ``registry serve`` does
(tests/e2e/test_registry_stop.py): it stops listening and removes its socket, lets a request in
flight finish within its grace (2 s) even when its body arrives after the signal, ends an open
``GET /events`` stream instead of waiting for it, exits 0 with one log line and no traceback."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from conftest import signal_and_wait

from dockerbank.host.inflight import GRACE
from tests.compat.api_server import ApiServer
from tests.e2e.test_registry_stop import _wait

MIB = 1 << 20


def _refused(sock_path: Path) -> bool:
    """Nobody accepts connections there (the socket file is gone, or nobody listens on it)."""
    try:
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(str(sock_path))
        return False
    except OSError:
        return True


def _stop(server: ApiServer, signum: int = signal.SIGTERM, bound: float = 15.0) -> float:
    """Send ``signum``; the service must end within ``bound`` seconds: exit 0, the ready line and one
    stop line on stderr, no traceback, the socket removed. Returns how long it took."""
    assert server.proc is not None
    code, took = signal_and_wait(server.proc, signum, bound, "system service")
    err = server.log.read_text()
    assert code == 0, f"system service ended {code} on {signum.name}: {err}"
    assert "Traceback" not in err and "ERROR" not in err, err
    assert err.strip().splitlines() == [f"API listening on {server.url}",
                                        f"API service stopped ({signum.name})"], err
    assert not server.sock.exists(), "the socket file is left behind"
    return took


@pytest.fixture
def service(tmp_path):
    server = ApiServer(tmp_path).start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait()


def _connect(server: ApiServer) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX)
    conn.settimeout(30)
    conn.connect(str(server.sock))
    return conn


def _read_response(conn: socket.socket) -> tuple[int, bytes]:
    """Status and body of an HTTP/1.1 response read until the server closes (Connection: close)."""
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        decoded, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if not size:
                break
            decoded, rest = decoded + rest[:size], rest[size + 2:]
        body = decoded
    return status, body


def _rootfs_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = os.urandom(3 * MIB)
        info = tarfile.TarInfo("payload")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("signum,warm", [(signal.SIGTERM, "force"), (signal.SIGINT, "0")],
                         ids=["SIGTERM-warm", "SIGINT-in-process"])
def test_idle_service_ends_cleanly(tmp_path, monkeypatch, signum, warm):
    """Idle: the signal (through the warm helper's forwarding, and in-process) ends it at once,
    its socket gone."""
    monkeypatch.setenv("DOCKERBANK_WARM", warm)
    server = ApiServer(tmp_path).start()
    try:
        assert _stop(server, signum, bound=10) < 5
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def _upload_under_way(service: ApiServer, tag: str) -> tuple[socket.socket, bytes]:
    """A ``docker import`` of ``slow:TAG`` whose first 2 MiB are sent, once the service's handler
    is inside the body (streams.body_file spools it as it arrives); the connection and the whole body."""
    body = _rootfs_tar()
    conn = _connect(service)
    conn.sendall(b"POST /v1.43/images/create?fromSrc=-&repo=slow&tag=%s HTTP/1.1\r\nHost: docker\r\n"
                 b"Content-Type: application/x-tar\r\nConnection: close\r\n"
                 b"Content-Length: %d\r\n\r\n" % (tag.encode(), len(body)) + body[:2 * MIB])
    spool = service.root / "tmp"

    def spooling() -> bool:
        return any(p.stat().st_size >= MIB for p in spool.glob("api-body-*")) if spool.is_dir() else False

    _wait(spooling, 30, "the service spools the upload")
    return conn, body


def test_upload_in_flight_finishes_within_the_grace(service):
    """A ``docker import`` whose body is still arriving at the SIGTERM: the service stops listening
    at once, the rest of the body arrives after the signal, the import completes (200, the image
    stored) and the service then exits 0."""
    conn, body = _upload_under_way(service, "upload")
    assert service.proc is not None
    service.proc.send_signal(signal.SIGTERM)
    _wait(lambda: _refused(service.sock), 5, "the service stops listening on SIGTERM")
    conn.sendall(body[2 * MIB:])   # the rest arrives after the signal, within the grace
    status, answer = _read_response(conn)
    conn.close()
    assert status == 200, (status, answer)
    image_id = json.loads(answer.splitlines()[-1])["status"]
    took = _stop(service, signal.SIGTERM, bound=15)   # the second SIGTERM is ignored: the stop is under way
    print(f"stopped {took:.2f} s after the second signal with an upload in flight")
    listed = service.dockerbank("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    assert listed.returncode == 0, listed.stderr
    assert f"slow:upload {image_id}" in listed.stdout.decode(), listed.stdout


def test_stalled_upload_is_cut_after_the_grace_and_leaves_nothing(service):
    """An import whose body stops arriving: cut once the grace (twice: handler, then aiohttp's
    shutdown) is over, the process still exits 0 within a bound; no image, no spooled file left."""
    conn, _body = _upload_under_way(service, "cut")
    spool = service.root / "tmp"
    took = _stop(service, signal.SIGTERM, bound=15)
    print(f"stopped {took:.2f} s after the signal with a stalled upload in flight")
    assert 2 * GRACE - 0.5 < took < 2 * GRACE + 3, took
    conn.settimeout(5)
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
    conn.close()
    assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert not list(spool.glob("api-body-*")), "the cut upload's spooled body is left behind"
    listed = service.dockerbank("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert listed.returncode == 0 and "slow:cut" not in listed.stdout.decode(), listed


def test_open_event_stream_does_not_hold_the_stop(service):
    """A ``GET /events`` stream open at the SIGTERM is ended: the service exits within the grace,
    the client sees its stream end."""
    conn = _connect(service)
    conn.sendall(b"GET /v1.43/events HTTP/1.1\r\nHost: docker\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += conn.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head
    took = _stop(service, signal.SIGTERM, bound=15)
    print(f"stopped {took:.2f} s after the signal with an event stream open")
    assert took < GRACE + 1.0, f"an open event stream held the stop {took:.2f} s"
    conn.settimeout(5)
    rest = b""
    while chunk := conn.recv(65536):   # the stream ends (EOF), it is not left hanging
        rest += chunk
    conn.close()


def test_dashboard_beside_ends_with_the_service(tmp_path):
    """``system service --dashboard``: on SIGTERM the dashboard in the same process ends too, its
    live event stream (open in a logged-in page) ended rather than waited for; exit 0, one stop line."""
    import requests

    from dockerbank.registry.server.auth import make_htpasswd_line
    from tests.e2e.test_registry_stop import _free_port, _listening

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(make_htpasswd_line("alice", "alice-pw", rounds=4) + "\n")
    port = _free_port()
    server = ApiServer(tmp_path)
    server.proc = subprocess.Popen(
        [sys.executable, "-m", "dockerbank", "--root", str(server.root), "--runroot", str(server.run_root),
         "system", "service", "--host", server.url, "--dashboard", f"127.0.0.1:{port}",
         "--dashboard-htpasswd", str(htpasswd)], stdout=subprocess.DEVNULL, stderr=open(server.log, "wb"))
    try:
        _wait(lambda: server.proc.poll() is not None or (server.sock.exists() and _listening(port)), 30,
              "the service and its dashboard listen")
        assert server.proc.poll() is None, server.log.read_text()
        url = f"http://127.0.0.1:{port}"
        http = requests.Session()
        login = http.post(url + "/login", data={"username": "alice", "password": "alice-pw", "next": "/"},
                          allow_redirects=False)
        assert login.status_code == 303, login.text
        stream = http.get(url + "/events/stream", stream=True, timeout=30)
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines) == b": connected"
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(15)
        took = time.monotonic() - started
        err = server.log.read_text()
        assert code == 0 and "Traceback" not in err, err
        assert sorted(err.strip().splitlines()) == sorted([f"API listening on {server.url}",
                                                           f"Dashboard listening on {url}/",
                                                           "API service stopped (SIGTERM)"]), err
        assert took < GRACE + 1.0, f"the dashboard's event stream held the stop {took:.2f} s"
        assert not _listening(port) and not server.sock.exists()
        try:   # the stream ended (the connection closed, cut) instead of hanging
            list(lines)
        except requests.exceptions.ChunkedEncodingError:
            pass
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def _request(server: ApiServer, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    conn = _connect(server)
    data = json.dumps(body).encode() if body is not None else b""
    conn.sendall(f"{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
    answer = _read_response(conn)
    conn.close()
    return answer


def test_followers_of_a_running_container_do_not_hold_the_stop(tmp_path, busybox_tar):
    """``logs -f``, a stats stream, ``wait`` and an attach (hijacked) on a container that keeps running are ended at the
    stop: the service exits 0 within the grace; the container (daemonless) runs on."""
    from tests.compat.api_server import start_server

    server = start_server(tmp_path, busybox_tar)
    cid = ""
    try:
        status, created = _request(server, "POST", "/v1.43/containers/create",
                                   {"Image": "busybox:latest", "Cmd": ["sh", "-c", "while :; do echo x; sleep 0.2; done"]})
        assert status == 201, created
        cid = json.loads(created)["Id"]
        status, started = _request(server, "POST", f"/v1.43/containers/{cid}/start")
        assert status == 204, started
        streams = []
        for method, path in (("GET", f"/v1.43/containers/{cid}/logs?follow=1&stdout=1"),
                             ("GET", f"/v1.43/containers/{cid}/stats?stream=1"),
                             ("POST", f"/v1.43/containers/{cid}/wait"),
                             ("POST", f"/v1.43/containers/{cid}/attach?stream=1&stdout=1")):
            conn = _connect(server)
            conn.sendall(f"{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n"
                         "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            assert head.startswith(b"HTTP/1.1 101" if "attach" in path else b"HTTP/1.1 200"), (path, head)
            streams.append(conn)
        took = _stop(server, signal.SIGTERM, bound=15)
        print(f"stopped {took:.2f} s after the signal with logs -f, stats, wait and attach open")
        assert took < GRACE + 1.0, f"followers held the stop {took:.2f} s"
        for conn in streams:   # each stream ended (EOF) rather than hanging
            conn.settimeout(5)
            while conn.recv(65536):
                pass
            conn.close()
        inspect = server.dockerbank("inspect", "--format", "{{.State.Running}}", cid)
        assert inspect.stdout.strip() == b"true", inspect
    finally:
        if cid:
            server.dockerbank("rm", "-f", cid)
        from conftest import wait_for_network_teardown

        wait_for_network_teardown(server.run_root)
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
