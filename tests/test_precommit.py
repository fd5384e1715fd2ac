"""The hooks under the real pre-commit framework, in scratch repositories.

pre-commit installs this repository into a virtualenv of its own. To keep that offline, pip is
pointed at the session's wheelhouse (tests/fixtures/wheelhouse.py) and nothing else. The hooks
come from a copy of this checkout committed in a scratch repository (`hook_repo`), named by each
project's .pre-commit-config.yaml, so the module installs the hook environment once, in its own
pre-commit home (`pre-commit try-repo` would install it again on every run).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, run

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


def commit(
    project: Path, env: dict[str, str], *args: str, skip: str = ""
) -> subprocess.CompletedProcess[str]:
    """`git commit` of what is staged, through the installed hooks (`skip`: SKIP=, a hook id)."""
    return subprocess.run(
        ["git", *IDENTITY, "commit", "-m", "edit", *args],
        cwd=project,
        env={**env, "SKIP": skip},
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


# A project with an input of every kind default.nix's header records, and flake.nix. Besides
# requirements.txt and machci.yaml, none is named in a way a file pattern of the hooks could know.
CONFIG = """\
requirements: [requirements.txt]
systems: [x86_64-linux]
data: {{index: {index}, snapshot: '{snapshot}'}}
providers: {{dep: 'nixpkgs,wheel'}}
nixpkgs: {{index: nixpkgs-python.json}}
packagesExtra: [{{path: lib}}]
buildConstraints: [{{path: build-tools.txt}}]
overrides:
  app: {{patches: "[ ./patches/app.patch ]"}}
overridesPost: [nix/post.nix]
flake: true
"""

# A tree whose metadata setup.cfg declares, built by a backend of its own.
LIB_PYPROJECT = """\
[build-system]
requires = []
build-backend = "backend"
backend-path = ["_backend"]
"""
LIB_BACKEND = """\
def get_requires_for_build_wheel(config_settings=None):
    return []
"""

LIB_SETUP_CFG = """\
[metadata]
name = lib
version = 1.0

[options]
install_requires =
    dep
"""


def write_project(project: Path, index: Index) -> None:
    files = {
        "requirements.txt": "-r common.txt\n",
        "common.txt": "app\n",
        "machci.yaml": CONFIG.format(index=index.url, snapshot=SNAPSHOT),
        "nixpkgs-python.json": json.dumps({"dep": [{"attr": "dep", "version": "1.0"}]}) + "\n",
        "lib/pyproject.toml": LIB_PYPROJECT,
        "lib/_backend/backend.py": LIB_BACKEND,
        "lib/setup.cfg": LIB_SETUP_CFG,
        "build-tools.txt": "setuptools<99\n",
        "patches/app.patch": "--- a/app.py\n+++ b/app.py\n",
        "nix/post.nix": "final: prev: { }\n",
    }
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


class Edit(NamedTuple):
    """An edit of one input, what `machci check` says of it, and what `machci sync` rewrites."""

    path: str
    old: str
    new: str
    problem: str
    locked: str = ""  # in the new default.nix, not in the old: what the resolver made of it
    rewritten: tuple[str, ...] = ("default.nix", "flake.nix")


STALE = "changed since default.nix was generated"
EDITS = [
    Edit("patches/app.patch", "+++ b/app.py\n", "+++ b/app.py\n@@ -0,0 +1 @@\n+x\n", STALE),
    Edit("nix/post.nix", "{ }", "{ app = prev.app; }", STALE),
    Edit("nixpkgs-python.json", '"attr": "dep"', '"attr": "dep_1"', STALE, 'attr = "dep_1";'),
    Edit("lib/setup.cfg", "    dep\n", "    dep\n    other\n", STALE, "other = {"),
    Edit("common.txt", "app\n", "app\nmore\n", STALE, "more = {"),
    Edit("build-tools.txt", "<99", "<98", STALE),
    Edit(
        "flake.nix", "nixos-unstable", "nixos-25.11", "was edited by hand", rewritten=("flake.nix",)
    ),
]


def synced_project(index: Index, project: Path, hooks: HookRepo) -> None:
    """The project of `write_project`, synced, in a git repository using both hooks."""
    index.publish("app", "1.0", requires_dist=("dep",))
    for name in ("dep", "other", "more"):
        index.publish(name, "1.0")
    write_project(project, index)
    with contextlib.chdir(project):
        assert run("sync").code == 1
    init_repo(project, hooks)


def test_a_commit_of_any_one_input_runs_the_hooks(
    index: Index, tmp_path: Path, hook_env: dict[str, str], hook_repo: HookRepo
) -> None:
    """A commit that changes only one input of default.nix, of any kind the header records,
    is blocked by machci-check and regenerated by machci-sync."""
    project = tmp_path / "project"
    synced_project(index, project, hook_repo)
    installed = pre_commit(project, hook_env, "install")
    assert installed.returncode == 0, installed.stdout
    first = commit(project, hook_env)
    assert first.returncode == 0, first.stdout
    assert first.stdout.count("Passed") == 2, first.stdout

    for change in EDITS:
        head = git(project, "rev-parse", "HEAD")
        edit(project / change.path, change.old, change.new)
        before = {name: (project / name).read_bytes() for name in ("default.nix", "flake.nix")}
        git(project, "add", change.path)

        blocked = commit(project, hook_env, skip="machci-sync")
        assert blocked.returncode == 1, (change.path, blocked.stdout)
        assert "machci check" in blocked.stdout and "Failed" in blocked.stdout
        assert f"machci: {change.path} {change.problem}" in blocked.stdout, blocked.stdout
        assert git(project, "rev-parse", "HEAD") == head

        regenerated = commit(project, hook_env, skip="machci-check")
        assert regenerated.returncode == 1, (change.path, regenerated.stdout)
        assert "files were modified by this hook" in regenerated.stdout
        assert git(project, "rev-parse", "HEAD") == head
        changed = tuple(n for n, data in before.items() if (project / n).read_bytes() != data)
        assert changed == change.rewritten, (change.path, regenerated.stdout)
        if change.locked:
            assert change.locked not in before["default.nix"].decode()
            assert change.locked in (project / "default.nix").read_text()

        git(project, "add", "-A")
        done = commit(project, hook_env, "--allow-empty")  # flake.nix is back as it was
        assert done.returncode == 0, (change.path, done.stdout)
        assert done.stdout.count("Passed") == 2


def network_namespace() -> list[str]:
    """The command prefix that runs a command in a new network namespace: no interfaces but a
    loopback that is down, so no connection can be made, not even to the test index."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed: no network namespace to run the hook in")
    prefix = ["unshare", "--net"]
    if os.geteuid() != 0:
        prefix.append("--map-root-user")  # an unprivileged user namespace grants the netns
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"the kernel refuses a network namespace: {probe.stderr.strip()}")
    return prefix


