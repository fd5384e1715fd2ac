"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.index import Index


@pytest.fixture
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    """A started, empty hermetic simple index; stopped at teardown."""
    idx = Index(tmp_path_factory.mktemp("index"))
    idx.start()
    try:
        yield idx
    finally:
        idx.stop()
