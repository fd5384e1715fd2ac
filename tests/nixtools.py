"""Running real Nix against generated files and the stand-in package set (tests/nix/pkgs.nix)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from machci.nix.escape import string
from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, run

STAND_IN = Path(__file__).parent / "nix" / "pkgs.nix"
# The locked Python. The stand-in runs every interpreter it offers on the host's, whatever its
# version, so the tests lock for one that need not be the host's.
PYTHON = "3.12"
LINUX = ("x86_64-linux", "aarch64-linux")

# Builds run as the calling user (no build users: the host Python may live in a private home).
NIX_ENV = {**os.environ, "NIX_CONFIG": "substituters =\nsandbox = false\nbuild-users-group ="}


def require(command: str, package: str) -> None:
    """Skip the calling test module without `command`, except in CI, where .ci/run installs it."""
    if shutil.which(command) is None:  # pragma: no cover - .ci/run installs it
        if os.environ.get("CI"):
            raise RuntimeError(f"CI needs {command}: install Debian's {package}")
        pytest.skip(f"{command} is not installed", allow_module_level=True)


def nix(
    *args: str, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(args), capture_output=True, text=True, env=NIX_ENV, check=False, cwd=cwd
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stderr}")
    return result


# The host distributions that play nixpkgs' build tools in the stand-in (its pname: the
# distribution's name), so their versions are the ones the stand-in's packages report.
HOST_TOOLS = {
    "build": "build",
    "flit-core": "flit_core",
    "iniconfig": "iniconfig",
    "installer": "installer",
    "packaging": "packaging",
    "pip": "pip",
    "pluggy": "pluggy",
    "pygments": "pygments",
    "pyproject-hooks": "pyproject_hooks",
    "pytest": "pytest",
    "setuptools": "setuptools",
    "wheel": "wheel",
}


def host_tools() -> str:
    """The stand-in's `hostTools` argument: each tool's version on the host."""
    versions = (
        f"{string(pname)} = {string(importlib.metadata.version(dist))};"
        for pname, dist in sorted(HOST_TOOLS.items())
    )
    return "{ " + " ".join(versions) + " }"


def stand_in(
    system: str = "x86_64-linux",
    python_packages: str = "final: prev: { }",
    lib_version: str | None = None,
) -> str:
    """A Nix expression for the stand-in package set; `python_packages` is an overlay that
    plays nixpkgs' own Python packages, `lib_version` the nixpkgs release it plays."""
    patchelf = shutil.which("patchelf")
    release = f" libVersion = {string(lib_version)};" if lib_version else ""
    return (
        f"(import {STAND_IN} {{ hostPython = {string(sys.executable)};"
        f" system = {string(system)}; patchelf = {string(patchelf) if patchelf else 'null'};"
        f" pythonPackages = {python_packages}; hostTools = {host_tools()};{release} }})"
    )


def nixpkgs_tree(directory: Path) -> Path:
    """A directory that imports like a nixpkgs tree, `import DIR { system = ...; }`, giving the
    stand-in for that system (the arguments of pkgs/top-level/impure.nix, open as there). It
    holds its own copy of the stand-in, and a flake.nix, so it can also be a flake input, which
    a flake's pure evaluation may read."""
    directory.mkdir(parents=True, exist_ok=True)
    for part in [*STAND_IN.parent.glob("*.nix"), *STAND_IN.parent.glob("*.py")]:
        shutil.copyfile(part, directory / part.name)  # pkgs.nix and its builders
    patchelf = shutil.which("patchelf")
    (directory / "default.nix").write_text(
        "{ system ? builtins.currentSystem, ... }:\n"
        f"import ./pkgs.nix {{ hostPython = {string(sys.executable)}; inherit system;"
        f" patchelf = {string(patchelf) if patchelf else 'null'}; hostTools = {host_tools()}; }}\n"
    )
    (directory / "flake.nix").write_text("{ outputs = _: { }; }\n")
    return directory


def pkgs_arg(system: str = "x86_64-linux") -> list[str]:
    return ["--arg", "pkgs", stand_in(system)]


def sync_project(
    index: Index,
    project: Path,
    requirements: str,
    systems: Sequence[str] = LINUX,
    config: str = "",
) -> Path:
    """Write a project locked against the test index, sync it, and seed the store with its files."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "requirements.txt").write_text(requirements)
    (project / "machci.yaml").write_text(
        "requirements: [requirements.txt]\n"
        f'python: "{PYTHON}"\n'
        f"systems: [{', '.join(systems)}]\n"
        f"data: {{index: {index.url}, snapshot: '{SNAPSHOT}'}}\n"
        "image: {name: demo, tag: '1.0'}\n" + config
    )
    with contextlib.chdir(project):
        result = run("sync", "--cache-dir", ".cache")
    assert result.code == 1, result.err
    default_nix = project / "default.nix"
    seed_store(index, default_nix)
    return default_nix


def seed_store(index: Index, default_nix: Path) -> None:
    """Put every locked index file into the store the way a fetch would, so builds stay
    offline."""
    text = default_nix.read_text().split("  files = {", 1)[1].split("\n  };", 1)[0]
    for filename in sorted(set(re.findall(r'"([^"]+)" = pkgs\.fetchurl', text))):
        store = re.search(rf'"{re.escape(filename)}" = pkgs\.fetchurl {{\s*name = "([^"]+)"', text)
        assert store is not None
        copy = default_nix.parent / ".store" / store.group(1)
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(index.path_of(filename), copy)
        nix("nix-store", "--add-fixed", "sha256", str(copy))


def build(
    expression: Sequence[str], out: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """nix-build with the given arguments into `out`."""
    return nix("nix-build", *expression, "-o", str(out), check=check)


def python_in(env: Path, code: str) -> str:
    """Run code with an environment's interpreter; its standard output."""
    return subprocess.run(
        [str(env / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
