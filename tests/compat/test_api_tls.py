"""TCP only with TLS client certificates: plain TCP is refused without --insecure-tcp; the docker CLI
with a client certificate signed by the CA gets in, one without is turned away."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from conftest import require_binary

pytestmark = pytest.mark.compat


def _openssl(*args: str, cwd) -> None:
    subprocess.run([require_binary("openssl"), *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_tcp_needs_tls_client_certificates(tmp_path):
    docker = require_binary("docker")
    base = [sys.executable, "-m", "dockerbank", "--root", str(tmp_path / "root"), "--runroot", str(tmp_path / "run"),
            "system", "service"]
    refused = subprocess.run([*base, "--host", "tcp://127.0.0.1:1"], capture_output=True, timeout=30, check=False)
    assert refused.returncode == 125 and b"--tlscacert" in refused.stderr
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=test-ca", cwd=tmp_path)
    (tmp_path / "server.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    (tmp_path / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    client = tmp_path / "client"
    client.mkdir()
    for name, ext, key, cert in (("server", "server.ext", "key.pem", "cert.pem"),
                                 ("client", "client.ext", "client/key.pem", "client/cert.pem")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", f"{name}.csr", "-subj",
                 f"/CN={name}", cwd=tmp_path)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", cert, "-days", "2", "-extfile", ext, cwd=tmp_path)
    (client / "ca.pem").write_bytes((tmp_path / "ca.pem").read_bytes())
    port = _free_port()
    proc = subprocess.Popen([*base, "--host", f"tcp://127.0.0.1:{port}", "--tlscacert", str(tmp_path / "ca.pem"),
                             "--tlscert", str(tmp_path / "cert.pem"), "--tlskey", str(tmp_path / "key.pem")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        env = {"DOCKER_HOST": f"tcp://127.0.0.1:{port}", "DOCKER_CONFIG": str(tmp_path / "cfg"), "PATH": "/usr/bin:/bin"}
        good = subprocess.run([docker, "version", "--format", "{{.Server.APIVersion}}"], capture_output=True,
                              timeout=30, check=False, env={**env, "DOCKER_TLS_VERIFY": "1",
                                                           "DOCKER_CERT_PATH": str(client)})
        assert good.returncode == 0 and good.stdout.strip() == b"1.45", good.stderr
        anonymous = subprocess.run([docker, "--tls", "--tlscacert", str(tmp_path / "ca.pem"), "version"],
                                   capture_output=True, timeout=30, check=False, env=env)
        assert anonymous.returncode != 0
    finally:
        proc.terminate()
        proc.wait(10)
