"""Image references: the per-architecture tags `build` pushes and the image `manifest` joins.

Both derive them here from the same three values — the image name (machci.yaml's image.name or
the `image-name` input), machci.yaml's image.tag and the system — so the manifest names exactly
what the build jobs pushed.
"""

from __future__ import annotations

from collections.abc import Iterable

# Images are Linux images; each system's image is pushed as NAME:TAG-<docker architecture>.
ARCHITECTURES = {"x86_64-linux": "amd64", "aarch64-linux": "arm64"}
# Systems whose `env` is built and checked, with no image.
ENV_ONLY = ("aarch64-darwin", "x86_64-darwin")


def image_systems(systems: Iterable[str]) -> tuple[str, ...]:
    """The systems that get an image, in the order given."""
    return tuple(system for system in systems if system in ARCHITECTURES)


def reference(name: str, tag: str, system: str) -> str:
    """What `build` tags and pushes for one system: NAME:TAG-amd64, NAME:TAG-arm64."""
    return f"{name}:{tag}-{ARCHITECTURES[system]}"


def manifest_command(name: str, tag: str, systems: Iterable[str]) -> list[str]:
    """NAME:TAG as one multi-architecture image of the per-architecture images."""
    sources = [reference(name, tag, system) for system in systems]
    return ["docker", "buildx", "imagetools", "create", "--tag", f"{name}:{tag}", *sources]
