"""The stand-in package set (tests/nix/pkgs.nix) is as strict as nixpkgs where machci relies on it.

Each test makes the stand-in fail the way nixpkgs' builder does, so a generated file that passes
the other Nix tests would not be refused by nixpkgs for these reasons.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from machci.nix.escape import string
from tests.fixtures.builders import Dist, build
from tests.nixtools import nix, require, stand_in

require("nix-instantiate", "nix-bin")


@pytest.fixture
def dists(tmp_path: Path) -> Path:
    """Wheels and sdists to build from, by file name."""
    folder = tmp_path / "dists"
    for dist in (
        Dist("alpha", "1.0", requires_dist=("beta>=2",)),
        Dist("beta", "2.0"),
        Dist("beta", "1.0"),
        Dist("flit-core", "3.9"),
        Dist("helper-tool", "1.0"),
        Dist("gamma", "0.5", kind="sdist", build_requires=("flit-core",)),
        Dist("delta", "0.1", kind="sdist", dynamic_build_requires=("helper-tool",)),
        Dist(
            "tooly",
            "1.0",
            extra_files=(
                (
                    "tooly-1.0.dist-info/entry_points.txt",
                    b"[console_scripts]\ntooly = tooly.cli:main\n",
                ),
                ("tooly/cli.py", b"def main():\n    print('tooly ran')\n"),
                ("tooly-1.0.data/data/share/tooly/readme.txt", b"data\n"),
                ("tooly-1.0.data/headers/tooly.h", b"/* header */\n"),
                ("tooly-1.0.data/purelib/tooly_pure.py", b"PURE = 1\n"),
                ("tooly-1.0.data/platlib/tooly_plat.py", b"PLAT = 1\n"),
                ("tooly-1.0.data/scripts/tooly-sh", b"#!/bin/sh\necho shell\n"),
            ),
        ),
        Dist("odd", "1.0", extra_files=(("odd-1.0.data/elsewhere/x.txt", b"x\n"),)),
        Dist("hostonly", "1.0", kind="sdist", backend_prelude="import ruamel.yaml"),
        Dist(
            "marked", "1.0", kind="sdist", build_requires=("helper-tool; python_version < '3.12'",)
        ),
    ):
        build(dist, folder)
    return folder


def expression(dists: Path, body: str) -> str:
    """`body` with `pkgs`, `ps` (python312's set), `wheel NAME VERSION` and `sdist NAME VERSION`."""
    return f"""
      let
        pkgs = {stand_in()};
        ps = pkgs.python312.pkgs;
        dists = {string(str(dists))};
        file = builtins.replaceStrings [ "-" ] [ "_" ];
        wheel = pname: version: ps.buildPythonPackage {{
          inherit pname version;
          format = "wheel";
          src = builtins.path {{
            path = dists + "/${{file pname}}-${{version}}-py3-none-any.whl";
          }};
        }};
        sdist = pname: version: args: ps.buildPythonPackage ({{
          inherit pname version;
          pyproject = true;
          src = builtins.path {{ path = dists + "/${{file pname}}-${{version}}.tar.gz"; }};
        }} // args);
      in {body}
    """


def evaluate(dists: Path, body: str) -> tuple[int, str]:
    result = nix("nix-instantiate", "-E", expression(dists, body), check=False)
    return result.returncode, result.stderr


def build_it(dists: Path, body: str) -> tuple[int, str]:
    result = nix("nix-build", "--no-out-link", "-E", expression(dists, body), check=False)
    return result.returncode, result.stderr


def test_a_dependency_cycle_is_an_infinite_recursion(dists: Path) -> None:
    code, err = evaluate(
        dists,
        """let
          a = (wheel "alpha" "1.0").overridePythonAttrs (_: { dependencies = [ b ]; });
          b = (wheel "beta" "2.0").overridePythonAttrs (_: { dependencies = [ a ]; });
        in a""",
    )
    assert code != 0 and "infinite recursion encountered" in err


def test_runtime_dependencies_are_checked_unless_turned_off(dists: Path) -> None:
    code, err = build_it(dists, 'wheel "alpha" "1.0"')
    assert code != 0 and "beta not installed" in err
    with_beta = '(wheel "alpha" "1.0").overridePythonAttrs (_: {{ dependencies = [ {} ]; }})'
    code, err = build_it(dists, with_beta.format('(wheel "beta" "1.0")'))
    assert code != 0 and "beta>=2 not satisfied by version 1.0" in err
    assert build_it(dists, with_beta.format('(wheel "beta" "2.0")'))[0] == 0
    off = '(wheel "alpha" "1.0").overridePythonAttrs (_: { dontCheckRuntimeDeps = true; })'
    assert build_it(dists, off)[0] == 0


def test_build_requirements_static_and_dynamic_must_be_present(dists: Path) -> None:
    code, err = build_it(dists, 'sdist "gamma" "0.5" { }')
    assert code != 0 and "Missing dependencies" in err and "flit-core" in err
    assert (
        build_it(dists, 'sdist "gamma" "0.5" { build-system = [ (wheel "flit-core" "3.9") ]; }')[0]
        == 0
    )
    code, err = build_it(dists, 'sdist "delta" "0.1" { }')
    assert code != 0 and "Missing dependencies" in err and "helper-tool" in err
    with_tool = 'sdist "delta" "0.1" { build-system = [ (wheel "helper-tool" "1.0") ]; }'
    assert build_it(dists, with_tool)[0] == 0


def test_metadata_must_match_pname_and_version(dists: Path) -> None:
    tools = 'build-system = [ (wheel "flit-core" "3.9") ];'
    code, err = build_it(
        dists,
        f'(sdist "gamma" "0.5" {{ {tools} }}).overridePythonAttrs (_: {{ version = "0.6"; }})',
    )
    assert code != 0 and "metadata version 0.5 does not match the derivation's 0.6" in err
    code, err = build_it(
        dists,
        f'(sdist "gamma" "0.5" {{ {tools} }}).overridePythonAttrs (_: {{ pname = "other"; }})',
    )
    assert code != 0 and "No package metadata was found for other" in err


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'pkgs.fetchurl { url = "https://x/a.whl"; hash = ""; sha256 = ""; nope = 1; }',
            "unexpected argument 'nope'",
        ),
        ("pkgs.python312.buildEnv.override { nope = 1; }", "unexpected argument 'nope'"),
        ("pkgs.python312.override { nope = 1; }", "unexpected argument 'nope'"),
        (
            'pkgs.dockerTools.buildLayeredImage { name = "x"; nope = 1; }',
            "unexpected argument 'nope'",
        ),
        (
            'pkgs.fetchurl { url = "https://x/a b.whl"; hash = "sha256-AAAA"; }',
            "is not a valid store name",
        ),
        (
            '(wheel "alpha" "1.0").overridePythonAttrs (_: { format = null; })',
            "does not configure a `format`",
        ),
        ('(wheel "alpha" "1.0").overridePythonAttrs (_: { pyproject = true; })', "assertion"),
        (
            '(wheel "alpha" "1.0").overridePythonAttrs (_: { dependencies = [ (pkgs.python311'
            '.pkgs.buildPythonPackage { pname = "b"; version = "1"; format = "wheel"; src = ./.; })'
            " ]; })",
            "Python version mismatch",
        ),
        (
            '(wheel "alpha" "1.0").overridePythonAttrs (_: { enabledTests = [ ]; })',
            "must be unspecified, null or a non-empty list",
        ),
        (
            '(wheel "alpha" "1.0").overridePythonAttrs (_: { extra = { a = 1; }; })',
            "cannot coerce a set to a string",
        ),
        ("pkgs.rPackages.nosuch", "attribute 'nosuch' missing"),
        ("pkgs.rPackages.data.table", "attribute 'data' missing"),
        ("pkgs.rWrapper.override { nope = 1; }", "unexpected argument 'nope'"),
    ],
)
def test_closed_arguments_and_builder_checks(dists: Path, body: str, message: str) -> None:
    code, err = evaluate(dists, body)
    assert code != 0 and message in err, err


