"""`machci lock -o pylock.toml`: PEP 751 that packaging.pylock selects from exactly as machci
locked, system by system, and that uv installs."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import cast

import pytest
from packaging.markers import Environment
from packaging.pylock import PackageSdist, PackageWheel, Pylock

from machci.inputs.targets import Target
from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, Run, lock, run, write_project

SYSTEMS = ("aarch64-darwin", "aarch64-linux", "x86_64-linux")
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"  # uv installs into this one
CP = f"cp{sys.version_info.major}{sys.version_info.minor}"


def publish(index: Index) -> None:
    """A package with one wheel per platform, a pure one needing it, an sdist-only one, and a
    package whose wheel one system cannot use (it takes the sdist there)."""
    index.publish("native", "1.0", tag=f"{CP}-{CP}-manylinux_2_17_x86_64.manylinux2014_x86_64")
    index.publish("native", "1.0", tag=f"{CP}-{CP}-manylinux_2_17_aarch64.manylinux2014_aarch64")
    index.publish("native", "1.0", tag=f"{CP}-{CP}-macosx_11_0_arm64")
    index.publish("pure", "2.0", requires_dist=("native",))
    index.publish("fromsource", "0.5", kind="sdist")
    index.publish("linuxwheel", "3.0", kind="sdist")
    index.publish("linuxwheel", "3.0", tag="py3-none-manylinux_2_17_x86_64")
    index.publish("linuxwheel", "3.0", tag="py3-none-manylinux_2_17_aarch64")


def lock_to(index: Index, project: Path, name: str = "pylock.toml", cache: str = ".cache") -> Path:
    project.mkdir(parents=True, exist_ok=True)
    (project / "requirements.txt").write_text("pure\nfromsource\nlinuxwheel\n")
    argv = ["lock", "-r", "requirements.txt", "--index-url", index.url, "--snapshot", SNAPSHOT]
    argv += ["--python", PYTHON, "--cache-dir", str(project / cache), "-o", str(project / name)]
    for system in SYSTEMS:
        argv += ["--system", system]
    with contextlib.chdir(project):
        result = run(*argv)
    assert result.code == 0, result.err
    return project / name


def select(document: Pylock, system: str) -> list[tuple[str, tuple[str, str]]]:
    """(name, (version, file name)) of each file packaging.pylock selects for a system."""
    target = Target(system, PYTHON)
    found = []
    for package, file in document.select(
        environment=cast(Environment, target.environment), tags=target.tags
    ):
        assert isinstance(file, PackageWheel | PackageSdist) and file.name is not None
        found.append((str(package.name), (str(package.version), file.name)))
    return found


def assert_selects_what_machci_locks(index: Index, tmp_path: Path, document: Pylock) -> None:
    """For every system, packaging.pylock selects the very files `machci lock` locks."""
    requirements = "pure\nfromsource\nlinuxwheel\n"
    locked = lock(index, tmp_path / "json", requirements, "--python", PYTHON, systems=SYSTEMS)
    for system in SYSTEMS:
        expected = {
            (name, (entry["version"], entry["file"]["filename"]))
            for name, entry in locked.packages(system).items()
        }
        assert set(select(document, system)) == expected, system


def test_select_returns_what_machci_locked_for_each_system(index: Index, tmp_path: Path) -> None:
    publish(index)
    path = lock_to(index, tmp_path / "p")
    document = Pylock.from_dict(tomllib.loads(path.read_text()))
    assert document.created_by == "machci"
    python = f'python_version == "{PYTHON}"'
    assert [str(m) for m in document.environments or ()] == [
        f'sys_platform == "darwin" and platform_machine == "arm64" and {python}',
        f'sys_platform == "linux" and platform_machine == "aarch64" and {python}',
        f'sys_platform == "linux" and platform_machine == "x86_64" and {python}',
    ]
    assert str(document.requires_python) == f"=={PYTHON}.*"
    assert_selects_what_machci_locks(index, tmp_path, document)
    # The darwin system builds linuxwheel from its sdist; the Linux systems take their wheels.
    assert dict(select(document, "aarch64-darwin"))["linuxwheel"][1] == "linuxwheel-3.0.tar.gz"


def test_every_file_has_url_size_upload_time_and_sha256(index: Index, tmp_path: Path) -> None:
    publish(index)
    data = tomllib.loads(lock_to(index, tmp_path / "p").read_text())
    assert data["lock-version"] == "1.0"
    files = [
        (package["name"], file)
        for package in data["packages"]
        for file in [
            *package.get("wheels", []),
            *([package["sdist"]] if "sdist" in package else []),
        ]
    ]
    assert {name for name, _ in files} == {"fromsource", "linuxwheel", "native", "pure"}
    for _name, file in files:
        assert file["url"].startswith(index.url.rsplit("/simple", 1)[0])
        assert file["size"] == index.path_of(file["name"]).stat().st_size
        assert str(file["upload-time"]) == "2024-01-01 00:00:00+00:00"
        assert file["hashes"] == {"sha256": index.sha256(file["name"])}


def test_the_bytes_do_not_depend_on_the_run_or_the_cache(index: Index, tmp_path: Path) -> None:
    publish(index)
    first = lock_to(index, tmp_path / "a").read_bytes()
    again = lock_to(index, tmp_path / "a", "pylock.again.toml").read_bytes()  # warm cache
    elsewhere = lock_to(index, tmp_path / "b", cache="other").read_bytes()
    assert first == again == elsewhere
    assert b"\r" not in first and str(tmp_path).encode() not in first


def test_other_names_still_get_machci_s_json(index: Index, tmp_path: Path) -> None:
    publish(index)
    path = lock_to(index, tmp_path / "p", "lock.json")
    assert path.read_text().startswith("{")
    assert lock_to(index, tmp_path / "p", "pylock.dev.toml").read_text().startswith("lock-version")


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is a test dependency")
def test_uv_installs_the_lock(index: Index, tmp_path: Path) -> None:
    publish(index)
    path = lock_to(index, tmp_path / "p")
    target = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    env.update(UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never", UV_CACHE_DIR=str(tmp_path / "uv"))
    result = subprocess.run(
        [
            "uv",
            "pip",
            "install",
            "--python",
            sys.executable,
            "--target",
            str(target),
            "-r",
            str(path),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    installed = {p.name.split("-")[0] for p in target.glob("*.dist-info")}
    assert installed == {"fromsource", "linuxwheel", "native", "pure"}


def sync_project(index: Index, project: Path, outputs: str) -> Path:
    write_project(
        project,
        index,
        "pure\nfromsource\nlinuxwheel\n",
        systems=SYSTEMS,
        extra=f"python: '{PYTHON}'\noutput: {outputs}\n",
    )
    return project


def machci_in(project: Path, *args: str) -> Run:
    with contextlib.chdir(project):
        return run(*args, "--cache-dir", ".cache")


def test_sync_keeps_a_pylock_beside_default_nix(index: Index, tmp_path: Path) -> None:
    publish(index)
    project = sync_project(index, tmp_path / "p", "[default.nix, pylock.toml]")
    first = machci_in(project, "sync")
    assert first.code == 1, first.err
    assert "created" in first.err and "pylock.toml" in first.err
    text = (project / "pylock.toml").read_text()
    assert text.startswith("# Generated by machci")
    assert "# machci-lock: pylock.toml" in (project / "default.nix").read_text()
    document = Pylock.from_dict(tomllib.loads(text))
    assert_selects_what_machci_locks(index, tmp_path, document)
    assert machci_in(project, "check").code == 0
    assert machci_in(project, "sync").code == 0  # up to date: nothing written
    (project / "pylock.toml").write_text(text.replace('version = "2.0"', 'version = "2.1"'))
    stale = machci_in(project, "check")
    assert stale.code == 1
    assert "pylock.toml was edited by hand" in stale.err
    again = machci_in(project, "sync")
    assert again.code == 1 and "updated" in again.err
    assert (project / "pylock.toml").read_text() == text


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (
            "[default.nix, other.nix]",
            "output: name one Nix file (and any pylock.toml or pylock.NAME.toml files to write"
            " beside it), not 2",
        ),
        (
            "[default.nix, sub/pylock.toml]",
            "output: pylock.toml goes beside default.nix, in the same directory",
        ),
        ("[pylock.toml, pylock.toml]", "output: 'pylock.toml' is named twice"),
    ],
)
def test_bad_outputs_are_refused(index: Index, tmp_path: Path, outputs: str, message: str) -> None:
    project = sync_project(index, tmp_path / "p", outputs)
    result = machci_in(project, "check")
    assert result.code == 2
    assert message in result.err
