"""exec, top, stats, cp (both ways, never out of the container), diff and export on real containers."""

from __future__ import annotations

import io
import tarfile


def out(result) -> str:
    return result.stdout.decode()


def test_exec_codes_env_user_workdir_stdin(ctr):
    ctr("run", "-d", "--name", "box", "busybox", "sleep", "60")
    assert out(ctr("exec", "box", "echo", "hi")) == "hi\n"
    assert ctr("exec", "box", "sh", "-c", "exit 4", check=False).returncode == 4
    missing = ctr("exec", "box", "nosuch", check=False)
    assert missing.returncode == 127 and 'exec: "nosuch": executable file not found' in missing.stderr.decode()
    assert out(ctr("exec", "-i", "-e", "Z=9", "-w", "/tmp", "-u", "nobody", "box", "sh", "-c",
                   "read x; echo $x $Z $(pwd) $(id -u)", input=b"in\n")) == "in 9 /tmp 65534\n"
    ctr("exec", "-d", "box", "sh", "-c", "sleep 1; touch /tmp/detached")
    assert out(ctr("exec", "box", "sh", "-c", "ps -o pid,args | grep -c 'sleep 60'")).strip() != "0"
    ctr("stop", "-t", "0", "box")
    result = ctr("exec", "box", "true", check=False)
    assert result.returncode != 0 and "is not running" in result.stderr.decode()


def test_top_and_stats(ctr):
    ctr("run", "-d", "--name", "busy", "-m", "32m", "busybox", "sleep", "60")
    top = out(ctr("top", "busy")).splitlines()
    assert top[0].split()[:2] == ["UID", "PID"] and "sleep 60" in top[1]
    stats = out(ctr("stats", "--no-stream", "busy")).splitlines()
    assert stats[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
    assert "busy" in stats[1] and "32MiB" in stats[1]
    assert out(ctr("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "busy")) == "busy 1\n"


def test_cp_both_ways_diff_and_export(ctr, tmp_path):
    ctr("run", "--name", "files", "busybox", "sh", "-c",
        "echo inside > /made; rm /etc/group; ln -s /etc/passwd /link; ln -s / /escape")
    assert sorted(out(ctr("diff", "files")).splitlines()) == ["A /escape", "A /link", "A /made", "C /etc",
                                                             "D /etc/group"]
    ctr("cp", "files:/made", str(tmp_path / "copied"))
    assert (tmp_path / "copied").read_text() == "inside\n"
    (tmp_path / "host.txt").write_text("from host")
    ctr("cp", str(tmp_path / "host.txt"), "files:/tmp/")
    ctr("cp", "files:/tmp/host.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "from host"
    # a symlink to / inside the container resolves inside the container, never on the host
    ctr("cp", str(tmp_path / "host.txt"), "files:/escape/tmp/viaesc.txt")
    assert not __import__("os").path.exists("/tmp/viaesc.txt")
    archive = ctr("cp", "files:/made", "-").stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert tar.getnames() == ["made"]
    exported = ctr("export", "files").stdout
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        names = tar.getnames()
    assert "made" in names and "bin/busybox" in names and "tmp/viaesc.txt" in names
    ctr("export", "-o", str(tmp_path / "fs.tar"), "files")
    assert (tmp_path / "fs.tar").stat().st_size == len(exported)
