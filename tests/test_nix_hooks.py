"""Locks that pin the tools nixpkgs' build hooks take from the package set evaluate, every output.

nixpkgs' hooks take wheel, installer, build, packaging, setuptools and pytest from the set they
build (hooks/default.nix), so a default.nix whose overlay put machci's pins under those names
would build each tool with itself. The stand-in models the hooks (tests/nix/README.md); these
tests pin each tool, as a wheel and in an sdist's build system, and evaluate every output.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from machci.nix.escape import string
from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, run
from tests.nixtools import (
    LINUX,
    PYTHON,
    build,
    nix,
    nixpkgs_tree,
    pkgs_arg,
    require,
    seed_store,
    stand_in,
    sync_project,
)

require("nix-instantiate", "nix-bin")

# Every name a hook of nixpkgs takes from the set, with a version nixpkgs does not have.
TOOLS = {
    "build": "0.9.0",
    "flit-core": "3.2.0",
    "installer": "0.5.0",
    "packaging": "19.0",
    "pip": "22.0",
    "pyproject-hooks": "1.0.0",
    "pytest": "7.0.0",
    "setuptools": "60.0.0",
    "wheel": "0.39.0",
}


def locked_project(index: Index, folder: Path, tools: dict[str, str], config: str = "") -> Path:
    """A project whose lock holds `tools` as wheels and an sdist `app` built with them."""
    for name, version in tools.items():
        index.publish(name, version)
    requires = tuple(f"{name}<={version}" for name, version in sorted(tools.items()))
    index.publish("app", "1.0", kind="sdist", build_requires=requires)
    requirements = "".join(f"{n}\n" for n in sorted(tools)) + "app\n"
    return sync_project(index, folder, requirements, config=config)


def consumer(default_nix: Path, names: list[str]) -> str:
    """The overlay applied in a consumer's python.override, as the README shows it."""
    selected = " ".join(f"ps.{name}" for name in names)
    return f"""
      let
        pkgs = {stand_in()};
        machci = import {default_nix} {{ inherit pkgs; }};
        python = pkgs.python312.override {{ packageOverrides = machci.overlay; }};
      in python.withPackages (ps: [ {selected} ])
    """


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_a_lock_pinning_a_build_tool_evaluates_every_output(
    index: Index, tmp_path: Path, tool: str
) -> None:
    default_nix = locked_project(index, tmp_path / "project", {tool: TOOLS[tool]})
    for system in LINUX:
        args = [*pkgs_arg(system), "--argstr", "system", system]
        for output in ("env", "shell", "image", "packages", f"python.pkgs.{tool}"):
            nix("nix-instantiate", str(default_nix), "-A", output, *args)
    nix("nix-instantiate", "-E", consumer(default_nix, [tool, "app"]))


def test_every_tool_pinned_at_once_builds_and_the_environment_holds_the_locked_ones(
    index: Index, tmp_path: Path
) -> None:
    default_nix = locked_project(index, tmp_path / "project", TOOLS, config="flake: true\n")
    out = tmp_path / "env"
    build([str(default_nix), "-A", "env", *pkgs_arg()], out)
    site = out / "lib" / f"python{PYTHON}" / "site-packages"
    installed = sorted(p.name for p in site.glob("*.dist-info"))
    expected = {f"{n.replace('-', '_')}-{v}.dist-info" for n, v in TOOLS.items()}
    assert installed == sorted(expected | {"app-1.0.dist-info"})
    # The overlay in a consumer's interpreter brings the same pins and nothing else.
    consumer_env = tmp_path / "consumer"
    build(["-E", consumer(default_nix, ["app", *TOOLS])], consumer_env)
    site = consumer_env / "lib" / f"python{PYTHON}" / "site-packages"
    assert sorted(p.name for p in site.glob("*.dist-info")) == installed


def test_the_flakes_outputs_evaluate_with_every_tool_pinned(index: Index, tmp_path: Path) -> None:
    default_nix = locked_project(index, tmp_path / "project", TOOLS, config="flake: true\n")
    nixpkgs = nixpkgs_tree(tmp_path / "nixpkgs")
    flake = default_nix.parent / "flake.nix"
    outputs = f"(let o = (import {flake}).outputs {{ self = o; nixpkgs = {nixpkgs}; }}; in o)"
    for system in LINUX:
        for attribute in (
            f"packages.{system}",
            f"devShells.{system}.default",
            f"lib.{system}.packages",
        ):
            nix("nix-instantiate", "-E", outputs, "-A", attribute)


