"""Pure parts of container/stats.py, checked against figures taken from Docker 20.10 here."""

from __future__ import annotations

import pytest

from dockerbank.container.oom import oom_info
from dockerbank.units import bytes_size, human_size
from dockerbank.container.stats import (
    BlkioEntry,
    NetStats,
    StatsSample,
    api_stats,
    blkio_totals,
    clamp_memory_limit,
    cpu_percent,
    memory_percent,
    memory_usage_no_cache,
    parse_blkio_v1,
    parse_io_stat,
    parse_net_dev,
    parse_proc_stat_cpu,
    read_sample,
    render_stats_table,
    samples_from_api,
    stats_row,
    tabwrite,
)
from dockerbank.host.cgroups import Cgroup, freezer_state, parse_layout

# GET /containers/cgtest2/stats?stream=false from dockerd 20.10 on this machine (trimmed
# memory.stat), for a busybox container after `dd` into /tmp and `sleep`.
DOCKER_STATS = {
    "read": "2026-11-27T23:09:14.130480907Z", "preread": "2026-11-27T23:09:13.125952463Z",
    "pids_stats": {"current": 1},
    "blkio_stats": {"io_service_bytes_recursive": []},
    "num_procs": 0, "storage_stats": {},
    "cpu_stats": {"cpu_usage": {"total_usage": 58131673, "percpu_usage": [20482968, 37648705],
                                "usage_in_kernelmode": 30000000, "usage_in_usermode": 20000000},
                  "system_cpu_usage": 1626520000000, "online_cpus": 2,
                  "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
    "precpu_stats": {"cpu_usage": {"total_usage": 58131673, "percpu_usage": [20482968, 37648705],
                                   "usage_in_kernelmode": 30000000, "usage_in_usermode": 20000000},
                     "system_cpu_usage": 1624520000000, "online_cpus": 2,
                     "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
    "memory_stats": {"usage": 23379968, "max_usage": 24932352, "limit": 25276063744,
                     "stats": {"cache": 22470656, "inactive_file": 21491712, "total_inactive_file": 21491712,
                               "rss": 53248}},
    "name": "/cgtest2", "id": "5cccc65343ec4d0994fd392fb72360fb8b7de832ca32592c56ccaeb219ddbfd7",
    "networks": {"eth0": {"rx_bytes": 806, "rx_packets": 9, "rx_errors": 0, "rx_dropped": 0,
                          "tx_bytes": 0, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0}},
}
# `docker stats --no-stream` printed for it (the memory moments differ; see test below).
DOCKER_TABLE = (
    "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O     BLOCK I/O   PIDS\n"
    "45be3305b6ec   cgtest    0.00%     884KiB / 23.54GiB   0.00%     572B / 0B   0B / 0B     1\n"
)


def test_go_units_like_docker():
    assert bytes_size(884 * 1024) == "884KiB"
    assert bytes_size(25276063744) == "23.54GiB"
    assert bytes_size(0) == "0B"
    assert bytes_size(1023) == "1023B"
    assert bytes_size(1.5 * 1024 * 1024) == "1.5MiB"
    assert human_size(572, 3) == "572B"
    assert human_size(1040, 3) == "1.04kB"
    assert human_size(0, 3) == "0B"
    assert human_size(20_971_520, 3) == "21MB"
    assert human_size(999_700, 3) == "1e+03kB"  # Go's %.3g does the same


def test_row_from_dockers_own_stats_object():
    previous, current = samples_from_api(DOCKER_STATS)
    assert previous is not None
    row = stats_row(DOCKER_STATS["id"], DOCKER_STATS["name"], current, previous)
    assert row == {
        "Container": "5cccc65343ec", "ID": "5cccc65343ec", "Name": "cgtest2",
        "CPUPerc": "0.00%",
        # (23379968 - 21491712) / 2**20 = 1.8008 MiB
        "MemUsage": "1.801MiB / 23.54GiB", "MemPerc": "0.01%",
        "NetIO": "806B / 0B", "BlockIO": "0B / 0B", "PIDs": "1",
    }
    assert stats_row("x" * 64, "/n", current, previous, no_trunc=True)["ID"] == "x" * 64
    assert stats_row("x" * 64, "/n", current, previous, container="n")["Container"] == "n"


def test_table_layout_is_byte_for_byte_dockers():
    row = {"ID": "45be3305b6ec", "Name": "cgtest", "CPUPerc": "0.00%", "MemUsage": "884KiB / 23.54GiB",
           "MemPerc": "0.00%", "NetIO": "572B / 0B", "BlockIO": "0B / 0B", "PIDs": "1"}
    assert render_stats_table([row]) == DOCKER_TABLE


def test_tabwriter_min_width_and_last_cell_unpadded():
    assert tabwrite([["a", "b", "c"], ["long-cell-here", "x", "y"]], minwidth=5) == (
        "a                b    c\n"
        "long-cell-here   x    y\n")


def test_placeholders_when_unreadable():
    row = stats_row("a" * 64, "n", None)
    assert row["CPUPerc"] == "--" and row["MemUsage"] == "-- / --" and row["PIDs"] == "--"
    stopped = stats_row("a" * 64, "n", StatsSample())
    assert [stopped[k] for k in ("CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs")] == \
        ["0.00%", "0B / 0B", "0.00%", "0B / 0B", "0B / 0B", "0"]


def test_cpu_percent_dockers_formula():
    prev = StatsSample(cpu_total_ns=1_000_000_000, system_cpu_ns=100_000_000_000, online_cpus=2)
    cur = StatsSample(cpu_total_ns=1_500_000_000, system_cpu_ns=102_000_000_000, online_cpus=2)
    # 0.5 s of 2 s host time (both CPUs together) x 2 CPUs = 50 %
    assert cpu_percent(prev, cur) == pytest.approx(50.0)
    assert cpu_percent(None, StatsSample()) == 0.0
    assert cpu_percent(cur, cur) == 0.0
    # online_cpus missing: the number of per-CPU counters is used
    cur2 = StatsSample(cpu_total_ns=1_500_000_000, system_cpu_ns=102_000_000_000, cpu_percpu_ns=[1, 2, 3, 4])
    assert cpu_percent(prev, cur2) == pytest.approx(100.0)


def test_memory_without_cache_v1_and_v2():
    assert memory_usage_no_cache(100, {"total_inactive_file": 30, "inactive_file": 5}) == 70
    assert memory_usage_no_cache(100, {"inactive_file": 40}) == 60
    assert memory_usage_no_cache(100, {"inactive_file": 400}) == 100
    assert memory_usage_no_cache(100, {}) == 100
    sample = StatsSample(memory_usage=300, memory_limit=1000, memory_stats={"inactive_file": 100})
    assert sample.memory_used == 200 and memory_percent(sample) == pytest.approx(20.0)
    assert memory_percent(StatsSample()) == 0.0
    assert clamp_memory_limit(0x7FFFFFFFFFFFF000, 8 << 30) == 8 << 30
    assert clamp_memory_limit(0, 8 << 30) == 8 << 30
    assert clamp_memory_limit(64 << 20, 8 << 30) == 64 << 20


def test_proc_stat_seven_fields_at_100hz():
    text = "cpu  7659 0 3609 113162 595 0 152 188 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
    ticks = 7659 + 0 + 3609 + 113162 + 595 + 0 + 152  # steal (188) is not counted, like dockerd
    assert parse_proc_stat_cpu(text) == ticks * 10_000_000
    with pytest.raises(ValueError):
        parse_proc_stat_cpu("intr 1 2\n")


NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
  eth0:128876099    3301    1    2    0     0          0         0   175992    2044    3    4    0     0       0          0
  eth1:     100       1    0    0    0     0          0         0      200       2    0    0    0     0       0          0
"""


def test_net_dev_sums_all_but_lo():
    nets = parse_net_dev(NET_DEV)
    assert set(nets) == {"eth0", "eth1"}
    assert nets["eth0"] == NetStats(128876099, 3301, 1, 2, 175992, 2044, 3, 4)
    sample = StatsSample(networks=nets)
    assert (sample.net_rx, sample.net_tx) == (128876199, 176192)


def test_blkio_v1_and_v2():
    v1 = parse_blkio_v1("8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Total 12288\n"
                        "8:16 Read 1000\nTotal 13288\n")
    assert BlkioEntry(8, 0, "Read", 4096) in v1
    assert blkio_totals(v1) == (5096, 8192)
    assert parse_blkio_v1("Total 0\n") == []
    v2 = parse_io_stat("8:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n"
                       "253:0 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n")
    assert blkio_totals(v2) == (1025, 2050)
    assert v2[0] == BlkioEntry(8, 0, "read", 1024)


def test_api_object_round_trips_and_has_dockers_keys():
    previous, current = samples_from_api(DOCKER_STATS)
    obj = api_stats(DOCKER_STATS["id"], "cgtest2", current, previous)
    for key in ("read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats",
                "cpu_stats", "precpu_stats", "memory_stats", "name", "id", "networks"):
        assert key in obj
    assert obj["name"] == "/cgtest2"
    assert obj["cpu_stats"]["cpu_usage"]["percpu_usage"] == [20482968, 37648705]
    assert obj["memory_stats"]["max_usage"] == 24932352 and "failcnt" not in obj["memory_stats"]
    assert obj["blkio_stats"]["io_serviced_recursive"] == []
    assert obj["read"].startswith("2026-11-27T23:09:14.13048") and obj["read"].endswith("Z")  # float: µs precision
    assert obj["networks"] == DOCKER_STATS["networks"]
    again_prev, again = samples_from_api(obj)
    assert stats_row("i", "n", again, again_prev) == stats_row("i", "n", current, previous)


# ------------------------------------------------------------------ reading fake cgroup trees
# The file names and formats are the kernel's; a pure v2 host with controllers is not
# available on the build machine, so its reading path is checked on a copy of its files.


def _write(directory, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


def test_read_sample_from_a_v2_tree(tmp_path):
    layout = parse_layout(f"26 22 0:24 / {tmp_path} rw - cgroup2 cgroup2 rw\n",
                          lambda p: "cpuset cpu io memory pids\n")
    cg = Cgroup(layout, "/dockerbank/" + "c" * 64)
    _write(tmp_path / "dockerbank" / ("c" * 64), {
        "cgroup.procs": "4242\n",
        "cpu.stat": "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 7\n"
                    "nr_throttled 1\nthrottled_usec 30\n",
        "memory.current": "104857600\n",
        "memory.max": "67108864\n",
        "memory.stat": "anon 1000\nfile 2000\nactive_file 100\ninactive_file 4194304\n",
        "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
        "pids.current": "3\n",
        "pids.max": "max\n",
        "memory.events": "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n",
        "cgroup.freeze": "1\n",
        "cgroup.events": "populated 1\nfrozen 1\n",
    })
    sample = read_sample(cg, host_memory=8 << 30)
    assert sample.cgroup_version == 2
    assert (sample.cpu_total_ns, sample.cpu_user_ns, sample.cpu_kernel_ns) == (5_000_000, 3_000_000, 2_000_000)
    assert sample.throttling == (7, 1, 30_000)
    assert sample.memory_usage == 104857600 and sample.memory_limit == 67108864
    assert sample.memory_used == 104857600 - 4194304
    assert (sample.blkio_read, sample.blkio_write) == (4096, 8192)
    assert sample.pids_current == 3 and sample.pids_limit == 0
    assert sample.system_cpu_ns > 0 and sample.online_cpus >= 1
    assert oom_info(cg).killed
    assert freezer_state(cg) == "FROZEN"
    assert cg.pids() == [4242]
    obj = api_stats("c" * 64, "x", sample)
    assert "max_usage" not in obj["memory_stats"]  # dockerd leaves it out on v2
    # unlimited memory.max: the host's memory is the limit
    (tmp_path / "dockerbank" / ("c" * 64) / "memory.max").write_text("max\n")
    assert read_sample(cg, host_memory=8 << 30).memory_limit == 8 << 30


def test_read_sample_from_a_v1_tree(tmp_path):
    controllers = ("cpu", "cpuacct", "memory", "blkio", "pids", "freezer", "devices")
    mountinfo = "".join(f"{30 + i} 25 0:{40 + i} / {tmp_path}/{c} rw - cgroup cgroup rw,{c}\n"
                        for i, c in enumerate(controllers))
    layout = parse_layout(mountinfo)
    rel = "dockerbank/" + "d" * 64
    _write(tmp_path / "cpuacct" / rel, {"cpuacct.usage": "123456789\n", "cpuacct.usage_percpu": "100 200 \n",
                                        "cpuacct.stat": "user 12\nsystem 3\n"})
    _write(tmp_path / "cpu" / rel, {"cpu.stat": "nr_periods 2\nnr_throttled 1\nthrottled_time 999\n"})
    _write(tmp_path / "memory" / rel, {
        "memory.usage_in_bytes": "52428800\n", "memory.max_usage_in_bytes": "60000000\n",
        "memory.limit_in_bytes": "9223372036854771712\n", "memory.failcnt": "0\n",
        "memory.stat": "cache 100\ntotal_inactive_file 2097152\ninactive_file 1\n",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"})
    _write(tmp_path / "blkio" / rel, {
        "blkio.bfq.io_service_bytes_recursive": "Total 0\n",
        "blkio.throttle.io_service_bytes_recursive": "8:0 Read 1000\n8:0 Write 2000\n8:0 Total 3000\nTotal 3000\n"})
    _write(tmp_path / "pids" / rel, {"pids.current": "2\n", "pids.max": "100\n"})
    _write(tmp_path / "freezer" / rel, {"freezer.state": "THAWED\n"})
    _write(tmp_path / "devices" / rel, {"cgroup.procs": "10\n11\n"})
    cg = Cgroup(layout, "/" + rel)
    sample = read_sample(cg, host_memory=8 << 30)
    assert sample.cpu_total_ns == 123456789 and sample.cpu_percpu_ns == [100, 200]
    assert (sample.cpu_user_ns, sample.cpu_kernel_ns) == (120_000_000, 30_000_000)
    assert sample.throttling == (2, 1, 999)
    assert sample.memory_limit == 8 << 30  # unlimited v1 -> host memory
    assert sample.memory_used == 52428800 - 2097152  # total_inactive_file wins on v1
    assert (sample.blkio_read, sample.blkio_write) == (1000, 2000)  # bfq empty: throttle, like runc
    assert sample.pids_current == 2 and sample.pids_limit == 100
    assert not oom_info(cg).killed
    assert freezer_state(cg) == "THAWED"
    assert cg.pids() == [10, 11]  # the devices hierarchy lists the processes, like runc
