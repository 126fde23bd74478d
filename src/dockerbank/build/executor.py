"""Execute a build plan against the engine's image store, with the layer cache.

Each step yields an image (recorded like any other, untagged), as Docker's legacy builder
does: metadata steps add a config and an ``empty_layer`` history entry; COPY/ADD (and
WORKDIR when it creates a directory) add a layer; RUN runs a container of the engine. A
step whose cache key (``plan.cache_key``) maps to a stored image is reused.
"""

from __future__ import annotations

import copy as _copy
import json
import os
import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Mapping

from dockerbank.build import copy as copying
from dockerbank.build.context import BuildContext
from dockerbank.build.licensed import LicenseScan
from dockerbank.build.expand import ArgScope, Lexer, env_dict, meta_scope, set_env
from dockerbank.build.parser import Dockerfile, DockerfileError, Instruction, parse
from dockerbank.build.plan import Plan, Stage, cache_key, content_digest, make_plan, stage_ref
from dockerbank.build.rootfs import MergedView
from dockerbank.errors import DockerbankError, InvalidArgument, NotFound, NotSupported
from dockerbank.image import compression
from dockerbank.image.store import ImageStore, now_rfc3339
from dockerbank.oci import digest as dg
from dockerbank.oci import imageconfig
from dockerbank.units import human_size

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ["/bin/sh", "-c"]


@dataclass
class BuildOptions:
    """What ``build`` was asked for."""

    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    lint: str = "off"        # hadolint: off, warn (print its findings), error (fail on warnings/errors)
    # finds components whose license forbids redistribution (the audit's inventory); the image
    # is then labelled org.dockerbank.redistributable=false. None: only the context's markers count.
    license_scan: LicenseScan | None = None


@dataclass
class StageState:
    """The image a stage has built so far."""

    stage: Stage
    image_id: str | None
    config: dict
    args: ArgScope
    cmd_set: bool = False

    @property
    def container(self) -> dict:
        return self.config.setdefault("config", {})

    @property
    def shell(self) -> list[str]:
        return list(self.container.get("Shell") or DEFAULT_SHELL)

    @property
    def workdir(self) -> str:
        return self.container.get("WorkingDir") or "/"


class BuildFailed(DockerbankError):
    """A step failed; the message names the Dockerfile line."""


