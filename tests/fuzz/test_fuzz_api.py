"""The Docker Engine API under hostile request bodies and query strings: Dockerbank's own errors
(4xx, or a 5xx that the engine chose), never an exception outside the error tree (a 500 with a
traceback in the service's log)."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import socket
import threading
import urllib.parse
from pathlib import Path

import pytest
from fuzzing import CASES, FAILURES
from hypothesis import given
from hypothesis import strategies as st

pytestmark = pytest.mark.integration  # a real engine below the API (no container is started)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)


class _Tracebacks(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.seen.append(self.format(record))


@pytest.fixture(scope="module")
def api(tmp_path_factory, busybox_tar):
    from aiohttp import web

    from dockerbank.api.server import make_app
    from dockerbank.config import Config
    from dockerbank.engine import Engine
    from dockerbank.image.importer import import_rootfs

    base = tmp_path_factory.mktemp("fuzz-api")
    config = Config(root=base / "root", run_root=base / "run")
    engine = Engine(config)
    with open(busybox_tar, "rb") as handle:
        import_rootfs(engine.images, handle, "busybox:latest", ('CMD ["sh"]',))
    engine.close()
    sock = str(base / "api.sock")
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(make_app(config), handle_signals=False)

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.UnixSite(runner, sock).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30)
    tracebacks = _Tracebacks()
    logging.getLogger().addHandler(tracebacks)
    yield sock, tracebacks
    logging.getLogger().removeHandler(tracebacks)
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def call(api, target: str, method: str, path: str, body: bytes | None = None) -> None:
    sock, tracebacks = api
    CASES[target] += 1
    tracebacks.seen.clear()
    conn = _UnixConnection(sock)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        response = conn.getresponse()
        data = response.read(1 << 20)
    finally:
        conn.close()
    assert not tracebacks.seen, f"{method} {path}: {tracebacks.seen[-1]}"
    if response.status >= 400:
        FAILURES[target] += 1
        message = json.loads(data)["message"]
        assert "\n" not in message.strip(), message
    assert response.status != 500 or not message.split(":")[0].endswith(("Error", "Exception")), \
        f"{method} {path} {body!r}: {response.status} {message}"


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 1 << 40), st.text(max_size=12),
                    st.sampled_from(["busybox", "none", "host", "bridge", "default", "80/tcp", "always",
                                     "on-failure", "json-file", "/data", "SIGKILL", "1g", "unix://x", "::1",
                                     "10.1.0.0/16", "fd00::/64", "0.0.0.0", "sh"]))
CREATE_KEYS = ["Image", "Cmd", "Entrypoint", "Env", "Labels", "Tty", "OpenStdin", "User", "WorkingDir", "Volumes",
               "ExposedPorts", "StopSignal", "StopTimeout", "Healthcheck", "HostConfig", "NetworkingConfig",
               "Hostname", "Domainname", "MacAddress", "AttachStdin", "Shell"]
HOST_KEYS = ["PortBindings", "RestartPolicy", "Memory", "MemorySwap", "NanoCpus", "CpuShares", "PidsLimit",
             "NetworkMode", "CapAdd", "CapDrop", "Privileged", "ReadonlyRootfs", "Tmpfs", "Devices", "Dns",
             "ExtraHosts", "Init", "AutoRemove", "SecurityOpt", "LogConfig", "VolumesFrom", "Ulimits",
             "CpusetCpus", "BlkioWeight", "PublishAllPorts", "Sysctls", "ShmSize", "GroupAdd"]
NESTED_KEYS = ["Name", "MaximumRetryCount", "HostIp", "HostPort", "Test", "Interval", "Retries", "Type", "Config",
               "EndpointsConfig", "IPAMConfig", "IPv4Address", "Aliases", "PathOnHost", "Soft", "Hard", "Driver",
               "Subnet", "Gateway", "IPRange"]
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.sampled_from(NESTED_KEYS), st.text(max_size=6)),
                                                 inner, max_size=3)), max_leaves=10)
create_bodies = st.one_of(
    st.fixed_dictionaries({"Image": st.sampled_from(["busybox", "", "nope", "busybox:latest", "sha256:"])},
                          optional={k: values for k in CREATE_KEYS[1:]} | {
                              "HostConfig": st.dictionaries(st.sampled_from(HOST_KEYS), values, max_size=5)}),
    values)


def _encode(body) -> bytes:
    return json.dumps(body).encode()


@given(create_bodies, st.one_of(st.none(), st.text(max_size=20)))
def test_container_create(api, body, name):
    query = "?" + urllib.parse.urlencode({"name": name}) if name is not None else ""
    call(api, "API POST /containers/create", "POST", "/v1.45/containers/create" + query, _encode(body))


queries = st.dictionaries(st.sampled_from(["all", "limit", "size", "filters", "tail", "since", "until", "timestamps",
                                           "signal", "t", "force", "v", "dangling", "digests", "stream", "ps_args",
                                           "condition", "stdout", "stderr"]),
                          st.one_of(st.text(max_size=15), st.sampled_from(['{"label":["a"]}', '{"bogus":["x"]}',
                                                                           '{"status":"running"}', "[]", "1", "-1",
                                                                           "true", "abc", '{"until":["1h"]}'])),
                          max_size=4)
ENDPOINTS = [("GET", "/containers/json"), ("GET", "/images/json"), ("GET", "/volumes"), ("GET", "/networks"),
             ("POST", "/containers/prune"), ("POST", "/images/prune"), ("POST", "/volumes/prune"),
             ("POST", "/networks/prune"), ("GET", "/containers/nosuch/logs"), ("GET", "/containers/nosuch/top"),
             ("POST", "/containers/nosuch/kill"), ("GET", "/containers/nosuch/json"), ("GET", "/images/busybox/json"),
             ("GET", "/images/busybox/history"), ("DELETE", "/images/nosuch"), ("GET", "/system/df"),
             ("GET", "/info"), ("GET", "/version"), ("DELETE", "/volumes/nosuch"), ("GET", "/networks/nosuch")]


@given(st.sampled_from(ENDPOINTS), queries)
def test_query_strings(api, endpoint, query):
    method, path = endpoint
    call(api, f"API {method} {path.split('/')[1]}", method, "/v1.45" + path + "?" + urllib.parse.urlencode(query))


@given(st.one_of(st.fixed_dictionaries({"Name": st.text(max_size=12)},
                                       optional={"Driver": values, "DriverOpts": values, "Labels": values}), values))
def test_volume_create(api, body):
    call(api, "API POST /volumes/create", "POST", "/v1.45/volumes/create", _encode(body))


@given(st.one_of(st.fixed_dictionaries({"Name": st.text(max_size=12)},
                                       optional={"Driver": values, "IPAM": values, "Internal": values,
                                                 "EnableIPv6": values, "Labels": values, "Options": values,
                                                 "CheckDuplicate": values, "Attachable": values}), values))
def test_network_create(api, body):
    call(api, "API POST /networks/create", "POST", "/v1.45/networks/create", _encode(body))


@given(st.binary(max_size=64))
def test_bodies_that_are_not_json(api, raw):
    call(api, "API bodies not JSON", "POST", "/v1.45/containers/create", raw)
    call(api, "API bodies not JSON", "POST", "/v1.45/volumes/create", raw)


def test_the_root_is_left_usable(api, tmp_path):
    """After the fuzzing, the root still answers (nothing half-created blocks a listing)."""
    call(api, "API after", "GET", "/v1.45/containers/json?all=1")
    call(api, "API after", "POST", "/v1.45/containers/prune")
    assert Path(api[0]).exists()