def test_open_arguments_are_accepted(dists: Path) -> None:
    body = """{
      p = (wheel "beta" "2.0").overridePythonAttrs (_: { pythonImportsCheck = [ "beta" ]; });
      s = pkgs.mkShell { packages = [ ]; FOO = "bar"; };
    }"""
    result = nix("nix-instantiate", "-E", expression(dists, body), check=True)
    assert len(result.stdout.split()) == 2


def test_interpreters_as_in_nixpkgs(dists: Path) -> None:
    body = """{
      versions = map (p: pkgs.${p}.pythonVersion) [
        "python311" "python312" "python313" "python314"
      ];
      default = pkgs.python3.pythonVersion;
    }"""
    result = nix("nix-instantiate", "--eval", "--strict", "--json", "-E", expression(dists, body))
    assert json.loads(result.stdout) == {
        "versions": ["3.11", "3.12", "3.13", "3.14"],
        "default": "3.14",
    }


def test_r_packages_and_the_wrapper(dists: Path, tmp_path: Path) -> None:
    """rWrapper's R puts every package's library, and those they propagate, on R_LIBS_SITE."""
    body = "pkgs.rWrapper.override { packages = [ pkgs.rPackages.ggplot2 ]; }"
    result = nix("nix-build", "-E", expression(dists, body), "-o", str(tmp_path / "R"))
    assert result.returncode == 0
    wrapper = (tmp_path / "R" / "bin" / "R").read_text()
    for name in ("ggplot2", "scales", "rlang", "boot", "survival"):
        assert f"-r-{name}-1.0/library" in wrapper
    home = nix(str(tmp_path / "R" / "bin" / "R"), "RHOME").stdout.strip()
    assert home.endswith("-R-4.5.1/lib/R") and Path(home).is_dir()


