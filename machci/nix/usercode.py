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

from machci.config.model import PackageOverride
from machci.errors import InputError, Location
from machci.nix.paths import relocate

PARSE_TIMEOUT = 30


@dataclass(frozen=True)
class UserCode:
    overrides: tuple[PackageOverride, ...]  # expressions relative to the output's directory
    overlays_pre: tuple[str, ...]  # relative to the output's directory
    overlays_post: tuple[str, ...]
    files: tuple[Path, ...]  # every file the code names: inputs of the header


@dataclass(frozen=True)
class WrittenCode:
    """The Nix code as machci.yaml holds it (overrides) or names it (overlay files), and where
    machci.yaml is: its paths are relative to it."""

    overrides: tuple[PackageOverride, ...]
    overlays_pre: tuple[Path, ...]
    overlays_post: tuple[Path, ...]
    config_path: Path | None

    @property
    def location(self) -> Location | None:
        return Location.of(self.config_path) if self.config_path else None

    @property
    def overlay_lists(self) -> tuple[tuple[str, tuple[Path, ...]], ...]:
        return (("overridesPre", self.overlays_pre), ("overridesPost", self.overlays_post))


def prepare(code: WrittenCode, output: Path) -> UserCode:
    source = code.config_path.parent if code.config_path else Path()
    target = output.parent
    files: set[Path] = set()
    overrides = []
    for package in code.overrides:
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
    for key, paths in code.overlay_lists:
        for path in paths:
            if not path.is_file():
                raise InputError(f"{key}: {path} is not a file", code.location)
        files.update(paths)
        overlays[key] = tuple(
            Path(os.path.relpath(p.resolve(), target.resolve())).as_posix() for p in paths
        )
    return UserCode(
        tuple(overrides), overlays["overridesPre"], overlays["overridesPost"], tuple(sorted(files))
    )


def check_syntax(code: WrittenCode) -> None:
    """Parse every override expression and overlay file with `nix-instantiate --parse`."""
    nix = shutil.which("nix-instantiate")
    if nix is None:
        return
    for package in code.overrides:
        for item in (i for i in package.attributes if i.is_nix):
            # The names default.nix puts in scope; any other free variable is an error.
            scoped = f"pkgs: lib: python: final: prev: old: (\n{item.expression}\n)"
            problem = _parse_problem([nix, "--parse", "-E", scoped])
            if problem:
                raise InputError(
                    f"overrides: {package.name}: {item.attribute}: not a Nix expression: {problem}",
                    item.where,
                )
    for key, paths in code.overlay_lists:
        for path in paths:
            problem = _parse_problem([nix, "--parse", str(path)])
            if problem:
                raise InputError(f"{key}: {path} does not parse: {problem}", code.location)


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
