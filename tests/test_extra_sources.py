"""packagesExtra and `project:`: local trees, archive URLs and git repositories resolved with the
requirements, pinned in the lock, and checked for edits."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from machci.sources.trees.extra import pack_tree
from tests.fixtures.builders import Dist, build_bytes
from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, run


def tree(directory: Path, dist: Dist, project: str | None = None) -> Path:
    """The source tree of a test sdist (its in-tree backend builds it); `project` is a
    [project] table to add to its pyproject.toml."""
    with tarfile.open(fileobj=io.BytesIO(build_bytes(dist)), mode="r:gz") as archive:
        archive.extractall(directory.parent / ".unpack", filter="data")
    (top,) = (directory.parent / ".unpack").iterdir()
    top.rename(directory)
    (directory.parent / ".unpack").rmdir()
    if project is not None:
        pyproject = directory / "pyproject.toml"
        pyproject.write_text(pyproject.read_text() + "\n[project]\n" + project)
    return directory


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def bare_repository(source: Path, bare: Path, branch: str = "main") -> str:
    """A bare repository with `source` as its one commit on `branch`; the commit."""
    git("init", "-q", "-b", branch, cwd=source)
    git("add", "-A", cwd=source)
    git("commit", "-q", "-m", "one", cwd=source)
    git("clone", "-q", "--bare", str(source), str(bare), cwd=source.parent)
    return git("rev-parse", "HEAD", cwd=source)


def lock_project(index: Index, project: Path, config: str, requirements: str = "") -> Any:
    project.mkdir(parents=True, exist_ok=True)
    (project / "requirements.txt").write_text(requirements)
    (project / "machci.yaml").write_text(
        "requirements: [requirements.txt]\n"
        'python: "3.12"\n'
        "systems: [x86_64-linux]\n"
        f"data: {{index: {index.url}, snapshot: '{SNAPSHOT}'}}\n" + config
    )
    with contextlib.chdir(project):
        return run("lock", "--json", "--cache-dir", ".cache")


def packages(result: Any) -> dict[str, Any]:
    assert result.code == 0, result.err
    found: dict[str, Any] = json.loads(result.out)["systems"]["x86_64-linux"]["packages"]
    return found


@pytest.fixture
def published(index: Index) -> Index:
    index.publish("beta", "2.0")
    index.publish("gamma", "1.0")
    index.publish("helper", "0.3")
    return index


def test_a_local_tree_with_an_extra_resolves_with_the_requirements(
    published: Index, tmp_path: Path
) -> None:
    dist = Dist(
        "mylib",
        "1.0",
        kind="sdist",
        requires_dist=("beta>=2", 'gamma; extra == "fast"'),
        provides_extra=("fast",),
        pkg_info=False,
    )
    tree(tmp_path / "project" / "vendor" / "mylib", dist)
    config = "packagesExtra:\n  - path: vendor/mylib\n    extras: [fast]\n"
    found = packages(lock_project(published, tmp_path / "project", config, "helper\n"))
    assert sorted(found) == ["beta", "gamma", "helper", "mylib"]
    mylib = found["mylib"]
    assert (mylib["version"], mylib["provider"], mylib["file"]) == ("1.0", "path", None)
    assert mylib["source"] == {"kind": "path", "location": "vendor/mylib"}
    assert mylib["dependencies"] == ["beta", "gamma"]
    assert mylib["extras"] == ["fast"]


def test_static_pyproject_metadata_needs_no_backend(published: Index, tmp_path: Path) -> None:
    dist = Dist("mylib", "1.0", kind="sdist", pkg_info=False, backend_prelude="raise SystemExit(3)")
    static = 'name = "MyLib"\nversion = "1.5"\ndependencies = ["gamma"]\n'
    tree(tmp_path / "project" / "lib", dist, project=static)
    config = "packagesExtra: [{path: lib}]\nbuild: false\n"
    found = packages(lock_project(published, tmp_path / "project", config))
    assert (found["mylib"]["version"], found["mylib"]["dependencies"]) == ("1.5", ["gamma"])


def test_manual_requirements_replace_and_extend_the_detected_ones(
    published: Index, tmp_path: Path
) -> None:
    dist = Dist("mylib", "1.0", kind="sdist", requires_dist=("beta",), pkg_info=False)
    tree(tmp_path / "project" / "a", dist)
    tree(tmp_path / "project" / "b", Dist("other", "2.0", kind="sdist", requires_dist=("beta",)))
    config = (
        "packagesExtra:\n"
        "  - {path: a, requirements: [gamma]}\n"
        "  - {path: b, requirementsExtra: [helper]}\n"
    )
    found = packages(lock_project(published, tmp_path / "project", config))
    assert found["mylib"]["dependencies"] == ["gamma"]
    assert found["other"]["dependencies"] == ["beta", "helper"]


def test_an_archive_url_is_pinned_by_its_sha256(published: Index, tmp_path: Path) -> None:
    dist = Dist("archived", "3.0", kind="sdist", requires_dist=("beta",))
    published.add(dist)
    url = f"{published.files_url}/{dist.filename}"
    config = f"packagesExtra:\n  - url: {url}\n"
    found = packages(lock_project(published, tmp_path / "project", config))
    source = found["archived"]["source"]
    assert source == {
        "kind": "url",
        "location": url,
        "sha256": published.sha256(dist.filename),
        "archive": "source.tar.gz",
    }


def test_a_git_branch_is_pinned_to_its_commit(published: Index, tmp_path: Path) -> None:
    source = tree(tmp_path / "src", Dist("fromgit", "0.1", kind="sdist", requires_dist=("beta",)))
    commit = bare_repository(source, tmp_path / "repo.git")
    config = f"packagesExtra:\n  - git: {tmp_path / 'repo.git'}\n    rev: main\n"
    found = packages(lock_project(published, tmp_path / "project", config))
    assert found["fromgit"]["source"] == {
        "kind": "git",
        "location": str(tmp_path / "repo.git"),
        "rev": commit,
        "ref": "refs/heads/main",
        "requested": "main",
    }
    assert found["fromgit"]["dependencies"] == ["beta"]


@pytest.mark.parametrize("config", ["project: .\n", "packagesExtra: [{path: .}]\n"])
def test_the_project_itself_is_built_and_gets_an_app(
    published: Index, tmp_path: Path, config: str
) -> None:
    project = tree(
        tmp_path / "project", Dist("myapp", "0.9", kind="sdist", requires_dist=("beta",))
    )
    found = packages(lock_project(published, project, config))
    assert found["myapp"]["source"] == {"kind": "path", "location": "."}
    assert found["myapp"]["app"] is True


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{path: missing}", "not a directory"),
        ("{git: REPO, rev: nope}", "the repository has no branch or tag 'nope'"),
        ("{path: a, url: 'https://x.example/a.tar.gz'}", "exactly one of path"),
        ("{url: 'ftp://x.example/a.tar.gz'}", "it must start with http:// or https://"),
        ("{git: '--upload-pack=touch /tmp/x'}", "it is not a repository URL"),
        ("{git: 'ext::sh -c touch% /tmp/x'}", "it is not a repository URL"),
        ("{path: a, rev: main}", "rev is for git entries only"),
        ("{path: a, requirements: ['not a requirement!']}", "requirements:"),
    ],
)
def test_bad_entries_are_one_error_naming_the_line(
    published: Index, tmp_path: Path, entry: str, message: str
) -> None:
    source = tree(tmp_path / "src", Dist("fromgit", "0.1", kind="sdist"))
    bare_repository(source, tmp_path / "repo.git")
    entry = entry.replace("REPO", str(tmp_path / "repo.git"))
    result = lock_project(published, tmp_path / "project", f"packagesExtra:\n  - {entry}\n")
    assert result.code == 2, result.out
    assert result.err.count("\n") == 1, result.err
    assert "machci.yaml:6" in result.err and message in result.err, result.err


def test_an_edit_to_a_local_tree_metadata_puts_default_nix_out_of_sync(
    published: Index, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    tree(project / "lib", Dist("mylib", "1.0", kind="sdist", requires_dist=("beta",)))
    lock_project(published, project, "packagesExtra: [{path: lib}]\n")
    with contextlib.chdir(project):
        assert run("sync", "--cache-dir", ".cache").code == 1
        assert run("check").code == 0
        (project / "lib" / "pyproject.toml").write_text(
            (project / "lib" / "pyproject.toml").read_text() + "\n# edited\n"
        )
        checked = run("check")
    assert checked.code == 1
    assert "lib/pyproject.toml changed since default.nix was generated" in checked.err


def test_a_packed_tree_is_deterministic_and_leaves_out_what_is_not_source(tmp_path: Path) -> None:
    root = tmp_path / "t"
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "__pycache__" / "x.pyc").write_text("")
    (root / ".git" / "HEAD").write_text("")
    (root / "link").symlink_to(root / "pkg" / "__init__.py")
    first = pack_tree(root, 1 << 20)
    assert first == pack_tree(root, 1 << 20)
    with tarfile.open(fileobj=io.BytesIO(first)) as archive:
        assert archive.getnames() == ["source/pkg/__init__.py"]


def test_a_moved_branch_keeps_its_pin_until_bump(published: Index, tmp_path: Path) -> None:
    source = tree(tmp_path / "src", Dist("fromgit", "0.1", kind="sdist"))
    first = bare_repository(source, tmp_path / "repo.git")
    project = tmp_path / "project"
    config = f"packagesExtra:\n  - git: {tmp_path / 'repo.git'}\n    rev: main\n"
    lock_project(published, project, config)
    with contextlib.chdir(project):
        assert run("sync", "--cache-dir", ".cache").code == 1
    (source / "NEWS").write_text("moved on\n")
    git("add", "-A", cwd=source)
    git("commit", "-q", "-m", "two", cwd=source)
    git("push", "-q", str(tmp_path / "repo.git"), "main", cwd=source)
    second = git("rev-parse", "HEAD", cwd=source)
    with contextlib.chdir(project):
        again = run("sync", "--force", "--cache-dir", ".cache")
        assert again.code == 0, again.err  # same inputs, same pin: the same file
        assert f'rev = "{first}";' in (project / "default.nix").read_text()
        dry = run("bump", "--dry-run", "--to", SNAPSHOT, "--cache-dir", ".cache")
        assert dry.code == 0, dry.err
        row = f"| fromgit | x86_64-linux | 0.1 ({first[:12]}) → 0.1 ({second[:12]}) | changed |"
        assert row in dry.out
        assert f'rev = "{first}";' in (project / "default.nix").read_text()
        assert run("bump", "--to", SNAPSHOT, "--cache-dir", ".cache").code == 0
        assert f'rev = "{second}";' in (project / "default.nix").read_text()
        assert run("check").code == 0


def test_an_archive_keeps_its_pin_and_is_then_fetched_by_hash(
    published: Index, tmp_path: Path
) -> None:
    dist = Dist("archived", "3.0", kind="sdist")
    published.add(dist)
    url = f"{published.files_url}/{dist.filename}"
    project = tmp_path / "project"
    lock_project(published, project, f"packagesExtra:\n  - url: {url}\n")
    with contextlib.chdir(project):
        assert run("sync", "--cache-dir", ".cache").code == 1
        before = len(published.requests)
        assert run("sync", "--force", "--offline", "--cache-dir", ".cache").code == 0
    assert len(published.requests) == before


def test_why_answers_offline_for_packages_extra(published: Index, tmp_path: Path) -> None:
    """The header's pins say which package each entry became, so the roots they add are known
    without fetching their sources or resolving."""
    project = tmp_path / "project"
    dist = Dist(
        "mylib",
        "1.0",
        kind="sdist",
        requires_dist=("beta", 'gamma; extra == "fast"'),
        provides_extra=("fast",),
    )
    tree(project / "lib", dist)
    source = tree(tmp_path / "src", Dist("fromgit", "0.1", kind="sdist", requires_dist=("helper",)))
    bare_repository(source, tmp_path / "repo.git")
    config = (
        "packagesExtra:\n"
        "  - {path: lib, extras: [fast]}\n"
        f"  - {{git: '{tmp_path / 'repo.git'}', rev: main}}\n"
    )
    lock_project(published, project, config, "beta\n")
    with contextlib.chdir(project):
        resolved = {name: run("why", name, "--cache-dir", ".cache") for name in ("gamma", "helper")}
        assert "machci.yaml:6 (mylib[fast]==1.0) -> mylib -> gamma" in resolved["gamma"].out
        assert run("sync", "--cache-dir", ".cache").code == 1
        published.stop()
        shutil.rmtree(tmp_path / "repo.git")  # nothing may be fetched again
        for name, answer in resolved.items():
            assert run("why", name, "--cache-dir", "empty") == answer, name
    assert not (project / "empty").exists()


def test_a_tree_whose_backend_fails_shows_its_last_lines(published: Index, tmp_path: Path) -> None:
    prelude = (
        "print('checking for R... no', flush=True)\nraise SystemExit('R is needed to build this')"
    )
    dist = Dist("mylib", "1.0", kind="sdist", pkg_info=False, backend_prelude=prelude)
    tree(tmp_path / "project" / "lib", dist)
    result = lock_project(published, tmp_path / "project", "packagesExtra: [{path: lib}]\n")
    assert result.code == 2
    assert result.err.endswith(
        ": preparing metadata with the build backend failed: R is needed to build this\n"
        "  last lines of output:\n"
        "    | checking for R... no\n"
        "    | R is needed to build this\n"
    )
