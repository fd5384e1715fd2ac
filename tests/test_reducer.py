"""sources/pypi/reducer.py: large pages reduced by worker processes give the listing the thread
would have given, errors included, from pages as they came (gzip'd or not); a worker holds none
of the caller's environment, and one that dies leaves the pages to the thread."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from machci.errors import SourceError
from machci.limits import MIB, Limit
from machci.sources.cache import CachedPage
from machci.sources.freshness import Freshness
from machci.sources.pypi.pages import Listing, WheelFilter, listing
from machci.sources.pypi.reducer import Reducer
from tests.test_pages import URL, X86, entry, page

SNAPSHOT = datetime(2025, 1, 1, tzinfo=UTC)
LIMIT = Limit("index page", "MACHCI_MAX_PAGE_BYTES", 4 * MIB)
JSON = "application/json"


def reduced(
    reducer: Reducer,
    body: bytes,
    wheels: WheelFilter | None = X86,
    snapshot: datetime | None = None,
    *,
    content_type: str = JSON,
    encoding: str = "",
) -> tuple[Listing, str]:
    """`reducer`'s listing of a page of `body`, as it came in `encoding`."""
    cached = CachedPage(URL, content_type, "0" * 64, Freshness(0.0, 0.0), encoding=encoding)
    return reducer.listing(cached, body, LIMIT, wheels, snapshot, "demo")


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
        expected = listing(URL, JSON, body, wheels, snapshot, "demo")
        assert reduced(reducer, body, wheels, snapshot) == (expected, expected.to_text())
        packed = gzip.compress(body)
        found = reduced(reducer, packed, wheels, snapshot, encoding="gzip")
        assert found == (expected, expected.to_text())
    assert len(reducer._started) == 1 and not reducer._broken
    html = b'<a href="https://files.example/demo-1.0.tar.gz#sha256=' + b"ab" * 32 + b'">x</a>'
    expected = listing(URL, "text/html", html, X86, None, "demo")
    found = reduced(reducer, html, content_type="text/html")
    assert found == (expected, expected.to_text())


def test_a_broken_page_is_the_same_error_from_a_worker(reducer: Reducer) -> None:
    """An entry whose fields are of the wrong type breaks the page as it is reduced (a wrong
    value within the right type is found when a run looks at its version: test_pages)."""
    body = page(entry("demo-1.0.tar.gz", url=["javascript:alert(1)"]))
    with pytest.raises(SourceError) as in_thread:
        listing(URL, JSON, body, X86, None, "demo")
    with pytest.raises(SourceError) as in_worker:
        reduced(reducer, body)
    assert in_worker.value.message == in_thread.value.message
    assert not reducer._broken


def test_a_worker_inflates_a_page_under_the_limit(reducer: Reducer) -> None:
    bomb = gzip.compress(bytes(LIMIT.size + 1))
    with pytest.raises(SourceError) as in_worker:
        reduced(reducer, bomb, encoding="gzip")
    assert in_worker.value.message == (
        f"{URL}: index page larger than the limit of 4 MiB; set MACHCI_MAX_PAGE_BYTES to raise it"
    )
    with pytest.raises(SourceError) as cut:
        reduced(reducer, gzip.compress(big_page())[:-100], encoding="gzip")
    assert cut.value.message == f"{URL}: the page's gzip data ends early"
    assert len(reducer._started) == 1 and not reducer._broken


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_holds_none_of_the_callers_environment(
    reducer: Reducer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MACHCI_TEST_TOKEN", "secret-token-value")
    reduced(reducer, big_page())
    (worker,) = reducer._started
    environment = Path(f"/proc/{worker.process.pid}/environ").read_bytes().split(b"\0")
    names = {item.partition(b"=")[0] for item in environment if item}
    assert names == {b"PYTHONPATH", b"PYTHONDONTWRITEBYTECODE"}
    assert b"secret-token-value" not in b"".join(environment)


def test_a_worker_that_dies_leaves_the_pages_to_the_thread(reducer: Reducer) -> None:
    body = big_page()
    found = listing(URL, JSON, body, X86, SNAPSHOT, "demo")
    expected = (found, found.to_text())
    assert reduced(reducer, body, X86, SNAPSHOT) == expected
    (worker,) = reducer._started
    worker.process.kill()
    worker.process.wait()
    assert reduced(reducer, gzip.compress(body), X86, SNAPSHOT, encoding="gzip") == expected
    assert reducer._broken
    reducer.close()
    assert reducer._started == []


def test_small_pages_start_no_worker_and_close_ends_them() -> None:
    reducer = Reducer()
    small = page(entry("demo-1.0.tar.gz"))
    reduced(reducer, small)
    assert reducer._started == []
    reducer = Reducer(large_page=1)
    reduced(reducer, small)
    (worker,) = reducer._started
    reducer.close()
    assert worker.process.returncode == 0
    assert not Path(f"/proc/{worker.process.pid}/environ").exists()
