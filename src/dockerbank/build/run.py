"""RUN steps: run the step's command in a container of the engine and hand back its own layer.

A RUN is what docker's legacy builder does: create a container from the current image with
the step's env, user, workdir and shell (the image's ENTRYPOINT is not used), start it
attached, wait; a non-zero exit fails the build with the code; else the container's upper
dir (its own layer) becomes the step's layer, packed in overlay-upper mode, and the
container is removed. Files the runtime itself creates (mount points of /etc/hosts,
/etc/hostname, /etc/resolv.conf, /proc, /sys, /dev) are not part of the layer, as docker
keeps them in an init layer.
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator

from dockerbank.build.rootfs import MergedView
from dockerbank.errors import DockerbankError, NotSupported, RuntimeFailure

# runtime-made mount points: (path, kind) that appear in the upper dir only because of mounts
_RUNTIME_STUBS = (("etc/hostname", "file"), ("etc/hosts", "file"), ("etc/resolv.conf", "file"),
                  ("proc", "dir"), ("sys", "dir"), ("dev", "dir"), (".dockerenv", "file"))


class StepFailed(DockerbankError):
    """A RUN command exited non-zero (docker's message; the build exits with the command's code)."""


def run_step_for(engine, stdout=None, stderr=None):
    """A ``run_step(builder, state, argv, env)`` context manager factory, or None without a container engine.

    The RUN containers' output goes to the sinks ``stdout``/``stderr`` (engine.sinks; ``stderr``
    defaults to ``stdout``, no sink drops it): nothing is written to this process's own fds, so
    builds may run in a server's threads side by side."""
    import importlib.util

    # only look for the container engine here: importing it costs a cached build ~40 ms
    if importlib.util.find_spec("dockerbank.container.lifecycle") is None:
        return None
    if not hasattr(type(engine), "containers"):
        return None
    out = stdout if stdout is not None else _Discard()
    err = stderr if stderr is not None else out
    return lambda builder, state, argv, env: _run(engine, builder, state, argv, env, out, err)


class _Discard:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


@contextmanager
def _run(engine, builder, state, argv: list[str], env: dict[str, str], stdout, stderr) -> Iterator[Path]:
    from dockerbank.container.options import CreateOptions

    if state.image_id is None:
        raise NotSupported("RUN needs a base image with a shell: this stage starts FROM scratch and has no files yet")
    service = engine.containers
    container_cfg = state.container
    full_env = list(container_cfg.get("Env") or []) + [f"{k}={v}" for k, v in env.items()]
    opts = CreateOptions(
        image=state.image_id, command=list(argv), entrypoint=[], env=full_env,
        workdir=container_cfg.get("WorkingDir") or "/", user=container_cfg.get("User") or None,
        network="host", labels={"org.dockerbank.build": "intermediate"},
    )
    container = service.create(opts)
    cid = container.id
    builder.out(f" ---> Running in {cid[:12]}")
    try:
        code = _attached_run(service, cid, stdout, stderr)
        if code != 0:
            # docker build exits with the step's own code
            raise StepFailed(f"The command '{' '.join(argv)}' returned a non-zero code: {code}", exit_code=code)
        upper = service.dir(cid) / "upper"
        _drop_runtime_stubs(upper, MergedView(engine.images.layers.lower_dirs(_top_chain(state))))
        yield upper
    finally:
        try:
            service.remove(cid, force=True, volumes=True)
        except DockerbankError:
            pass
        builder.out(f"Removing intermediate container {cid[:12]}")


def run_command(engine, image: str, argv: list[str], stdout, stderr) -> int:
    """Run ``argv`` once in a throwaway container of ``image`` as a RUN step would (host network,
    no entrypoint), its output to the sinks; the container is removed; the exit code."""
    from dockerbank.container.options import CreateOptions

    service = engine.containers
    container = service.create(CreateOptions(image=image, command=list(argv), entrypoint=[], network="host",
                                             labels={"org.dockerbank.build": "intermediate"}))
    try:
        return _attached_run(service, container.id, stdout, stderr)
    finally:
        try:
            service.remove(container.id, force=True, volumes=True)
        except DockerbankError:
            pass


def _attached_run(service, cid: str, stdout, stderr) -> int:
    """Start attached and stream the output to the sinks; the exit code."""
    attachment = service.start(cid, attached=True, stdin=False)
    if attachment is None:
        raise RuntimeFailure(f"build container {cid[:12]} could not be attached")
    code = attachment.run(proxy_signals=False, stdout=stdout, stderr=stderr)
    # A failed step must never be committed: trust conmon's exit file over a recorded 0.
    from dockerbank.runtime import conmon

    recorded = conmon.read_exit(service.dir(cid))
    if recorded is not None and recorded != code:
        code = recorded
    return 255 if code is None else code


def _top_chain(state) -> str | None:
    from dockerbank.oci import digest as dg

    diff_ids = state.config.get("rootfs", {}).get("diff_ids", [])
    return dg.chain_ids(diff_ids)[-1] if diff_ids else None


def _drop_runtime_stubs(upper: Path, lower: MergedView) -> None:
    """Remove what the runtime created for its mounts (absent from the image), then the
    directories copied up only to hold them (present below, empty, not opaque)."""
    touched: set[Path] = set()
    for rel, kind in _RUNTIME_STUBS:
        path = upper / rel
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if lower.lstat(rel) is not None:
            continue  # it is in the image: whatever the upper holds is a real change (or a copy-up)
        if kind == "file" and stat.S_ISREG(st.st_mode) and st.st_size == 0:
            path.unlink()
        elif kind == "dir" and stat.S_ISDIR(st.st_mode) and not any(os.scandir(path)):
            path.rmdir()
        else:
            continue
        touched.add(path.parent)
    for directory in sorted(touched, key=lambda p: len(p.parts), reverse=True):
        while directory != upper and directory.is_dir() and not any(os.scandir(directory)):
            rel = str(directory.relative_to(upper))
            below = lower.lstat(rel)
            if below is None or not stat.S_ISDIR(below.st_mode) or _opaque(directory):
                break
            directory.rmdir()
            directory = directory.parent


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False