class Builder:
    """Runs one build; ``out`` receives Docker's legacy-builder progress lines."""

    def __init__(self, engine, out: Callable[[str], None] = lambda line: None, run_step=None, quiet: bool = False,
                 warn: Callable[[str], None] | None = None, linter=None):
        self.engine = engine
        self.warn = warn or out       # lint findings (the CLI sends them to stderr)
        self.linter = linter          # None: hadolint (build.lint.Hadolint) when options.lint asks for it
        self.quiet = quiet
        self.store: ImageStore = engine.images
        self.out = out
        self.run_step = run_step
        self.built: dict[int, StageState] = {}
        self._new_digests: list[tuple[str, str]] = []
        self.used_args: set[str] = set()
        self.epoch: int | None = None     # SOURCE_DATE_EPOCH of a reproducible build

    # --- the whole build ----------------------------------------------------------------

    def build(self, context: BuildContext, options: BuildOptions) -> str:
        """Build; return the image ID and tag it. Raises DockerbankError naming the failing line."""
        self._context = context
        self.epoch = source_date_epoch(options.build_args)
        dockerfile = parse(context.dockerfile, context.dockerfile_name)
        if options.lint != "off":
            self._lint(context, options.lint)
        from dockerbank.build.licensed import labels_for

        labels, markers = labels_for(context, dict(options.labels))
        plan = make_plan(dockerfile, options.build_args, options.target, labels or None)
        self.out(f"Sending build context to Dockerbank  {human_size(context.size())}")
        if markers:
            self.out(f"[LICENSE]: licensed source ({', '.join(markers)}): the image is labelled "
                     "org.dockerbank.redistributable=false and stays in private registries")
        for warning in dockerfile.warnings:
            self.out(f"[WARNING]: {warning}")
        meta = meta_scope(options.build_args, [p for inst in plan.meta for p in inst.pairs], dockerfile.escape)
        total = plan.step_count
        step = 0
        for inst in plan.meta:
            step += 1
            self.out(f"Step {step}/{total} : {inst.original}")
            self.used_args.update(name for name, _ in inst.pairs)
        lexer = Lexer(dockerfile.escape)
        for index in plan.needed:
            stage = plan.stages[index]
            step += 1
            self.out(f"Step {step}/{total} : {stage.from_inst.original}")
            state = self._from(stage, plan, meta, options, dockerfile, lexer)
            for inst in stage.instructions:
                step += 1
                self.out(f"Step {step}/{total} : {inst.original}")
                self._step(state, inst, context, options, dockerfile, lexer)
            self.built[index] = state
        final = self.built[plan.target]
        if final.image_id is None:
            raise BuildFailed("No image was generated. Is your Dockerfile empty?")
        unused = sorted(set(options.build_args) - self.used_args - set(_predefined()))
        if unused:
            self.out(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed")
        image_id = final.image_id
        if options.license_scan is not None:
            from dockerbank.build.licensed import relabel_if_forbidden

            image_id = relabel_if_forbidden(self.store, image_id, options.license_scan, self.out)
        self.out(f"Successfully built {dg.short_id(image_id)}")
        for tag in options.tags:
            ref = self._tag(image_id, tag)
            self.out(f"Successfully tagged {ref.familiar()}")
        return image_id

    def _lint(self, context: BuildContext, mode: str) -> None:
        from dockerbank.build import lint

        if mode not in lint.MODES:
            raise InvalidArgument(f"invalid --lint {mode!r}: use {', '.join(lint.MODES)}")
        try:
            findings = lint.lint(context.dockerfile, self.linter or lint.Hadolint())
        except NotSupported as exc:
            if mode == "error":
                raise
            self.warn(f"[LINT] not linted: {exc}")   # warn mode never stops a build for want of a linter
            return
        for finding in findings:
            self.warn(finding.render(context.dockerfile_name))
        lint.check(findings, mode, context.dockerfile_name)

    def _tag(self, image_id: str, tag: str):
        """Tag the result; a tag that already names it is left alone (a write transaction costs an fsync)."""
        from dockerbank.oci import reference

        ref = reference.parse(tag)
        if not ref.digest:
            row = self.engine.db.query_one("SELECT image_id FROM tags WHERE ref = ?", (ref.name_tag,))
            if row is not None and row["image_id"] == image_id:
                return ref
        return self.store.tag(image_id, tag)

    # --- FROM ---------------------------------------------------------------------------

    def _from(self, stage: Stage, plan: Plan, meta: Mapping[str, str | None], options: BuildOptions,
              dockerfile: Dockerfile, lexer: Lexer) -> StageState:
        meta_env = {k: v for k, v in meta.items() if v is not None}
        base = lexer.process_word(stage.base, meta_env)
        if not base:
            raise DockerfileError(f"{dockerfile.name}:{stage.from_inst.line}: base name ({stage.base}) should not be blank")
        args = ArgScope(options.build_args, meta)
        if stage.platform:
            wanted = lexer.process_word(stage.platform, meta_env)
            host = f"linux/{imageconfig.host_arch()}"
            if wanted and wanted.split("/")[:2] != host.split("/"):
                raise NotSupported(f"{dockerfile.name}:{stage.from_inst.line}: FROM --platform={wanted}: this builder "
                                   f"only builds for the host platform ({host})")
        ref = stage_ref(plan.stages, base, stage.index)
        if ref is not None:
            parent = self.built[ref]
            image_id, config = parent.image_id, _copy.deepcopy(parent.config)
        elif base.lower() == "scratch":
            image_id, config = None, imageconfig.new_config(self._now(), [], [], {})
        else:
            try:
                record = self.store.resolve(base)
            except NotFound as exc:
                raise NotFound(f"{dockerfile.name}:{stage.from_inst.line}: pull access denied or image not found: "
                               f"{base} is not in the local store and builds do not pull (pull it first)") from exc
            image_id, config = record.id, self.store.image_config(record.id)
        if image_id is not None:
            self.out(f" ---> {dg.short_id(image_id)}")
        container = config.setdefault("config", {}) or {}
        config["config"] = container
        if "PATH" not in env_dict(container.get("Env")):
            container["Env"] = list(container.get("Env") or []) + [f"PATH={DEFAULT_PATH}"]
        triggers = list(container.get("OnBuild") or [])
        container.pop("OnBuild", None)
        state = StageState(stage, image_id, config, args)
        if triggers and ref is None:
            assert self._context is not None, "build() sets the context before any stage starts"
            self.out(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}")
            for text in triggers:
                trigger = parse(text, f"{dockerfile.name} (ONBUILD of {base})").instructions[0]
                self._step(state, trigger, self._context, options, dockerfile, lexer)
        return state

    _context: BuildContext | None = None

    # --- one step -----------------------------------------------------------------------

    def _step(self, state: StageState, inst: Instruction, context: BuildContext, options: BuildOptions,
              dockerfile: Dockerfile, lexer: Lexer) -> None:
        self._context = context
        try:
            handler = getattr(self, f"_do_{inst.keyword.lower()}")
            handler(state, inst, context, options, dockerfile, lexer)
        except DockerfileError:
            raise
        except DockerbankError as exc:
            prefix = f"{dockerfile.name}:{inst.line}: "
            if exc.message.startswith(dockerfile.name + ":"):
                raise
            wrapped = type(exc)(prefix + exc.message) if type(exc).__init__ is DockerbankError.__init__ else exc
            if wrapped is exc:
                raise
            wrapped.exit_code = exc.exit_code
            raise wrapped from exc

    def _env(self, state: StageState) -> dict[str, str]:
        return state.args.expansion_env(state.container.get("Env") or [])

    def _word(self, state: StageState, lexer: Lexer, word: str) -> str:
        return lexer.process_word(word, self._env(state))

    def _now(self) -> str:
        """The time a step records: SOURCE_DATE_EPOCH's when the build has one (reproducible)."""
        if self.epoch is None:
            return now_rfc3339()
        from datetime import datetime, timezone

        return datetime.fromtimestamp(self.epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _epoch_key(self, key: str) -> str:
        # a step made under another (or no) SOURCE_DATE_EPOCH carries other timestamps: not a hit
        return key if self.epoch is None else f"{key}@epoch={self.epoch}"

    def _cached(self, key: str, options: BuildOptions) -> str | None:
        if options.no_cache:
            return None
        key = self._epoch_key(key)
        row = self.engine.db.query_one("SELECT image_id FROM build_cache WHERE key = ?", (key,))
        if row is None:
            return None
        if self.engine.db.query_one("SELECT 1 FROM images WHERE id = ?", (row["image_id"],)) is None:
            return None
        return row["image_id"]

    # Large files are hashed once per (inode, size, mtime, ctime): a cached rebuild then reads no
    # file contents. The rows live in build_cache under a "file:" key (no step key starts so).
    _DIGEST_MIN = 1 << 20

    def _file_digest(self, path: Path) -> str:
        st = os.stat(path)
        if st.st_size < self._DIGEST_MIN:
            return copying.file_digest(path)
        key = f"file:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{os.path.abspath(path)}"
        row = self.engine.db.query_one("SELECT image_id FROM build_cache WHERE key = ?", (key,))
        if row is not None:
            return row["image_id"]
        digest = copying.file_digest(path)
        self._new_digests.append((key, digest))
        return digest

    def _flush_digests(self) -> None:
        if not self._new_digests:
            return
        rows, self._new_digests = self._new_digests, []
        with self.engine.db.write() as conn:
            conn.executemany("INSERT OR REPLACE INTO build_cache (key, image_id, created, parent) VALUES (?,?,?,NULL)",
                             [(key, digest, now_rfc3339()) for key, digest in rows])

    def _remember(self, key: str, image_id: str, parent: str | None) -> None:
        key = self._epoch_key(key)
        with self.engine.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO build_cache (key, image_id, created, parent) VALUES (?,?,?,?)",
                         (key, image_id, now_rfc3339(), parent))
        if parent:
            self.store.set_parent(image_id, parent)

    def _use(self, state: StageState, image_id: str, cached: bool) -> None:
        if cached:
            self.out(" ---> Using cache")
        state.image_id = image_id
        state.config = self.store.image_config(image_id)
        state.config.setdefault("config", {})
        self.out(f" ---> {dg.short_id(image_id)}")

    def _commit_staged(self, state: StageState, created_by: str, key: str, options: BuildOptions,
                       items: list[copying.CopyItem], view: MergedView, owner: copying.Owner | None) -> None:
        """A step that adds files (COPY/ADD, WORKDIR's new directory): the cached image of ``key``
        if there is one, else ``items`` staged from ``view`` and committed as a new layer."""
        hit = self._cached(key, options)
        if hit:
            self._use(state, hit, True)
            return
        staging = self._staging()
        try:
            copying.stage(items, staging, view, owner)
            self._commit_layer(state, created_by, key, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _commit_meta(self, state: StageState, comment: str, options: BuildOptions, mutate: Callable[[dict], None],
                     single_space: bool = False, shell: list[str] | None = None) -> None:
        """A step that changes only the config: new image, ``#(nop)`` history, no layer."""
        created_by = " ".join(shell or state.shell) + (" #(nop) " if single_space else " #(nop)  ") + comment
        key = cache_key(state.image_id, created_by, extra={"config": state.container})
        hit = self._cached(key, options)
        if hit:
            self._use(state, hit, True)
            return
        config = _copy.deepcopy(state.config)
        mutate(config)
        now = self._now()
        config["created"] = now
        config.setdefault("history", []).append({"created": now, "created_by": created_by, "empty_layer": True})
        record = self.store.record_image(imageconfig.canonical_bytes(config))
        self._remember(key, record.id, state.image_id)
        self._use(state, record.id, False)

    def _commit_layer(self, state: StageState, created_by: str, key: str, staging: Path,
                      overlay_upper: bool = False, announce: bool = True) -> str:
        """Pack ``staging`` as a layer on the stage's image; record the new image.

        ``overlay_upper``: ``staging`` is a container's upper dir (whiteouts converted).
        An empty directory makes no layer, only an ``empty_layer`` history entry (as docker).
        """
        store = self.store
        if not any(os.scandir(staging)):
            config = _copy.deepcopy(state.config)
            now = self._now()
            config["created"] = now
            config.setdefault("history", []).append({"created": now, "created_by": created_by, "empty_layer": True})
            record = store.record_image(imageconfig.canonical_bytes(config))
            self._remember(key, record.id, state.image_id)
            if announce:
                self._use(state, record.id, False)
            return record.id
        tmp = self.engine.config.tmp_dir
        tmp.mkdir(parents=True, exist_ok=True)
        fd, tar_name = tempfile.mkstemp(prefix="build-layer-", dir=tmp)
        try:
            from dockerbank.image.pack import pack_dir

            with os.fdopen(fd, "wb") as handle:
                pack_dir(staging, handle, overlay_upper=overlay_upper, clamp_mtime=self.epoch)
            with open(tar_name, "rb") as handle:
                blob, size = store.blobs.put_stream(handle)
        finally:
            os.unlink(tar_name)
        parent_chain = self._top_chain(state)
        with store.blobs.open(blob) as handle:
            layer = store.layers.add(parent_chain, handle, expected_diff_id=blob)
        store.add_layer_blob(layer.diff_id, blob, compression.MEDIA_TAR, size)
        config = _copy.deepcopy(state.config)
        now = self._now()
        config["created"] = now
        config.setdefault("rootfs", {"type": "layers", "diff_ids": []}).setdefault("diff_ids", []).append(layer.diff_id)
        config.setdefault("history", []).append({"created": now, "created_by": created_by})
        record = store.record_image(imageconfig.canonical_bytes(config))
        self._remember(key, record.id, state.image_id)
        if announce:
            self._use(state, record.id, False)
        return record.id

    def _top_chain(self, state: StageState) -> str | None:
        diff_ids = state.config.get("rootfs", {}).get("diff_ids", [])
        return dg.chain_ids(diff_ids)[-1] if diff_ids else None

    def _view(self, state: StageState) -> MergedView:
        return MergedView(self.store.layers.lower_dirs(self._top_chain(state)))

    # --- metadata instructions ----------------------------------------------------------

    def _do_env(self, state, inst, context, options, dockerfile, lexer):
        env = self._env(state)
        pairs = [(lexer.process_word(k, env), lexer.process_word(v or "", env)) for k, v in inst.pairs]

        def mutate(config: dict) -> None:
            c = config.setdefault("config", {})
            for key, value in pairs:
                c["Env"] = set_env(c.get("Env"), key, value)

        self._commit_meta(state, "ENV " + " ".join(f"{k}={v}" for k, v in pairs), options, mutate)

    def _do_label(self, state, inst, context, options, dockerfile, lexer):
        env = self._env(state)
        pairs = [(lexer.process_word(k, env), lexer.process_word(v or "", env)) for k, v in inst.pairs]

        def mutate(config: dict) -> None:
            c = config.setdefault("config", {})
            labels = dict(c.get("Labels") or {})
            labels.update(pairs)
            c["Labels"] = labels

        self._commit_meta(state, "LABEL " + " ".join(f"{k}={v}" for k, v in pairs), options, mutate)

    def _do_arg(self, state, inst, context, options, dockerfile, lexer):
        parts = []
        for name, default in inst.pairs:
            env = self._env(state)
            value = lexer.process_word(default, env) if default is not None else None
            state.args.declare(name, value)
            self.used_args.add(name)
            parts.append(name if default is None else f"{name}={value}")
        self._commit_meta(state, "ARG " + " ".join(parts), options, lambda config: None)

    def _command(self, state: StageState, inst: Instruction) -> list[str]:
        if inst.json_form:
            return list(inst.cmd)
        return state.shell + inst.cmd if inst.cmd else []

    def _do_cmd(self, state, inst, context, options, dockerfile, lexer):
        cmd = self._command(state, inst)
        state.cmd_set = True

        def mutate(config: dict) -> None:
            config.setdefault("config", {})["Cmd"] = cmd

        self._commit_meta(state, "CMD " + _go_quote_list(cmd), options, mutate)

    def _do_entrypoint(self, state, inst, context, options, dockerfile, lexer):
        entrypoint = self._command(state, inst)
        reset_cmd = not state.cmd_set

        def mutate(config: dict) -> None:
            c = config.setdefault("config", {})
            c["Entrypoint"] = entrypoint or None
            if reset_cmd:
                c["Cmd"] = None

        self._commit_meta(state, "ENTRYPOINT " + _go_quote_list(entrypoint), options, mutate)

    def _do_user(self, state, inst, context, options, dockerfile, lexer):
        user = self._word(state, lexer, inst.words[0])
        self._commit_meta(state, f"USER {user}", options, lambda c: c.setdefault("config", {}).__setitem__("User", user))

    def _do_stopsignal(self, state, inst, context, options, dockerfile, lexer):
        signal = self._word(state, lexer, inst.words[0])
        if not re.fullmatch(r"(SIG)?[A-Z0-9+-]+|\d+", signal.upper()):
            raise InvalidArgument(f"Invalid signal: {signal}")
        self._commit_meta(state, f"STOPSIGNAL {signal}", options,
                          lambda c: c.setdefault("config", {}).__setitem__("StopSignal", signal))

    def _do_expose(self, state, inst, context, options, dockerfile, lexer):
        env = self._env(state)
        raw = [w for word in inst.words for w in lexer.process_words(word, env)]
        ports = [p for spec in raw for p in _port_specs(spec)]
        self._commit_meta(state, "EXPOSE " + " ".join(raw), options, _add_to_set("ExposedPorts", ports))

    def _do_volume(self, state, inst, context, options, dockerfile, lexer):
        env = self._env(state)
        paths = [lexer.process_word(w, env) for w in inst.words] if inst.json_form else \
            [w for word in inst.words for w in lexer.process_words(word, env)]
        if not paths or any(not p.strip() for p in paths):
            raise InvalidArgument("VOLUME specified can not be an empty string")
        self._commit_meta(state, "VOLUME [" + " ".join(paths) + "]", options, _add_to_set("Volumes", paths))

    def _do_shell(self, state, inst, context, options, dockerfile, lexer):
        shell = list(inst.cmd)
        self._commit_meta(state, "SHELL [" + " ".join(shell) + "]", options,
                          lambda c: c.setdefault("config", {}).__setitem__("Shell", shell), shell=shell)

    def _do_maintainer(self, state, inst, context, options, dockerfile, lexer):
        author = inst.words[0]
        self._commit_meta(state, f"MAINTAINER {author}", options, lambda c: c.__setitem__("author", author))

    def _do_onbuild(self, state, inst, context, options, dockerfile, lexer):
        trigger = re.sub(r"(?i)^\s*ONBUILD\s*", "", inst.original)

        def mutate(config: dict) -> None:
            c = config.setdefault("config", {})
            c["OnBuild"] = list(c.get("OnBuild") or []) + [trigger]

        self._commit_meta(state, f"ONBUILD {trigger}", options, mutate)

    def _do_healthcheck(self, state, inst, context, options, dockerfile, lexer):
        health: dict = {"Test": list(inst.cmd)}
        names = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                 "start-interval": "StartInterval", "retries": "Retries"}
        for flag, key in names.items():
            if inst.health.get(flag):
                health[key] = inst.health[flag]

        def mutate(config: dict) -> None:
            config.setdefault("config", {})["Healthcheck"] = health

        shown = " ".join(json.dumps(x) for x in health["Test"])
        durations = [health.get("Interval", 0), health.get("Timeout", 0), health.get("StartPeriod", 0)]
        if health.get("StartInterval"):
            durations.append(health["StartInterval"])
        text = " ".join(json.dumps(_go_duration(d)) for d in durations)
        comment = "HEALTHCHECK " + ("&{[\"NONE\"] \"0s\" \"0s\" \"0s\" '\\x00'}" if health["Test"] == ["NONE"] else
                                    f"&{{[{shown}] {text} '\\x{health.get('Retries', 0):02x}'}}")
        self._commit_meta(state, comment,
                          options, mutate)

    # --- WORKDIR --------------------------------------------------------------------------

    def _do_workdir(self, state, inst, context, options, dockerfile, lexer):
        requested = self._word(state, lexer, inst.words[0])
        path = posixpath.normpath(posixpath.join("/", state.workdir, requested))
        comment = f"WORKDIR {path}"
        view = self._view(state)
        exists = view.is_dir(path) if state.image_id or view.layers else False
        if exists or path == "/":
            self._commit_meta(state, comment, options,
                              lambda c: c.setdefault("config", {}).__setitem__("WorkingDir", path), single_space=True)
            return
        created_by = " ".join(state.shell) + " #(nop) " + comment
        key = cache_key(state.image_id, created_by, extra={"config": state.container, "mkdir": True})
        state.container["WorkingDir"] = path
        self._commit_staged(state, created_by, key, options,
                            [copying.CopyItem(path.lstrip("/"), "dir", 0o755, 0, 0, None)], view, None)

    def _staging(self) -> Path:
        tmp = self.engine.config.tmp_dir
        tmp.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="build-stage-", dir=tmp))

    # --- COPY / ADD -----------------------------------------------------------------------

    def _do_copy(self, state, inst, context, options, dockerfile, lexer):
        self._copy_or_add(state, inst, context, options, dockerfile, lexer)

    def _do_add(self, state, inst, context, options, dockerfile, lexer):
        self._copy_or_add(state, inst, context, options, dockerfile, lexer)

    def _copy_or_add(self, state, inst, context, options, dockerfile, lexer):
        # --link only changes how buildkit stacks the layer; the resulting image is the same
        for unsupported in ("parents", "exclude", "checksum", "keep-git-dir"):
            if unsupported in inst.flags:
                raise NotSupported(f"{inst.keyword} --{unsupported} is not supported by this builder")
        env = self._env(state)
        view = self._view(state)
        words = [lexer.process_word(w, env) for w in inst.words]
        srcs, raw_dest = words[:-1], words[-1]
        dest = _absolute_dest(state.workdir, raw_dest)
        owner = copying.parse_chown(self._word(state, lexer, str(inst.flags["chown"])), view) if "chown" in inst.flags else None
        chmod = copying.parse_chmod(str(inst.flags["chmod"])) if "chmod" in inst.flags else None
        source_from = inst.flags.get("from")
        pending = list(inst.heredocs)
        docs: list[tuple[str, str]] = []
        plain: list[str] = []
        for raw, src in zip(inst.words[:-1], srcs):
            if pending and re.match(r"^\d*<<", raw):
                doc = pending.pop(0)
                docs.append((doc.name, self._heredoc_text(doc, env, dockerfile)))
            else:
                plain.append(src)
        srcs = plain
        dest_is_dir = view.is_dir
        items: list[copying.CopyItem] = []
        if docs:
            items.extend(copying.heredoc_items(docs, dest, owner, chmod, dest_is_dir))
        source_desc = "context"
        if srcs:
            if isinstance(source_from, str) and source_from:
                if inst.keyword == "ADD":
                    raise InvalidArgument("ADD does not support --from")
                from_name = self._word(state, lexer, source_from)
                sources, source_desc = self._from_sources(from_name, state)
                items.extend(copying.collect(inst.keyword, srcs, dest, sources, owner=owner, chmod=chmod,
                                             dest_is_dir=dest_is_dir, from_image=True))
            else:
                if context.root is None:
                    raise InvalidArgument(f"{inst.keyword} failed: no build context (the Dockerfile came from stdin)")
                items.extend(copying.collect(inst.keyword, srcs, dest, copying.Sources(context=context), owner=owner,
                                             chmod=chmod, dest_is_dir=dest_is_dir, from_image=False))
        digest = content_digest([item.record(self._file_digest) for item in items])
        self._flush_digests()
        kind = "file" if len(items) == 1 and items[0].kind in ("file", "data") else ("dir" if len(srcs) == 1 and not docs else "multi")
        # docker's legacy builder writes the chown flag right before the hash, without a space
        chown_note = f"--chown={self._word(state, lexer, str(inst.flags['chown']))}" if "chown" in inst.flags else ""
        comment = f"{inst.keyword} {chown_note}{kind}:{dg.hex_of(digest)} in {raw_dest} "
        created_by = " ".join(state.shell) + " #(nop) " + comment
        key = cache_key(state.image_id, created_by, content=digest,
                        extra={"from": source_desc, "config": state.container})
        self._commit_staged(state, created_by, key, options, items, view, owner)

    def _heredoc_text(self, doc, env: dict, dockerfile: Dockerfile) -> str:
        if not doc.expand:
            return doc.content
        return Lexer(dockerfile.escape, raw=True).process_word(doc.content, env)

    def _from_sources(self, name: str, state: StageState) -> tuple[copying.Sources, str]:
        for built in self.built.values():
            if built.stage.name == name.lower() or str(built.stage.index) == name:
                return copying.Sources(view=self._view(built)), built.image_id or "scratch"
        try:
            record = self.store.resolve(name)
        except NotFound as exc:
            raise NotFound(f"COPY --from={name}: no such build stage or image in the local store") from exc
        return copying.Sources(view=MergedView(self.store.layers.lower_dirs(record.top_chain))), record.id

    # --- RUN ------------------------------------------------------------------------------

    def _do_run(self, state, inst, context, options, dockerfile, lexer):
        if "mount" in inst.flags or "network" in inst.flags or "security" in inst.flags:
            flag = next(f for f in ("mount", "network", "security") if f in inst.flags)
            raise NotSupported(f"RUN --{flag} needs BuildKit; this builder (like Docker's legacy builder) does not support it")
        if inst.heredocs:
            if len(inst.heredocs) == 1 and inst.rest.strip() in (f"<<{inst.heredocs[0].name}", f"<<-{inst.heredocs[0].name}",
                                                                 f"<<'{inst.heredocs[0].name}'", f'<<"{inst.heredocs[0].name}"'):
                script = inst.heredocs[0].content
                if script.startswith("#!"):
                    script = _shebang_runner(script)
            else:
                script = inst.rest + "\n" + "".join(d.content + d.name + "\n" for d in inst.heredocs)
            argv = state.shell + [script]
        else:
            argv = self._command(state, inst)
        image_env = env_dict(state.container.get("Env"))
        args = {k: v for k, v in state.args.values().items() if k not in image_env}
        shown_args = sorted(f"{k}={v}" for k, v in args.items())
        created_by = " ".join(([f"|{len(shown_args)}", *shown_args] if shown_args else []) + argv)
        key = cache_key(state.image_id, created_by, args=args, extra={"config": state.container})
        hit = self._cached(key, options)
        if hit:
            self._use(state, hit, True)
            return
        if self.run_step is None:
            raise NotSupported("RUN needs the container engine, which this installation does not provide yet")
        run_env = {k: v for k, v in state.args.run_env().items() if k not in image_env}
        with self.run_step(self, state, argv, run_env) as upper:
            image_id = self._commit_layer(state, created_by, key, upper, overlay_upper=True, announce=False)
        self._use(state, image_id, False)  # after "Removing intermediate container", as docker prints it


