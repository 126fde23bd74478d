"""Build plans: stages, --target and dependencies, step counts, cache keys."""

from __future__ import annotations

import pytest

from dockerbank.build.parser import DockerfileError, parse
from dockerbank.build.plan import FileRecord, cache_key, content_digest, make_plan, stages_of

MULTI = """\
ARG GO=1.21
FROM golang:${GO} AS build
WORKDIR /src
COPY . .
RUN go build -o /out/app

FROM alpine AS test
COPY --from=build /out/app /app
RUN /app -test

FROM debian AS docs
RUN echo docs

FROM scratch
COPY --from=build /out/app /app
ENTRYPOINT ["/app"]
"""


def test_stages_and_meta():
    meta, stages = stages_of(parse(MULTI))
    assert [i.pairs for i in meta] == [[("GO", "1.21")]]
    assert [(s.index, s.name, s.base) for s in stages] == [
        (0, "build", "golang:${GO}"), (1, "test", "alpine"), (2, "docs", "debian"), (3, None, "scratch")]
    assert [i.keyword for i in stages[0].instructions] == ["WORKDIR", "COPY", "RUN"]


def test_default_target_builds_only_what_the_last_stage_needs():
    plan = make_plan(parse(MULTI), {})
    assert plan.needed == [0, 3] and plan.target == 3
    assert plan.step_count == 1 + 4 + 3


def test_target_selects_stage_and_dependencies():
    assert make_plan(parse(MULTI), {}, "test").needed == [0, 1]
    assert make_plan(parse(MULTI), {}, "docs").needed == [2]
    assert make_plan(parse(MULTI), {}, "BUILD").needed == [0]
    with pytest.raises(DockerfileError, match="failed to reach build target nope"):
        make_plan(parse(MULTI), {}, "nope")


def test_from_earlier_stage_and_numeric_copy_from():
    text = "FROM busybox AS base\nFROM base AS mid\nFROM alpine\nCOPY --from=0 /x /x\nFROM mid\n"
    assert make_plan(parse(text), {}).needed == [0, 1, 3]
    assert make_plan(parse(text), {}, None).target == 3


def test_from_arg_resolves_stage_names():
    text = "ARG SRC=one\nFROM busybox AS one\nFROM busybox AS two\nFROM ${SRC}\n"
    assert make_plan(parse(text), {}).needed == [0, 2]
    assert make_plan(parse(text), {"SRC": "two"}).needed == [1, 2]


def test_copy_from_an_image_is_not_a_stage_dependency():
    assert make_plan(parse("FROM a AS x\nFROM b\nCOPY --from=nginx:latest /etc/nginx /etc/nginx\n"), {}).needed == [1]


def test_copy_from_later_stage_is_refused():
    with pytest.raises(DockerfileError, match="Dockerfile:2: invalid from flag value 1"):
        make_plan(parse("FROM a\nCOPY --from=1 /x /x\nFROM b\n"), {})


def test_no_from_and_instructions_before_from():
    with pytest.raises(DockerfileError, match="Dockerfile:1: no build stage in current context"):
        make_plan(parse("RUN echo\nFROM a\n"), {})
    with pytest.raises(DockerfileError, match="no build stage"):
        make_plan(parse("ARG A=1\n"), {})
    with pytest.raises(DockerfileError, match="cannot be empty"):
        make_plan(parse("# just a comment\n"), {})


def test_duplicate_stage_names():
    with pytest.raises(DockerfileError, match="Dockerfile:2: duplicate name x"):
        make_plan(parse("FROM a AS x\nFROM b AS x\n"), {})


def test_labels_option_adds_a_label_step_to_the_target():
    plan = make_plan(parse(MULTI), {}, "test", {"maintainer": "me", "a b": "c$d"})
    last = plan.stages[1].instructions[-1]
    assert last.keyword == "LABEL" and last.original == 'LABEL maintainer=me "a b"="c$d"'
    assert plan.step_count == 1 + 4 + 4


