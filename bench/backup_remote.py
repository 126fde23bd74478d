"""Encrypted backups and off-site copies: Dockerbank (plain, encrypted) vs Debian's restic.

    /opt/dockerbank-venv/bin/python bench/backup_remote.py               # 1 GB, 10,000 files, 3 rounds
    /opt/dockerbank-venv/bin/python bench/backup_remote.py --mb 300 --files 3000 --rounds 1

The data of bench/backup_volume.py (half random, half text files) in a volume. Each round, in
turn: a first backup into a new unencrypted repository, one into a new encrypted repository
(``backup init --encrypt``, untimed), and ``restic backup`` of the same directory into a new
restic repository (its encryption is always on; ``restic init`` untimed). Medians, ratios in one
run. Then ``backup copy`` of the encrypted snapshot to Dockerbank's registry (``registry serve``,
a process on 127.0.0.1), a second backup after 1 % of the files changed and its copy (bytes
sent), ``restore --repo oci://`` into a fresh root; restic's ``copy`` into a second local
repository and to a restic ``sftp:`` repository through a throwaway sshd on 127.0.0.1 (the same
sshd Dockerbank's ``sftp://`` copy goes through) as the anchors (Debian has no restic rest server). Writes a section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness
from backup_volume import du, make_data

VENV_PY = os.environ.get("DOCKERBANK_PYTHON", "/opt/dockerbank-venv/bin/python")
PASSWORD = "bench passphrase"


def timed(fn) -> float:
    os.sync()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cpu_of_children() -> float:
    """user+sys seconds of every finished child and grandchild (tar under dockerbank) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"registry exited {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("registry did not start")


