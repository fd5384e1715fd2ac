"""Shared pytest fixtures."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import machci
from tests.fixtures.depsdb import Tarballs
from tests.fixtures.github import GitHubEmulator
from tests.fixtures.index import Index
from tests.fixtures.repos import Workspace, make_workspace
from tests.fixtures.wheelhouse import build_wheelhouse


def _this_checkouts_action() -> None:
    """machci.action is this checkout's action/, as `machci` is this checkout's machci/.

    The install maps machci.action to action/ through the build backend's package mapping; an
    editable install made from another checkout maps it to that checkout's action/ (and its
    workflow template), which would leave `machci init` writing the other checkout's file.
    """
    directory = Path(__file__).resolve().parents[1] / "action"
    spec = importlib.util.spec_from_file_location(
        "machci.action", directory / "__init__.py", submodule_search_locations=[str(directory)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["machci.action"] = module
    spec.loader.exec_module(module)
    machci.action = module  # type: ignore[attr-defined]


_this_checkouts_action()


@pytest.fixture
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    """A started, empty hermetic simple index; stopped at teardown."""
    idx = Index(tmp_path_factory.mktemp("index"))
    idx.start()
    try:
        yield idx
    finally:
        idx.stop()


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep every test away from the user's cache directory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture(autouse=True)
def _nothing_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """machci logs nothing; a record at ERROR comes from a library catching what machci let
    through (concurrent.futures logs a callback's exception), which the command line prints as
    a traceback, and which pytest would otherwise capture out of sight."""
    yield
    errors = [
        record.getMessage()
        for when in ("setup", "call")
        for record in caplog.get_records(when)
        if record.levelno >= logging.ERROR
    ]
    assert not errors, f"logged as errors: {errors}"


@pytest.fixture(autouse=True)
def _no_netrc(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from the user's ~/.netrc (tests that need one set NETRC)."""
    monkeypatch.setenv("NETRC", str(tmp_path_factory.mktemp("netrc") / "absent"))


@pytest.fixture
def github() -> Iterator[GitHubEmulator]:
    """A started loopback GitHub REST emulator for ``acme/app``; stopped at teardown."""
    emulator = GitHubEmulator()
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def tarballs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tarballs]:
    """A started loopback server of GitHub tarballs, which machci downloads from."""
    server = Tarballs()
    server.start()
    monkeypatch.setenv("MACHCI_GITHUB_URL", server.base_url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def workspace(index: Index, tmp_path: Path) -> Workspace:
    """A synced project on main, pushed to a bare `origin` (see tests/fixtures/repos.py)."""
    return make_workspace(index, tmp_path)


@pytest.fixture(scope="session")
def wheelhouse(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels to install this checkout offline (tests/fixtures/wheelhouse.py), kept in pytest's
    cache, or for this run only when the cache plugin is off."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return build_wheelhouse(cache.mkdir("machci-wheelhouse"))
    return build_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `live` talk to the real index; they run only with MACHCI_LIVE=1."""
    if os.environ.get("MACHCI_LIVE") == "1":
        return
    skip = pytest.mark.skip(reason="talks to the internet; set MACHCI_LIVE=1 to run")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)