def test_native_build_inputs_are_on_the_builds_path(dists: Path) -> None:
    """stdenv with strictDeps: a native build input's `bin` is on PATH in every phase."""
    body = """(wheel "beta" "2.0").overridePythonAttrs (_: {
      nativeBuildInputs = [ pkgs.R ];
      postInstall = "R RHOME > $out/r-home";
    })"""
    code, err = build_it(dists, body)
    assert code == 0, err


def test_environment_wrappers_take_make_wrapper_arguments(dists: Path, tmp_path: Path) -> None:
    """wrapper.nix splices makeWrapperArgs into shell code; makeBinaryWrapper refuses what it
    does not know (the stand-in knows the environment settings only)."""
    body = """pkgs.python312.buildEnv.override {
      makeWrapperArgs = [ "--set" "ANSWER" "'forty two'" "--prefix" "LIST" ":" "/first" ];
    }"""
    nix("nix-build", "-E", expression(dists, body), "-o", str(tmp_path / "env"))
    code = "import os; print(os.environ['ANSWER'], os.environ['LIST'])"
    python = str(tmp_path / "env" / "bin" / "python")
    done = subprocess.run(
        [python, "-c", code], env={"LIST": "/then"}, capture_output=True, text=True, check=True
    )
    assert done.stdout == "forty two /first:/then\n"
    body = 'pkgs.python312.buildEnv.override { makeWrapperArgs = [ "--run" "true" ]; }'
    status, err = build_it(dists, body)
    assert status != 0 and "unknown or incomplete argument '--run'" in err


