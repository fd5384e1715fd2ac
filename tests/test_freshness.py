"""How long a cached index page is used without asking: the Cache-Control logic alone, then
what a lock asks of an index that sends it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from urllib3 import HTTPHeaderDict

from machci.sources.freshness import NO_STORE, Freshness, directives, lifetime
from tests.fixtures.index import Index
from tests.helpers import lock


def headers(**values: str) -> HTTPHeaderDict:
    return HTTPHeaderDict({k.replace("_", "-"): v for k, v in values.items()})


def test_directives_are_case_insensitive_and_unquoted() -> None:
    assert directives('Max-Age="600", PUBLIC, no-transform') == {
        "max-age": "600",
        "public": "",
        "no-transform": "",
    }
    assert directives("") == {}
    assert directives("max-age=5, max-age=9") == {"max-age": "5"}  # the first one counts


@pytest.mark.parametrize(
    ("cache_control", "age", "expected"),
    [
        ("max-age=600, public", None, 600.0),
        ("max-age=600", "100", 500.0),  # a shared cache held it for 100 s already
        ("max-age=600", "900", 0.0),  # older than its lifetime: stale on arrival
        ("public, max-age=365000000, immutable", None, 365000000.0),
        ("no-cache, max-age=600", None, 0.0),
        ("max-age=600, no-store", None, NO_STORE),
        ("max-age=ten", None, 0.0),  # not delta-seconds: ignored
        ("max-age=-5", None, 0.0),
        ("max-age=\u00b2", None, 0.0),  # a digit to str.isdigit, not to HTTP
        ("s-maxage=600", None, 0.0),  # for shared caches only
        (None, None, 0.0),  # no directive: revalidate every time
    ],
)
def test_lifetime(cache_control: str | None, age: str | None, expected: float) -> None:
    given = {}
    if cache_control is not None:
        given["Cache-Control"] = cache_control
    if age is not None:
        given["Age"] = age
    assert lifetime(headers(**given)) == expected


def test_fresh_within_the_lifetime_and_only_if_received_after_the_snapshot() -> None:
    stored = Freshness(received=1000.0, lifetime=600.0)
    assert stored.fresh(1000.0)
    assert stored.fresh(1599.0)
    assert not stored.fresh(1600.0)
    assert not stored.fresh(999.0)  # the clock went back: do not trust it
    assert stored.fresh(1200.0, not_before=900.0)
    assert not stored.fresh(1200.0, not_before=1100.0)  # may lack files of 1000..1100
    assert not Freshness(1000.0, 0.0).fresh(1000.0)


def test_a_fresh_page_is_not_asked_for_again(index: Index, tmp_path: Path) -> None:
    index.page_cache_control = "max-age=600, public"
    index.publish("fresh", "1.0")
    assert lock(index, tmp_path, "fresh\n").code == 0
    before = len(index.requests)
    again = lock(index, tmp_path, "fresh\n")
    assert again.versions() == {"fresh": "1.0"}
    assert index.requests[before:] == []  # no page, no metadata, no file


def test_refresh_asks_again_for_fresh_pages(index: Index, tmp_path: Path) -> None:
    index.page_cache_control = "max-age=600, public"
    index.publish("fresh", "1.0")
    assert lock(index, tmp_path, "fresh\n").code == 0
    index.publish("fresh", "1.1")
    before = len(index.requests)
    again = lock(index, tmp_path, "fresh\n", "--refresh", snapshot=None)
    assert again.versions() == {"fresh": "1.1"}
    assert "/simple/fresh/" in [path for _m, path in index.requests[before:]]


def test_a_page_without_a_lifetime_is_revalidated(index: Index, tmp_path: Path) -> None:
    index.page_cache_control = "no-cache"
    index.publish("checked", "1.0")
    assert lock(index, tmp_path, "checked\n").code == 0
    before = len(index.requests)
    assert lock(index, tmp_path, "checked\n").code == 0
    assert [path for _m, path in index.requests[before:]] == ["/simple/checked/"]


def test_a_page_the_index_forbids_storing_is_fetched_each_time(
    index: Index, tmp_path: Path
) -> None:
    index.page_cache_control = "no-store"
    index.publish("secret", "1.0")
    assert lock(index, tmp_path, "secret\n").code == 0
    assert not list((tmp_path / ".cache").rglob("pages/*"))
    before = len(index.requests)
    assert lock(index, tmp_path, "secret\n").versions() == {"secret": "1.0"}
    assert [path for _m, path in index.requests[before:]] == ["/simple/secret/"]


def test_a_fresh_page_older_than_the_snapshot_is_revalidated(index: Index, tmp_path: Path) -> None:
    """A page received before the snapshot instant may lack files uploaded up to it."""
    index.page_cache_control = "max-age=600"
    index.publish("moving", "1.0", upload_time="2024-01-01T00:00:00Z")
    assert lock(index, tmp_path, "moving\n", snapshot=None).code == 0
    time.sleep(1.1)
    later = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    index.publish("moving", "2.0", upload_time=later)
    before = len(index.requests)
    result = lock(index, tmp_path, "moving\n", snapshot=later)
    assert result.versions() == {"moving": "2.0"}
    assert "/simple/moving/" in [path for _m, path in index.requests[before:]]
