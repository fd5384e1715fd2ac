"""flake.nix under real Nix: parsed, its `outputs` evaluated against a stand-in nixpkgs tree (no
flakes support needed), its packages built; and, where this Nix has flakes, as a real flake."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from machci.nix.escape import string
from tests.fixtures.builders import Dist
from tests.fixtures.index import Index
from tests.nixtools import (
    LINUX,
    NIX_ENV,
    build,
    nix,
    nixpkgs_tree,
    python_in,
    require,
    stand_in,
    sync_project,
)
from tests.test_extra_sources import tree

require("nix-instantiate", "nix-bin")


@pytest.fixture
def project(index: Index, tmp_path: Path) -> Path:
    index.publish("beta", "2.0")
    index.publish("alpha", "1.0", requires_dist=("beta>=2",))
    default_nix = sync_project(index, tmp_path / "project", "alpha\n", config="flake: true\n")
    return default_nix.parent


def outputs(project: Path, nixpkgs: Path) -> str:
    """The flake's outputs, as Nix would call them with this nixpkgs as the input."""
    flake = project / "flake.nix"
    return f"(let o = (import {flake}).outputs {{ self = o; nixpkgs = {nixpkgs}; }}; in o)"


def evaluate(expression: str) -> object:
    result = nix("nix-instantiate", "--eval", "--strict", "--json", "-E", expression)
    return json.loads(result.stdout)


def test_the_flake_parses_and_names_its_input(project: Path) -> None:
    nix("nix-instantiate", "--parse", str(project / "flake.nix"))
    flake = f"import {project / 'flake.nix'}"
    assert evaluate(f"({flake}).inputs") == {
        "nixpkgs": {"url": "github:NixOS/nixpkgs/nixos-unstable"}
    }
    assert evaluate(f"builtins.attrNames ({flake})") == ["description", "inputs", "outputs"]


def test_outputs_are_the_generated_files_per_locked_system(project: Path, tmp_path: Path) -> None:
    nixpkgs = nixpkgs_tree(tmp_path / "nixpkgs")
    flake = outputs(project, nixpkgs)
    names = evaluate(
        "builtins.mapAttrs (_: builtins.mapAttrs (_: builtins.attrNames))"
        f" {{ inherit ({flake}) packages devShells lib; }}"
    )
    assert names == {
        "packages": {system: ["default", "env", "image"] for system in LINUX},
        "devShells": {system: ["default"] for system in LINUX},
        "lib": {system: ["mkPython", "overlay", "packages", "python"] for system in LINUX},
    }
    assert evaluate(f"({flake}) ? apps") is False  # no project, no app
    for system in LINUX:
        own = f"(import {project} {{ pkgs = {stand_in(system)}; system = {string(system)}; }})"
        ours = f"({flake})"
        paths = evaluate(
            "builtins.mapAttrs (_: d: d.drvPath) {"
            f" env = {ours}.packages.{system}.env; default = {ours}.packages.{system}.default;"
            f" image = {ours}.packages.{system}.image;"
            f" shell = {ours}.devShells.{system}.default;"
            f" mkPython = {ours}.lib.{system}.mkPython {{ }};"
            f" ownEnv = {own}.env; ownShell = {own}.shell; ownImage = {own}.image; }}"
        )
        assert isinstance(paths, dict)
        assert paths["env"] == paths["default"] == paths["mkPython"] == paths["ownEnv"]
        assert paths["shell"] == paths["ownShell"] and paths["image"] == paths["ownImage"]
        for attribute in (f"packages.{system}.env", f"devShells.{system}.default"):
            drv = nix("nix-instantiate", "-E", flake, "-A", attribute).stdout.strip()
            assert drv.endswith(".drv") and Path(drv).exists()


def test_the_flakes_environment_builds(project: Path, tmp_path: Path) -> None:
    flake = outputs(project, nixpkgs_tree(tmp_path / "nixpkgs"))
    out = tmp_path / "env"
    build(["-E", flake, "-A", "packages.x86_64-linux.default"], out)
    assert python_in(out, "import alpha, beta; print(beta.__version__)") == "2.0"


def test_the_overlay_and_the_lib(project: Path, tmp_path: Path) -> None:
    """overlays.default puts machci's packages into nixpkgs' python312; lib's python has them."""
    flake = outputs(project, nixpkgs_tree(tmp_path / "nixpkgs"))
    overlaid = (
        f"(let prev = {stand_in()}; final = prev // {flake}.overlays.default final prev; in final)"
    )
    assert evaluate(f"{overlaid}.python312.pkgs.alpha.version") == "1.0"
    assert evaluate(f"{overlaid}.python311.pkgs ? alpha") is False  # other interpreters alone
    assert evaluate(f"{flake}.lib.x86_64-linux.python.pkgs.beta.version") == "2.0"
    out = tmp_path / "overlaid"
    build(["-E", f"{overlaid}.python312.withPackages (ps: [ ps.alpha ])"], out)
    assert python_in(out, "import alpha, beta; print(alpha.__version__)") == "1.0"
    other = f"{flake}.lib.x86_64-linux.mkPython {{ python = {stand_in()}.python311; }}"
    failed = nix("nix-instantiate", "-E", other, check=False)
    assert failed.returncode != 0
    assert "locked for Python 3.12, but `python` is 3.11" in failed.stderr


def test_the_projects_app_is_a_package_and_the_default_app(index: Index, tmp_path: Path) -> None:
    script = ("myapp-0.9.data/scripts/myapp", b"#!/bin/sh\necho hello\n")
    root = tree(tmp_path / "project", Dist("myapp", "0.9", kind="sdist", extra_files=(script,)))
    sync_project(index, root, "", systems=("x86_64-linux",), config="project: .\nflake: true\n")
    flake = outputs(root, nixpkgs_tree(tmp_path / "nixpkgs"))
    app = evaluate(
        f"let a = {flake}.apps.x86_64-linux.default; in a // {{ program = baseNameOf a.program; }}"
    )
    assert app == {
        "type": "app",
        "program": "myapp",
        "meta": {"description": "myapp, in the locked environment"},
    }
    out = tmp_path / "app"
    build(["-E", flake, "-A", "packages.x86_64-linux.app"], out)
    program = evaluate(f"{flake}.apps.x86_64-linux.default.program")
    assert isinstance(program, str) and program.startswith(str(out.readlink()))
    done = subprocess.run([program], capture_output=True, text=True, check=True)
    assert done.stdout == "hello\n"


def test_a_real_flake(project: Path, tmp_path: Path) -> None:
    """`nix flake check` and `nix eval` with the nixpkgs input replaced by the stand-in tree."""
    if subprocess.run(["nix", "--version"], capture_output=True, check=False).returncode != 0:
        pytest.skip("no nix command")  # pragma: no cover - nix-bin has it
    nixpkgs = nixpkgs_tree(tmp_path / "nixpkgs")
    env = {
        **NIX_ENV,
        "NIX_CONFIG": NIX_ENV["NIX_CONFIG"]
        + "\nflake-registry =\nexperimental-features = nix-command flakes",
    }
    common = ["--override-input", "nixpkgs", f"path:{nixpkgs}", "--no-write-lock-file"]
    check = subprocess.run(
        ["nix", "flake", "check", "--no-build", f"path:{project}", *common],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    drv = subprocess.run(
        ["nix", "eval", "--raw", f"path:{project}#packages.x86_64-linux.env.drvPath", *common],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    own = f"(import {project} {{ pkgs = {stand_in()}; }}).env.drvPath"
    assert drv == evaluate(own)
    assert not (project / "flake.lock").exists()
