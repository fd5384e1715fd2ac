"""The hooks under the real pre-commit framework, in scratch repositories.

pre-commit installs this repository into a virtualenv of its own. To keep that offline, pip is
pointed at the session's wheelhouse (tests/fixtures/wheelhouse.py) and nothing else. The hooks
come from a copy of this checkout committed in a scratch repository (`hook_repo`), named by each
project's .pre-commit-config.yaml, so the module installs the hook environment once, in its own
pre-commit home (`pre-commit try-repo` would install it again on every run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT

ROOT = Path(__file__).resolve().parents[1]
IDENTITY = ("-c", "user.name=t", "-c", "user.email=t@e", "-c", "commit.gpgsign=false")


class HookRepo(NamedTuple):
    path: Path
    rev: str


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> HookRepo:
    """This checkout's files as they are on disk (committed or not, as `pre-commit try-repo`
    takes them), committed in a scratch repository: a repository and revision that a
    .pre-commit-config.yaml can name."""
    repo = tmp_path_factory.mktemp("hook-repo")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in sorted({os.fsdecode(n) for n in listed.split(b"\0") if n}):
        source = ROOT / name
        if source.is_symlink() or source.is_file():  # not a tracked file deleted on disk
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name, follow_symlinks=False)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "machci")
    return HookRepo(repo, git(repo, "rev-parse", "HEAD"))


@pytest.fixture(scope="module")
def hook_env(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> dict[str, str]:
    """The environment pre-commit runs in: a pre-commit home of the module's own, shared by its
    tests so the hook environment is installed once, and pip offline on the wheelhouse."""
    home = tmp_path_factory.mktemp("pre-commit-home")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "VIRTUALENV_", "PYTHONPATH")) and key != "SKIP"
    }
    env.update(
        PRE_COMMIT_HOME=str(home),
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheelhouse),
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        XDG_CACHE_HOME=str(home / "cache"),
    )
    return env


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *IDENTITY, *args], cwd=repo, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def init_repo(project: Path, hooks: HookRepo) -> None:
    """`project` as a git repository whose .pre-commit-config.yaml names both hooks."""
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hooks.path}\n    rev: {hooks.rev}\n"
        "    hooks:\n      - id: machci-sync\n      - id: machci-check\n"
    )
    git(project, "init", "-q")
    git(project, "add", "-A")


def pre_commit(
    project: Path, env: dict[str, str], *args: str, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`pre-commit ARGS` in `project`; its output and the hooks' in stdout."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "pre_commit", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )


def test_hooks_under_pre_commit(
    index: Index, tmp_path: Path, hook_env: dict[str, str], hook_repo: HookRepo
) -> None:
    index.publish("app", "1.0", requires_dist=("dep",))
    index.publish("dep", "1.0")
    index.publish("other", "1.0")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "requirements.txt").write_text("app\n")
    (repo / "machci.yaml").write_text(
        f"requirements: [requirements.txt]\ndata: {{index: {index.url}, snapshot: '{SNAPSHOT}'}}\n"
    )
    init_repo(repo, hook_repo)
    git(repo, "commit", "-qm", "init")

    def hook(name: str) -> subprocess.CompletedProcess[str]:
        return pre_commit(repo, hook_env, "run", name, "--all-files")

    first = hook("machci-sync")
    assert first.returncode == 1, first.stdout
    assert "created default.nix" in first.stdout
    assert (repo / "default.nix").is_file()

    second = hook("machci-sync")
    assert second.returncode == 0, second.stdout
    check = hook("machci-check")
    assert check.returncode == 0, check.stdout

    (repo / "requirements.txt").write_text("app\nother\n")
    stale = hook("machci-check")
    assert stale.returncode == 1
    assert "requirements.txt changed since default.nix was generated" in stale.stdout