@pytest.mark.parametrize(
    ("tool", "recursion"),
    [
        ("wheel", True),
        ("installer", True),
        ("flit-core", True),
        ("build", False),
        ("packaging", False),
        ("pyproject-hooks", False),
        ("setuptools", False),
        ("pytest", False),
    ],
)
def test_a_tool_overridden_by_a_wheel_build_loops_through_the_hooks(
    dists: Path, tool: str, recursion: bool
) -> None:
    """nixpkgs' hooks take their tools from the overridden set (pythonOnBuildForHost's too): a
    wheel-format wheel, installer or flit-core is built with itself; the bootstrap exceptions
    by pname keep the others evaluating."""
    body = f"""let
      python = pkgs.python312.override {{
        packageOverrides = final: prev: {{
          {tool} = final.buildPythonPackage {{
            pname = "{tool}"; version = "99"; format = "wheel";
            src = builtins.path {{ path = dists + "/beta-2.0-py3-none-any.whl"; }};
          }};
        }};
      }};
    in [ python.pkgs.{tool} python.pkgs.pytest python.pkgs.build ]"""
    code, err = evaluate(dists, body)
    if recursion:
        assert code != 0 and ("infinite recursion" in err or "stack overflow" in err), err
    else:
        assert code == 0, err


def test_the_hooks_tools_come_from_the_overridden_set(dists: Path) -> None:
    """hooks/default.nix: wheelUnpackHook propagates the set's wheel; pypaInstallHook the
    installer of pythonOnBuildForHost, which receives the same packageOverrides; nixpkgs builds
    wheel and installer with flit-core."""
    body = """let
      marked = final: prev: {
        installer = prev.installer.overrideAttrs (_: { marked = "yes"; });
        wheel = prev.wheel.overrideAttrs (_: { marked = "yes"; });
      };
      python = pkgs.python312.override { packageOverrides = marked; };
      names = map (drv: drv.pname or drv.name);
    in {
      install = (builtins.head python.pkgs.pypaInstallHook.propagated).marked or "no";
      unpack = (builtins.head python.pkgs.wheelUnpackHook.propagated).marked or "no";
      original = (builtins.head ps.pypaInstallHook.propagated).marked or "no";
      wheel = names ps.wheel.build-system;
      installer = names ps.installer.build-system;
    }"""
    result = nix("nix-instantiate", "--eval", "--strict", "--json", "-E", expression(dists, body))
    assert json.loads(result.stdout) == {
        "install": "yes",
        "unpack": "yes",
        "original": "no",
        "wheel": ["flit-core"],
        "installer": ["flit-core"],
    }


