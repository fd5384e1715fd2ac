"""The hooks under the real pre-commit framework (`pre-commit try-repo` on a scratch repo).

pre-commit installs this repository into a virtualenv of its own. To keep that offline, pip is
pointed at the session's wheelhouse (tests/fixtures/wheelhouse.py) and nothing else.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared by the module so the hook environment is installed once."""
    return tmp_path_factory.mktemp("pre-commit-home")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def try_repo(
    repo: Path, home: Path, wheelhouse: Path, hook: str
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "VIRTUALENV_", "PYTHONPATH"))
    }
    env.update(
        PRE_COMMIT_HOME=str(home),
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheelhouse),
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        XDG_CACHE_HOME=str(home / "cache"),
    )
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), hook, "--all-files"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_hooks_under_pre_commit(
    index: Index, tmp_path: Path, pre_commit_home: Path, wheelhouse: Path
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
    git(repo, "init", "-q")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "init")

    first = try_repo(repo, pre_commit_home, wheelhouse, "machci-sync")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "created default.nix" in first.stdout
    assert (repo / "default.nix").is_file()

    second = try_repo(repo, pre_commit_home, wheelhouse, "machci-sync")
    assert second.returncode == 0, second.stdout + second.stderr
    check = try_repo(repo, pre_commit_home, wheelhouse, "machci-check")
    assert check.returncode == 0, check.stdout + check.stderr

    (repo / "requirements.txt").write_text("app\nother\n")
    stale = try_repo(repo, pre_commit_home, wheelhouse, "machci-check")
    assert stale.returncode == 1
    assert "requirements.txt changed since default.nix was generated" in stale.stdout
