"""The generated default.nix under real Nix: parse, evaluate, build offline, import."""

from __future__ import annotations

import contextlib
import json
import platform
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machci.lock.model import Lock, LockedFile, LockedPackage, Root, SystemLock
from machci.nix.escape import attr, string
from machci.nix.render import RenderOptions, render, store_name
from tests.fixtures.index import Index
from tests.nixtools import (
    LINUX,
    NIX_ENV,
    build,
    nix,
    pkgs_arg,
    python_in,
    require,
    stand_in,
    sync_project,
)

require("nix-instantiate", "nix-bin")


@pytest.fixture
def project(index: Index, tmp_path: Path) -> Path:
    index.publish("beta", "2.0")
    index.publish("alpha", "1.0", requires_dist=("beta>=2",))
    index.publish("flit-core", "3.9")
    index.publish("gamma", "0.5", kind="sdist", build_requires=("flit-core",))
    return sync_project(index, tmp_path / "project", "alpha\ngamma\n")


def test_generated_file_parses(project: Path) -> None:
    nix("nix-instantiate", "--parse", str(project))


def test_env_builds_offline_and_imports_every_package(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "result"
    build([str(project), "-A", "env", *pkgs_arg()], out)
    code = (
        "import alpha, beta, gamma; print(alpha.__version__, beta.__version__, gamma.__version__)"
    )
    assert python_in(out, code).split() == ["1.0", "2.0", "0.5"]
    # A build requirement is not part of the environment.
    missing = "import importlib.util; print(importlib.util.find_spec('flit_core'))"
    assert python_in(out, missing) == "None"


def test_wrong_hash_fails_the_build(project: Path, tmp_path: Path) -> None:
    text = project.read_text()
    bad = "sha256-" + "A" * 43 + "="
    tampered = re.sub(
        r'(name = "alpha-1.0[^"]*";\n\s*url = "[^"]*";\n\s*hash = )"[^"]*"', rf'\1"{bad}"', text
    )
    assert tampered != text
    project.write_text(tampered)
    result = nix("nix-build", str(project), "-A", "env", *pkgs_arg(), "--no-out-link", check=False)
    assert result.returncode != 0
    assert "hash mismatch" in result.stderr


@pytest.mark.parametrize("system", LINUX)
def test_shell_and_image_instantiate_per_system(project: Path, system: str) -> None:
    args = [*pkgs_arg(system), "--argstr", "system", system]
    for attribute in ("shell", "image", "env"):
        drv = nix("nix-instantiate", str(project), "-A", attribute, *args).stdout.strip()
        assert drv.endswith(".drv")
    image = nix(
        "nix-instantiate", "--eval", "--strict", "--json", str(project), "-A", "image.name", *args
    )
    assert json.loads(image.stdout) == "demo.tar.gz"


def test_a_package_taken_alone_brings_its_closure(project: Path, tmp_path: Path) -> None:
    """`packages.X` in a consumer's withPackages, and X from the overlay in python.override."""
    expression = f"""
      let
        pkgs = {stand_in()};
        d = import {project} {{ inherit pkgs; }};
        overridden = pkgs.python312.override {{ packageOverrides = d.overlay; }};
      in {{
        names = builtins.attrNames d.packages;
        fromPackages = pkgs.python312.withPackages (_: [ d.packages.alpha ]);
        fromOverlay = overridden.withPackages (ps: [ ps.alpha ]);
      }}
    """
    names = nix("nix-instantiate", "--eval", "--json", "-E", f"({expression}).names")
    assert json.loads(names.stdout) == ["alpha", "beta", "flit-core", "gamma"]
    for attribute in ("fromPackages", "fromOverlay"):
        out = tmp_path / attribute
        build(["-E", expression, "-A", attribute], out)
        assert python_in(out, "import alpha, beta; print(beta.__version__)") == "2.0"


def test_a_wrong_interpreter_is_refused_with_both_versions(project: Path) -> None:
    result = nix(
        "nix-instantiate",
        str(project),
        "-A",
        "env",
        *pkgs_arg(),
        "--arg",
        "python",
        f"{stand_in()}.python311",
        check=False,
    )
    assert result.returncode != 0
    assert (
        "machci: this default.nix was locked for Python 3.12, but `python` is 3.11; pass python ="
        " pkgs.python312 (nix-build --arg python '(import <nixpkgs> { }).python312'), or set"
        ' python: "3.11" in machci.yaml and run machci sync'
    ) in result.stderr


def test_other_systems_get_a_clear_throw(project: Path) -> None:
    result = nix(
        "nix-instantiate",
        str(project),
        "-A",
        "env",
        *pkgs_arg(),
        "--argstr",
        "system",
        "x86_64-darwin",
        check=False,
    )
    assert result.returncode != 0
    assert (
        "generated for aarch64-linux, x86_64-linux, not for x86_64-darwin; add the system"
        in result.stderr
    )


def test_pure_wheels_appear_once(project: Path) -> None:
    text = project.read_text()
    assert text.count('"alpha-1.0-py3-none-any.whl" = pkgs.fetchurl') == 1
    assert text.count('file = "alpha-1.0-py3-none-any.whl";') == 2


def test_a_dependency_cycle_builds_and_imports(index: Index, tmp_path: Path) -> None:
    """dask[distributed] needs distributed, which needs dask: nixpkgs' builder would recurse
    forever if either were an input of the other's derivation."""
    index.publish(
        "dask",
        "1.0",
        requires_dist=('distributed>=1; extra == "distributed"',),
        provides_extra=("distributed",),
    )
    index.publish("distributed", "1.0", requires_dist=("dask>=1", "tornado"))
    index.publish("tornado", "6.0")
    default_nix = sync_project(index, tmp_path / "project", "dask[distributed]\n")
    text = default_nix.read_text()
    assert '"dask"' in text.split("distributed = {", 1)[1].split("};", 1)[0]  # the cycle is there
    for system in LINUX:
        drv = nix(
            "nix-instantiate",
            str(default_nix),
            "-A",
            "env",
            *pkgs_arg(system),
            "--argstr",
            "system",
            system,
        )
        assert drv.stdout.strip().endswith(".drv")
    out = tmp_path / "env"
    build([str(default_nix), "-A", "env", *pkgs_arg()], out)
    assert python_in(out, "import dask, distributed, tornado; print('ok')") == "ok"
    # Either end of the cycle, taken alone, brings the other.
    alone = f"""
      let pkgs = {stand_in()}; d = import {default_nix} {{ inherit pkgs; }};
      in pkgs.python312.withPackages (_: [ d.packages.distributed ])
    """
    build(["-E", alone], tmp_path / "alone")
    assert python_in(tmp_path / "alone", "import dask, tornado; print('ok')") == "ok"


def test_dynamic_build_requirements_reach_the_build(index: Index, tmp_path: Path) -> None:
    """pypa/build in nixpkgs checks what the backend's get_requires_for_build_wheel returns."""
    index.publish("helper-tool", "1.0")
    index.publish("delta", "0.1", kind="sdist", dynamic_build_requires=("helper-tool",))
    default_nix = sync_project(index, tmp_path / "project", "delta\n")
    section = default_nix.read_text().split("delta = {", 1)[1].split("};", 1)[0]
    assert 'build-system = [ "helper-tool" ];' in section
    out = tmp_path / "env"
    build([str(default_nix), "-A", "env", *pkgs_arg()], out)
    assert python_in(out, "import delta; print(delta.__version__)") == "0.1"


def test_file_names_nix_cannot_store_are_renamed_and_installed_under_their_own(
    index: Index, tmp_path: Path
) -> None:
    long_version = "1.0+" + "x" * 200
    index.publish("longname", long_version)
    index.publish("epoch", "1!2.0")
    default_nix = sync_project(
        index, tmp_path / "project", f"longname=={long_version}\nepoch==1!2.0\n"
    )
    text = default_nix.read_text()
    long_file = f"longname-{long_version}-py3-none-any.whl"
    assert len(long_file) > 207
    assert f'name = "{store_name(long_file)}";' in text
    assert 'name = "epoch-1_2.0-py3-none-any-' in text
    assert 'drv-name = "epoch-1_2.0";' in text
    out = tmp_path / "env"
    build([str(default_nix), "-A", "env", *pkgs_arg()], out)
    code = (
        "import importlib.metadata as m; print(m.version('longname') == {!r}, m.version('epoch'))"
    )
    assert python_in(out, code.format(long_version)) == "True 1!2.0"


def test_two_packages_installing_one_path_fail_the_env_naming_both(
    index: Index, tmp_path: Path
) -> None:
    index.publish("first", "1.0", extra_files=(("shared/data.txt", b"first\n"),))
    index.publish("second", "1.0", extra_files=(("shared/data.txt", b"second\n"),))
    index.publish("third", "1.0", extra_files=(("shared/same.txt", b"same\n"),))
    index.publish("fourth", "1.0", extra_files=(("shared/same.txt", b"same\n"),))
    same = sync_project(index, tmp_path / "same", "third\nfourth\n")
    build([str(same), "-A", "env", *pkgs_arg()], tmp_path / "same-env")  # identical: allowed
    clash = sync_project(index, tmp_path / "clash", "first\nsecond\n")
    result = build([str(clash), "-A", "env", *pkgs_arg()], tmp_path / "clash-env", check=False)
    assert result.returncode != 0
    collision = re.search(r"collision between `(\S+)' and `(\S+)'", result.stderr)
    assert collision is not None, result.stderr
    owners = sorted(Path(p).parts[3].split("-", 2)[2] for p in collision.groups())
    assert owners == ["first-1.0", "second-1.0"]


HOST_SYSTEM = f"{platform.machine()}-linux"
NATIVE_TAG = f"py3-none-manylinux_2_17_{platform.machine()}"
LOADER = b"""import ctypes, os
library = ctypes.CDLL(os.path.join(os.path.dirname(__file__), "libconsumer.so"))
value = library.consumer()
"""


def shared_library(folder: Path, soname: str, source: str, links: Sequence[str] = ()) -> bytes:
    """A real shared object built with gcc; `links` are sonames in `folder` it needs."""
    if shutil.which("gcc") is None:  # pragma: no cover - .ci/run installs gcc
        pytest.skip("gcc is not installed")
    (folder / f"{soname}.c").write_text(source)
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(folder / soname), str(folder / f"{soname}.c")]
        + [f"-Wl,-soname,{soname}"]
        + [str(folder / link) for link in links],
        check=True,
    )
    return (folder / soname).read_bytes()


