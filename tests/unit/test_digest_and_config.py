import pytest

from dockerbank.errors import CorruptData, InvalidArgument
from dockerbank.oci import digest as dg
from dockerbank.oci import imageconfig


def test_chain_ids_follow_the_oci_rule():
    a, b = dg.of_bytes(b"a"), dg.of_bytes(b"b")
    chains = dg.chain_ids([a, b])
    assert chains[0] == a
    assert chains[1] == dg.of_bytes(f"{a} {b}".encode())


def test_verifier_refuses_a_mismatch():
    verifier = dg.Verifier(dg.of_bytes(b"expected"))
    verifier.update(b"other")
    with pytest.raises(CorruptData, match="digest mismatch"):
        verifier.check()


def test_validate_refuses_malformed_digests():
    for bad in ["sha256:xyz", "md5:" + "0" * 32, "sha256:" + "A" * 64]:
        with pytest.raises(InvalidArgument):
            dg.validate(bad)


def test_apply_change_covers_dockers_instructions():
    cfg: dict = {}
    for change in [
        'CMD ["echo", "hi"]', "ENTRYPOINT /bin/sh", "ENV A=1 B=two", "ENV A 3", "WORKDIR /srv",
        "USER nobody", "EXPOSE 80 53/udp", 'LABEL org.dockerbank.redistributable=false "x y"=z',
        'VOLUME ["/data"]', "VOLUME /logs",
    ]:
        cfg = imageconfig.apply_change(cfg, change)
    assert cfg["Cmd"] == ["echo", "hi"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/sh"]
    assert cfg["Env"] == ["B=two", "A=3"]
    assert cfg["WorkingDir"] == "/srv" and cfg["User"] == "nobody"
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Labels"] == {"org.dockerbank.redistributable": "false", "x y": "z"}
    assert cfg["Volumes"] == {"/data": {}, "/logs": {}}


def test_apply_change_refuses_unknown_instructions():
    with pytest.raises(InvalidArgument, match="not a valid change command"):
        imageconfig.apply_change({}, "RUN rm -rf /")
    with pytest.raises(InvalidArgument, match="JSON"):
        imageconfig.apply_change({}, 'CMD ["unterminated"')
