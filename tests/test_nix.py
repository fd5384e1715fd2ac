"""The generated default.nix under real Nix: parse, evaluate, build offline, import."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machci.lock import Lock, LockedFile, LockedPackage, Root, SystemLock
from machci.nix.escape import attr, string
from machci.nix.render import RenderOptions, render
from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, run

STAND_IN = Path(__file__).parent / "nix" / "pkgs.nix"
HOST_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
LINUX = ("x86_64-linux", "aarch64-linux")

if shutil.which("nix-instantiate") is None:  # pragma: no cover - .ci/run installs nix-bin
    if os.environ.get("CI"):
        raise RuntimeError("CI needs nix-instantiate: install Debian's nix-bin")
    pytest.skip("nix is not installed", allow_module_level=True)

# Builds run as the calling user (no build users: the host Python may live in a private home).
NIX_ENV = {**os.environ, "NIX_CONFIG": "substituters =\nsandbox = false\nbuild-users-group ="}


def nix(
    *args: str, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(args), capture_output=True, text=True, env=NIX_ENV, check=False, cwd=cwd
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stderr}")
    return result


def stand_in(system: str = "x86_64-linux") -> str:
    """A Nix expression for the stand-in package set."""
    return (
        f"(import {STAND_IN} {{ hostPython = {string(sys.executable)};"
        f" pythonVersion = {string(HOST_PYTHON)}; system = {string(system)}; }})"
    )


def pkgs_arg(system: str = "x86_64-linux") -> list[str]:
    return ["--arg", "pkgs", stand_in(system)]


def sync_project(index: Index, project: Path, requirements: str) -> Path:
    project.mkdir(parents=True, exist_ok=True)
    (project / "requirements.txt").write_text(requirements)
    (project / "machci.yaml").write_text(
        "requirements: [requirements.txt]\n"
        f'python: "{HOST_PYTHON}"\n'
        "systems: [x86_64-linux, aarch64-linux]\n"
        f"data: {{index: {index.url}, snapshot: '{SNAPSHOT}'}}\n"
        "image: {name: demo, tag: '1.0'}\n"
    )
    with contextlib.chdir(project):
        result = run("sync", "--cache-dir", ".cache")
    assert result.code == 1, result.err
    return project / "default.nix"


def seed_store(index: Index, default_nix: Path) -> None:
    """Put every locked file into the store the way a fetch would, so builds stay offline."""
    for filename in sorted(set(re.findall(r'"([^"]+)" = pkgs\.fetchurl', default_nix.read_text()))):
        nix("nix-store", "--add-fixed", "sha256", str(index.path_of(filename)))


@pytest.fixture
def project(index: Index, tmp_path: Path) -> Path:
    index.publish("beta", "2.0")
    index.publish("alpha", "1.0", requires_dist=("beta>=2",))
    index.publish("flit-core", "3.9")
    index.publish("gamma", "0.5", kind="sdist", build_requires=("flit-core",))
    default_nix = sync_project(index, tmp_path / "project", "alpha\ngamma\n")
    seed_store(index, default_nix)
    return default_nix


def test_generated_file_parses(project: Path) -> None:
    nix("nix-instantiate", "--parse", str(project))


def test_env_builds_offline_and_imports_every_package(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "result"
    nix("nix-build", str(project), "-A", "env", *pkgs_arg(), "-o", str(out))
    code = (
        "import alpha, beta, gamma; print(alpha.__version__, beta.__version__, gamma.__version__)"
    )
    result = subprocess.run(
        [str(out / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["1.0", "2.0", "0.5"]
    flit = subprocess.run([str(out / "bin" / "python"), "-c", "import flit_core"], check=False)
    assert flit.returncode != 0  # a build requirement is not part of the environment


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


def test_packages_and_overlay(project: Path) -> None:
    expression = f"""
      let
        pkgs = {stand_in()};
        d = import {project} {{ inherit pkgs; }};
        base = pkgs.python311.pkgs;
        fixed = let self = base // d.overlay self base; in self;
      in {{
        names = builtins.attrNames d.packages;
        alpha = d.packages.alpha.version;
        overlaid = fixed.alpha.requiredPythonModules;
      }}
    """
    result = nix("nix-instantiate", "--eval", "--strict", "--json", "-E", expression)
    data = json.loads(result.stdout)
    assert data["names"] == ["alpha", "beta", "flit-core", "gamma"]
    assert data["alpha"] == "1.0"
    assert [Path(p).name.split("-", 1)[1] for p in data["overlaid"]] == ["python3.11-beta-2.0"]


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
@given(name=hostile.filter(bool), version=hostile, url=hostile, filename=hostile.filter(bool))
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
    expression = (
        f'let d = ({text}) {{ pkgs = {{ }}; python = {{ }}; system = "x86_64-linux"; }}; in'
        f" builtins.attrNames d"
    )
    result = nix("nix-instantiate", "--eval", "--strict", "--json", "-E", expression)
    assert json.loads(result.stdout) == ["env", "image", "overlay", "packages", "shell"]


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
    assert config["config"]["Cmd"][0].endswith("-python3.11-env/bin/python")


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