def test_binary_wheels_load_libraries_shipped_by_other_wheels(index: Index, tmp_path: Path) -> None:
    require("patchelf", "patchelf")
    libs = tmp_path / "libs"
    libs.mkdir()
    foo = shared_library(libs, "libfoo.so.1", "int foo(void) { return 42; }")
    consumer = shared_library(
        libs,
        "libconsumer.so",
        "int foo(void); int consumer(void) { return foo() + 1; }",
        ["libfoo.so.1"],
    )
    shared_library(libs, "libcuda.so.1", "int cuInit(void) { return 0; }")
    gpu = shared_library(
        libs, "libgpu.so", "int cuInit(void); int gpu(void) { return cuInit(); }", ["libcuda.so.1"]
    )
    index.publish(
        "foo-libs", "1.0", tag=NATIVE_TAG, extra_files=(("foo_libs/lib/libfoo.so.1", foo),)
    )
    index.publish(
        "consumer",
        "1.0",
        tag=NATIVE_TAG,
        requires_dist=("foo-libs",),
        extra_files=(("consumer/libconsumer.so", consumer), ("consumer/native.py", LOADER)),
    )
    # Needs the driver's libcuda.so.1, which no wheel ships: left unresolved by default.
    index.publish("gpu", "1.0", tag=NATIVE_TAG, extra_files=(("gpu/libgpu.so", gpu),))
    default_nix = sync_project(index, tmp_path / "project", "consumer\ngpu\n", [HOST_SYSTEM])
    assert 'libraries-from = [ "foo-libs" ];' in default_nix.read_text()
    out = tmp_path / "env"
    build([str(default_nix), "-A", "env", *pkgs_arg(HOST_SYSTEM)], out)
    assert python_in(out, "import consumer.native; print(consumer.native.value)") == "43"
    # Without the search path the library is not found, as with nixpkgs' autoPatchelfHook.
    without = f"""
      let d = import {default_nix} {{ pkgs = {stand_in(HOST_SYSTEM)}; }};
      in d.packages.consumer.overridePythonAttrs (_: {{ preFixup = ""; }})
    """
    result = build(["-E", without], tmp_path / "without", check=False)
    assert result.returncode != 0
    assert "auto-patchelf could not satisfy dependency libfoo.so.1 wanted by" in result.stderr


