"""rPackages through real Nix: R (rWrapper with the packages) in env, shell and image, rpy2's
sdist built with R on its PATH, and rpy2's embedded R finding R_HOME and the libraries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.index import Index
from tests.nixtools import LINUX, build, nix, pkgs_arg, python_in, require, stand_in, sync_project

require("nix-instantiate", "nix-bin")

# What rpy2's setup does first (situation.get_r_home): find R, or fail as rpy2 does without one.
NEEDS_R = """
import os, shutil, subprocess
if os.environ.get("NIX_BUILD_TOP"):  # building in Nix; locking asks the backend without R
    _r = shutil.which("R")
    if _r is None:
        raise RuntimeError("No R in the PATH, or R_HOME defined.")
    _home = subprocess.run([_r, "RHOME"], capture_output=True, text=True, check=True).stdout
    if not os.path.isdir(_home.strip()):
        raise RuntimeError("R RHOME gave no directory: " + _home)
"""


@pytest.fixture
def project(index: Index, tmp_path: Path) -> Path:
    index.publish("cffi", "1.17")
    index.publish("app", "1.0")
    index.publish("rpy2", "3.5.17", kind="sdist", requires_dist=("cffi",), backend_prelude=NEEDS_R)
    return sync_project(
        index, tmp_path / "project", "app\n", config="rPackages: [ggplot2, data_table]\n"
    )


def test_the_environment_has_r_and_rpy2_built_with_it(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "env"
    build([str(project), "-A", "env", *pkgs_arg()], out)
    code = (
        "import json, os, shutil, subprocess, rpy2, app;"
        " r = shutil.which('R');"
        " home = subprocess.run([r, 'RHOME'], capture_output=True, text=True).stdout.strip();"
        " print(json.dumps({k: os.environ[k] for k in ('R_HOME', 'R_LIBS_SITE')} | {'R': r,"
        " 'RHOME': home}))"
    )
    seen = json.loads(python_in(out, code))
    r = seen["R"]
    assert r.endswith("-R-4.5.1-wrapper/bin/R")
    assert seen["R_HOME"] == r.removesuffix("/bin/R") + "/lib/R" and Path(seen["R_HOME"]).is_dir()
    assert seen["RHOME"].endswith("-R-4.5.1/lib/R")
    libraries = seen["R_LIBS_SITE"].split(":")
    names = sorted(Path(p).parent.name.split("-", 1)[1] for p in libraries)
    for name in ("r-ggplot2-1.0", "r-scales-1.0", "r-rlang-1.0", "r-data.table-1.0", "r-boot-1.0"):
        assert name in names  # the packages, what they propagate, R's recommended ones
    assert all(Path(p).is_dir() for p in libraries)
    assert len(names) == len(set(names))


def test_rpy2s_build_needs_the_r_it_is_given(project: Path) -> None:
    """Without R among its build inputs, rpy2's setup fails, as it does in nixpkgs."""
    expression = f"""
      (import {project} {{ pkgs = {stand_in()}; }}).packages.rpy2.overridePythonAttrs
        (old: {{ nativeBuildInputs = [ ]; }})
    """
    result = nix("nix-build", "--no-out-link", "-E", expression, check=False)
    assert result.returncode != 0
    assert "No R in the PATH, or R_HOME defined." in result.stderr


@pytest.mark.parametrize("system", LINUX)
def test_shell_and_image_include_r(project: Path, system: str) -> None:
    args = [*pkgs_arg(system), "--argstr", "system", system]
    for attribute in ("shell", "image", "env"):
        drv = nix("nix-instantiate", str(project), "-A", attribute, *args).stdout.strip()
        assert drv.endswith(".drv")
    shell = nix(
        "nix-instantiate",
        "--eval",
        "--strict",
        "--json",
        str(project),
        "-A",
        "shell.nativeBuildInputs",
        *args,
    )
    image = nix(
        "nix-instantiate",
        "--eval",
        "--strict",
        "--json",
        str(project),
        "-A",
        "image.imageConfig",
        *args,
    )
    for contents in (
        json.loads(shell.stdout),
        json.loads(json.loads(image.stdout))["contents"],
    ):
        assert [Path(p).name.split("-", 1)[1] for p in contents] == [
            "python3-3.12.13-env",
            "R-4.5.1-wrapper",
        ]


def test_an_unknown_r_package_fails_evaluation(index: Index, tmp_path: Path) -> None:
    index.publish("rpy2", "3.5.17")
    default_nix = sync_project(
        index, tmp_path / "project", "", config="rPackages: [ggplot2, notInNixpkgs]\n"
    )
    result = nix("nix-instantiate", str(default_nix), "-A", "env", *pkgs_arg(), check=False)
    assert result.returncode != 0
    assert (
        "machci: this nixpkgs has no R package notInNixpkgs (rPackages in machci.yaml)"
        in result.stderr
    )


def test_an_override_of_rpy2_keeps_r(index: Index, tmp_path: Path) -> None:
    """machci.yaml's overrides of rpy2 apply over R's addition: `add` keeps it."""
    index.publish("cffi", "1.17")
    index.publish("rpy2", "3.5.17", kind="sdist", requires_dist=("cffi",), backend_prelude=NEEDS_R)
    config = (
        "rPackages: []\n"
        "overrides:\n"
        "  rpy2:\n"
        "    nativeBuildInputs: {add: '[ pkgs.autoPatchelfHook ]'}\n"
        "    postInstall: 'touch $out/overridden'\n"
    )
    default_nix = sync_project(index, tmp_path / "project", "", config=config)
    out = tmp_path / "rpy2"
    build(["-E", f"(import {default_nix} {{ pkgs = {stand_in()}; }}).packages.rpy2"], out)
    assert (out / "overridden").is_file()