def source_date_epoch(build_args: Mapping[str, str]) -> int | None:
    """The build-arg SOURCE_DATE_EPOCH (seconds since 1970) of a reproducible build, or None.

    With it, every step records that time and no file of a new layer is newer (BuildKit's
    SOURCE_DATE_EPOCH with rewrite-timestamp): the same inputs give the same image ID."""
    value = build_args.get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise InvalidArgument(f"SOURCE_DATE_EPOCH={value!r}: expected a number of seconds since 1970")
    return int(value)


def _shebang_runner(script: str) -> str:
    """A shell script that runs a ``#!`` heredoc by its interpreter (buildkit runs it as a file)."""
    marker = "DOCKERBANK_HEREDOC_" + __import__("hashlib").sha256(script.encode()).hexdigest()[:12]
    return (f'f=$(mktemp) && cat > "$f" <<\'{marker}\'\n{script}{"" if script.endswith(chr(10)) else chr(10)}'
            f'{marker}\nchmod +x "$f" && "$f"; rc=$?; rm -f "$f"; exit $rc')


def _absolute_dest(workdir: str, dest: str) -> str:
    """COPY's destination made absolute against WORKDIR; a trailing ``/`` (or ``.``) means a directory."""
    as_dir = dest.endswith("/") or dest in (".", "..") or dest.endswith(("/.", "/.."))
    path = posixpath.normpath(posixpath.join("/", workdir, dest))
    return path + "/" if as_dir and path != "/" else path


