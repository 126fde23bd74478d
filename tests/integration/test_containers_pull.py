"""``run``/``create`` pull a missing image (Docker's ``--pull missing``), from Dockerbank's own
registry server running in-process on 127.0.0.1 (plain HTTP: loopback is insecure by default);
and ``run --rm``'s teardown in a detached child, which leaves nothing behind.
"""

from __future__ import annotations

import pytest

from dockerbank.registry.server.app import start_in_thread
from dockerbank.registry.server.storage import RegistryStorage
from tests.conftest import run_cli


@pytest.fixture(autouse=True)
def docker_config(tmp_path, monkeypatch):
    """Credentials go to the test's own docker config, never the user's."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


@pytest.fixture
def pushed(engine, busybox, tmp_path):
    """busybox pushed to a fresh in-process registry; its name there."""
    server = start_in_thread(RegistryStorage(tmp_path / "registry"))
    name = f"{server.address}/team/bb:1.0"
    engine.images.tag(busybox.id, name)
    engine.registry.push(name)
    yield name
    server.stop()


def test_run_pulls_a_missing_image_then_runs_it(pushed, tmp_path):
    fresh = tmp_path / "fresh-root"
    result = run_cli(fresh, "run", "--rm", "--network", "none", pushed, "echo", "hi")
    assert result.stdout == b"hi\n"
    err = result.stderr.decode()
    assert err.startswith(f"Unable to find image '{pushed}' locally\n")
    assert "1.0: Pulling from team/bb" in err
    assert f"Status: Downloaded newer image for {pushed}" in err
    # now stored: the next run does not pull
    again = run_cli(fresh, "run", "--rm", "--network", "none", pushed, "true")
    assert again.stderr == b""
    assert run_cli(fresh, "images", "-q", pushed).stdout.strip()


def test_create_pulls_quietly_with_q_and_never_fails_like_docker(pushed, tmp_path):
    fresh = tmp_path / "fresh-root"
    never = run_cli(fresh, "create", "--pull", "never", pushed, check=False)
    assert never.returncode == 125
    assert f"No such image: {pushed}" in never.stderr.decode()
    created = run_cli(fresh, "create", "-q", "--network", "none", pushed, "true")
    assert created.stderr == b""
    cid = created.stdout.decode().strip()
    assert len(cid) == 64
    assert run_cli(fresh, "inspect", "--format", "{{.Config.Image}}", cid).stdout.decode().strip() == pushed
    run_cli(fresh, "rm", cid)


def test_run_of_an_image_no_registry_has_fails_with_125(tmp_path):
    fresh = tmp_path / "fresh-root"
    result = run_cli(fresh, "run", "--rm", "127.0.0.1:9/nothing/here:1", "true", check=False)
    assert result.returncode == 125
    err = result.stderr.decode()
    assert err.startswith("Unable to find image '127.0.0.1:9/nothing/here:1' locally\n")
    assert err.count("\n") <= 3 and "Traceback" not in err


@pytest.mark.parametrize("command", ["run", "create"])
def test_a_malformed_userns_is_refused_before_the_image_lookup(tmp_path, command):
    """As docker's ``--userns: invalid USER mode``: one line, 125, and no pull of the missing image."""
    fresh = tmp_path / "fresh-root"
    result = run_cli(fresh, command, "--userns=bogus", "127.0.0.1:9/nothing/here:1", "true", check=False)
    assert result.returncode == 125
    assert result.stderr.decode() == "Error: --userns: invalid USER mode 'bogus': use 'host' or 'auto' " \
                                     "(or 'auto:size=N')\n"


def test_run_rm_tears_down_after_returning(busybox, engine, cli, root):
    """``run --rm`` returns before its detached child has unmounted and removed the container;
    soon after, nothing is left: no row, no directory, no overlay mount, no runtime state."""
    import time

    from dockerbank.host.mounts import overlay_mounts_under

    result = cli("run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo out; exit 4", check=False)
    assert (result.returncode, result.stdout) == (4, b"out\n")
    assert cli("ps", "-aq").stdout == b""
    containers, runtime = engine.config.containers_dir, engine.config.run_root / "runtime"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        left = [*containers.iterdir(), *(runtime.iterdir() if runtime.is_dir() else [])]
        if not left and not overlay_mounts_under(containers):
            break
        time.sleep(0.1)
    assert list(containers.iterdir()) == []
    assert overlay_mounts_under(containers) == []
    assert not runtime.is_dir() or list(runtime.iterdir()) == []
