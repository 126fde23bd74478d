"""Server time of the dashboard's pages with 50 running containers and 50 volumes, and the cost of
one open live-events stream.

    /opt/dockerbank-venv/bin/python bench/dashboard_pages.py                 # 50 containers, 50 volumes
    /opt/dockerbank-venv/bin/python bench/dashboard_pages.py --containers 10 --requests 10

A scratch root gets busybox, ``--volumes`` volumes, ``--containers`` detached ``sleep`` containers
(every fifth publishing a port). ``dockerbank dashboard`` runs; the bench logs in and GETs every page
``--requests`` times back to back (latency as the client on 127.0.0.1 sees it: the page is rendered
whole on the server, so this is the server time plus one loopback round trip). Then one live-events
stream (what the overview page keeps open) stays connected for ``--idle`` seconds and the
dashboard's CPU time over that period is reported as % of one CPU. Writes a section into
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from metrics_scrape import cpu_seconds, free_port  # noqa: E402

PAGES = ["/", "/containers", "/containers/{id}", "/images", "/volumes", "/networks", "/stacks", "/backups", "/events"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--volumes", type=int, default=50)
    parser.add_argument("--images", type=int, default=100, help="images in all (busybox and imports of its rootfs)")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds with one live-events stream open")
    parser.add_argument("--work", default=str(HERE / "work"))
    args = parser.parse_args(argv)

    box = harness.scratch_root(args.work, "dashboard-pages")
    scratch, env, db = box.dir, box.env, box.db
    harness.sh(*db, "base-image", "busybox", env=env)
    from dockerbank.image.baseimage import busybox_rootfs_tar

    rootfs = busybox_rootfs_tar(scratch / "busybox.tar")
    print(f"importing {args.images - 1} more images ...", flush=True)
    for i in range(args.images - 1):   # one layer shared, each its own config (a label), so its own image
        harness.sh(*db, "import", "--change", f"LABEL bench.n={i}", str(rootfs), f"lab/tool{i}:1", env=env)
    for i in range(args.volumes):
        harness.sh(*db, "volume", "create", f"vol{i}", env=env)
    print(f"starting {args.containers} containers ...", flush=True)
    for i in range(args.containers):
        ports = ["-p", f"{20000 + i}:80"] if i % 5 == 0 else []
        harness.sh(*db, "run", "-d", "--name", f"c{i}", *ports, "busybox", "sleep", "36000", env=env)
    from dockerbank.registry.server.auth import make_htpasswd_line

    htpasswd = scratch / "htpasswd"
    htpasswd.write_text(make_htpasswd_line("bench", "bench-pw") + "\n")
    port = free_port()
    log = open(scratch / "dashboard.log", "wb")
    dashboard = subprocess.Popen([*db, "dashboard", "--listen", f"127.0.0.1:{port}", "--htpasswd", str(htpasswd),
                                  "--backup-repo", str(scratch / "backups")], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    http = requests.Session()
    results: dict[str, list[float]] = {}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                http.get(url + "/login", timeout=5)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or dashboard.poll() is not None:
                    raise RuntimeError(f"the dashboard did not come up: {(scratch / 'dashboard.log').read_text()}")
                time.sleep(0.1)
        answer = http.post(url + "/login", data={"username": "bench", "password": "bench-pw"}, allow_redirects=False)
        assert answer.status_code == 303, answer.text
        cid = subprocess.run([*db, "inspect", "-f", "{{.Id}}", "c0"], env=env, capture_output=True,
                             check=True).stdout.decode().strip()
        load_start = os.getloadavg()
        for page in PAGES:
            path = page.format(id=cid)
            warm = http.get(url + path, allow_redirects=False)   # warm: imports, templates
            assert warm.status_code == 200, (path, warm.status_code)
            if page == "/containers":   # the page really lists every container
                assert all(f'data-name="c{i}"' in warm.text for i in range(args.containers))
            times = []
            for _ in range(args.requests):
                start = time.perf_counter()
                answer = http.get(url + path, allow_redirects=False)
                times.append(time.perf_counter() - start)
                assert answer.status_code == 200, (path, answer.status_code)
            results[page] = times
            print(f"{page}: median {statistics.median(times) * 1000:.1f} ms", flush=True)

        stop = threading.Event()

        def listen():
            try:
                with http.get(url + "/events/stream", stream=True, timeout=args.idle + 10) as stream:
                    for _ in stream.iter_content(64):
                        if stop.is_set():
                            break
            except requests.RequestException:
                pass  # the dashboard stopped at the end of the bench

        reader = threading.Thread(target=listen, daemon=True)
        reader.start()
        time.sleep(1)  # let the stream connect before the period starts
        cpu0, t0 = cpu_seconds(dashboard.pid), time.monotonic()
        # an idle stream is the point here: nothing else touches the dashboard for the period
        time.sleep(args.idle)
        idle_share = (cpu_seconds(dashboard.pid) - cpu0) / (time.monotonic() - t0)
        stop.set()
        load_end = os.getloadavg()
    finally:
        dashboard.send_signal(signal.SIGTERM)
        dashboard.wait(30)
        subprocess.run([*db, "rm", "-f", *[f"c{i}" for i in range(args.containers)]], env=env, capture_output=True)

    rows = []
    for page, times in results.items():
        median = statistics.median(times)
        p95 = sorted(times)[max(0, int(len(times) * 0.95) - 1)]
        rows.append((f"GET {page}", f"{median * 1000:.1f} / {p95 * 1000:.1f} ms", "≤ 200 ms",
                     "yes" if median <= 0.2 else "NO"))
    rows.append((f"one live-events stream open for {args.idle:.0f} s", f"{idle_share * 100:.2f} % of one CPU",
                 "≤ 2 %", "yes" if idle_share <= 0.02 else "NO"))
    lines = ["<!-- bench:dashboard_pages -->",
             (f"## Dashboard pages with {args.containers} running containers, {args.images} images "
              f"and {args.volumes} volumes"), "",
             (f"{os.uname().nodename} · {os.cpu_count()} CPUs · Linux {os.uname().release} · "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · bench/dashboard_pages.py · load average "
              f"{load_start[0]:.1f} at the start of the timings, {load_end[0]:.1f} at the end "
              "(the machine is shared)"), "",
             "| measure (median / p95 of %d requests) | dockerbank | goal | met |" % args.requests,
             "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines += ["",
              ("- Latency = one HTTP GET on 127.0.0.1 with a logged-in session cookie, as the client sees it; "
               "pages are rendered whole on the server (Jinja2), so this is the server time plus a loopback "
               "round trip. Each request opens the root's database in a worker thread, lists and reconciles "
               "the containers (the same `container_ops.list` as `ps -a`), reads port mappings, and for "
               "/ and /volumes the backup repository's snapshot list (empty here)."),
              (f"- {args.images} images: busybox and imports of its rootfs, each with a label of its own; /images "
               "reads each image's config blob for its labels and the audit's cached findings, the overview the "
               "cached findings of every image (none audited here: the cache lookups miss)."),
              ("- No peer: Portainer cannot run here (nothing is pulled from public registries)."),
              "", "<!-- /bench:dashboard_pages -->"]
    section = "\n".join(lines)
    harness.publish("dashboard_pages", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
