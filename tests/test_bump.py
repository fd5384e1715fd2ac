"""`machci bump`: a real change table from two resolutions, a one-line config edit, no churn."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path

import pytest

from machci.commands.bump import Change, change_table, diff_locks
from machci.lock.model import Lock, LockedFile, LockedPackage, SystemLock
from tests.fixtures.depsdb import DepsDb, Pin, Tarballs, publish
from tests.fixtures.github import GitHubEmulator
from tests.fixtures.index import Index
from tests.helpers import machci

CONFIG = """\
# project settings (comments survive a bump)
requirements: [requirements.txt]   # the inputs
systems:
  - x86_64-linux     # CI
  - aarch64-linux
data:
  index: {url}
  snapshot: "2025-01-01T00:00:00Z"   # moved by machci bump
providers: {{_default: 'wheel,sdist'}}
"""


@pytest.fixture
def project(index: Index, tmp_path: Path) -> Path:
    index.publish("app", "1.0", requires_dist=("gone",), upload_time="2024-06-01T00:00:00Z")
    index.publish("gone", "1.0", upload_time="2024-06-01T00:00:00Z")
    index.publish("armonly", "1.0", upload_time="2024-06-01T00:00:00Z")
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text('app\narmonly; platform_machine == "aarch64"\n')
    (project / "machci.yaml").write_text(CONFIG.format(url=index.url))
    assert machci(project, "sync").code == 1
    return project


def publish_newer(index: Index) -> None:
    index.publish("app", "2.0", requires_dist=("fresh",), upload_time="2025-06-01T00:00:00Z")
    index.publish("fresh", "0.1", upload_time="2025-06-01T00:00:00Z")
    index.publish("armonly", "1.1", upload_time="2025-06-01T00:00:00Z")


def test_bump_moves_only_the_pin_and_regenerates(index: Index, project: Path) -> None:
    publish_newer(index)
    before = (project / "machci.yaml").read_text()
    result = machci(project, "bump", "--to", "2025-07-01T00:00:00Z")
    assert result.code == 0, result.err
    assert "Data revision: 2025-01-01T00:00:00Z → 2025-07-01T00:00:00Z" in result.out
    assert "| app | aarch64-linux, x86_64-linux | 1.0 → 2.0 | upgraded |" in result.out
    assert "| armonly | aarch64-linux | 1.0 → 1.1 | upgraded |" in result.out
    assert "| fresh | aarch64-linux, x86_64-linux | — → 0.1 | added |" in result.out
    assert "| gone | aarch64-linux, x86_64-linux | 1.0 → — | removed |" in result.out
    after = (project / "machci.yaml").read_text()
    diff = [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="")
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    ]
    assert diff == [
        '-  snapshot: "2025-01-01T00:00:00Z"   # moved by machci bump',
        '+  snapshot: "2025-07-01T00:00:00Z"   # moved by machci bump',
    ]
    assert machci(project, "check").code == 0
    assert '"app-2.0-py3-none-any.whl"' in (project / "default.nix").read_text()


def test_bump_with_nothing_new_writes_nothing(project: Path) -> None:
    files = {p: p.read_bytes() for p in project.iterdir() if p.is_file()}
    result = machci(project, "bump", "--to", "2025-07-01T00:00:00Z")
    assert result.code == 0
    assert "nothing changes" in result.out
    assert {p: p.read_bytes() for p in files} == files


def test_dry_run_prints_without_writing(index: Index, project: Path) -> None:
    publish_newer(index)
    files = {p: p.read_bytes() for p in project.iterdir() if p.is_file()}
    result = machci(project, "bump", "--dry-run", "--to", "2025-07-01T00:00:00Z")
    assert result.code == 0
    assert "| app | aarch64-linux, x86_64-linux | 1.0 → 2.0 | upgraded |" in result.out
    assert {p: p.read_bytes() for p in files} == files


def test_bump_backwards_is_refused(project: Path) -> None:
    result = machci(project, "bump", "--to", "2024-01-01T00:00:00Z")
    assert result.code == 2
    assert "is before the current one" in result.err


def test_bump_needs_a_config_file(tmp_path: Path) -> None:
    (tmp_path / "r.txt").write_text("app\n")
    result = machci(tmp_path, "bump", "-r", "r.txt")
    assert result.code == 2
    assert "needs a machci.yaml" in result.err


def package(name: str, version: str) -> LockedPackage:
    return LockedPackage(name, version, "wheel", LockedFile(f"{name}-{version}.whl", "u", "0" * 64))


def test_diff_locks_groups_systems_and_kinds() -> None:
    def lock(*systems: tuple[str, tuple[LockedPackage, ...]]) -> Lock:
        return Lock(tuple(SystemLock(s, "3.12", p) for s, p in systems), "i", None)

    old = lock(("a", (package("x", "1.0"), package("y", "2.0"))), ("b", (package("x", "1.0"),)))
    new = lock(("a", (package("x", "1.1"),)), ("b", (package("x", "1.1"), package("z", "1"))))
    changes = diff_locks(old, new)
    assert changes == [
        Change("x", "1.0", "1.1", ("a", "b")),
        Change("y", "2.0", None, ("a",)),
        Change("z", None, "1", ("b",)),
    ]
    assert [c.kind for c in changes] == ["upgraded", "removed", "added"]
    assert Change("x", "2.0", "1.0", ("a",)).kind == "downgraded"
    assert change_table(changes).splitlines()[2] == "| x | a, b | 1.0 → 1.1 | upgraded |"


def test_bump_warns_about_the_new_lock_only(index: Index, project: Path) -> None:
    rust = (("Cargo.toml", b"[package]\n"),)
    for version, uploaded in (("1.0", "2024-06-01T00:00:00Z"), ("2.0", "2025-06-01T00:00:00Z")):
        index.publish("oxide", version, kind="sdist", extra_files=rust, upload_time=uploaded)
    (project / "requirements.txt").write_text("oxide\n")
    result = machci(project, "bump", "--to", "2025-07-01T00:00:00Z")
    assert result.code == 0, result.err
    assert result.err.count("machci: warning:") == 1
    assert "machci: warning: oxide 2.0 builds from its sdist" in result.err


# --- pypi-deps-db: rev and sha256 move to the newest commit ---------------------------------------

DEPSDB_CONFIG = """\
requirements: [requirements.txt]
systems: [x86_64-linux, aarch64-linux]
data:
  source: pypi-deps-db
  rev: {rev}   # mach-nix's pypiDataRev
  sha256: "{sha256}"
