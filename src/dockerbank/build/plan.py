"""Build plan: stages, ``--target`` selection, and per-step cache keys. Pure functions.

A stage starts at a FROM; it may depend on an earlier stage through its FROM or a
``COPY --from``. Only the stages the target needs are built (buildkit's behaviour). A step's
cache key hashes everything its result depends on: the parent image, the instruction after
expansion, the build args it sees, and for COPY/ADD the names, modes, owners and content
digests of the files it copies.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from collections.abc import Iterable, Mapping

from dockerbank.build.expand import Lexer, meta_scope
from dockerbank.build.parser import Dockerfile, DockerfileError, Instruction

# Bump when the executor's output for the same inputs changes, so old cache rows stop matching.
CACHE_VERSION = "dockerbank-build-1"


@dataclass
class Stage:
    """One ``FROM ... [AS name]`` and the instructions after it."""

    index: int
    name: str | None
    base: str                       # the FROM word, not yet expanded
    platform: str | None
    from_inst: Instruction
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Plan:
    """What to build: the meta ARGs, every stage, and which of them the target needs."""

    meta: list[Instruction]
    stages: list[Stage]
    needed: list[int]               # stage indices to build, in order
    target: int                     # index of the stage whose image is the result

    @property
    def step_count(self) -> int:
        """Steps Docker counts: meta ARGs plus FROM and instructions of each built stage."""
        return len(self.meta) + sum(1 + len(self.stages[i].instructions) for i in self.needed)


def stages_of(dockerfile: Dockerfile) -> tuple[list[Instruction], list[Stage]]:
    """Split instructions into meta ARGs (before the first FROM) and stages."""
    meta: list[Instruction] = []
    stages: list[Stage] = []
    for inst in dockerfile.instructions:
        if inst.keyword == "FROM":
            name = inst.words[1] if len(inst.words) > 1 else None
            if name is not None and any(s.name == name for s in stages):
                raise DockerfileError(f"{dockerfile.name}:{inst.line}: duplicate name {name}")
            platform = inst.flags.get("platform")
            stages.append(Stage(len(stages), name, inst.words[0], platform if isinstance(platform, str) else None, inst))
        elif not stages:
            if inst.keyword != "ARG":
                raise DockerfileError(f"{dockerfile.name}:{inst.line}: no build stage in current context")
            meta.append(inst)
        else:
            stages[-1].instructions.append(inst)
    if not stages:
        if not dockerfile.instructions:
            raise DockerfileError(f"{dockerfile.name}: the Dockerfile cannot be empty")
        raise DockerfileError(f"{dockerfile.name}:{dockerfile.instructions[-1].line}: no build stage in current context (FROM missing)")
    return meta, stages


def stage_ref(stages: list[Stage], name: str, before: int) -> int | None:
    """Index of the stage ``name`` (a stage name or a number) defined before stage ``before``."""
    lowered = name.lower()
    for stage in stages[:before]:
        if stage.name == lowered:
            return stage.index
    if name.isdigit():
        index = int(name)
        if index < before:
            return index
        raise InvalidStageRef(f"invalid from flag value {name}: refers to current or later build stage")
    return None


class InvalidStageRef(DockerfileError):
    pass


def make_plan(dockerfile: Dockerfile, build_args: Mapping[str, str], target: str | None = None,
              extra_labels: Mapping[str, str] | None = None) -> Plan:
    """Stages, the target and the stages it needs (through FROM and COPY --from)."""
    meta, stages = stages_of(dockerfile)
    if target:
        matches = [s.index for s in stages if s.name == target.lower()]
        if not matches:
            raise DockerfileError(f"failed to reach build target {target} in Dockerfile")
        target_index = matches[0]
    else:
        target_index = len(stages) - 1
    meta_values = meta_scope(build_args, [p for inst in meta for p in inst.pairs], dockerfile.escape)
    meta_env = {k: v for k, v in meta_values.items() if v is not None}
    lexer = Lexer(dockerfile.escape)
    deps: dict[int, set[int]] = {}
    for stage in stages:
        found: set[int] = set()
        base = lexer.process_word(stage.base, meta_env)
        ref = stage_ref(stages, base, stage.index)
        if ref is not None:
            found.add(ref)
        for inst in stage.instructions:
            source = inst.flags.get("from") if inst.keyword == "COPY" else None
            if isinstance(source, str):
                try:
                    ref = stage_ref(stages, lexer.process_word(source, meta_env), stage.index)
                except InvalidStageRef as exc:
                    raise DockerfileError(f"{dockerfile.name}:{inst.line}: {exc.message}") from exc
                if ref is not None:
                    found.add(ref)
        deps[stage.index] = found
    needed: set[int] = set()
    todo = [target_index]
    while todo:
        index = todo.pop()
        if index in needed:
            continue
        needed.add(index)
        todo.extend(deps[index])
    if extra_labels:
        stages[target_index].instructions.append(label_instruction(extra_labels, stages[target_index]))
    return Plan(meta, stages, sorted(needed), target_index)


def label_instruction(labels: Mapping[str, str], stage: Stage) -> Instruction:
    """``--label`` options become a LABEL step at the end of the target stage, as in Docker."""
    text = "LABEL " + " ".join(f"{_quoted(k)}={_quoted(v)}" for k, v in labels.items())
    line = stage.instructions[-1].end_line if stage.instructions else stage.from_inst.end_line
    inst = Instruction("LABEL", line, line, text, rest=text[6:])
    inst.pairs = [(_literal(k), _literal(v)) for k, v in labels.items()]
    return inst


def _literal(text: str) -> str:
    """A double-quoted word that the expander turns back into exactly ``text`` (no expansion)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def _quoted(text: str) -> str:
    return text if text and not any(c.isspace() or c in "\"'\\$" for c in text) else json.dumps(text)


# --- cache keys -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FileRecord:
    """One entry a COPY/ADD writes: where it lands and everything that makes it what it is."""

    path: str          # destination path in the image
    kind: str          # "file", "dir", "symlink", "hardlink"
    mode: int
    uid: int
    gid: int
    digest: str = ""   # content sha256 for files, link target for links
    mtime: int = 0


def content_digest(records: Iterable[FileRecord]) -> str:
    """A digest over the entries a COPY/ADD writes (names, kinds, modes, owners, contents)."""
    h = hashlib.sha256()
    for record in sorted(records, key=lambda r: r.path):
        h.update(json.dumps([record.path, record.kind, record.mode, record.uid, record.gid, record.digest, record.mtime]).encode())
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def cache_key(parent_id: str | None, instruction: str, args: Mapping[str, str] | None = None,
              content: str | None = None, extra: Mapping[str, object] | None = None) -> str:
    """The cache key of one step: parent image + expanded instruction + args it uses + copied content."""
    payload = {
        "v": CACHE_VERSION,
        "parent": parent_id or "scratch",
        "instruction": instruction,
        "args": sorted((args or {}).items()),
        "content": content,
        "extra": dict(sorted((extra or {}).items())),
    }
    return "sha256:" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

