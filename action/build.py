"""`command: build` — build the environment's image for each system, load it, push it.

Linux systems get an image (NAME:TAG-<arch>, images.py); macOS systems get their `env` built,
which checks that the environment builds there, with no image.
"""

from __future__ import annotations

import contextlib
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

from machci.errors import MachciError

from .images import ARCHITECTURES, ENV_ONLY, reference
from .workflow import Inputs, add_summary, set_output


class BuildError(MachciError):
    """nix or docker failed (exit 2)."""


def runner_system() -> str:
    machine = platform.machine().lower()
    return "aarch64-linux" if machine in ("aarch64", "arm64") else "x86_64-linux"


def nix_build_command(
    output: Path, system: str, link: Path, extra: Sequence[str], attribute: str = "image"
) -> list[str]:
    """nix-build of one attribute (`image`, `env`) for one system, with nixpkgs for that system."""
    command = ["nix-build", str(output), "-A", attribute, "--argstr", "system", system]
    if "pkgs" not in extra:  # let users pass their own package set through nix-args
        command += ["--arg", "pkgs", f'import <nixpkgs> {{ system = "{system}"; }}']
    return [*command, "-o", str(link), *extra]


def docker_commands(archive: Path, loaded: str, target: str, push: bool) -> list[list[str]]:
    commands = [["docker", "load", "--input", str(archive)], ["docker", "tag", loaded, target]]
    if push:
        commands.append(["docker", "push", target])
    return commands


def run_tool(command: Sequence[str]) -> str:
    result = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise BuildError(f"{command[0]} failed: " + " / ".join(tail))
    return result.stdout


def run(inputs: Inputs) -> int:
    with contextlib.chdir(inputs.working_directory):
        config, _base = inputs.project()
        systems = inputs.systems or (runner_system(),)
        unknown = [system for system in systems if system not in (*ARCHITECTURES, *ENV_ONLY)]
        if unknown:
            raise BuildError(
                f"images are built for {', '.join(ARCHITECTURES)} and the environment alone for"
                f" {', '.join(ENV_ONLY)}, not {', '.join(unknown)}"
            )
        extra = list(inputs.nix_args)
        name = inputs.image_name or config.image.name
        built: list[str] = []
        environments: list[str] = []
        for system in systems:
            if system in ENV_ONLY:
                link = Path(f"result-env-{system}").resolve()
                run_tool(nix_build_command(config.output, system, link, extra, attribute="env"))
                environments.append(f"{system}: {link.resolve()}")
                continue
            link = Path(f"result-image-{system}").resolve()
            run_tool(nix_build_command(config.output, system, link, extra))
            target = reference(name, config.image.tag, system)
            if inputs.load:
                loaded = f"{config.image.name}:{config.image.tag}"
                for command in docker_commands(link, loaded, target, inputs.push):
                    run_tool(command)
                built.append(target)
            else:
                built.append(str(link.resolve()))
    set_output("image", "\n".join(built))
    lines = [f"- `{b}`" for b in built] + [f"- environment for {e}" for e in environments]
    add_summary("### machci: builds\n\n" + "\n".join(lines))
    return 0