def test_more_libraries_can_be_left_to_the_running_machine(index: Index, tmp_path: Path) -> None:
    require("patchelf", "patchelf")
    libs = tmp_path / "libs"
    libs.mkdir()
    shared_library(libs, "libodd.so.3", "int odd(void) { return 3; }")
    odd = shared_library(
        libs, "libuser.so", "int odd(void); int user(void) { return odd(); }", ["libodd.so.3"]
    )
    index.publish("odd", "1.0", tag=NATIVE_TAG, extra_files=(("odd/libuser.so", odd),))
    strict = sync_project(index, tmp_path / "strict", "odd\n", [HOST_SYSTEM])
    result = build([str(strict), "-A", "env", *pkgs_arg(HOST_SYSTEM)], tmp_path / "s", check=False)
    assert result.returncode != 0
    assert "could not satisfy dependency libodd.so.3" in result.stderr
    lenient = sync_project(
        index,
        tmp_path / "lenient",
        "odd\n",
        [HOST_SYSTEM],
        "ignore-missing-libraries: [libodd.so.3]\n",
    )
    assert (
        'ignoredLibraries = [\n    "libcuda.so.1"\n    "libodd.so.3"\n  ];' in lenient.read_text()
    )
    build([str(lenient), "-A", "env", *pkgs_arg(HOST_SYSTEM)], tmp_path / "l")


