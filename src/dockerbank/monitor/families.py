"""Readings -> Prometheus metric families (pure).

Per-container figures carry cAdvisor's names, units and labels (``id`` = the cgroup path,
``name``, ``image``, ``container_label_<label>``), so dashboards and alerts written for
cAdvisor work unchanged; like cAdvisor they exist only while the container has a cgroup.
Dockerbank's own figures (state, restarts, health, exit code, host, backups) are
``dockerbank_*`` and exist for every container.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from prometheus_client.core import Metric

from dockerbank.container.model import STATUSES
from dockerbank.container.stats import NS_PER_S, blkio_totals
from dockerbank.monitor.backups import BackupSummary
from dockerbank.monitor.readings import ContainerReading, HostReading

HEALTH_STATUSES = ("starting", "healthy", "unhealthy")
_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def label_name(key: str) -> str:
    """cAdvisor's ``container_label_<key>``: every character outside ``[a-zA-Z0-9_]`` becomes ``_``."""
    return "container_label_" + _LABEL_CHARS.sub("_", key)


def container_labels(reading: ContainerReading) -> dict[str, str]:
    """cAdvisor's labels of one container."""
    labels = {label_name(k): v for k, v in sorted(reading.labels.items())}
    labels.update({"id": reading.cgroup_path, "image": reading.image, "name": reading.name})
    return labels


class Families:
    """Metric families built up by name, in the order first used."""

    def __init__(self) -> None:
        self._by_name: dict[str, Metric] = {}

    def add(self, name: str, doc: str, typ: str, labels: dict[str, str], value: float) -> None:
        """One sample; a counter's name is given without ``_total`` (it is appended)."""
        metric = self._by_name.get(name)
        if metric is None:
            metric = self._by_name[name] = Metric(name, doc, typ)
        metric.add_sample(name + "_total" if typ == "counter" else name, labels, float(value))

    def declare(self, name: str, doc: str, typ: str) -> None:
        """A family that is listed (HELP/TYPE) even when it has no sample."""
        self._by_name.setdefault(name, Metric(name, doc, typ))

    def metrics(self) -> list[Metric]:
        return list(self._by_name.values())


