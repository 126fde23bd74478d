"""``dockerbank volume ...`` as users run it: a subprocess against the test's root."""

from __future__ import annotations

import json


def out(result) -> str:
    return result.stdout.decode()


def err(result) -> str:
    return result.stderr.decode()


def test_create_ls_inspect(cli):
    assert out(cli("volume", "create", "pgdata", "--label", "project=redcap", "--label", "tier=db")) == "pgdata\n"
    assert out(cli("volume", "create", "pgdata")) == "pgdata\n"  # existing: returned, like docker
    anon = out(cli("volume", "create")).strip()
    assert len(anon) == 64
    table = out(cli("volume", "ls")).splitlines()
    assert table[0] == "DRIVER    VOLUME NAME"
    assert sorted(table[1:]) == sorted([f"local     {anon}", "local     pgdata"])
    assert sorted(out(cli("volume", "ls", "-q")).split()) == sorted([anon, "pgdata"])
    assert out(cli("volume", "ls", "-q", "--filter", "label=project=redcap")) == "pgdata\n"
    assert out(cli("volume", "ls", "-q", "-f", "name=pg", "-f", "dangling=true")) == "pgdata\n"
    rows = [json.loads(line) for line in out(cli("volume", "ls", "--format", "json", "-f", "name=pgdata")).splitlines()]
    assert rows[0]["Name"] == "pgdata" and rows[0]["Labels"] == "project=redcap,tier=db"
    assert rows[0]["Driver"] == "local" and rows[0]["Scope"] == "local"
    assert out(cli("volume", "ls", "--format", "{{.Name}}:{{.Driver}}", "-f", "name=pgdata")) == "pgdata:local\n"
    custom = out(cli("volume", "ls", "--format", "table {{.Name}}\t{{.Driver}}", "-f", "name=pgdata")).splitlines()
    assert custom == ["VOLUME NAME   DRIVER", "pgdata        local"]

    info = json.loads(out(cli("volume", "inspect", "pgdata")))
    assert info[0]["Name"] == "pgdata" and info[0]["Labels"] == {"project": "redcap", "tier": "db"}
    assert info[0]["Mountpoint"].endswith("/volumes/pgdata/_data") and info[0]["Options"] is None
    assert out(cli("volume", "inspect", "-f", "{{.Driver}} {{index .Labels \"tier\"}}", "pgdata")) == "local db\n"
    assert json.loads(out(cli("volume", "inspect", "--format", "json", "pgdata")))[0]["Name"] == "pgdata"


def test_errors_are_one_line_with_dockers_exit_codes(cli):
    result = cli("volume", "inspect", "nope", check=False)
    assert result.returncode == 1 and err(result) == "Error: get nope: no such volume\n"
    assert out(result).strip() == "[]"
    result = cli("volume", "create", "bad/name", check=False)
    assert result.returncode == 1 and err(result).startswith('Error: create bad/name: "bad/name" includes invalid')
    result = cli("volume", "create", "-o", "foo=bar", "v2", check=False)
    assert result.returncode == 1 and err(result) == 'Error: create v2: invalid option: "foo"\n'
    result = cli("volume", "ls", "--filter", "color=red", check=False)
    assert result.returncode == 1 and err(result) == "Error: Invalid filter 'color'\n"
    assert "Traceback" not in err(result)
    result = cli("volume", "ls", "--filter", "name", check=False)
    assert result.returncode == 125
    assert err(result) == ('Error: invalid argument "name" for "-f, --filter" flag: '
                           "bad format of filter (expected name=value)\n")
    for args, need in ((("rm",), "at least"), (("inspect",), "at least"), (("create", "a1", "b1"), "at most")):
        result = cli("volume", *args, check=False)
        assert result.returncode == 1 and f'volume {args[0]}" requires {need} 1 argument' in err(result)
    assert out(cli("volume", "ls", "-q")) == ""  # bad input stored nothing


def test_rm(cli):
    cli("volume", "create", "one")
    cli("volume", "create", "two")
    result = cli("volume", "rm", "one", "missing", "two", check=False)
    assert result.returncode == 1
    assert out(result) == "one\ntwo\n" and err(result) == "Error: get missing: no such volume\n"
    result = cli("volume", "rm", "-f", "missing")
    assert out(result) == "missing\n"
    assert out(cli("volume", "ls", "-q")) == ""


def test_rm_in_use_fails_even_with_force(cli, engine):
    cli("volume", "create", "appdata")
    cid = "e" * 64
    engine.volumes.attach(cid, ["appdata"])
    result = cli("volume", "rm", "-f", "appdata", check=False)
    assert result.returncode == 1
    assert err(result) == f"Error: remove appdata: volume is in use - [{cid}]\n"
    assert out(cli("volume", "ls", "-q")) == "appdata\n"


def test_prune_asks_and_prunes_anonymous_unless_all(cli, engine):
    cli("volume", "create", "named")
    anon = engine.volumes.create(anonymous=True)
    (engine.volumes.data_dir(anon.name) / "junk").write_bytes(b"j" * 2000)

    result = cli("volume", "prune", input=b"n\n")
    assert out(result) == ("WARNING! This will remove anonymous local volumes not used by at least one container.\n"
                           "Are you sure you want to continue? [y/N] ")
    result = cli("volume", "prune", input=b"")  # end of input (CI): no, and no hang
    assert "Total reclaimed space" not in out(result)
    assert len(out(cli("volume", "ls", "-q")).split()) == 2

    result = cli("volume", "prune", input=b"y\n")
    assert out(result).endswith(f"[y/N] Deleted Volumes:\n{anon.name}\n\nTotal reclaimed space: 2kB\n")
    assert out(cli("volume", "ls", "-q")) == "named\n"

    assert out(cli("volume", "prune", "-f")) == "Total reclaimed space: 0B\n"
    result = cli("volume", "prune", "-a", "-f", "--filter", "label=nothing")
    assert out(result) == "Total reclaimed space: 0B\n"
    result = cli("volume", "prune", "--all", input=b"y\n")
    assert "This will remove all local volumes" in out(result) and "named\n" in out(result)
    assert out(cli("volume", "ls", "-q")) == ""
