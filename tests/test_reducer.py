"""sources/pypi/reducer.py: large pages reduced by worker processes give the listing the thread
would have given, errors included; a worker holds none of the caller's environment, and one
that dies leaves the pages to the thread."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from machci.errors import SourceError
from machci.sources.pypi.pages import listing
from machci.sources.pypi.reducer import Reducer
from tests.test_pages import URL, X86, entry, page

SNAPSHOT = datetime(2025, 1, 1, tzinfo=UTC)


def big_page() -> bytes:
    """Wheels for systems the filter keeps and drops, sdists, an upload after the snapshot."""
    files = [
        entry(f"demo-{major}.{minor}{suffix}", **extra)
        for major in range(30)
        for minor in range(10)
        for suffix, extra in (
            (".tar.gz", {}),
            ("-py3-none-any.whl", {"requires-python": ">=3.9"}),
            ("-cp312-cp312-win_amd64.whl", {}),
            ("-cp312-cp312-manylinux_2_17_x86_64.whl", {"yanked": "broken"}),
        )
    ]
    files.append(entry("demo-99.0.tar.gz", **{"upload-time": "2030-01-01T00:00:00Z"}))
    return page(*files)


@pytest.fixture
def reducer() -> Iterator[Reducer]:
    found = Reducer(large_page=1)
    yield found
    found.close()


def test_a_worker_gives_the_threads_listing(reducer: Reducer) -> None:
    body = big_page()
    for wheels, snapshot in ((X86, SNAPSHOT), (None, None)):
        expected = listing(URL, "application/json", body, wheels, snapshot, "demo")
        found = reducer.listing(URL, "application/json", body, wheels, snapshot, "demo")
        assert found == (expected, expected.to_text())
    assert len(reducer._started) == 1 and not reducer._broken
    html = b'<a href="https://files.example/demo-1.0.tar.gz#sha256=' + b"ab" * 32 + b'">x</a>'
    expected = listing(URL, "text/html", html, X86, None, "demo")
    found = reducer.listing(URL, "text/html", html, X86, None, "demo")
    assert found == (expected, expected.to_text())


def test_a_broken_page_is_the_same_error_from_a_worker(reducer: Reducer) -> None:
    body = page(entry("demo-1.0.tar.gz", url="javascript:alert(1)"))
    with pytest.raises(SourceError) as in_thread:
        listing(URL, "application/json", body, X86, None, "demo")
    with pytest.raises(SourceError) as in_worker:
        reducer.listing(URL, "application/json", body, X86, None, "demo")
    assert in_worker.value.message == in_thread.value.message
    assert not reducer._broken


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_holds_none_of_the_callers_environment(
    reducer: Reducer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MACHCI_TEST_TOKEN", "secret-token-value")
    reducer.listing(URL, "application/json", big_page(), X86, None, "demo")
    (worker,) = reducer._started
    environment = Path(f"/proc/{worker.process.pid}/environ").read_bytes().split(b"\0")
    names = {item.partition(b"=")[0] for item in environment if item}
    assert names == {b"PYTHONPATH", b"PYTHONDONTWRITEBYTECODE"}
    assert b"secret-token-value" not in b"".join(environment)


def test_a_worker_that_dies_leaves_the_pages_to_the_thread(reducer: Reducer) -> None:
    body = big_page()
    found = listing(URL, "application/json", body, X86, SNAPSHOT, "demo")
    expected = (found, found.to_text())
    assert reducer.listing(URL, "application/json", body, X86, SNAPSHOT, "demo") == expected
    (worker,) = reducer._started
    worker.process.kill()
    worker.process.wait()
    assert reducer.listing(URL, "application/json", body, X86, SNAPSHOT, "demo") == expected
    assert reducer._broken
    reducer.close()
    assert reducer._started == []


def test_small_pages_start_no_worker_and_close_ends_them() -> None:
    reducer = Reducer()
    small = page(entry("demo-1.0.tar.gz"))
    reducer.listing(URL, "application/json", small, X86, None, "demo")
    assert reducer._started == []
    reducer = Reducer(large_page=1)
    reducer.listing(URL, "application/json", small, X86, None, "demo")
    (worker,) = reducer._started
    reducer.close()
    assert worker.process.returncode == 0
    assert not Path(f"/proc/{worker.process.pid}/environ").exists()
