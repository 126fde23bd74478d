"""``dockerbank pod`` against the real podman (4.3, Debian's) on the same command lines: the
``pod ps`` table and its --format fields, ``pod inspect``'s object, ``ps --pod``'s columns and
the errors' words and exit codes. Only created pods are compared (podman starts containers on
these hosts only with runc and explicit ulimits, tests/compat/test_image_interop.py; the running
pods are compared in bench/pod_lifecycle.py)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.conftest import require_binary

pytestmark = pytest.mark.compat


@pytest.fixture
def podman(tmp_path):
    """podman on a root of its own (its pause image is built there from catatonit, not pulled)."""
    import shutil
    import tempfile

    require_binary("podman")
    run_root = tempfile.mkdtemp(prefix="dbpod-")  # podman refuses a run root longer than 50 characters
    base = ["podman", "--root", str(tmp_path / "podman-root"), "--runroot", run_root]

    def call(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=120)

    yield call
    call("pod", "rm", "-a", "-f")
    shutil.rmtree(run_root, ignore_errors=True)


def _ours(ctr, *args: str) -> subprocess.CompletedProcess:
    result = ctr(*args, check=False)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


def _errors(text: str) -> list[str]:
    """The error lines (podman adds logrus warnings about its CNI configuration on this host)."""
    return [line for line in text.splitlines() if line.startswith("Error:")]


def _normalize(text: str) -> str:
    """IDs and ages differ between the two: replaced by placeholders (the columns' widths follow
    the ages, so runs of two or more spaces, the tabwriter's padding, count as one separator)."""
    text = re.sub(r"\b[0-9a-f]{64}\b", "<ID>", text)
    text = re.sub(r"\b[0-9a-f]{12}\b", "<id>", text)
    text = re.sub(r"Less than a second ago|\d+ seconds? ago|About a minute ago", "<age>", text)
    return re.sub(r" {2,}", " | ", text)


def test_pod_ps_inspect_and_errors_match_podman(ctr, podman):
    for run in (lambda *a: _ours(ctr, *a), podman):
        created = run("pod", "create", "--name", "app", "-p", "18777:80", "--label", "team=lab")
        assert created.returncode == 0 and len(created.stdout.strip()) == 64, created.stderr
    # the default table, with its columns at podman's widths; --ctr-names/--ctr-status columns; fields
    for args in (("pod", "ps"), ("pod", "ps", "--ctr-names", "--ctr-status"),
                 ("pod", "ps", "--format", "{{.ID}}|{{.Id}}|{{.Name}}|{{.Status}}|{{.InfraID}}|"
                  "{{.NumberOfContainers}}|{{.Labels}}|{{.ContainerNames}}|{{.ContainerStatuses}}"),
                 ("pod", "ps", "-q"), ("pod", "ps", "--filter", "label=team=lab", "--format", "{{.Name}}"),
                 ("pod", "ps", "--filter", "status=running", "-q")):
        ours, theirs = _ours(ctr, *args), podman(*args)
        assert (ours.returncode, _normalize(ours.stdout)) == (theirs.returncode, _normalize(theirs.stdout)), args
    # pod inspect: podman's keys (less the pod cgroup podman makes and Dockerbank does not)
    mine = json.loads(_ours(ctr, "pod", "inspect", "app").stdout)[0]
    podmans = json.loads(podman("pod", "inspect", "app").stdout)
    podmans = podmans[0] if isinstance(podmans, list) else podmans  # podman 4 prints one object
    assert set(podmans) - set(mine) <= {"CgroupParent", "CgroupPath"}
    assert set(podmans["InfraConfig"]) == set(mine["InfraConfig"])
    for key in ("Name", "State", "Hostname", "Labels", "ExitPolicy", "CreateInfra", "NumContainers"):
        assert mine[key] == podmans[key], key
    assert mine["InfraConfig"]["PortBindings"] == podmans["InfraConfig"]["PortBindings"]
    assert sorted(mine["SharedNamespaces"]) == sorted(podmans["SharedNamespaces"])
    assert [c["State"] for c in mine["Containers"]] == [c["State"] for c in podmans["Containers"]]
    assert mine["Containers"][0]["Name"] == mine["Id"][:12] + "-infra"  # podman's naming
    assert json.loads(_ours(ctr, "pod", "ps", "--format", "json").stdout)[0].keys() == \
        json.loads(podman("pod", "ps", "--format", "json").stdout)[0].keys()
    # ps --pod: the same two trailing columns
    ours_ps, podman_ps = _ours(ctr, "ps", "-a", "--pod"), podman("ps", "-a", "--pod")
    assert ours_ps.stdout.splitlines()[0].split()[-3:] == podman_ps.stdout.splitlines()[0].split()[-3:] \
        == ["POD", "ID", "PODNAME"]
    # the errors: words and exit codes
    for args in (("pod", "start", "nope"), ("pod", "stop", "nope"), ("pod", "kill", "nope"), ("pod", "rm", "nope"),
                 ("pod", "inspect", "nope"), ("pod", "create", "--name", "app"), ("pod", "exists", "nope"),
                 ("pod", "rm", "-i", "nope")):
        ours, theirs = _ours(ctr, *args), podman(*args)
        assert ours.returncode == theirs.returncode, (args, ours.stderr, theirs.stderr)
        assert _errors(ours.stderr) == _errors(theirs.stderr), args
    # the infra container goes only with its pod, in both
    infra = mine["InfraContainerID"]
    refused = _ours(ctr, "rm", "-f", infra)
    assert refused.returncode != 0 and "is the infra container of pod" in refused.stderr
    assert podman("rm", "-f", podmans["InfraContainerID"]).returncode != 0
