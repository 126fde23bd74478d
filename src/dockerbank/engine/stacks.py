"""Stack use cases of the engine: the images a compose stack uses, and pushing them all to one
registry (``push --all-from-stack PROJECT --registry R``) under the license rule."""

from __future__ import annotations

from dataclasses import dataclass

from dockerbank.errors import NotFound, PolicyRefused

LABEL_PROJECT = "com.docker.compose.project"   # compose's label (compose.plan.LABEL_PROJECT, a layer above)
LABEL_ONEOFF = "com.docker.compose.oneoff"


@dataclass
class StackPushReport:
    """One image of the stack: its local name, the name it was pushed as, and its digest."""

    source: str
    target: str
    digest: str


def target_name(image: str, registry: str) -> str:
    """``image`` as named in ``registry`` (``postgres:16`` -> ``REG/postgres:16``; an image of
    another registry keeps its path: ``old:5000/team/app:1`` -> ``REG/team/app:1``). Pure."""
    from dockerbank.oci import reference as refs

    ref = refs.parse(image)
    path = ref.familiar_repository if ref.domain == refs.DEFAULT_DOMAIN else ref.path
    return f"{registry.rstrip('/')}/{path}:{ref.tag or 'latest'}"


class StackEngine:
    """Operations on the images of a stack (the containers labelled with its project)."""

    def __init__(self, engine):
        self.engine = engine

    def images(self, project: str) -> list[str]:
        """The images the stack's containers run (as their users named them), sorted, each once."""
        found = sorted({c.config.image for c in self.engine.containers.list()
                        if c.config.labels.get(LABEL_PROJECT) == project
                        and c.config.labels.get(LABEL_ONEOFF, "False") != "True"})
        if not found:
            raise NotFound(f"no stack {project}: no container carries the label {LABEL_PROJECT}={project}")
        return found

    def push_all(self, project: str, registry: str, *, progress=None, insecure: tuple[str, ...] = ()
                 ) -> list[StackPushReport]:
        """Tag every image of the stack into ``registry`` and push it. The license rule is checked
        for all of them first: when one may not go there, nothing is tagged or pushed."""
        from dockerbank.registry.policy import check_push

        images = self.images(project)
        store = self.engine.images
        registries = self.engine.registry.registries(insecure)
        host = registry.split("/", 1)[0]
        plan, refused = [], []
        for image in images:
            record = store.resolve(image)
            try:
                check_push(store.image_config(record.id), host, registries, image)
            except PolicyRefused:
                refused.append(image)
            plan.append((image, record.id, target_name(image, registry)))
        if refused:
            from dockerbank.registry.policy import LABEL

            raise PolicyRefused(
                f"refusing to push stack {project}: {', '.join(refused)} labelled {LABEL}=false (built from "
                f"licensed source) and {host} is not a private registry; list it under \"private\" in "
                f"<root>/registries.json if it is one (nothing was pushed)")
        reports = []
        for image, image_id, target in plan:
            store.tag(image_id, target)
            results = self.engine.registry.push(target, progress=progress, insecure=insecure)
            reports.append(StackPushReport(image, target, getattr(results[0], "digest", "") if results else ""))
        return reports
