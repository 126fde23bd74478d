"""The registry client as one engine service: ``engine.registry.pull(...)`` / ``push`` / ``login``.

``run`` and ``create`` call ``pull`` for a missing image; the CLI and the API server call all.
"""

from __future__ import annotations

from pathlib import Path

from dockerbank.config import Config
from dockerbank.image.store import ImageStore
from dockerbank.oci import reference as refs
from dockerbank.registry.client.auth import CredentialStore
from dockerbank.registry.client.progress import Progress
from dockerbank.registry.client.pull import PullResult, pull_image
from dockerbank.registry.client.push import PushResult, push_image
from dockerbank.registry.client.transport import Transport, transport_for
from dockerbank.registry.registries import RegistriesConfig


class RegistryService:
    """Pull, push, login and logout for one Dockerbank root."""

    def __init__(self, config: Config, images: ImageStore, credentials_path: Path | None = None):
        self.config = config
        self.images = images
        self.credentials = CredentialStore(credentials_path)

    def registries(self, insecure: tuple[str, ...] = ()) -> RegistriesConfig:
        return RegistriesConfig.load(self.config.root, insecure)

    def transport(self, registry: str, insecure: tuple[str, ...] = ()) -> Transport:
        return transport_for(registry, self.registries(insecure), self.credentials)

    def pull(self, name: str, *, platform: str | None = None, all_tags: bool = False,
             progress: Progress | None = None, insecure: tuple[str, ...] = ()) -> list[PullResult]:
        """Pull an image (every tag with ``all_tags``); the image is recorded only when complete."""
        ref = refs.parse(name)
        transport = self.transport(ref.domain, insecure)
        try:
            results = pull_image(self.images, name, transport, progress or Progress(), platform, all_tags)
        finally:
            transport.close()
        for result in results:
            self.images.event("pull", result.reference.familiar(), result.reference.familiar())
        return results

    def push(self, name: str, *, all_tags: bool = False, progress: Progress | None = None,
             insecure: tuple[str, ...] = (), chunk_size: int | None = None) -> list[PushResult]:
        """Push an image (every local tag of its repository with ``all_tags``); manifest last."""
        ref = refs.parse(name)
        registries = self.registries(insecure)
        transport = transport_for(ref.domain, registries, self.credentials)
        try:
            return push_image(self.images, name, transport, progress or Progress(), registries,
                              all_tags, chunk_size)
        finally:
            transport.close()

    def login(self, registry: str, user: str, password: str, insecure: tuple[str, ...] = ()) -> None:
        """Check the credentials against the registry, then store them."""
        from dockerbank.registry.client.transport import RegistryAuthError

        transport = Transport(registry, insecure=self.registries(insecure).is_insecure(registry),
                              credentials=(user, password))
        try:
            transport.authorize("")
            with transport.request("GET", "/v2/", ok=(200, 401)) as response:
                response.read()
                if response.status == 401:
                    raise RegistryAuthError(f"login to {registry} failed: unauthorized: incorrect username or password")
        finally:
            transport.close()
        self.credentials.store(registry, user, password)

    def logout(self, registry: str) -> bool:
        return self.credentials.erase(registry)
