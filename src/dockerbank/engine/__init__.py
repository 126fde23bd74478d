"""The engine facade: the one object the CLI, the API server and ops features call.

It owns the database connection and builds each service on first use, so a command
pays only for what it touches.
"""

from __future__ import annotations

from functools import cached_property

from dockerbank.config import Config
from dockerbank.state.db import Database


class Engine:
    """Services of one Dockerbank root, created lazily from a Config."""

    def __init__(self, config: Config):
        self.config = config

    @cached_property
    def db(self) -> Database:
        return Database(self.config.db_path)

    @cached_property
    def images(self):
        from dockerbank.image.store import ImageStore

        return ImageStore(self.config, self.db)

    @cached_property
    def volumes(self):
        from dockerbank.volume.store import VolumeStore

        return VolumeStore(self.config, self.db)

    @cached_property
    def networks(self):
        from dockerbank.network.service import NetworkService

        return NetworkService(self.config, self.db)

    @cached_property
    def registry(self):
        from dockerbank.registry.service import RegistryService

        return RegistryService(self.config, self.images)

    @cached_property
    def containers(self):
        from dockerbank.container.lifecycle import ContainerService

        return ContainerService(self)

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.close()