def test_without_nixpkgs_own_hooks_the_lock_cannot_evaluate(index: Index, tmp_path: Path) -> None:
    """The rule the renderer keeps: taken out, the stand-in shows nixpkgs' recursion."""
    default_nix = locked_project(index, tmp_path / "project", {"wheel": TOOLS["wheel"]})
    text = default_nix.read_text()
    kept = "builtins.foldl' compose (final: prev: nixpkgsHooks)"
    assert kept in text
    default_nix.write_text(text.replace(kept, "builtins.foldl' compose (final: prev: { })"))
    result = nix("nix-instantiate", str(default_nix), "-A", "env", *pkgs_arg(), check=False)
    assert result.returncode != 0
    assert "infinite recursion" in result.stderr or "stack overflow" in result.stderr


def test_the_locked_build_system_comes_first_on_the_build_path(
    index: Index, tmp_path: Path
) -> None:
    """The hooks propagate nixpkgs' packaging and wheel; the sdist's backend needs the locked
    ones (pypa/build checks `packaging<=19.0`), so they come first on PYTHONPATH."""
    tools = {"packaging": TOOLS["packaging"], "wheel": TOOLS["wheel"]}
    default_nix = locked_project(index, tmp_path / "project", tools)
    build([str(default_nix), "-A", "packages.app", *pkgs_arg()], tmp_path / "app")
    text = default_nix.read_text()
    assert text.count("PYTHONPATH = ") == 1
    default_nix.write_text(text.replace("PYTHONPATH = ", "standInUnusedPath = "))
    failed = build([str(default_nix), "-A", "packages.app", *pkgs_arg()], tmp_path / "no", False)
    assert failed.returncode != 0
    assert "Missing dependencies" in failed.stderr and "packaging<=19.0" in failed.stderr


def test_an_older_nixpkgs_is_refused_with_its_release(index: Index, tmp_path: Path) -> None:
    default_nix = locked_project(index, tmp_path / "project", {"wheel": TOOLS["wheel"]})
    old = stand_in(lib_version="23.11.5678.abcdef")
    for output in ("env", "packages.wheel"):
        result = nix(
            "nix-instantiate", str(default_nix), "-A", output, "--arg", "pkgs", old, check=False
        )
        assert result.returncode != 0
        assert (
            "machci: this default.nix needs nixpkgs 24.05 or later, but `pkgs` is nixpkgs"
            " 23.11.5678.abcdef; pass a newer nixpkgs as `pkgs`"
        ) in result.stderr
    current = stand_in(lib_version="24.05.20240601.cafe")
    nix("nix-instantiate", str(default_nix), "-A", "env", "--arg", "pkgs", current)


