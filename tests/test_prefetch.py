"""sources/pypi/prefetch.py: fetching ahead follows the versions the requirements allow, so a
lock fetches no page for what only versions it cannot take depend on."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path

import pytest

from machci.dists import DistFile
from machci.sources.pypi import snapshot
from machci.sources.pypi.prefetch import Prefetcher
from tests.fixtures.index import Index
from tests.helpers import lock


def pages_asked(index: Index) -> set[str]:
    pages = (r.path for r in index.log if r.path.startswith("/simple/"))
    return {path.strip("/").rsplit("/", 1)[-1] for path in pages}


def test_only_the_allowed_versions_dependencies_are_fetched_ahead(
    index: Index, tmp_path: Path
) -> None:
    index.publish("app", "1.0", requires_dist=("old-dep",))
    index.publish("app", "2.0", requires_dist=("new-dep",))
    index.publish("app", "3.0rc1", requires_dist=("rc-dep",))
    index.publish("lib", "1.0", requires_dist=("lib-old-dep",))
    index.publish("lib", "2.0", requires_dist=("lib-new-dep",))
    for name in ("old-dep", "new-dep", "rc-dep", "lib-old-dep", "lib-new-dep"):
        index.publish(name, "1.0")
    project = tmp_path / "project"
    project.mkdir()
    (project / "constraints.txt").write_text("lib<2\n")
    result = lock(index, project, "app<3\nlib\n-c constraints.txt\n")
    assert result.versions() == {"app": "2.0", "new-dep": "1.0", "lib": "1.0", "lib-old-dep": "1.0"}
    assert pages_asked(index) == {"app", "new-dep", "lib", "lib-old-dep"}

    index.log.clear()
    older = lock(index, tmp_path / "older", "app<2\n")
    assert older.versions() == {"app": "1.0", "old-dep": "1.0"}
    assert pages_asked(index) == {"app", "old-dep"}

    index.log.clear()
    early = lock(index, tmp_path / "early", "app>=3.0rc1\n")
    assert early.versions() == {"app": "3.0rc1", "rc-dep": "1.0"}
    assert pages_asked(index) == {"app", "rc-dep"}


def test_a_warm_lock_reads_the_cache_where_it_is_asked_at_any_depth(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the cache answers is read in the thread that asks, breadth first: a chain of
    dependencies far longer than the stack would allow nested reads locks from the cache
    without handing anything to the fetch threads, and without a word on stderr."""
    chain = 150
    for i in range(chain):
        index.publish(f"link-{i}", "1.0", requires_dist=(f"link-{i + 1}",)[: chain - 1 - i])
    every = {f"link-{i}": "1.0" for i in range(chain)}
    project = tmp_path / "project"
    assert lock(index, project, "link-0\n").versions() == every

    handed: list[object] = []
    settle = snapshot._settle

    def counted(future: Future[object], load: Callable[[], object]) -> None:
        handed.append(load)
        settle(future, load)

    monkeypatch.setattr(snapshot, "_settle", counted)
    index.log.clear()
    warm = lock(index, project, "link-0\n", "--offline")
    assert (warm.code, warm.err) == (0, "")
    assert warm.versions() == every
    assert handed == []
    assert index.log == []


def test_walking_down_a_projects_versions_fetches_the_next_ones_ahead(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the resolver passes over a project's first version, the metadata of the wheels
    below it is asked for ahead, in batches (4, then 8): a backtrack through many versions
    waits on a few round trips rather than one per version. An sdist (whose metadata may need
    its backend run) is never among them, nor is a version the resolver took at once."""
    index.publish("dep", "1.0")
    index.publish("dep", "2.0")
    for major in range(3, 13):
        index.publish("lib", f"{major}.0", requires_dist=("dep==2",))
    index.publish("lib", "2.0", requires_dist=("dep==1",))
    index.publish("lib", "1.0", requires_dist=("dep==1",))
    index.publish("lib", "0.5", kind="sdist", requires_dist=("dep==1",))
    batches: list[list[str]] = []
    ahead = Prefetcher.files

    def recorded(prefetcher: Prefetcher, files: Iterable[DistFile]) -> None:
        files = list(files)
        batches.append([f"{f.name} {f.version}" for f in files])
        ahead(prefetcher, files)

    monkeypatch.setattr(Prefetcher, "files", recorded)
    result = lock(index, tmp_path / "walk", "lib\ndep==1\n")
    assert result.versions() == {"lib": "2.0", "dep": "1.0"}
    walked = [f"lib {major}.0" for major in range(10, 0, -1)]
    assert batches == [walked[:4], walked[4:]]  # from 10.0, the version after the 2nd offered

    batches.clear()
    assert lock(index, tmp_path / "direct", "lib\n").versions() == {"lib": "12.0", "dep": "2.0"}
    assert batches == []
