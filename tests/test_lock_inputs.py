"""Lock files as inputs, written by uv itself against the loopback index (pylock.toml,
uv.lock) and by hand in Poetry's format: every pin is kept, with a file the lock lists."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, Run, run

pytestmark = pytest.mark.skipif(shutil.which("uv") is None, reason="uv is a test dependency")

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
CP = f"cp{sys.version_info.major}{sys.version_info.minor}"
X86 = f"{CP}-{CP}-manylinux_2_17_x86_64.manylinux2014_x86_64"
ARM = f"{CP}-{CP}-manylinux_2_17_aarch64.manylinux2014_aarch64"
PYPROJECT = """[project]
name = "app"
version = "0.1"
requires-python = ">=3.11"
dependencies = ["pure", "fromsource"]

[project.optional-dependencies]
fast = ["speedups"]

[dependency-groups]
dev = ["checker"]
"""


def publish(index: Index) -> None:
    index.publish("native", "1.0", tag=X86)
    index.publish("native", "1.0", tag=ARM)
    index.publish("pure", "1.0", requires_dist=("native",))
    index.publish("pure", "2.0", requires_dist=("native",))
    index.publish("fromsource", "0.5", kind="sdist")
    index.publish("speedups", "1.0")
    index.publish("checker", "4.0")


def uv(project: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    env.update(UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never", UV_CACHE_DIR=str(project / ".uv"))
    result = subprocess.run(
        ["uv", *args, "--python", sys.executable],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def uv_pylock(index: Index, project: Path) -> None:
    """pylock.toml for x86_64 Linux from requirements.in, as `uv pip compile` writes it."""
    uv(
        project,
        "pip",
        "compile",
        "requirements.in",
        "-o",
        "pylock.toml",
        "--index-url",
        index.url,
        "--python-platform",
        "x86_64-manylinux_2_28",
    )


def machci_lock(
    index: Index, project: Path, lock: str, *args: str, systems: tuple[str, ...]
) -> Run:
    argv = ["lock", "--json", "-r", lock, "--index-url", index.url, "--snapshot", SNAPSHOT]
    argv += ["--python", PYTHON, "--cache-dir", ".cache", *args]
    for system in systems:
        argv += ["--system", system]
    with contextlib.chdir(project):
        return run(*argv)


def locked_files(result: Run, system: str) -> dict[str, tuple[str, str]]:
    return {
        name: (entry["version"], entry["file"]["sha256"])
        for name, entry in result.packages(system).items()
    }


def test_a_pylock_from_uv_is_kept_pin_for_pin(index: Index, tmp_path: Path) -> None:
    publish(index)
    (tmp_path / "requirements.in").write_text("pure==1.0\nfromsource\n")
    uv_pylock(index, tmp_path)
    lock = tomllib.loads((tmp_path / "pylock.toml").read_text())
    expected = {
        p["name"]: (
            p["version"],
            {
                f["hashes"]["sha256"]
                for f in [*p.get("wheels", []), *([p["sdist"]] if "sdist" in p else [])]
            },
        )
        for p in lock["packages"]
    }
    result = machci_lock(index, tmp_path, "pylock.toml", systems=("x86_64-linux",))
    assert result.code == 0, result.err
    got = locked_files(result, "x86_64-linux")
    assert got.keys() == expected.keys() == {"pure", "native", "fromsource"}
    for name, (version, sha256) in got.items():
        assert version == expected[name][0]
        assert sha256 in expected[name][1]
    assert got["pure"][0] == "1.0"  # the lock's pin, though 2.0 is newer


def test_a_system_the_pylock_has_no_file_for_is_named(index: Index, tmp_path: Path) -> None:
    publish(index)
    (tmp_path / "requirements.in").write_text("pure\n")
    uv_pylock(index, tmp_path)
    result = machci_lock(index, tmp_path, "pylock.toml", systems=("aarch64-linux",))
    lines = (tmp_path / "pylock.toml").read_text().splitlines()
    line = lines.index('name = "native"')  # its [[packages]] header is the line above
    assert (result.code, result.err) == (
        2,
        f"machci: error: pylock.toml:{line}: native 1.0: the lock lists no file aarch64-linux"
        f" can install (it lists native-1.0-{X86}.whl)\n",
    )


def test_a_uv_lock_gives_its_roots_extras_and_groups(index: Index, tmp_path: Path) -> None:
    publish(index)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT + "\n[tool.uv]\npackage = false\n")
    uv(tmp_path, "lock", "--default-index", index.url)
    index.publish("pure", "3.0", requires_dist=("native",))  # newer than the lock: not taken
    systems = ("aarch64-linux", "x86_64-linux")
    plain = machci_lock(index, tmp_path, "uv.lock", systems=systems)
    assert plain.code == 0, plain.err
    assert plain.versions() == {"fromsource": "0.5", "native": "1.0", "pure": "2.0"}
    lock = tomllib.loads((tmp_path / "uv.lock").read_text())
    hashes = {
        p["name"]: {
            f["hash"].removeprefix("sha256:")
            for f in [*p.get("wheels", []), *([p["sdist"]] if "sdist" in p else [])]
        }
        for p in lock["package"]
        if "registry" in p["source"]
    }
    for system in systems:
        for name, (_version, sha256) in locked_files(plain, system).items():
            assert sha256 in hashes[name], (system, name)
    selected = machci_lock(
        index, tmp_path, "uv.lock", "--extra", "fast", "--group", "dev", systems=systems
    )
    assert selected.code == 0, selected.err
    assert set(selected.versions()) == {"checker", "fromsource", "native", "pure", "speedups"}
    unknown = machci_lock(index, tmp_path, "uv.lock", "--extra", "nope", systems=systems)
    assert unknown.code == 2
    assert "no extra 'nope' in the lock's root project (available: fast)" in unknown.err


def poetry_lock(index: Index) -> str:
    def files(*names: str) -> str:
        return ", ".join(f'{{file = "{n}", hash = "sha256:{index.sha256(n)}"}}' for n in names)

    wheel = f"native-1.0-{X86}.whl"
    arm = f"native-1.0-{ARM}.whl"
    return f"""# This file is automatically @generated by Poetry 2.1.3.