def start_sshd(work: Path) -> tuple[subprocess.Popen, int, str]:
    """A throwaway sshd on 127.0.0.1 (own host key, one client key); (process, port, ssh command)."""
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o700)
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / key)], check=True)
    port = free_port()
    (work / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {work / 'host_key'}\nPidFile {work / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {work / 'client_key.pub'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nUsePAM no\nStrictModes no\nSubsystem sftp internal-sftp\nLogLevel ERROR\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    kind, key = (work / "host_key.pub").read_text().split()[:2]
    (work / "known_hosts").write_text(f"[127.0.0.1]:{port} {kind} {key}\n")
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(work / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    ssh = (f"ssh -F /dev/null -i {work / 'client_key'} -o IdentitiesOnly=yes "
           f"-o UserKnownHostsFile={work / 'known_hosts'}")
    return proc, port, ssh


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=1000)
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", default=str(HERE / "work"))
    args = parser.parse_args(argv)
    restic = shutil.which("restic")
    if restic is None:
        raise SystemExit("restic is not installed: run scripts/setup.sh --with-tests")
    work = Path(args.work)
    data = work / "backup-data"
    make_data(data, args.mb, args.files)
    load_start = os.getloadavg()[0]
    scratch = work / "backup-remote-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    root = scratch / "root"
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run",
               DOCKERBANK_BACKUP_PASSWORD=PASSWORD, RESTIC_PASSWORD=PASSWORD)
    db = [VENV_PY, "-m", "dockerbank"]
    harness.sh(*db, "volume", "create", "bench", env=env)
    vol = root / "volumes" / "bench" / "_data"
    shutil.rmtree(vol)
    shutil.copytree(data, vol, symlinks=True)

    times: dict[str, list[float]] = {"plain": [], "encrypted": [], "restic": []}
    cpu: dict[str, list[float]] = {"plain": [], "encrypted": [], "restic": []}
    sizes: dict[str, int] = {}
    for rnd in range(args.rounds):
        for kind in ("plain", "encrypted", "restic"):
            repo = scratch / f"repo-{kind}"
            shutil.rmtree(repo, ignore_errors=True)
            cpu_before = 0.0
            if kind == "plain":
                cpu_before = cpu_of_children()
                t = timed(lambda: harness.sh(*db, "backup", "create", "bench", "--repo", str(repo), env=env))
            elif kind == "encrypted":
                harness.sh(*db, "backup", "init", "--encrypt", "--repo", str(repo), env=env)
                cpu_before = cpu_of_children()
                t = timed(lambda: harness.sh(*db, "backup", "create", "bench", "--repo", str(repo), env=env))
            else:
                harness.sh(restic, "init", "--quiet", "-r", str(repo), env=env)
                cpu_before = cpu_of_children()
                t = timed(lambda: harness.sh(restic, "backup", "--quiet", "-r", str(repo), str(vol), env=env))
            cpu[kind].append(cpu_of_children() - cpu_before)
            times[kind].append(t)
            sizes[kind] = du(repo)
            print(f"round {rnd + 1} {kind}: {t:.2f} s, {cpu[kind][-1]:.2f} s CPU", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}

    # off-site: copy the encrypted repository's snapshot into Dockerbank's registry and over sftp
    port = free_port()
    log = open(scratch / "registry.log", "wb")  # noqa: SIM115 -- the server process keeps it
    server = subprocess.Popen([*db, "registry", "serve", "--listen", f"127.0.0.1:{port}",
                               "--storage", str(scratch / "registry")], stdout=log, stderr=log, env=env)
    sshd, ssh_port, ssh = start_sshd(scratch / "sshd")
    env["DOCKERBANK_SSH_COMMAND"] = ssh
    restic_env = dict(env, RESTIC_FROM_PASSWORD=PASSWORD)
    restic_sftp = ["-o", f"sftp.command={ssh} -p {ssh_port} root@127.0.0.1 -s sftp"]

    def copy(target: str) -> tuple[float, str]:
        done = subprocess.run([*db, "backup", "copy", "--from", str(enc), "--to", target], env=env,
                              capture_output=True, check=True)
        seconds = float(re.search(rb"in ([0-9.]+)s", done.stderr).group(1))
        return seconds, re.search(rb"sent (\d+) chunks \(([^)]+)\)", done.stderr).group(2).decode()

    try:
        wait_port(port, server)
        enc = scratch / "repo-encrypted"
        remote = f"oci://127.0.0.1:{port}/bench/offsite"
        t_copy1, sent1 = copy(remote)
        t_sftp, sent_sftp = copy(f"sftp://root@127.0.0.1:{ssh_port}{scratch / 'sftp-dockerbank'}")
        restic_src = scratch / "repo-restic"
        restic_dst = f"sftp:root@127.0.0.1:{scratch / 'sftp-restic'}"
        harness.sh(restic, "init", "--quiet", "-r", restic_dst, *restic_sftp, "--from-repo", str(restic_src),
                   "--copy-chunker-params", env=restic_env)
        t_restic_sftp = timed(lambda: harness.sh(restic, "copy", "--quiet", "-r", restic_dst, *restic_sftp,
                                                 "--from-repo", str(restic_src), env=restic_env))
        # 1 % of the files get new content (the random ones: nothing of them deduplicates)
        files = sorted(p for p in vol.rglob("*.dat"))
        for path in files[1::2][: max(1, len(files) // 100)]:
            path.write_bytes(os.urandom(path.stat().st_size))
        harness.sh(*db, "backup", "create", "bench", "--repo", str(enc), env=env)
        t_copy2, sent2 = copy(remote)
        root2 = scratch / "root2"
        env2 = dict(env, DOCKERBANK_ROOT=str(root2), DOCKERBANK_RUNROOT=str(root2) + "-run")
        t_restore = timed(lambda: harness.sh(*db, "restore", "--repo", remote, env=env2))
    finally:
        server.terminate()
        server.wait(timeout=30)
        sshd.terminate()
        sshd.wait(timeout=30)
        log.close()
    restic_local = scratch / "repo-restic-copy"
    harness.sh(restic, "init", "--quiet", "-r", str(restic_local), "--from-repo", str(restic_src),
               "--copy-chunker-params", env=restic_env)
    t_restic_copy = timed(lambda: harness.sh(restic, "copy", "--quiet", "-r", str(restic_local), "--from-repo",
                                             str(restic_src), env=restic_env))
    load_end = os.getloadavg()[0]

    def fmt(kind: str) -> str:
        return (f"{med[kind]:.2f} s (" + ", ".join(f"{t:.2f}" for t in times[kind]) + f") | {med_cpu[kind]:.2f} s ("
                + ", ".join(f"{t:.2f}" for t in cpu[kind]) + f") | {sizes[kind] / 1e6:.0f} MB")

    lines = ["<!-- bench:backup_remote -->",
             f"## Encrypted backup and off-site copy ({args.mb} MB, {args.files} files)", "",
             (f"{os.uname().nodename} · {os.cpu_count()} CPUs · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
              f" · median of {args.rounds} interleaved rounds (bench/backup_remote.py)"
              f" · load average {load_start:.1f} at the start, {load_end:.1f} at the end"), "",
             "| first backup into a new repository | wall time, median (rounds) | CPU user+sys, median (rounds) "
             "| stored |", "|---|---|---|---|",
             f"| dockerbank, unencrypted | {fmt('plain')} |",
             f"| dockerbank, encrypted (AES-256-GCM, HMAC chunk IDs) | {fmt('encrypted')} |",
             f"| restic 0.14 (encrypted, compression auto) | {fmt('restic')} |", "",
             "| off-site | time | sent |", "|---|---|---|",
             f"| `backup copy` of the encrypted snapshot to Dockerbank's registry (127.0.0.1) | {t_copy1:.2f} s | {sent1} |",
             f"| `backup copy` of the same snapshot to `sftp://` (OpenSSH sshd on 127.0.0.1) | {t_sftp:.2f} s | {sent_sftp} |",
             f"| restic `copy` of its snapshot to a restic `sftp:` repository (same sshd) | {t_restic_sftp:.2f} s | – |",
             f"| `backup copy` of a second snapshot after 1 % of the files changed | {t_copy2:.2f} s | {sent2} |",
             f"| `restore --repo oci://` of the second snapshot into a fresh root | {t_restore:.2f} s | – |",
             f"| restic `copy` into a second local repository (no network) | {t_restic_copy:.2f} s | – |", "",
             (f"- encrypted / unencrypted: {med['encrypted'] / med['plain']:.2f}x wall time, "
              f"{med_cpu['encrypted'] / med_cpu['plain']:.2f}x CPU (goal ≤ 1.1x); encrypted dockerbank / restic: "
              f"{med['encrypted'] / med['restic']:.2f}x wall time, {med_cpu['encrypted'] / med_cpu['restic']:.2f}x CPU. "
              "On a loaded host the CPU ratio is the steadier one (other work stretches wall times by chance)."),
             ("- Every backup reads the volume whole (new repository each time). The copy moves chunks as "
              "stored (the target is created with the source's key files), 8 in flight, only those the "
              "registry lacks; the second copy's bytes are the changed files' chunks (1 % of the files, "
              "random content, ~1 % of the data) plus what a changed tar stream shifts at their edges."),
             "", "<!-- /bench:backup_remote -->"]
    section = "\n".join(lines)
    harness.write_section("backup_remote", section)
    print(section)
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
