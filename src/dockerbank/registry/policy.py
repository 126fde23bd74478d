"""The license rule of pushes: images built from licensed source stay in private registries.

An image whose config carries the label ``org.dockerbank.redistributable=false`` (set for
images built from licensed source such as REDCap) may be pushed only to a registry listed
as ``private`` in the root's ``registries.json``. Pure: the caller passes the config.
"""

from __future__ import annotations

from dockerbank.errors import PolicyRefused
from dockerbank.registry.registries import FILE_NAME, RegistriesConfig

LABEL = "org.dockerbank.redistributable"


def labels_of(image_config: dict) -> dict[str, str]:
    return dict(((image_config.get("config") or {}).get("Labels")) or {})


def is_redistributable(image_config: dict) -> bool:
    """False only when the label says so explicitly (``false``, ``0``, ``no``)."""
    value = labels_of(image_config).get(LABEL)
    return value is None or str(value).strip().lower() not in ("false", "0", "no")


def check_push(image_config: dict, registry: str, registries: RegistriesConfig, shown_name: str) -> None:
    """Raise PolicyRefused if ``image_config`` must not go to ``registry``."""
    if is_redistributable(image_config) or registries.is_private(registry):
        return
    value = labels_of(image_config).get(LABEL)
    raise PolicyRefused(
        f"refusing to push {shown_name}: the image is labelled {LABEL}={value} (built from licensed source) "
        f"and {registry} is not a private registry; list it under \"private\" in <root>/{FILE_NAME} "
        f"if it is one"
    )
