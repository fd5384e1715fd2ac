"""The command line: layering of config and options, exit codes, and nothing written on errors."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from machci.config.load import load_config
from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, lock, run

ROOT = Path(__file__).resolve().parents[1]


def write_project(path: Path, index: Index, extra: str = "") -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "requirements.txt").write_text("app\n")
    (path / "machci.yaml").write_text(
        "# project settings\n"
        "requirements: [requirements.txt]\n"
        'python: "3.12"\n'
        "systems: [x86_64-linux, aarch64-linux]\n"
        "data:\n"
        "  source: pypi\n"
        f"  index: {index.url}\n"
        f'  snapshot: "{SNAPSHOT}"\n' + extra
    )


def test_config_file_drives_lock(index: Index, tmp_path: Path) -> None:
    index.publish("app", "1.0")
    write_project(tmp_path, index)
    with contextlib.chdir(tmp_path):
        result = run("lock", "--json", "--cache-dir", ".cache")
    data = result.lock
    assert sorted(data["systems"]) == ["aarch64-linux", "x86_64-linux"]
    assert data["data"] == {"source": "pypi", "index": index.url, "snapshot": SNAPSHOT}
    assert data["systems"]["x86_64-linux"]["roots"] == [
        {"name": "app", "requirement": "app", "source": "requirements.txt:1"}
    ]


def test_command_line_overrides_config(index: Index, tmp_path: Path) -> None:
    index.publish("app", "1.0", requires_python=">=3.8")
    index.publish("app", "2.0", requires_python=">=3.13")
    write_project(tmp_path / "p", index)
    config = str(tmp_path / "p" / "machci.yaml")
    result = run(
        "lock",
        "--json",
        "--config",
        config,
        "--python",
        "3.13",
        "--system",
        "aarch64-darwin",
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    data = result.lock
    assert list(data["systems"]) == ["aarch64-darwin"]
    assert data["systems"]["aarch64-darwin"]["packages"]["app"]["version"] == "2.0"


def test_summary_and_output_file(index: Index, tmp_path: Path) -> None:
    index.publish("app", "1.0")
    write_project(tmp_path, index)
    with contextlib.chdir(tmp_path):
        summary = run("lock", "--cache-dir", ".cache")
        written = run("lock", "--cache-dir", ".cache", "-o", "lock.json")
    assert summary.code == 0
    assert "x86_64-linux (Python 3.12): 1 packages" in summary.out
    assert "  app==1.0  [wheel]" in summary.out
    assert written.out == ""
    assert json.loads((tmp_path / "lock.json").read_text())["systems"]["x86_64-linux"]


@pytest.mark.parametrize(
    "requirements, code, message",
    [
        ("app\nfoo[bar\n", 2, "requirements.txt:2: invalid requirement 'foo[bar'"),
        ("-r missing.txt\n", 2, "requirements.txt:1: requirements file 'missing.txt' not found"),
        ("-r requirements.txt\n", 2, "include cycle"),
        ("app\nnope\n", 1, "no package named 'nope'"),
        ("app>=9\n", 1, "no version of app matches >=9"),
    ],
)
def test_bad_input_writes_nothing(
    index: Index, tmp_path: Path, requirements: str, code: int, message: str
) -> None:
    index.publish("app", "1.0")
    (tmp_path / "lock.json").write_text("previous\n")
    result = lock(index, tmp_path, requirements, "-o", "lock.json")
    assert result.code == code
    assert message in result.err
    assert result.err.count("\n") >= 1 and "Traceback" not in result.err
    assert (tmp_path / "lock.json").read_text() == "previous\n"
    assert not list(tmp_path.glob(".lock.json.*"))


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            "sytems: [x86_64-linux]\n",
            "machci.yaml:9: unknown key 'sytems'; did you mean 'systems'?",
        ),
        ("providers: {_default: 'wheel,egg'}\n", "machci.yaml:9: invalid provider list"),
        ("glibc: two\n", "machci.yaml:9: invalid glibc 'two'"),
    ],
)
def test_bad_config_is_reported_with_line(
    index: Index, tmp_path: Path, extra: str, message: str
) -> None:
    write_project(tmp_path, index, extra)
    with contextlib.chdir(tmp_path):
        result = run("lock", "--cache-dir", ".cache")
    assert result.code == 2
    assert message in result.err


def test_bad_snapshot_option(tmp_path: Path) -> None:
    (tmp_path / "r.txt").write_text("app\n")
    result = run("lock", "-r", str(tmp_path / "r.txt"), "--snapshot", "yesterday")
    assert result.code == 2
    assert "invalid snapshot 'yesterday'" in result.err


def test_no_requirements_at_all(tmp_path: Path) -> None:
    with contextlib.chdir(tmp_path):
        result = run("lock")
    assert result.code == 2
    assert "no requirements given" in result.err


def test_why_for_a_package_not_in_the_lock(index: Index, tmp_path: Path) -> None:
    index.publish("app", "1.0")
    write_project(tmp_path, index)
    with contextlib.chdir(tmp_path):
        result = run("why", "other", "--cache-dir", ".cache")
    assert result.code == 1
    assert "other is not in the lock" in result.err


def test_python_dash_m_entry_point() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-m", "machci", "--version"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("machci ")


def test_example_project_config_is_valid() -> None:
    config = load_config(ROOT / "examples" / "basic" / "machci.yaml")
    assert config.systems == ("x86_64-linux", "aarch64-linux")
    assert config.requirements[0].path == ROOT / "examples" / "basic" / "requirements.txt"
    assert config.requirements[0].path.is_file()


def test_example_default_nix_is_in_sync() -> None:
    """The committed example output matches its inputs (offline check, as pre-commit.ci runs)."""
    result = run("check", "--config", str(ROOT / "examples" / "basic" / "machci.yaml"))
    assert result.code == 0, result.err


def test_x86_64_darwin_is_locked_with_a_warning_about_nixpkgs(index: Index, tmp_path: Path) -> None:
    index.publish("app", "1.0")
    write_project(tmp_path, index)
    with contextlib.chdir(tmp_path):
        darwin = run("lock", "--system", "x86_64-darwin", "--cache-dir", ".cache")
        linux = run("lock", "--cache-dir", ".cache")
    assert darwin.code == 0 and linux.code == 0
    assert "machci: warning: x86_64-darwin: nixpkgs 26.11 and later refuse" in darwin.err
    assert "warning" not in linux.err


def test_lock_loads_what_it_may_not_need_only_when_needed() -> None:
    """`machci lock -r …` on a warm cache needs no machci.yaml reader (ruamel.yaml, the
    schema), no pypi-deps-db reader, no file locks, no platform directories and no HTTP
    client: the lock command imports none of them up front."""
    code = (
        "import sys; import machci.cli, machci.commands.lock;"
        " later = ('ruamel.yaml', 'jsonschema', 'machci.config.load', 'machci.config.schema',"
        " 'machci.sources.depsdb.source', 'filelock', 'platformdirs', 'urllib3');"
        " print(sorted(m for m in later if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"