def test_a_nixpkgs_package_gets_its_closure_and_its_checks_are_off_by_default(
    index: Index, tmp_path: Path
) -> None:
    """nixdep comes from nixpkgs; its import check imports beta, which imports gamma (a
    dependency of a dependency), and its tests fail: they run only when asked for."""
    index.publish("gamma", "1.0")
    index.publish(
        "beta",
        "2.0",
        requires_dist=("gamma",),
        extra_files=(("beta_uses.py", b"import gamma\n"),),
    )
    nixdep = index.publish(
        "nixdep",
        "1.0",
        requires_dist=("beta>=2",),
        extra_files=(("nixdep_check.py", b"import beta_uses\n"),),
    )
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "requirements.txt").write_text("nixdep\n")
    (folder / "nixpkgs-python.json").write_text(
        json.dumps({"nixdep": [{"attr": "nixdep", "version": "1.0"}]})
    )
    overrides = ""
    for check in (False, True):
        if check:
            overrides = "overrides: {nixdep: {doCheck: 'true'}}\n"
        (folder / "machci.yaml").write_text(
            f'requirements: [requirements.txt]\npython: "{PYTHON}"\nsystems: [x86_64-linux]\n'
            f"data: {{index: {index.url}, snapshot: '{SNAPSHOT}'}}\n"
            "providers: {_default: wheel, nixdep: nixpkgs}\n"
            "nixpkgs: {index: nixpkgs-python.json}\n" + overrides
        )
        with contextlib.chdir(folder):
            result = run("sync", "--cache-dir", ".cache", "--force")
        assert result.code in (0, 1), result.err
        default_nix = folder / "default.nix"
        seed_store(index, default_nix)
        wheel = string(str(index.path_of(nixdep.filename)))
        tests = folder / "nixdep-tests"
        tests.mkdir(exist_ok=True)
        (tests / "test_fails.py").write_text("def test_fails():\n    assert False\n")
        nixpkgs = f"""final: prev: {{
          nixdep = final.buildPythonPackage {{
            pname = "nixdep"; version = "1.0"; format = "wheel";
            src = builtins.path {{ path = {wheel}; }};
            dependencies = [ final.beta ];
            pythonImportsCheck = [ "nixdep_check" ];
            nativeCheckInputs = [ final.pytestCheckHook ];
            checkPhase = "cd {tests} && python -c 'raise SystemExit(1)'";
          }};
        }}"""
        pkgs = stand_in(python_packages=nixpkgs)
        out = tmp_path / f"env-{check}"
        result_build = build(
            [str(default_nix), "-A", "env", "--arg", "pkgs", pkgs], out, check=not check
        )
        if check:
            assert result_build.returncode != 0
            assert "installCheckPhase" in result_build.stderr or "failed" in result_build.stderr


def installed(out: Path) -> dict[str, bytes]:
    """Every file a package's output installs, by path, as buildEnv links them."""
    return {
        str(path.relative_to(out)): path.read_bytes() + oct(path.stat().st_mode).encode()
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.relative_to(out).parts[0] != "nix-support"
    }


def reported_as(path: str) -> str:
    """The path the collision report names for an installed file: a module for its bytecode,
    a script for its wrapped original."""
    parts = path.split("/")
    if len(parts) > 1 and parts[-2] == "__pycache__":
        return "/".join([*parts[:-2], parts[-1].split(".")[0] + ".py"])
    if parts[0] == "bin" and parts[-1].startswith(".") and parts[-1].endswith("-wrapped"):
        return f"bin/{parts[-1][1:].removesuffix('-wrapped')}"
    return path


def test_the_collision_check_agrees_with_a_real_install(index: Index, tmp_path: Path) -> None:
    """`machci lock --check-collisions` reports exactly the paths where the packages' real
    installs (nixpkgs' installer, in the stand-in) differ: entry points, `.data` schemes,
    modules and their bytecode."""
    for name in ("foo", "bar"):
        index.publish(
            name,
            "1.0",
            extra_files=(
                (f"{name}-1.0.dist-info/entry_points.txt", b"[console_scripts]\nserve = m:f\n"),
                (f"{name}-1.0.data/data/share/doc/readme.txt", name.encode()),
                (f"{name}-1.0.data/data/share/doc/same.txt", b"same\n"),
                (f"{name}-1.0.data/headers/api.h", name.encode()),
                (f"{name}-1.0.data/purelib/shared_mod.py", f"WHO = {name!r}\n".encode()),
            ),
        )
    default_nix = sync_project(index, tmp_path / "project", "foo\nbar\n", ("x86_64-linux",))
    with contextlib.chdir(default_nix.parent):
        report = run("lock", "--check-collisions", "--cache-dir", ".cache", "-o", "lock.json")
    assert report.code == 1, report.err
    reported = {
        line.strip().split(": ")[0]
        for line in report.out.splitlines()
        if line.startswith("  ") and line.strip().endswith("bar, foo")
    }
    outputs = {}
    for name in ("foo", "bar"):
        out = tmp_path / name
        build([str(default_nix), "-A", f"packages.{name}", *pkgs_arg()], out)
        outputs[name] = installed(out)
    real = {
        reported_as(path)
        for path, data in outputs["foo"].items()
        if path in outputs["bar"] and outputs["bar"][path] != data
    }
    assert reported == real
    assert "bin/serve" in real and "share/doc/readme.txt" in real
    assert "share/doc/same.txt" not in real
