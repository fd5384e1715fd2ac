"""The Nix code users write in machci.yaml: overrides and overlay files, made ready to render.

Override expressions are relocated to the generated file's directory (see paths.py), and every
file they or the overlay lists name becomes an input of the header. When Nix is installed, each
piece of code is parsed at sync time, so a typo is reported against machci.yaml's line rather
than at the first nix-build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from machci.config.model import Config, PackageOverride
from machci.errors import InputError, Location
from machci.nix.paths import relocate

PARSE_TIMEOUT = 30


@dataclass(frozen=True)
class UserCode:
    overrides: tuple[PackageOverride, ...]  # expressions relative to the output's directory
    overlays_pre: tuple[str, ...]  # relative to the output's directory
    overlays_post: tuple[str, ...]
    files: tuple[Path, ...]  # every file the code names: inputs of the header


def _config_location(config: Config) -> Location | None:
    return Location.of(config.path) if config.path else None


def _overlay_lists(config: Config) -> tuple[tuple[str, tuple[Path, ...]], ...]:
    return (("overridesPre", config.overlays_pre), ("overridesPost", config.overlays_post))


def prepare(config: Config) -> UserCode:
    source = config.path.parent if config.path else Path()
    target = config.output.parent
    files: set[Path] = set()
    overrides = []
    for package in config.overrides:
        attributes = []
        for item in package.attributes:
            if not item.is_nix:
                attributes.append(item)
                continue
            moved = relocate(item.expression, source, target)
            if moved.missing:
                raise InputError(
                    f"overrides: {package.name}: {item.attribute}: {moved.missing[0]} does not"
                    " exist",
                    item.where,
                )
            files.update(moved.files)
            attributes.append(replace(item, expression=moved.expression))
        overrides.append(replace(package, attributes=tuple(attributes)))
    overlays: dict[str, tuple[str, ...]] = {}
    for key, paths in _overlay_lists(config):
        for path in paths:
            if not path.is_file():
                raise InputError(f"{key}: {path} is not a file", _config_location(config))
        files.update(paths)
        overlays[key] = tuple(
            Path(os.path.relpath(p.resolve(), target.resolve())).as_posix() for p in paths
        )
    return UserCode(
        tuple(overrides), overlays["overridesPre"], overlays["overridesPost"], tuple(sorted(files))
    )


def check_syntax(config: Config) -> None:
    """Parse every override expression and overlay file with `nix-instantiate --parse`."""
    nix = shutil.which("nix-instantiate")
    if nix is None:
        return
    for package in config.overrides:
        for item in (i for i in package.attributes if i.is_nix):
            # The names default.nix puts in scope; any other free variable is an error.
            scoped = f"pkgs: lib: python: final: prev: old: (\n{item.expression}\n)"
            problem = _parse_problem([nix, "--parse", "-E", scoped])
            if problem:
                raise InputError(
                    f"overrides: {package.name}: {item.attribute}: not a Nix expression: {problem}",
                    item.where,
                )
    for key, paths in _overlay_lists(config):
        for path in paths:
            problem = _parse_problem([nix, "--parse", str(path)])
            if problem:
                raise InputError(
                    f"{key}: {path} does not parse: {problem}", _config_location(config)
                )


def _parse_problem(command: list[str]) -> str | None:
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=PARSE_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nix-instantiate could not run ({exc})"
    if result.returncode == 0:
        return None
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    return next((line for line in lines if line.startswith("error:")), lines[0] if lines else "")
