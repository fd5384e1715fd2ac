"""`command: manifest` — join the images the build jobs pushed into one multi-architecture image.

The references come from images.py, as `build` makes them: NAME:TAG-amd64 and NAME:TAG-arm64 are
joined as NAME:TAG (`docker buildx imagetools create`, which writes to the registry: log in
first). The systems are the `systems` input, else the Linux systems of machci.yaml.
"""

from __future__ import annotations

import contextlib

from .build import BuildError, run_tool
from .images import image_systems, manifest_command, reference
from .workflow import Inputs, add_summary, set_output


def run(inputs: Inputs) -> int:
    with contextlib.chdir(inputs.working_directory):
        config, _base = inputs.project()
    systems = image_systems(inputs.systems or config.systems)
    if not systems:
        raise BuildError(
            "no image to join: neither the systems input nor machci.yaml lists x86_64-linux"
            " or aarch64-linux"
        )
    name = inputs.image_name or config.image.name
    command = manifest_command(name, config.image.tag, systems)
    run_tool(command)
    image = f"{name}:{config.image.tag}"
    set_output("image", image)
    sources = "\n".join(f"- `{reference(name, config.image.tag, s)}`" for s in systems)
    add_summary(f"### machci: `{image}`\n\njoins\n\n{sources}")
    return 0
