"""Pure formatting and decision logic of the image commands: rows, sizes, times, rmi's reference rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dockerbank.errors import InvalidArgument
from dockerbank.image import inspect as ins
from dockerbank.image.remove import _is_id_prefix, _is_running, _is_single_reference, parse_until
from dockerbank.image.store import ImageRecord
from dockerbank.oci import reference as refs

ID = "sha256:" + "ab" * 32


def _record(tags=(), digests=()):
    return ImageRecord(ID, "2026-01-01T00:00:00.123456789Z", "2026-01-02T00:00:00Z", 1985569, None,
                       list(tags), list(digests))


def test_rows_one_per_tag_and_none_for_untagged():
    rows = ins.image_rows([_record(["docker.io/library/busybox:latest", "docker.io/library/busybox:1"]),
                           _record()], digests=False)
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("busybox", "latest", "<none>"), ("busybox", "1", "<none>"), ("<none>", "<none>", "<none>")]


def test_rows_digests_shown_with_tags_and_alone():
    digest = "sha256:" + "cd" * 32
    tagged = _record(["localhost:5000/app:1"], [f"localhost:5000/app@{digest}"])
    assert [(r[1], r[2], r[3]) for r in ins.image_rows([tagged], digests=True)] == [("localhost:5000/app", "1", digest)]
    assert [(r[1], r[2], r[3]) for r in ins.image_rows([tagged], digests=False)] == [
        ("localhost:5000/app", "1", "<none>")]
    only_digest = _record([], [f"docker.io/library/busybox@{digest}"])
    assert [(r[1], r[2], r[3]) for r in ins.image_rows([only_digest], digests=True)] == [("busybox", "<none>", digest)]


def test_view_fields_like_docker():
    now = datetime(2026, 1, 1, 2, 0, 1, tzinfo=UTC)
    view = ins.image_view(_record(), "busybox", "latest", "<none>", now=now, trunc=True)
    assert view["ID"] == "ab" * 6
    assert view["Size"] == "1.99MB"
    assert view["VirtualSize"] == "1.986MB"
    assert view["CreatedSince"] == "2 hours ago"
    assert view["CreatedAt"] == "2026-01-01 00:00:00 +0000 UTC"
    assert ins.go_json({"Digest": "<none>"}) == '{"Digest":"\\u003cnone\\u003e"}'


@pytest.mark.parametrize("seconds,text", [(0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"),
                                          (60, "About a minute"), (3600, "About an hour"), (86400 * 3, "3 days")])
def test_human_duration(seconds, text):
    assert ins.human_duration(seconds) == text


def test_human_size_and_ellipsis():
    assert ins.human_size(0) == "0B"
    assert ins.human_size(200_000_000) == "200MB"
    assert ins.human_size(1234, 3) == "1.23kB" and ins.human_size(1234) == "1.234kB"
    assert ins.ellipsis("x" * 50, 45) == "x" * 44 + "…"
    assert ins.ellipsis("short", 45) == "short"


def test_parse_time_nanoseconds():
    moment = ins.parse_time("2026-11-27T23:04:08.869838077Z")
    assert moment == datetime(2026, 11, 27, 23, 4, 8, 869838, tzinfo=UTC)
    assert ins.parse_time(None).year == 1970
    assert ins.parse_time("2026-11-27T23:04:08+01:00") == datetime(2026, 11, 27, 22, 4, 8, tzinfo=UTC)


def test_history_view_truncates_and_human_toggle():
    row = {"id": ID, "created": "2026-01-01T00:00:00Z", "created_by": "/bin/sh -c " + "x" * 60, "size": 1000,
           "comment": ""}
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=3)
    short = ins.history_view(row, now=now, human=True, trunc=True)
    assert short["ID"] == "ab" * 6 and short["CreatedBy"].endswith("…") and len(short["CreatedBy"]) == 45
    assert short["Size"] == "1kB" and short["CreatedSince"] == "3 days ago"
    raw = ins.history_view(row, now=now, human=False, trunc=False)
    assert raw["Size"] == "1000" and raw["CreatedSince"] == "2026-01-01T00:00:00Z" and raw["ID"] == ID


def test_container_config_shape():
    shaped = ins.docker_container_config({"Cmd": ["sh"], "ExposedPorts": {"80/tcp": {}}})
    assert list(shaped)[:3] == ["Hostname", "Domainname", "User"]
    assert shaped["Cmd"] == ["sh"] and shaped["Env"] is None and shaped["ExposedPorts"] == {"80/tcp": {}}
    assert "Healthcheck" not in shaped and "StopSignal" not in shaped


def test_single_reference_rule():
    parse = refs.parse
    digest = "sha256:" + "cd" * 32
    assert not _is_single_reference([])
    assert _is_single_reference([parse("busybox")])
    assert _is_single_reference([parse("busybox"), parse(f"busybox@{digest}")])
    assert not _is_single_reference([parse("busybox"), parse("busybox:1")])
    assert not _is_single_reference([parse("busybox"), parse(f"other@{digest}")])


def test_id_prefix_and_running_state():
    assert _is_id_prefix(ID, "abab") and _is_id_prefix(ID, "sha256:abab") and not _is_id_prefix(ID, "busybox")
    assert _is_running('{"Status": "running"}') and _is_running('{"Running": true}')
    assert not _is_running('{"Status": "exited"}') and not _is_running("garbage")


def test_parse_until():
    now = datetime(2026, 1, 2, tzinfo=UTC)
    assert parse_until("24h", now) == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_until("1h30m", now) == now - timedelta(minutes=90)
    assert parse_until("0", now) == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_until("2025-12-31", now) == datetime(2025, 12, 31, tzinfo=UTC)
    assert parse_until("2025-12-31T10:00:00Z", now) == datetime(2025, 12, 31, 10, tzinfo=UTC)
    with pytest.raises(InvalidArgument):
        parse_until("yesterday", now)

