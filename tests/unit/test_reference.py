import pytest

from dockerbank.errors import InvalidArgument
from dockerbank.oci import reference as refs


@pytest.mark.parametrize(
    "text, repository, tag, digest, familiar",
    [
        ("busybox", "docker.io/library/busybox", "latest", None, "busybox:latest"),
        ("library/busybox:1.36", "docker.io/library/busybox", "1.36", None, "busybox:1.36"),
        ("team/app:2", "docker.io/team/app", "2", None, "team/app:2"),
        ("index.docker.io/team/app", "docker.io/team/app", "latest", None, "team/app:latest"),
        ("localhost/app", "localhost/app", "latest", None, "localhost/app:latest"),
        ("localhost:5000/team/app:1.2", "localhost:5000/team/app", "1.2", None, "localhost:5000/team/app:1.2"),
        ("my.registry.de:1234/awesome-image", "my.registry.de:1234/awesome-image", "latest", None,
         "my.registry.de:1234/awesome-image:latest"),
        ("postgres:9.6", "docker.io/library/postgres", "9.6", None, "postgres:9.6"),
        ("a/b__c/d-e.f:g_1", "docker.io/a/b__c/d-e.f", "g_1", None, "a/b__c/d-e.f:g_1"),
    ],
)
def test_parse_normalises_like_docker(text, repository, tag, digest, familiar):
    ref = refs.parse(text)
    assert ref.repository == repository
    assert ref.tag == tag
    assert ref.digest == digest
    assert ref.familiar() == familiar


def test_digest_reference_keeps_tag_and_digest():
    digest = "sha256:" + "ab" * 32
    ref = refs.parse(f"localhost:5000/team/app:1.2@{digest}")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("localhost:5000", "team/app", "1.2", digest)
    only_digest = refs.parse(f"busybox@{digest}")
    assert only_digest.tag is None and only_digest.digest == digest


@pytest.mark.parametrize("bad", ["", "UPPER", "a:b:c", "bad//path", "-x", "x:", "x@sha256:12", "a/B", "x y"])
def test_malformed_references_are_refused(bad):
    with pytest.raises(InvalidArgument, match="invalid reference format|unsupported digest"):
        refs.parse(bad)


def test_uppercase_gets_dockers_message():
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        refs.parse("BusyBox")


def test_name_length_limit():
    with pytest.raises(InvalidArgument, match="255"):
        refs.parse("a" * 256)