def _predefined() -> tuple[str, ...]:
    from dockerbank.build.expand import PREDEFINED_ARGS

    return PREDEFINED_ARGS


def _go_quote_list(items: list[str]) -> str:
    """Go's ``%q`` of a []string: ``["a" "b c"]``."""
    return "[" + " ".join(json.dumps(x, ensure_ascii=False) for x in items) + "]"


def _go_duration(ns: int) -> str:
    if not ns:
        return "0s"
    seconds = ns / 1e9
    hours, rem = divmod(int(seconds), 3600)
    minutes, secs = divmod(rem, 60)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    frac = seconds - int(seconds)
    return out + (f"{secs + frac:g}s")


def _add_to_set(key: str, items: list[str]) -> Callable[[dict], None]:
    """A commit mutation adding ``items`` to the image config's ``key``, a set in Docker's JSON
    form (``{"80/tcp": {}}``), as EXPOSE does to ExposedPorts and VOLUME to Volumes."""

    def mutate(config: dict) -> None:
        c = config.setdefault("config", {})
        members = dict(c.get(key) or {})
        for item in items:
            members[item] = {}
        c[key] = members

    return mutate


def _port_specs(spec: str) -> list[str]:
    """``80``, ``80/udp``, ``8000-8002/tcp`` -> ``["80/tcp"]`` ... (ranges expanded, as Docker's nat.ParsePortSpecs)."""
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid proto: {proto}")
    if ":" in port:
        raise InvalidArgument(f"invalid containerPort: {spec}")
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", port)
    if not match:
        raise InvalidArgument(f"invalid containerPort: {port}")
    start = int(match.group(1))
    end = int(match.group(2) or start)
    if end < start or end > 65535:
        raise InvalidArgument(f"invalid range specified for container port: {port}")
    return [f"{p}/{proto}" for p in range(start, end + 1)]


