"""`command: build` — build the environment's image for each system, load it, push it."""

from __future__ import annotations

import contextlib
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

from machci.errors import MachciError

from .workflow import Inputs, add_summary, set_output

ARCHITECTURES = {"x86_64-linux": "amd64", "aarch64-linux": "arm64"}


class BuildError(MachciError):
    """nix or docker failed (exit 2)."""


def runner_system() -> str:
    machine = platform.machine().lower()
    return "aarch64-linux" if machine in ("aarch64", "arm64") else "x86_64-linux"


def nix_build_command(output: Path, system: str, link: Path, extra: Sequence[str]) -> list[str]:
    """nix-build of the `image` attribute for one system, with nixpkgs for that system."""
    command = ["nix-build", str(output), "-A", "image", "--argstr", "system", system]
    if "pkgs" not in extra:  # let users pass their own package set through nix-args
        command += ["--arg", "pkgs", f'import <nixpkgs> {{ system = "{system}"; }}']
    return [*command, "-o", str(link), *extra]


def docker_commands(archive: Path, loaded: str, target: str, push: bool) -> list[list[str]]:
    commands = [["docker", "load", "--input", str(archive)], ["docker", "tag", loaded, target]]
    if push:
        commands.append(["docker", "push", target])
    return commands


def _run(command: Sequence[str]) -> str:
    result = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise BuildError(f"{command[0]} failed: " + " / ".join(tail))
    return result.stdout


def run(inputs: Inputs) -> int:
    with contextlib.chdir(inputs.working_directory):
        config, _base = inputs.project()
        systems = inputs.systems or (runner_system(),)
        extra = list(inputs.nix_args)
        name = inputs.image_name or config.image.name
        built: list[str] = []
        for system in systems:
            if system not in ARCHITECTURES:
                raise BuildError(f"images are built for {', '.join(ARCHITECTURES)}, not {system}")
            link = Path(f"result-image-{system}").resolve()
            _run(nix_build_command(config.output, system, link, extra))
            target = f"{name}:{config.image.tag}-{ARCHITECTURES[system]}"
            if inputs.load:
                loaded = f"{config.image.name}:{config.image.tag}"
                for command in docker_commands(link, loaded, target, inputs.push):
                    _run(command)
                built.append(target)
            else:
                built.append(str(link.resolve()))
    set_output("image", "\n".join(built))
    add_summary("### machci: images\n\n" + "\n".join(f"- `{b}`" for b in built))
    return 0