# `machci check` with every socket refused: an attempt to use the network would be named.
CHECK_WITHOUT_SOCKETS = """\
import sys

def refuse(event, args):
    if event.startswith(("socket.", "urllib.")):
        sys.stderr.write("network attempt: " + event + "\\n")
        raise OSError("no network for machci check")

sys.addaudithook(refuse)
from machci.cli import main
raise SystemExit(main(["check"]))
"""


def test_the_check_hook_needs_no_network(
    index: Index, tmp_path: Path, hook_env: dict[str, str], hook_repo: HookRepo
) -> None:
    """As pre-commit.ci runs it (hook environment installed beforehand, no network when the
    hooks run): machci-check gives the answers it gives with network, and tries no socket."""
    prefix = network_namespace()
    project = tmp_path / "project"
    synced_project(index, project, hook_repo)
    reach = f"import urllib.request; urllib.request.urlopen({index.url!r}, timeout=5)"
    assert subprocess.run([sys.executable, "-c", reach], check=False).returncode == 0
    unreachable = subprocess.run(
        [*prefix, sys.executable, "-c", reach], capture_output=True, text=True, check=False
    )
    assert unreachable.returncode != 0 and "unreachable" in unreachable.stderr

    states = [
        ("in sync", None, "", "", 0),
        ("an input", "patches/app.patch", "+++ b/app.py\n", "+++ b/app.py\n+\n", 1),
        ("machci.yaml", "machci.yaml", "flake: true\n", "flake: true  # edited\n", 1),
        ("by hand", "default.nix", "binary = false;", "binary = true;", 1),
    ]
    for state, name, old, new, code in states:
        original = (project / name).read_bytes() if name else b""
        if name:
            edit(project / name, old, new)
        with contextlib.chdir(project):
            outside = run("check")
        assert outside.code == code, (state, outside.err)

        audited = subprocess.run(
            [*prefix, sys.executable, "-c", CHECK_WITHOUT_SOCKETS],
            cwd=project,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert (audited.returncode, audited.stderr) == (code, outside.err), state

        hook = ("run", "machci-check", "--all-files")
        online = pre_commit(project, hook_env, *hook)
        offline = pre_commit(project, hook_env, *hook, prefix=tuple(prefix))
        assert online.returncode == offline.returncode == code, (state, offline.stdout)
        for line in outside.err.splitlines():
            assert line in offline.stdout, (state, offline.stdout)
        if name:
            (project / name).write_bytes(original)