"""


def deps_db(newer: bool) -> DepsDb:
    db = DepsDb()
    db.wheel("app", "1.0", "py3-none-any", {"requires_dist": ["gone"]})
    db.wheel("gone", "1.0", "py3-none-any", {})
    db.wheel("armonly", "1.0", "py3-none-any", {})
    if newer:
        db.wheel("app", "2.0", "py3-none-any", {"requires_dist": ["fresh"]})
        db.wheel("fresh", "0.1", "py3-none-any", {})
        db.wheel("armonly", "1.1", "py3-none-any", {})
    return db


@pytest.fixture
def deps_github(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubEmulator]:
    emulator = GitHubEmulator(owner="DavHau", repo="pypi-deps-db", default_branch="master")
    emulator.start()
    monkeypatch.setenv("MACHCI_GITHUB_API_URL", emulator.url)
    monkeypatch.setenv("GITHUB_TOKEN", emulator.token)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def pins(tarballs: Tarballs, tmp_path: Path) -> tuple[Pin, Pin]:
    return (
        publish(deps_db(newer=False), tarballs, tmp_path / "old"),
        publish(deps_db(newer=True), tarballs, tmp_path / "new"),
    )


@pytest.fixture
def deps_project(pins: tuple[Pin, Pin], deps_github: GitHubEmulator, tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text('app\narmonly; platform_machine == "aarch64"\n')
    old = pins[0]
    (project / "machci.yaml").write_text(DEPSDB_CONFIG.format(rev=old.rev, sha256=old.sha256))
    assert machci(project, "sync").code == 1
    deps_github.branches["master"] = pins[1].rev
    return project


def test_bump_moves_rev_and_sha256(pins: tuple[Pin, Pin], deps_project: Path) -> None:
    old, new = pins
    before = (deps_project / "machci.yaml").read_text()
    result = machci(deps_project, "bump")
    assert result.code == 0, result.err
    assert f"Data revision: {old.rev} → {new.rev}" in result.out
    assert "| app | aarch64-linux, x86_64-linux | 1.0 → 2.0 | upgraded |" in result.out
    assert "| armonly | aarch64-linux | 1.0 → 1.1 | upgraded |" in result.out
    assert "| fresh | aarch64-linux, x86_64-linux | — → 0.1 | added |" in result.out
    assert "| gone | aarch64-linux, x86_64-linux | 1.0 → — | removed |" in result.out
    after = (deps_project / "machci.yaml").read_text()
    diff = [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="")
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    ]
    assert diff == [
        f"-  rev: {old.rev}   # mach-nix's pypiDataRev",
        f'-  sha256: "{old.sha256}"',
        f"+  rev: {new.rev}   # mach-nix's pypiDataRev",
        f'+  sha256: "{new.sha256}"',
    ]
    assert machci(deps_project, "check").code == 0
    text = (deps_project / "default.nix").read_text()
    assert f"# machci-data: pypi-deps-db DavHau/pypi-deps-db {new.rev}\n" in text
    assert '"app-2.0-py3-none-any.whl"' in text


def test_depsdb_dry_run_writes_nothing(deps_project: Path) -> None:
    files = {p: p.read_bytes() for p in deps_project.iterdir() if p.is_file()}
    result = machci(deps_project, "bump", "--dry-run")
    assert result.code == 0, result.err
    assert "| app | aarch64-linux, x86_64-linux | 1.0 → 2.0 | upgraded |" in result.out
    assert {p: p.read_bytes() for p in files} == files


def test_depsdb_at_the_newest_commit_is_current(
    pins: tuple[Pin, Pin], deps_project: Path, deps_github: GitHubEmulator, tarballs: Tarballs
) -> None:
    deps_github.branches["master"] = pins[0].rev
    files = {p: p.read_bytes() for p in deps_project.iterdir() if p.is_file()}
    downloads = len(tarballs.requests)
    result = machci(deps_project, "bump")
    assert result.code == 0, result.err
    assert result.out == f"Data revision {pins[0].rev} is current: nothing changes.\n"
    assert {p: p.read_bytes() for p in files} == files
    assert len(tarballs.requests) == downloads


def test_depsdb_bump_reports_github_refusing(
    deps_project: Path, deps_github: GitHubEmulator
) -> None:
    deps_github.fault("GET", r"/branches/", status=404, times=None)
    result = machci(deps_project, "bump")
    assert result.code == 2
    assert "GitHub answered 404" in result.err and "DavHau/pypi-deps-db" in result.err


def test_depsdb_bump_refuses_to(deps_project: Path) -> None:
    result = machci(deps_project, "bump", "--to", "2025-07-01T00:00:00Z")
    assert result.code == 2
    assert "moves to the newest commit of DavHau/pypi-deps-db" in result.err