def test_cache_key_inputs():
    base = cache_key("sha256:" + "a" * 64, "ENV A=1")
    assert base == cache_key("sha256:" + "a" * 64, "ENV A=1")
    assert base != cache_key("sha256:" + "b" * 64, "ENV A=1")
    assert base != cache_key("sha256:" + "a" * 64, "ENV A=2")
    assert base != cache_key("sha256:" + "a" * 64, "ENV A=1", args={"X": "1"})
    assert cache_key(None, "RUN x", args={"A": "1", "B": "2"}) == cache_key(None, "RUN x", args={"B": "2", "A": "1"})
    assert base != cache_key("sha256:" + "a" * 64, "ENV A=1", content="sha256:" + "c" * 64)


def test_content_digest_covers_name_mode_owner_and_content():
    one = FileRecord("app/a", "file", 0o644, 0, 0, "sha256:1")
    base = content_digest([one])
    assert content_digest([one]) == base
    assert content_digest([FileRecord("app/b", "file", 0o644, 0, 0, "sha256:1")]) != base
    assert content_digest([FileRecord("app/a", "file", 0o755, 0, 0, "sha256:1")]) != base
    assert content_digest([FileRecord("app/a", "file", 0o644, 1000, 0, "sha256:1")]) != base
    assert content_digest([FileRecord("app/a", "file", 0o644, 0, 0, "sha256:2")]) != base
    two = FileRecord("app/z", "dir", 0o755, 0, 0)
    assert content_digest([one, two]) == content_digest([two, one])


# --- small pure helpers of COPY and the executor ------------------------------------------

from dockerbank.build.copy import clean_source, glob_regex, parse_chmod, parse_chown  # noqa: E402
from dockerbank.build.executor import _absolute_dest, _go_duration, _port_specs  # noqa: E402
from dockerbank.units import human_size  # noqa: E402


def test_glob_regex_is_filepath_match():
    assert glob_regex("*.txt").match("a.txt") and not glob_regex("*.txt").match("d/a.txt")
    assert glob_regex("src/*/main.?").match("src/x/main.c")
    assert glob_regex("[!a]b").match("xb") and not glob_regex("[!a]b").match("ab")


def test_clean_source_cannot_climb_out():
    assert clean_source("../../etc/passwd") == "etc/passwd"
    assert clean_source("./a/./b/") == "a/b"
    assert clean_source(".") == ""


class FakeView:
    def __init__(self, files):
        self.files = files

    def read_text(self, path):
        return self.files.get(path)


def test_parse_chown_numeric_and_names():
    view = FakeView({"/etc/passwd": "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
                     "/etc/group": "root:x:0:\napp:x:1000:\nstaff:x:50:\n"})
    assert vars(parse_chown("1:2", view)) == {"uid": 1, "gid": 2}
    assert vars(parse_chown("app", view)) == {"uid": 1000, "gid": 1000}
    assert vars(parse_chown("app:staff", view)) == {"uid": 1000, "gid": 50}
    assert vars(parse_chown("42", None)) == {"uid": 42, "gid": 42}
    with pytest.raises(Exception, match="no such user: nobody"):
        parse_chown("nobody", view)
    assert parse_chmod("0755") == 0o755
    with pytest.raises(Exception, match="octal"):
        parse_chmod("u+x")


def test_destination_against_workdir():
    assert _absolute_dest("/app", ".") == "/app/"
    assert _absolute_dest("/app", "./") == "/app/"
    assert _absolute_dest("/app", "sub/") == "/app/sub/"
    assert _absolute_dest("/app", "file") == "/app/file"
    assert _absolute_dest("/", ".") == "/"
    assert _absolute_dest("/app", "/abs//x/") == "/abs/x/"


def test_ports_durations_sizes():
    assert _port_specs("80") == ["80/tcp"]
    assert _port_specs("53/UDP") == ["53/udp"]
    assert _port_specs("8000-8002") == ["8000/tcp", "8001/tcp", "8002/tcp"]
    with pytest.raises(Exception):
        _port_specs("80/xyz")
    assert _go_duration(5 * 10**9) == "5s" and _go_duration(90 * 10**9) == "1m30s" and _go_duration(0) == "0s"
    assert human_size(2048) == "2.048kB" and human_size(12) == "12B"  # the build context line
