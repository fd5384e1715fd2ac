"""The nixpkgs provider under real Nix: a package from the interpreter's own set, built against
machci's pins, so each name has one version in the environment."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from machci.nix.escape import string
from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, run
from tests.nixtools import PYTHON, build, nix, python_in, require, seed_store, stand_in

require("nix-instantiate", "nix-bin")


def nixpkgs_set(index: Index, nixdep_version: str = "1.0") -> str:
    """nixpkgs' own Python packages in the stand-in: beta 1.0 and nixdep, which needs beta."""
    beta = string(str(index.path_of("beta-1.0-py3-none-any.whl")))
    nixdep = string(str(index.path_of("nixdep-1.0-py3-none-any.whl")))
    return f"""final: prev: {{
      beta = final.buildPythonPackage {{
        pname = "beta"; version = "1.0"; format = "wheel";
        src = builtins.path {{ path = {beta}; }};
      }};
      nixdep = final.buildPythonPackage {{
        pname = "nixdep"; version = "{nixdep_version}"; format = "wheel";
        src = builtins.path {{ path = {nixdep}; }};
        dependencies = [ final.beta ];
      }};
    }}"""


def project(index: Index, tmp_path: Path) -> Path:
    index.publish("beta", "1.0")
    index.publish("beta", "2.0")
    index.publish("nixdep", "1.0", requires_dist=("beta>=2",))  # its metadata, for resolving
    index.publish("app", "1.0", requires_dist=("nixdep",))
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "requirements.txt").write_text("app\n")
    (folder / "nixpkgs-python.json").write_text(
        json.dumps({"nixdep": [{"attr": "nixdep", "version": "1.0"}]})
    )
    (folder / "machci.yaml").write_text(
        f'requirements: [requirements.txt]\npython: "{PYTHON}"\nsystems: [x86_64-linux]\n'
        f"data: {{index: {index.url}, snapshot: '{SNAPSHOT}'}}\n"
        "providers: {_default: wheel, nixdep: nixpkgs}\n"
        "nixpkgs: {index: nixpkgs-python.json}\n"
    )
    with contextlib.chdir(folder):
        result = run("sync", "--cache-dir", ".cache")
        locked = run("lock", "--json", "--cache-dir", ".cache")
    assert result.code == 1, result.err
    assert locked.packages()["nixdep"]["provider"] == "nixpkgs"
    assert locked.packages()["nixdep"]["attr"] == "nixdep"
    assert locked.packages()["nixdep"]["file"] is None
    default_nix = folder / "default.nix"
    seed_store(index, default_nix)
    return default_nix


def test_a_nixpkgs_package_is_built_against_machcis_pins(index: Index, tmp_path: Path) -> None:
    default_nix = project(index, tmp_path)
    text = default_nix.read_text()
    assert '"nixdep-1.0-py3-none-any.whl" = pkgs.fetchurl' not in text  # nixpkgs builds it
    pkgs = stand_in(python_packages=nixpkgs_set(index))
    out = tmp_path / "env"
    # nixdep's own runtime-deps check (kept on for nixpkgs' packages) sees beta 2.0.
    build([str(default_nix), "-A", "env", "--arg", "pkgs", pkgs], out)
    code = "import app, beta, nixdep; print(beta.__version__)"
    assert python_in(out, code) == "2.0"
    versions = f"""
      let d = import {default_nix} {{ pkgs = {pkgs}; }};
      in map (p: p.name) d.packages.nixdep.requiredPythonModules
    """
    names = json.loads(
        nix("nix-instantiate", "--eval", "--strict", "--json", "-E", versions).stdout
    )
    assert {n for n in names if "beta" in n} == {f"python{PYTHON}-beta-2.0"}


def test_a_nixpkgs_of_another_version_is_refused(index: Index, tmp_path: Path) -> None:
    default_nix = project(index, tmp_path)
    pkgs = stand_in(python_packages=nixpkgs_set(index, nixdep_version="0.9"))
    result = nix(
        "nix-instantiate", str(default_nix), "-A", "env", "--arg", "pkgs", pkgs, check=False
    )
    assert result.returncode != 0
    assert (
        "machci: nixdep was locked at nixpkgs' nixdep 1.0, but this nixpkgs has 0.9; write the"
        " index for this nixpkgs (machci nixpkgs-index) and run machci sync"
    ) in result.stderr