hostile = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=40
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hostile, min_size=1, max_size=20, unique=True))
def test_hostile_strings_round_trip_through_nix(values: list[str]) -> None:
    strings = "[ " + " ".join(string(v) for v in values) + " ]"
    names = "builtins.attrNames { " + " ".join(f"{attr(v)} = 1;" for v in values) + " }"
    result = nix(
        "nix-instantiate", "--eval", "--strict", "--json", "-E", f"[ ({strings}) ({names}) ]"
    )
    got_strings, got_names = json.loads(result.stdout)
    assert got_strings == values
    assert got_names == sorted(values, key=lambda v: v.encode())


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=hostile.filter(bool),
    version=hostile,
    url=hostile.filter(bool),
    filename=hostile.filter(bool),
)
def test_rendered_lock_with_hostile_fields_evaluates(
    name: str, version: str, url: str, filename: str
) -> None:
    package = LockedPackage(
        name=name,
        version=version,
        provider="wheel",
        file=LockedFile(filename, url, "ab" * 32),
        dependencies=(),
    )
    lock = Lock(
        systems=(SystemLock("x86_64-linux", "3.12", (package,), (Root(name, name, "r.txt:1"),)),),
        index="https://example.invalid/simple",
        snapshot=None,
    )
    text = render(lock, RenderOptions())
    # Every package instantiates with the stand-in: names, versions and file names reach Nix
    # only as escaped strings and valid store names.
    expression = f"""
      let d = ({text}) {{ pkgs = {stand_in()}; }};
      in {{
        names = builtins.attrNames d;
        drvs = map (p: p.drvPath) (builtins.attrValues d.packages);
        pnames = map (p: p.pname) (builtins.attrValues d.packages);
      }}
    """
    result = nix("nix-instantiate", "--eval", "--strict", "--json", "-E", expression)
    data = json.loads(result.stdout)
    assert data["names"] == ["env", "image", "overlay", "packages", "python", "shell"]
    assert data["pnames"] == [name] and data["drvs"][0].endswith(".drv")


def test_action_build_command_builds_the_image(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from action.__main__ import main as action_main

    output = tmp_path / "github-output"
    output.write_text("")
    for key, value in {
        "MACHCI_COMMAND": "build",
        "MACHCI_SYSTEMS": "x86_64-linux",
        "MACHCI_LOAD": "false",
        "MACHCI_NIX_ARGS": f"--arg pkgs '{stand_in()}'",
        "GITHUB_OUTPUT": str(output),
        "NIX_CONFIG": NIX_ENV["NIX_CONFIG"],
    }.items():
        monkeypatch.setenv(key, value)
    with contextlib.chdir(project.parent):
        assert action_main([]) == 0
    image = Path((project.parent / "result-image-x86_64-linux").resolve())
    assert output.read_text().splitlines()[1] == str(image)
    config = json.loads(image.read_text())
    assert config["name"] == "demo" and config["tag"] == "1.0"
    assert config["config"]["Cmd"][0].endswith("-python3-3.12.13-env/bin/python")


def test_build_commands_for_docker() -> None:
    from action.build import docker_commands, nix_build_command

    nix_command = nix_build_command(Path("default.nix"), "aarch64-linux", Path("r"), [])
    assert nix_command == [
        "nix-build",
        "default.nix",
        "-A",
        "image",
        "--argstr",
        "system",
        "aarch64-linux",
        "--arg",
        "pkgs",
        'import <nixpkgs> { system = "aarch64-linux"; }',
        "-o",
        "r",
    ]
    assert docker_commands(Path("r"), "demo:1.0", "ghcr.io/acme/app:1.0-arm64", push=True) == [
        ["docker", "load", "--input", "r"],
        ["docker", "tag", "demo:1.0", "ghcr.io/acme/app:1.0-arm64"],
        ["docker", "push", "ghcr.io/acme/app:1.0-arm64"],
    ]