[[package]]
name = "fromsource"
version = "0.5"
description = ""
optional = false
python-versions = "*"
groups = ["main"]
files = [{files("fromsource-0.5.tar.gz")}]

[[package]]
name = "native"
version = "1.0"
description = ""
optional = false
python-versions = "*"
groups = ["main"]
files = [{files(wheel, arm)}]

[[package]]
name = "pure"
version = "1.0"
description = ""
optional = false
python-versions = "*"
groups = ["main"]
files = [{files("pure-1.0-py3-none-any.whl")}]

[package.dependencies]
native = "*"

[[package]]
name = "checker"
version = "4.0"
description = ""
optional = false
python-versions = "*"
groups = ["dev"]
files = [{files("checker-4.0-py3-none-any.whl")}]

[metadata]
lock-version = "2.1"
python-versions = ">=3.11"
content-hash = "0000000000000000000000000000000000000000000000000000000000000000"
"""


def test_a_poetry_lock_takes_its_roots_from_pyproject(index: Index, tmp_path: Path) -> None:
    publish(index)
    (tmp_path / "poetry.lock").write_text(poetry_lock(index))
    (tmp_path / "pyproject.toml").write_text(
        '[tool.poetry]\nname = "app"\nversion = "0.1"\n\n[tool.poetry.dependencies]\n'
        'python = ">=3.11"\npure = "^1.0"\nfromsource = "*"\n\n'
        '[tool.poetry.group.dev.dependencies]\nchecker = "*"\n'
    )
    result = machci_lock(index, tmp_path, "poetry.lock", systems=("x86_64-linux",))
    assert result.code == 0, result.err
    assert result.versions() == {"fromsource": "0.5", "native": "1.0", "pure": "1.0"}
    with_dev = machci_lock(
        index, tmp_path, "poetry.lock", "--group", "dev", systems=("x86_64-linux",)
    )
    assert with_dev.versions()["checker"] == "4.0"


def test_a_pin_the_index_does_not_have_is_named(index: Index, tmp_path: Path) -> None:
    publish(index)
    (tmp_path / "requirements.in").write_text("pure==1.0\n")
    uv_pylock(index, tmp_path)
    path = tmp_path / "pylock.toml"
    path.write_text(
        path.read_text().replace('name = "pure"\nversion = "1.0"', 'name = "pure"\nversion = "1.5"')
    )
    result = machci_lock(index, tmp_path, "pylock.toml", systems=("x86_64-linux",))
    assert result.code == 2, result.err
    assert "pylock.toml:" in result.err


def test_a_dependency_the_lock_does_not_pin_is_named(index: Index, tmp_path: Path) -> None:
    """A lock is a whole environment: machci adds build requirements, not runtime packages."""
    publish(index)
    (tmp_path / "requirements.in").write_text("pure==1.0\n")
    uv_pylock(index, tmp_path)
    path = tmp_path / "pylock.toml"
    text = path.read_text()
    start = text.index('[[packages]]\nname = "native"')
    end = text.index("[[packages]]", start + 1)
    path.write_text(text[:start] + text[end:])
    result = machci_lock(index, tmp_path, "pylock.toml", systems=("x86_64-linux",))
    line = path.read_text().splitlines().index('name = "pure"')
    assert (result.code, result.err) == (
        2,
        f"machci: error: pylock.toml:{line}: pure 1.0 requires native on x86_64-linux, which the"
        " lock does not pin\n",
    )


def test_a_changed_lock_makes_default_nix_stale(index: Index, tmp_path: Path) -> None:
    """A lock is an input of the header like a requirements file: check names it, sync
    follows it."""
    publish(index)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT + "\n[tool.uv]\npackage = false\n")
    uv(tmp_path, "lock", "--default-index", index.url)
    (tmp_path / "machci.yaml").write_text(
        "requirements: [uv.lock]\nsystems: [x86_64-linux]\n"
        f"python: '{PYTHON}'\ndata: {{index: {index.url}, snapshot: '{SNAPSHOT}'}}\n"
    )
    with contextlib.chdir(tmp_path):
        assert run("sync", "--cache-dir", ".cache").code == 1
        assert run("check").code == 0
        lock = tmp_path / "uv.lock"
        lock.write_text(lock.read_text().replace('version = "2.0"', 'version = "1.0"'))
        stale = run("check")
        assert stale.code == 1
        assert "uv.lock changed since default.nix was generated" in stale.err


def test_a_system_the_uv_lock_has_no_file_for_is_named(index: Index, tmp_path: Path) -> None:
    publish(index)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT + "\n[tool.uv]\npackage = false\n")
    uv(tmp_path, "lock", "--default-index", index.url)
    lock = tmp_path / "uv.lock"
    lines = lock.read_text().splitlines(keepends=True)
    lock.write_text("".join(line for line in lines if "native-1.0" not in line or "x86_64" in line))
    result = machci_lock(index, tmp_path, "uv.lock", systems=("aarch64-linux",))
    line = [text.rstrip("\n") for text in lines].index('name = "native"')
    assert (result.code, result.err) == (
        2,
        f"machci: error: uv.lock:{line}: native 1.0: the lock lists no file aarch64-linux can"
        f" install (it lists native-1.0-{X86}.whl)\n",
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "uv.lock",
            "version = 9\n",
            "uv.lock: unsupported uv.lock version 9 (machci reads version 1)",
        ),
        (
            "poetry.lock",
            '[metadata]\nlock-version = "9.9"\n',
            "poetry.lock: unsupported poetry.lock lock-version '9.9' (machci reads 1.1, 2.0, 2.1)",
        ),
        (
            "pylock.toml",
            'lock-version = "2.0"\ncreated-by = "x"\npackages = []\n',
            "pylock.toml: unsupported lock-version: ",
        ),
        ("uv.lock", "version = 1\n[[package]\n", "uv.lock: invalid TOML: "),
    ],
)
def test_a_lock_of_an_unknown_version_or_bad_toml_is_refused(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n')
    with contextlib.chdir(tmp_path):
        result = run("lock", "-r", name, "--index-url", "http://127.0.0.1:9/simple")
    assert result.code == 2
    assert result.err.startswith(f"machci: error: {message}"), result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "pyproject.toml"])
