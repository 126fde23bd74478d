"""``--format`` as docker users write it: the docker CLIs (both on the machine) talking to the API
service and the Dockerbank CLI on the same root print the same thing for each template."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
from api_server import start_server

pytestmark = pytest.mark.compat

CLIENTS = [p for p in ("/usr/bin/docker", "/usr/local/bin/docker") if os.path.exists(p)]

CASES = [
    ("inspect", "-f", "{{.Name}} {{.State.Status}} {{.State.Running}} {{.Config.Image}}", "c1"),
    ("inspect", "-f", "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "c1"),
    ("inspect", "-f", '{{index .Config.Labels "org.example.team"}} {{json .Config.Labels}}', "c1"),
    ("inspect", "-f", '{{if eq .State.Status "running"}}up{{else}}down{{end}} {{with .State}}{{.ExitCode}}{{end}}', "c1"),
    ("inspect", "-f", '{{.Config.Cmd}} {{join .Config.Cmd " "}} {{len .Config.Cmd}} {{upper .Name}}', "c1"),
    ("inspect", "-f", '{{printf "%-8s|%5d" .Name .State.ExitCode}} {{.HostConfig.NetworkMode}}', "c1"),
    ("inspect", "-f", "{{range .Mounts}}{{.Type}}:{{.Name}}:{{.Destination}} {{end}}", "c1"),
    ("inspect", "-f", "{{range .Config.Env}}{{if eq (index (split . \"=\") 0) \"GREETING\"}}{{.}}{{end}}{{end}}", "c1"),
    ("ps", "-a", "--format", '{{.Names}} {{.Image}} {{.State}} {{.Label "z"}}'),  # .Labels: 20.10 prints a map's order
    ("ps", "-a", "--format", 'table {{.Names}}\t{{.Image}}\t{{.Label "org.example.team"}}'),
    ("ps", "-a", "--format", "{{json .Names}} {{.Command}} {{.Networks}} {{.LocalVolumes}}"),
    ("images", "--format", "{{.Repository}}:{{.Tag}}"),
    ("images", "--format", "table {{.Repository}}\t{{.Tag}}"),
    ("volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Labels}}"),
    ("volume", "ls", "--format", "table {{.Name}}\t{{.Driver}}"),
    ("network", "ls", "--filter", "name=lab", "--format", "{{.Name}} {{.Driver}}"),
    ("network", "ls", "--filter", "name=lab", "--format", "table {{.Name}}\t{{.Driver}}"),
    # a key a map lacks prints <no value> (inspect's Labels, Options; a nil map too), as does index on inspect's
    ("inspect", "-f", "{{.Config.Labels.nosuch}} {{.HostConfig.RestartPolicy.Name}}", "c1"),
    ("inspect", "-f", '{{index . "Nosuch"}} {{.Name}}', "c1"),
    ("image", "inspect", "-f", "{{.Config.Labels.nosuch}} {{json .Config.Labels}} {{.Config.Labels}}", "busybox"),
    ("volume", "inspect", "-f", "{{.Labels.nosuch}} {{.Labels.k}}", "data"),
    ("network", "inspect", "-f", "{{.Options.nosuch}} {{.IPAM.Driver}}", "lab"),
    ("system", "df", "-v", "--format", "{{range .Volumes}}{{.Name}} {{.Links}} {{.Size}} {{.Driver}};{{end}}"),
]

# a field docker's struct does not have: both fail, exit 1, with Go's message (docker's prefix varies)
BAD_FIELDS = [
    ("ps", "-a", "--format", "{{.Names}} {{.Bad}}"),
    ("ps", "--filter", "name=nosuch", "--format", "{{.Bad}}"),   # docker runs it on an empty row first
    ("ps", "-a", "--format", "{{.Names.Bad}}"),
    ("ps", "-a", "--format", "table {{.Names}}\t{{.Bad}}"),      # ps: Go's column counts "table "
    ("images", "--format", "{{.Bad}}"),
    ("history", "--format", "{{.Bad}}", "busybox"),
    ("network", "ls", "--filter", "name=lab", "--format", "{{.Bad}}"),
    ("volume", "ls", "--format", "{{.Bad}}"),
    ("stats", "--no-stream", "--format", "{{.Bad}}", "c1"),
    ("system", "df", "--format", "{{.Bad}}"),
    ("system", "df", "-v", "--format", "{{.Bad}}"),
    # inspect: docker retries on the raw JSON with missingkey=error
    ("inspect", "-f", "{{.Name}} {{.Bad}}", "c1"),
    ("inspect", "-f", "{{.State.Bad}}", "c1"),
    ("inspect", "-f", "{{.State.Health.Status}}", "c1"),
    ("image", "inspect", "-f", "{{.Config.Bad}}", "busybox"),
    ("network", "inspect", "-f", "{{.IPAM.Bad}}", "lab"),
    ("volume", "inspect", "-f", "{{.Bad}}", "data"),              # a types.Volume, no retry
    ("events", "--since", "0", "--until", "NOW", "--format", "{{.Actor.Bad}}"),   # docker's events exit 64
    ("info", "--format", "{{.Name}} {{.Bad}}"),
    ("version", "--format", "{{.Server.Bad}}"),                    # a template named "version"
]

# a template that does not parse: 64 where docker's command says so (inspect, info, version), else 1
PARSE_ERRORS = [("ps", "-a"), ("images",), ("volume", "ls"), ("system", "df"), ("inspect", "c1"),
                ("image", "inspect", "busybox"), ("volume", "inspect", "data"), ("network", "inspect", "lab"),
                ("info",), ("version",)]


@pytest.fixture(scope="module")
def service(tmp_path_factory, busybox_tar):
    server = start_server(tmp_path_factory.mktemp("formats"), busybox_tar)
    for args in (("volume", "create", "--label", "k=v", "data"), ("network", "create", "lab"),
                 ("run", "-d", "--name", "c1", "--network", "lab", "-l", "org.example.team=imaging", "-l", "z=last",
                  "-e", "GREETING=hi", "-v", "data:/data", "busybox", "sleep", "1000")):
        done = server.dockerbank(*args)
        assert done.returncode == 0, done.stderr
    yield server
    server.dockerbank("rm", "-f", "c1")
    server.stop()


@pytest.mark.parametrize("args", CASES, ids=[" ".join(c[:2]) + f"-{i}" for i, c in enumerate(CASES)])
@pytest.mark.parametrize("client", CLIENTS)
def test_same_output_as_the_docker_cli(service, client, args):
    theirs = subprocess.run([client, *args], capture_output=True, env=service.env(), timeout=60)
    ours = service.dockerbank(*args)
    assert theirs.returncode == 0, theirs.stderr.decode()
    assert ours.returncode == 0, ours.stderr.decode()
    assert ours.stdout.decode() == theirs.stdout.decode()


@pytest.mark.parametrize("client", CLIENTS)
def test_template_errors_fail_both_with_one_line(service, client):
    for template in ("{{.Name", "{{nosuchfunc .Name}}"):
        theirs = subprocess.run([client, "inspect", "-f", template, "c1"], capture_output=True, env=service.env())
        ours = service.dockerbank("inspect", "-f", template, "c1")
        assert theirs.returncode != 0 and ours.returncode != 0
        line = ours.stderr.decode().strip()
        assert "\n" not in line and "template" in line and "Traceback" not in line, line


def _go_error(stderr: bytes) -> str:
    """Go's message, without the words docker (or Dockerbank) puts before it; docker 28 renames 20.10's
    types.Volume and system.info."""
    text = stderr.decode()
    start = re.search(r"template: \w*:\d", text)
    assert start, text
    return text[start.start():].strip().replace("type volume.Volume", "type types.Volume").replace(
        "type system.dockerInfo", "type system.info")


@pytest.mark.parametrize("args", BAD_FIELDS, ids=[" ".join(c[:2]) + f"-{i}" for i, c in enumerate(BAD_FIELDS)])
@pytest.mark.parametrize("client", CLIENTS)
def test_a_field_a_struct_lacks_fails_as_in_docker(service, client, args):
    args = tuple(str(int(time.time())) if arg == "NOW" else arg for arg in args)  # events: those made so far
    theirs = subprocess.run([client, *args], capture_output=True, env=service.env(), timeout=60)
    ours = service.dockerbank(*args)
    code = 64 if args[0] == "events" else 1
    assert (theirs.returncode, ours.returncode) == (code, code), (theirs.stderr, ours.stderr)
    assert len(ours.stderr.decode().splitlines()) == 1
    assert _go_error(ours.stderr) == _go_error(theirs.stderr)
    assert ours.stdout.strip() == b""


@pytest.mark.parametrize("args", PARSE_ERRORS, ids=[" ".join(c[:2]) for c in PARSE_ERRORS])
@pytest.mark.parametrize("client", CLIENTS)
def test_a_template_that_does_not_parse_ends_with_dockers_code(service, client, args):
    *command, = args
    where = 2 if command[0] in ("volume", "image", "network", "system") else 1
    full = [*command[:where], "--format", "{{.Name", *command[where:]]
    theirs = subprocess.run([client, *full], capture_output=True, env=service.env(), timeout=60)
    ours = service.dockerbank(*full)
    assert ours.returncode == theirs.returncode in (1, 64), (theirs.stderr, ours.stderr)
    assert _go_error(ours.stderr) == _go_error(theirs.stderr)
