"""Pure parts of the monitor: readings -> metric families (cAdvisor's names and labels), the
backup summary, the metrics address, the verify log and the size cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dockerbank.api.metrics import parse_addr
from dockerbank.container.stats import BlkioEntry, NetStats, StatsSample
from dockerbank.errors import UsageError
from dockerbank.monitor import verifylog
from dockerbank.monitor.backups import summarize
from dockerbank.monitor.families import (Families, backup_families, container_families, host_families,
                                         label_name)
from dockerbank.monitor.readings import (ContainerReading, Filesystem, HostReading, ImageReading,
                                         SizeCache, VolumeReading, health_status, parse_io_ops_v2,
                                         parse_rfc3339)

NOW = 1_800_000_000.0


def exposition(families: Families) -> dict[tuple[str, tuple], float]:
    """Render through prometheus_client and parse back: {(sample name, sorted labels): value}."""

    class One:
        def collect(self):
            return families.metrics()

    registry = CollectorRegistry(auto_describe=False)
    registry.register(One())
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, metric: str, /, **labels) -> float:
    hits = [v for (n, ls), v in samples.items() if n == metric and set(labels.items()) <= set(ls)]
    assert len(hits) == 1, (metric, labels, hits)
    return hits[0]


def running(**extra) -> ContainerReading:
    sample = StatsSample(
        read=NOW, cpu_total_ns=2_500_000_000, cpu_user_ns=2_000_000_000, cpu_kernel_ns=500_000_000,
        throttling=(10, 4, 300_000_000), memory_usage=10_000, memory_max_usage=12_000,
        memory_stats={"total_inactive_file": 3_000, "total_rss": 6_000, "total_cache": 4_000,
                      "total_mapped_file": 100},
        networks={"eth0": NetStats(1, 2, 3, 4, 5, 6, 7, 8)},
        blkio=[BlkioEntry(8, 0, "Read", 4096), BlkioEntry(8, 0, "Write", 8192)],
        pids_current=7, pids_limit=100, cgroup_version=1)
    fields = dict(id="c" * 64, name="web", image="nginx:1", labels={"com.example/tier": "front"},
                  status="running", cgroup_path="/dockerbank/" + "c" * 64, restart_count=2,
                  started_at=NOW - 60, memory_limit=64 << 20, sample=sample, oom_events=1, failcnt=5,
                  processes=3, io_ops=[BlkioEntry(8, 0, "read", 11), BlkioEntry(8, 0, "write", 22)],
                  health="unhealthy")
    fields.update(extra)
    return ContainerReading(**fields)


def test_label_names_follow_cadvisor():
    assert label_name("com.docker.compose.project") == "container_label_com_docker_compose_project"
    assert label_name("a-b/c d") == "container_label_a_b_c_d"


def test_running_container_has_cadvisors_names_units_and_labels():
    out = exposition(container_families([running()], NOW, lambda major, minor: "/dev/sda"))
    ident = {"id": "/dockerbank/" + "c" * 64, "name": "web", "image": "nginx:1",
             "container_label_com_example_tier": "front"}
    assert value(out, "container_cpu_usage_seconds_total", cpu="total", **ident) == 2.5
    assert value(out, "container_cpu_user_seconds_total", **ident) == 2.0
    assert value(out, "container_cpu_system_seconds_total", **ident) == 0.5
    assert value(out, "container_cpu_cfs_throttled_periods_total", **ident) == 4
    assert value(out, "container_cpu_cfs_throttled_seconds_total", **ident) == 0.3
    assert value(out, "container_memory_usage_bytes", **ident) == 10_000
    assert value(out, "container_memory_working_set_bytes", **ident) == 7_000
    assert value(out, "container_memory_rss", **ident) == 6_000
    assert value(out, "container_memory_cache", **ident) == 4_000
    assert value(out, "container_memory_failcnt", **ident) == 5
    assert value(out, "container_spec_memory_limit_bytes", **ident) == 64 << 20
    assert value(out, "container_oom_events_total", **ident) == 1
    assert value(out, "container_network_receive_bytes_total", interface="eth0", **ident) == 1
    assert value(out, "container_network_receive_packets_dropped_total", interface="eth0") == 4
    assert value(out, "container_network_transmit_errors_total", interface="eth0") == 7
    assert value(out, "container_fs_reads_bytes_total", device="/dev/sda", **ident) == 4096
    assert value(out, "container_fs_writes_bytes_total", device="/dev/sda") == 8192
    assert value(out, "container_fs_reads_total", device="/dev/sda") == 11
    assert value(out, "container_fs_writes_total", device="/dev/sda") == 22
    assert value(out, "container_blkio_device_usage_total", operation="Write", major="8", minor="0") == 8192
    assert value(out, "container_processes", **ident) == 3
    assert value(out, "container_threads", **ident) == 7
    assert value(out, "container_threads_max", **ident) == 100
    assert value(out, "container_start_time_seconds", **ident) == NOW - 60
    assert value(out, "container_last_seen", **ident) == NOW
    own = {"id": "c" * 64, "name": "web", "image": "nginx:1"}
    assert value(out, "dockerbank_container_state", state="running", **own) == 1
    assert value(out, "dockerbank_container_state", state="exited", **own) == 0
    assert value(out, "dockerbank_container_restarts_total", **own) == 2
    assert value(out, "dockerbank_container_health_status", status="unhealthy", **own) == 1
    assert value(out, "dockerbank_container_health_status", status="healthy", **own) == 0
    assert value(out, "dockerbank_containers", state="running") == 1


def test_v2_working_set_rss_and_cache_come_from_v2_keys():
    reading = running()
    reading.sample.cgroup_version = 2
    reading.sample.memory_stats = {"inactive_file": 1_000, "anon": 2_000, "file": 3_000}
    out = exposition(container_families([reading], NOW))
    assert value(out, "container_memory_working_set_bytes") == 9_000
    assert value(out, "container_memory_rss") == 2_000
    assert value(out, "container_memory_cache") == 3_000
    assert not [k for k in out if k[0] == "container_memory_max_usage_bytes"]


def test_stopped_container_has_only_dockerbanks_own_metrics():
    reading = running(status="exited", sample=None, exit_code=137, oom_killed=True, health=None)
    out = exposition(container_families([reading], NOW))
    assert not [k for k in out if k[0].startswith("container_")]
    own = {"id": "c" * 64}
    assert value(out, "dockerbank_container_exit_code", **own) == 137
    assert value(out, "dockerbank_container_oom_killed", **own) == 1
    assert value(out, "dockerbank_container_state", state="exited", **own) == 1
    assert not [k for k in out if k[0] == "dockerbank_container_health_status"]
    assert value(out, "dockerbank_containers", state="exited") == 1
    assert value(out, "dockerbank_containers", state="running") == 0


def test_host_families():
    out = Families()
    host_families(out, HostReading(
        images=[ImageReading("sha256:aa", "busybox:latest", 2_000_000)],
        volumes=[VolumeReading("data", NOW - 10, 300), VolumeReading("broken", NOW, None)],
        filesystems=[Filesystem("backup", "/srv/b", 1000, 50, 70)], cpu_cores=2, memory_bytes=4 << 30))
    samples = exposition(out)
    assert value(samples, "dockerbank_images") == 1
    assert value(samples, "dockerbank_image_size_bytes", image="busybox:latest") == 2_000_000
    assert value(samples, "dockerbank_volumes") == 2
    assert value(samples, "dockerbank_volume_size_bytes", volume="data") == 300
    assert not [k for k in samples if k[0] == "dockerbank_volume_size_bytes" and ("volume", "broken") in k[1]]
    assert value(samples, "dockerbank_filesystem_avail_bytes", role="backup", path="/srv/b") == 50
    assert value(samples, "machine_cpu_cores") == 2


@dataclass
class FakePart:
    kind: str
    name: str
    size: int
    meta: dict = field(default_factory=dict)


@dataclass
class FakeSnapshot:
    id: str
    when: float
    parts: list

    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.when, UTC)


@dataclass
class FakeContainer:
    name: str
    labels: dict


def test_backup_summary_last_success_verify_stacks_and_unprotected_age():
    day = 86400.0
    snapshots = [
        FakeSnapshot("s1", NOW - 3 * day, [FakePart("volume", "data", 100), FakePart("container", "db", 10)]),
        FakeSnapshot("s2", NOW - 2 * day, [FakePart("volume", "data", 150),
                                           FakePart("dump", "db", 50, {"volumes": ["pgdata"]})]),
        FakeSnapshot("s3", NOW - 1 * day, [FakePart("container", "web", 20)]),
    ]
    verified = {"s1": {"time": NOW - 2.5 * day, "ok": True}, "s2": {"time": NOW - 1.5 * day, "ok": False}}
    volumes = [VolumeReading("data", NOW - 10 * day, 1), VolumeReading("pgdata", NOW - 10 * day, 1),
               VolumeReading("new", NOW - 3600, 1)]
    containers = [FakeContainer("db", {"com.docker.compose.project": "lab"}),
                  FakeContainer("web", {"com.docker.compose.project": "lab"}),
                  FakeContainer("solo", {"com.docker.compose.project": "other"})]
    summary = summarize(snapshots, verified, volumes, containers, NOW)
    data = summary.items[("volume", "data")]
    assert (data.last_time, data.last_size) == (NOW - 2 * day, 150)
    assert (data.verify_time, data.verify_size) == (NOW - 2.5 * day, 100)   # s2's verify failed
    assert summary.items[("volume", "pgdata")].last_time == NOW - 2 * day    # the dump protects it
    lab = summary.items[("stack", "lab")]
    assert (lab.last_time, lab.last_size) == (NOW - 3 * day, 30)   # the stack is as old as its oldest member
    assert summary.items[("stack", "other")].last_time == 0         # a member never saved
    assert summary.volume_age == {"data": 2 * day, "pgdata": 2 * day, "new": 3600}
    assert summary.oldest_unprotected_age == 2 * day
    assert summary.snapshots == 3 and summary.last_snapshot_time == NOW - day

    out = Families()
    backup_families(out, summary, "/srv/b")
    samples = exposition(out)
    assert value(samples, "dockerbank_backup_last_success_timestamp_seconds", kind="volume", name="data") \
        == NOW - 2 * day
    assert value(samples, "dockerbank_backup_last_verify_timestamp_seconds", kind="volume", name="data") \
        == NOW - 2.5 * day
    assert value(samples, "dockerbank_volume_backup_age_seconds", volume="new") == 3600
    assert value(samples, "dockerbank_backup_oldest_unprotected_volume_age_seconds") == 2 * day
    assert value(samples, "dockerbank_backup_repository_up", repository="/srv/b") == 1


def test_unreadable_repository_is_reported_down():
    out = Families()
    backup_families(out, None, "/srv/b")
    assert value(exposition(out), "dockerbank_backup_repository_up", repository="/srv/b") == 0


def test_parse_addr():
    assert parse_addr("127.0.0.1:9323") == ("127.0.0.1", 9323)
    assert parse_addr(":9100") == ("127.0.0.1", 9100)
    assert parse_addr("9100") == ("127.0.0.1", 9100)
    assert parse_addr("0.0.0.0:1") == ("0.0.0.0", 1)
    assert parse_addr("[::1]:9323") == ("::1", 9323)
    for bad in ("host:port", "h:0", "h:70000", "[::1]:x"):
        with pytest.raises(UsageError, match="invalid --metrics-addr"):
            parse_addr(bad)


def test_verify_log_round_trip(tmp_path):
    repo = tmp_path / "repo"
    assert verifylog.load(tmp_path, repo) == {}
    verifylog.record(tmp_path, repo, "s1", True, when=5.0)
    verifylog.record(tmp_path, repo, "s2", False, when=6.0)
    verifylog.record(tmp_path, tmp_path / "other", "s9", True, when=7.0)
    assert verifylog.load(tmp_path, repo) == {"s1": {"time": 5.0, "ok": True}, "s2": {"time": 6.0, "ok": False}}
    assert (tmp_path / verifylog.FILENAME).stat().st_mode & 0o077 == 0
    (tmp_path / verifylog.FILENAME).write_text("not json")
    assert verifylog.load(tmp_path, repo) == {}


def test_size_cache_measures_once_per_ttl():
    now = [0.0]
    calls = []
    cache = SizeCache(ttl=60, clock=lambda: now[0])

    def measure() -> int:
        calls.append(1)
        return len(calls) * 10

    assert cache.get("v", measure) == 10
    now[0] = 59
    assert cache.get("v", measure) == 10
    now[0] = 61
    assert cache.get("v", measure) == 20

    def broken() -> int:
        raise OSError("gone")

    assert cache.get("w", broken) is None


def test_small_parsers():
    assert parse_io_ops_v2("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0\n") == [
        BlkioEntry(8, 0, "read", 3), BlkioEntry(8, 0, "write", 4)]
    assert parse_rfc3339("0001-01-01T00:00:00Z") == 0.0
    assert parse_rfc3339("2026-12-05T02:46:01.668672123Z") == pytest.approx(1796438761.668672, abs=1e-6)
    assert parse_rfc3339("2026-12-05T02:46:01Z") == 1796438761.0

    class State:
        health = {"Status": "healthy", "FailingStreak": 0}

    assert health_status(State()) == "healthy"
    assert health_status(object()) is None


def test_copy_log_round_trip_and_its_metric(tmp_path):
    from dockerbank.monitor.families import Families, copy_families

    assert verifylog.copies(tmp_path) == {}
    verifylog.record_copy(tmp_path, "oci://reg:5000/backups", tmp_path / "repo", 3, when=7.0)
    verifylog.record_copy(tmp_path, "oci://reg:5000/backups", tmp_path / "repo", 4, when=9.0)
    records = verifylog.copies(tmp_path)
    assert records == {"oci://reg:5000/backups": {"time": 9.0, "from": str((tmp_path / "repo").resolve()),
                                                   "snapshots": 4}}
    assert (tmp_path / verifylog.COPY_FILENAME).stat().st_mode & 0o077 == 0
    out = Families()
    copy_families(out, records)
    samples = {(s.name, s.labels["repository"]): s.value for m in out.metrics() for s in m.samples}
    assert samples[("dockerbank_backup_copy_last_success_timestamp_seconds", "oci://reg:5000/backups")] == 9.0
    assert samples[("dockerbank_backup_copy_snapshots", "oci://reg:5000/backups")] == 4.0
