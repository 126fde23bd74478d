"""The dashboard's pure parts: sessions, CSRF, the login limit, exposure rules, what needs attention."""

from __future__ import annotations

import pytest

from dockerbank.container.model import Container, ContainerConfig, ContainerState
from dockerbank.dashboard import views
from dockerbank.dashboard.auth import ADMIN, VIEWER, LoginLimiter, Sessions, Users, csrf_ok
from dockerbank.dashboard.server import check_exposure, parse_listen
from dockerbank.host.addresses import is_loopback
from dockerbank.errors import InvalidArgument, UsageError


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_when_idle_and_can_be_dropped():
    clock = Clock()
    sessions = Sessions(clock, idle=60)
    token, session = sessions.create("alice", ADMIN)
    assert sessions.get(token) is session and session.admin
    clock.now += 59
    assert sessions.get(token) is session            # a request keeps it alive
    clock.now += 61
    assert sessions.get(token) is None
    token, _ = sessions.create("bob", VIEWER)
    sessions.drop(token)
    assert sessions.get(token) is None and sessions.get(None) is None and sessions.get("forged") is None


def test_csrf_token_must_match():
    _, session = Sessions().create("alice", ADMIN)
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, None) and not csrf_ok(session, "") and not csrf_ok(session, session.csrf + "x")


def test_login_limiter_blocks_after_five_failures_for_a_minute():
    clock = Clock()
    limiter = LoginLimiter(clock)
    for _ in range(5):
        assert not limiter.blocked("addr:1", "user:alice")
        limiter.failed("addr:1", "user:alice")
    assert limiter.blocked("addr:1") and limiter.blocked("addr:2", "user:alice") and not limiter.blocked("addr:2")
    clock.now += 61
    assert not limiter.blocked("addr:1", "user:alice")
    limiter.failed("addr:1")
    limiter.succeeded("addr:1")
    assert limiter._failures == {}


def test_users_roles_from_htpasswd(tmp_path):
    from dockerbank.registry.server.auth import make_htpasswd_line

    path = tmp_path / "htpasswd"
    path.write_text(make_htpasswd_line("alice", "a", rounds=4) + "\n" + make_htpasswd_line("bob", "b", rounds=4) + "\n")
    users = Users.load(path, ["bob"])
    assert users.check("alice", "a") == ADMIN and users.check("bob", "b") == VIEWER
    assert users.check("alice", "b") is None and users.check("carol", "a") is None
    with pytest.raises(InvalidArgument, match="carol"):
        Users.load(path, ["carol"])
    with pytest.raises(InvalidArgument, match="cannot read"):
        Users.load(tmp_path / "missing")


def test_listen_and_exposure():
    assert parse_listen("127.0.0.1:8090") == ("127.0.0.1", 8090)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    for bad in ("8090", "host:", "host:99999", ":80"):
        with pytest.raises(UsageError):
            parse_listen(bad)
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("example.org")
    check_exposure("127.0.0.1", tls=False)
    check_exposure("0.0.0.0", tls=True)
    with pytest.raises(UsageError, match="without TLS"):
        check_exposure("0.0.0.0", tls=False)


def _container(name: str, **state) -> Container:
    return Container(id=name * 8, name=name, created="", config=ContainerConfig(image="busybox", image_id="sha256:0", path="sh"),
                     state=ContainerState(**state))


def test_attention_lists_what_is_wrong_only():
    containers = [_container("ok", status="running"), _container("fine", status="exited", exit_code=0),
                  _container("sick", status="running", health={"Status": "unhealthy"}),
                  _container("loop", status="restarting", restart_count=4),
                  _container("oom", status="exited", exit_code=137, oom_killed=True),
                  _container("failed", status="exited", exit_code=2),
                  _container("stopped", status="exited", exit_code=137, user_stopped=True)]
    found = [(a.name, a.why) for a in views.attention(containers, ["data", "logs"], {"data"})]
    assert found == [("sick", "unhealthy"), ("loop", "restarting (restarted 4 times)"),
                     ("oom", "killed: out of memory"), ("failed", "exited with code 2"),
                     ("logs", "no backup in the last 24 hours")]
    assert all(a.kind == "container" for a in views.attention(containers, ["logs"], None))  # backups unknown
    assert views.states(containers)["running"] == 2 and views.states(containers)["exited"] == 4


def test_host_figures_parse_proc_and_name_what_cannot_be_read(tmp_path):
    from dockerbank.dashboard import hostinfo

    assert hostinfo.parse_loadavg("1.50 0.80 0.40 2/300 1234\n") == 1.5
    total, available = hostinfo.parse_meminfo("MemTotal:  2048 kB\nMemFree: 100 kB\nMemAvailable: 1024 kB\n")
    assert (total, available) == (2048 * 1024, 1024 * 1024)
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "loadavg").write_text("3.00 1 1 1/1 1\n")
    figures = hostinfo.read(tmp_path, str(tmp_path / "repo" / "not-yet"), proc=proc)
    assert figures.load1 == 3.0 and [d.what for d in figures.disks] == ["root", "backups"]
    assert figures.disks[0].total > 0 and 0 <= figures.disks[0].used_percent <= 100
    assert len(figures.problems) == 1 and figures.problems[0].startswith("memory")
    assert [d.what for d in hostinfo.read(tmp_path, "oci://registry/x", proc=proc).disks] == ["root"]


def test_jobs_add_progress_and_keep_the_failure():
    import asyncio

    from dockerbank.dashboard.jobs import JobProgress, Jobs
    from dockerbank.errors import NotFound

    async def scenario():
        jobs = Jobs()

        async def works(job):
            tick = JobProgress(job).task("part", 10)
            tick(4)
            tick(6)
            return "all done"

        async def fails(job):
            raise NotFound("no such snapshot: x")

        good, bad = jobs.start("a", "alice", works), jobs.start("b", "alice", fails)
        while good.state == "running" or bad.state == "running":
            await asyncio.sleep(0)
        return jobs, good, bad

    jobs, good, bad = asyncio.run(scenario())
    assert (good.state, good.message, good.done, good.total) == ("ok", "all done", 10, 10)
    assert (bad.state, bad.message) == ("failed", "no such snapshot: x")
    assert [j.id for j in jobs.recent()] == [bad.id, good.id] and jobs.get(good.id) is good


def test_audit_counts_and_images_needing_attention():
    from dockerbank.audit.findings import finding
    from dockerbank.dashboard import views

    findings = [finding("runs-as-root", "config", "root"), finding("secret-in-env", "ENV", "token"),
                finding("no-healthcheck", "config", "none")]
    assert views.severity_counts(None) is None and views.severity_counts([]) == {}
    assert views.severity_counts(findings) == {"high": 2, "low": 1}
    shown = views.image_attention([("lab/app:1", findings), ("busybox:latest", []), ("never:1", None)])
    assert [(a.kind, a.name, a.why) for a in shown] == [
        ("image", "lab/app:1", "audit: 2 high (runs-as-root, secret-in-env)")]