def _cadvisor(out: Families, reading: ContainerReading, now: float,
              device: Callable[[int, int], str] | None) -> None:
    sample = reading.sample
    if sample is None:
        return
    base = container_labels(reading)

    def counter(name: str, doc: str, value: float, **extra: str) -> None:
        out.add(name, doc, "counter", {**base, **extra}, value)

    def gauge(name: str, doc: str, value: float, **extra: str) -> None:
        out.add(name, doc, "gauge", {**base, **extra}, value)

    counter("container_cpu_usage_seconds", "Cumulative cpu time consumed in seconds.",
            sample.cpu_total_ns / NS_PER_S, cpu="total")
    counter("container_cpu_user_seconds", "Cumulative user cpu time consumed in seconds.",
            sample.cpu_user_ns / NS_PER_S)
    counter("container_cpu_system_seconds", "Cumulative system cpu time consumed in seconds.",
            sample.cpu_kernel_ns / NS_PER_S)
    periods, throttled, throttled_ns = sample.throttling
    counter("container_cpu_cfs_periods", "Number of elapsed enforcement period intervals.", periods)
    counter("container_cpu_cfs_throttled_periods", "Number of throttled period intervals.", throttled)
    counter("container_cpu_cfs_throttled_seconds", "Total time duration the container has been throttled.",
            throttled_ns / NS_PER_S)
    stats = sample.memory_stats
    v1 = sample.cgroup_version == 1
    gauge("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless "
          "of when it was accessed", sample.memory_usage)
    inactive = stats.get("total_inactive_file" if v1 else "inactive_file", 0)
    gauge("container_memory_working_set_bytes", "Current working set in bytes.",
          sample.memory_usage - inactive if inactive < sample.memory_usage else 0)
    gauge("container_memory_rss", "Size of RSS in bytes.", stats.get("total_rss" if v1 else "anon", 0))
    gauge("container_memory_cache", "Number of bytes of page cache memory.",
          stats.get("total_cache" if v1 else "file", 0))
    gauge("container_memory_mapped_file", "Size of memory mapped files in bytes.",
          stats.get("total_mapped_file" if v1 else "file_mapped", 0))
    if v1:
        gauge("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes",
              sample.memory_max_usage)
    gauge("container_memory_failcnt", "Number of memory usage hits limits", reading.failcnt)
    gauge("container_spec_memory_limit_bytes", "Memory limit for the container.", reading.memory_limit)
    if reading.nano_cpus:
        gauge("container_spec_cpu_period", "CPU period of the container.", 100000)
        gauge("container_spec_cpu_quota", "CPU quota of the container.", reading.nano_cpus * 100000 // NS_PER_S)
    gauge("container_spec_cpu_shares", "CPU share of the container.", reading.cpu_shares or 1024)
    counter("container_oom_events", "Count of out of memory events observed for the container",
            reading.oom_events)
    for iface, net in sorted(sample.networks.items()):
        for direction, prefix in (("receive", "rx"), ("transmit", "tx")):
            counter(f"container_network_{direction}_bytes", f"Cumulative count of bytes {direction}d",
                    getattr(net, f"{prefix}_bytes"), interface=iface)
            counter(f"container_network_{direction}_packets", f"Cumulative count of packets {direction}d",
                    getattr(net, f"{prefix}_packets"), interface=iface)
            counter(f"container_network_{direction}_errors", f"Cumulative count of errors encountered while "
                    f"{'receiving' if direction == 'receive' else 'transmitting'}",
                    getattr(net, f"{prefix}_errors"), interface=iface)
            counter(f"container_network_{direction}_packets_dropped", f"Cumulative count of packets dropped "
                    f"while {'receiving' if direction == 'receive' else 'transmitting'}",
                    getattr(net, f"{prefix}_dropped"), interface=iface)
    _block_io(out, base, reading, device)
    gauge("container_processes", "Number of processes running inside the container.", reading.processes)
    gauge("container_threads", "Number of threads running inside the container", sample.pids_current)
    if sample.pids_limit:
        gauge("container_threads_max", "Maximum number of threads allowed inside the container",
              sample.pids_limit)
    gauge("container_start_time_seconds", "Start time of the container since unix epoch in seconds.",
          reading.started_at)
    gauge("container_last_seen", "Last time a container was seen by the exporter", now)


def _block_io(out: Families, base: dict[str, str], reading: ContainerReading,
              device: Callable[[int, int], str] | None = None) -> None:
    sample = reading.sample
    assert sample is not None
    name_of = device or (lambda major, minor: f"{major}:{minor}")
    per_device: dict[tuple[int, int], list] = {}
    for entry in sample.blkio:
        per_device.setdefault((entry.major, entry.minor), []).append(entry)
        out.add("container_blkio_device_usage", "Blkio Device bytes usage", "counter",
                {**base, "device": name_of(entry.major, entry.minor), "major": str(entry.major),
                 "minor": str(entry.minor), "operation": entry.op.capitalize()}, entry.value)
    for (major, minor), entries in sorted(per_device.items()):
        read, write = blkio_totals(entries)
        labels = {**base, "device": name_of(major, minor)}
        out.add("container_fs_reads_bytes", "Cumulative count of bytes read", "counter", labels, read)
        out.add("container_fs_writes_bytes", "Cumulative count of bytes written", "counter", labels, write)
    ops: dict[tuple[int, int], dict[str, int]] = {}
    for entry in reading.io_ops:
        counts = ops.setdefault((entry.major, entry.minor), {"read": 0, "write": 0})
        counts[entry.op] = counts.get(entry.op, 0) + entry.value
    for (major, minor), counts in sorted(ops.items()):
        labels = {**base, "device": name_of(major, minor)}
        out.add("container_fs_reads", "Cumulative count of reads completed", "counter", labels, counts["read"])
        out.add("container_fs_writes", "Cumulative count of writes completed", "counter", labels, counts["write"])


def _dockerbank_container(out: Families, reading: ContainerReading) -> None:
    base = {"id": reading.id, "name": reading.name, "image": reading.image}
    for status in STATUSES:
        out.add("dockerbank_container_state", "1 for the container's current state, 0 for the others.",
                "gauge", {**base, "state": status}, 1 if reading.status == status else 0)
    out.add("dockerbank_container_restarts", "Times the container was restarted by its restart policy.",
            "counter", base, reading.restart_count)
    out.add("dockerbank_container_exit_code", "Exit code of the container's last run (0 while never exited).",
            "gauge", base, reading.exit_code)
    out.add("dockerbank_container_oom_killed", "1 when the container's last run ended by the OOM killer.",
            "gauge", base, 1 if reading.oom_killed else 0)
    out.add("dockerbank_container_start_time_seconds", "When the container last started (UNIX seconds).",
            "gauge", base, reading.started_at)
    if reading.log_shipping is not None:
        labels = {**base, "driver": str(reading.log_shipping.get("driver", ""))}
        out.add("dockerbank_container_log_messages_sent", "Log lines shipped to the remote log driver.",
                "counter", labels, reading.log_shipping.get("sent", 0))
        out.add("dockerbank_container_log_messages_lost", "Log lines the remote log driver could not take "
                "(kept in the local log).", "counter", labels, reading.log_shipping.get("lost", 0))
    out.declare("dockerbank_container_health_status", "1 for the container's current health status "
                "(only containers with a healthcheck).", "gauge")
    if reading.health:
        for status in HEALTH_STATUSES:
            out.add("dockerbank_container_health_status", "", "gauge", {**base, "status": status},
                    1 if reading.health == status else 0)


def container_families(readings: Iterable[ContainerReading], now: float,
                       device: Callable[[int, int], str] | None = None) -> Families:
    """The per-container families (cAdvisor's and Dockerbank's) and containers by state."""
    out = Families()
    readings = list(readings)
    for reading in readings:
        _cadvisor(out, reading, now, device)
    counts = dict.fromkeys(STATUSES, 0)
    for reading in readings:
        counts[reading.status] = counts.get(reading.status, 0) + 1
        _dockerbank_container(out, reading)
    for status, count in counts.items():
        out.add("dockerbank_containers", "Containers by state.", "gauge", {"state": status}, count)
    return out


def host_families(out: Families, host: HostReading) -> None:
    """Images, volumes, free space of the root and the backup repository, the machine."""
    out.add("machine_cpu_cores", "Number of logical CPU cores.", "gauge", {}, host.cpu_cores)
    out.add("machine_memory_bytes", "Amount of memory installed on the machine.", "gauge", {}, host.memory_bytes)
    out.add("dockerbank_images", "Images in the store.", "gauge", {}, len(host.images))
    for image in host.images:
        out.add("dockerbank_image_size_bytes", "Size of an image (all its layers).", "gauge",
                {"id": image.id, "image": image.name}, image.size)
    out.add("dockerbank_volumes", "Volumes.", "gauge", {}, len(host.volumes))
    for volume in host.volumes:
        if volume.size is not None:
            out.add("dockerbank_volume_size_bytes", "Bytes of data in a volume (measured at most once a minute).",
                    "gauge", {"volume": volume.name}, volume.size)
    for fs in host.filesystems:
        labels = {"role": fs.role, "path": fs.path}
        out.add("dockerbank_filesystem_size_bytes", "Size of the filesystem holding the root or the backup "
                "repository.", "gauge", labels, fs.size)
        out.add("dockerbank_filesystem_avail_bytes", "Bytes available to unprivileged users on it.", "gauge",
                labels, fs.avail)
        out.add("dockerbank_filesystem_free_bytes", "Free bytes on it (including root's reserve).", "gauge",
                labels, fs.free)


def copy_families(out: Families, copies: dict[str, dict]) -> None:
    """The last successful ``backup copy`` to each repository (the off-site copy of issue 22)."""
    out.declare("dockerbank_backup_copy_last_success_timestamp_seconds",
                "When the last successful backup copy to the repository ended.", "gauge")
    for target, record in sorted(copies.items()):
        labels = {"repository": target, "source": str(record.get("from", ""))}
        out.add("dockerbank_backup_copy_last_success_timestamp_seconds",
                "When the last successful backup copy to the repository ended.", "gauge", labels,
                float(record.get("time", 0)))
        out.add("dockerbank_backup_copy_snapshots", "Snapshots the last successful copy brought or found there.",
                "gauge", labels, float(record.get("snapshots", 0)))


def backup_families(out: Families, summary: BackupSummary | None, repository: str) -> None:
    """Last successful backup and last verify per volume, container and stack; unprotected ages."""
    out.declare("dockerbank_backup_last_success_timestamp_seconds",
                "When the newest backup holding the item was made (0: never).", "gauge")
    if summary is None:
        out.add("dockerbank_backup_repository_up", "1 when the backup repository could be read.", "gauge",
                {"repository": repository}, 0)
        return
    out.add("dockerbank_backup_repository_up", "1 when the backup repository could be read.", "gauge",
            {"repository": repository}, 1)
    out.add("dockerbank_backup_snapshots", "Snapshots in the backup repository.", "gauge",
            {"repository": repository}, summary.snapshots)
    out.add("dockerbank_backup_last_snapshot_timestamp_seconds", "When the newest snapshot was made.",
            "gauge", {"repository": repository}, summary.last_snapshot_time)
    for (kind, name), item in sorted(summary.items.items()):
        labels = {"kind": kind, "name": name}
        out.add("dockerbank_backup_last_success_timestamp_seconds", "", "gauge", labels, item.last_time)
        out.add("dockerbank_backup_last_size_bytes", "Size of the item in its newest backup.", "gauge",
                labels, item.last_size)
        out.add("dockerbank_backup_last_verify_timestamp_seconds", "When the newest verified backup of the "
                "item passed `backup verify` (0: never).", "gauge", labels, item.verify_time)
        out.add("dockerbank_backup_last_verify_size_bytes", "Size of the item in its newest verified backup.",
                "gauge", labels, item.verify_size)
    out.declare("dockerbank_volume_backup_age_seconds", "Seconds since an existing volume was last backed "
                "up (since its creation when never).", "gauge")
    for name, age in sorted(summary.volume_age.items()):
        out.add("dockerbank_volume_backup_age_seconds", "", "gauge", {"volume": name}, age)
    out.add("dockerbank_backup_oldest_unprotected_volume_age_seconds", "The largest of "
            "dockerbank_volume_backup_age_seconds (0 without volumes).", "gauge", {}, summary.oldest_unprotected_age)