def test_the_installer_writes_entry_points_and_every_data_scheme(
    dists: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tooly"
    nix("nix-build", "-E", expression(dists, 'wheel "tooly" "1.0"'), "-o", str(out))
    site = out / "lib" / "python3.12" / "site-packages"
    assert (site / "tooly_pure.py").is_file() and (site / "tooly_plat.py").is_file()
    assert (out / "share" / "tooly" / "readme.txt").read_text() == "data\n"
    assert (out / "include" / "python3.12" / "tooly" / "tooly.h").is_file()
    # installer's entry-point script, wrapped by wrapPythonPrograms, runs the package.
    script = (out / "bin" / ".tooly-wrapped").read_text()
    assert script.startswith("#!") and script.splitlines()[0].endswith("/bin/python3.12")
    ran = subprocess.run([out / "bin" / "tooly"], capture_output=True, text=True, check=True)
    assert ran.stdout == "tooly ran\n"
    shell = subprocess.run([out / "bin" / "tooly-sh"], capture_output=True, text=True, check=True)
    assert shell.stdout == "shell\n"
    code, err = build_it(dists, 'wheel "odd" "1.0"')
    assert code != 0 and "installer" in err and "elsewhere" in err


def test_builds_never_see_the_hosts_packages(dists: Path) -> None:
    """The backend runs with `-I -S`: a module only the host has is not importable."""
    code, err = build_it(dists, 'sdist "hostonly" "1.0" { }')
    assert code != 0 and "No module named 'ruamel'" in err


def test_markers_are_evaluated_for_the_packages_interpreter(dists: Path) -> None:
    """`helper-tool; python_version < '3.12'` is not needed on python312, whatever the host."""
    code, err = build_it(dists, 'sdist "marked" "1.0" { }')
    assert code == 0, err
    on_311 = """pkgs.python311.pkgs.buildPythonPackage {
      pname = "marked"; version = "1.0"; pyproject = true;
      src = builtins.path { path = dists + "/marked-1.0.tar.gz"; };
    }"""
    code, err = build_it(dists, on_311)
    assert code != 0 and "helper-tool" in err


def test_checks_run_when_enabled_and_their_inputs_count_only_then(dists: Path) -> None:
    tested = """(wheel "beta" "2.0").overridePythonAttrs (_: {{
      doCheck = {check};
      nativeCheckInputs = [ ps.pytestCheckHook {extra} ];
      postPatch = "printf 'def test_it():\\n    assert {outcome}\\n' > test_it.py";
    }})"""
    failing = tested.format(check="true", extra="", outcome="False")
    code, err = build_it(dists, failing)
    assert code != 0 and "assert False" in err
    assert build_it(dists, tested.format(check="true", extra="", outcome="True"))[0] == 0
    assert build_it(dists, tested.format(check="false", extra="", outcome="False"))[0] == 0
    unused = tested.format(check="false", extra='(throw "a check input")', outcome="True")
    assert evaluate(dists, unused)[0] == 0
    used = tested.format(check="true", extra='(throw "a check input")', outcome="True")
    code, err = evaluate(dists, used)
    assert code != 0 and "a check input" in err


def test_the_imports_check_imports_from_the_output(dists: Path) -> None:
    body = """(wheel "beta" "2.0").overridePythonAttrs (_: {{
      pythonImportsCheck = [ "{module}" ];
    }})"""
    assert build_it(dists, body.format(module="beta"))[0] == 0
    code, err = build_it(dists, body.format(module="nosuch"))
    assert code != 0 and "No module named 'nosuch'" in err


@pytest.mark.parametrize(
    ("place", "machine", "found"),
    [
        ("lib", None, True),
        ("lib/nested", None, False),  # inputs' lib/ is not searched recursively
        ("lib", 183, False),  # a library for another machine (aarch64) is not a match
    ],
)
def test_autopatchelf_searches_as_nixpkgs_does(
    dists: Path, tmp_path: Path, place: str, machine: int | None, found: bool
) -> None:
    """auto-patchelf.py: each input's `lib/` only, matched by file name and ELF machine."""
    from tests.test_nix import NATIVE_TAG, shared_library

    libs = tmp_path / "libs"
    libs.mkdir()
    library = bytearray(shared_library(libs, "libfoo.so.1", "int foo(void) { return 42; }"))
    user = shared_library(
        libs, "libuser.so", "int foo(void); int user(void) { return foo(); }", ["libfoo.so.1"]
    )
    if machine is not None:
        library[18:20] = machine.to_bytes(2, "little")
    (libs / "libfoo.so.1").write_bytes(bytes(library))
    build(Dist("user", "1.0", tag=NATIVE_TAG, extra_files=(("user/libuser.so", user),)), dists)
    wheel = f"user-1.0-{NATIVE_TAG}.whl"
    body = f"""let
      libfoo = builtins.path {{ path = {string(str(libs / "libfoo.so.1"))}; }};
      provider = pkgs.runCommand "foo-library" {{ }} ''
        mkdir -p $out/{place}
        cp ${{libfoo}} $out/{place}/libfoo.so.1
      '';
    in ps.buildPythonPackage {{
      pname = "user"; version = "1.0"; format = "wheel";
      src = builtins.path {{ path = dists + "/{wheel}"; }};
      nativeBuildInputs = [ pkgs.autoPatchelfHook ];
      buildInputs = [ provider ];
    }}"""
    code, err = build_it(dists, body)
    if found:
        assert code == 0, err
    else:
        assert code != 0 and "could not satisfy dependency libfoo.so.1" in err, err
