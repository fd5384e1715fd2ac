"""On-disk cache: content-addressed blobs, what is known of each index page, and unpacked trees
kept under their NAR hash (sources/tarballs.py).

Blobs are stored under their sha256 and checked on every read, so a corrupted entry is detected
and fetched again instead of poisoning a lock. Every write goes to a temporary file that is then
renamed, so concurrent runs (and interrupted ones) never see half-written entries; a file lock per
key keeps two processes from downloading the same thing twice. No credentials are stored: pages
are keyed by their URL without them, and the URLs recorded (sources/http.py) have none.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from filelock import FileLock

from machci.atomic import atomic_write
from machci.redaction import strip_credentials
from machci.sources.freshness import Freshness

CACHE_VERSION = "v2"


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("machci"))


@dataclass(frozen=True)
class CachedPage:
    """What is known of an index page; its body is a blob, read only when needed."""

    url: str  # final URL after redirects (relative file URLs resolve against it)
    content_type: str
    digest: str  # the body's sha256: the key of the body blob and of what is derived from it
    freshness: Freshness
    etag: str | None = None
    last_modified: str | None = None


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = root / CACHE_VERSION

    def _blob_path(self, sha256: str) -> Path:
        # One flat directory per kind: sharding costs a mkdir per shard on every cold run.
        return self.root / "blobs" / sha256

    def _lock(self, kind: str, key: str) -> FileLock:
        path = self.root / "locks" / kind / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(path)

    def blob(self, sha256: str) -> bytes | None:
        """The bytes stored under sha256, or None if absent or corrupted (then removed)."""
        path = self._blob_path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if hashlib.sha256(data).hexdigest() != sha256:
            path.unlink(missing_ok=True)
            return None
        return data

    def has_blob(self, sha256: str) -> bool:
        """Whether sha256 is stored (unchecked: `blob` still verifies what it reads)."""
        return self._blob_path(sha256).is_file()

    def put_blob(self, sha256: str, data: bytes) -> None:
        """Store bytes the caller has checked against sha256."""
        atomic_write(self._blob_path(sha256), data, cache=True)

    def blob_or_fetch(self, sha256: str, fetch: Callable[[], bytes], *, lock: bool = True) -> bytes:
        """Cached bytes for sha256, else fetch (fetch must verify the hash).

        With `lock`, concurrent runs wait for each other instead of downloading the same file
        twice; small files skip the lock, whose system calls cost more than a second fetch.
        """
        cached = self.blob(sha256)
        if cached is not None:
            return cached
        if not lock:
            data = fetch()
            self.put_blob(sha256, data)
            return data
        with self._lock("blob", sha256):
            cached = self.blob(sha256)
            if cached is not None:
                return cached
            data = fetch()
            self.put_blob(sha256, data)
            return data

    def _derived_path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.json"

    def derived(self, kind: str, key: str) -> object | None:
        """A JSON value computed from immutable input `key` (e.g. an sdist's sha256)."""
        try:
            return json.loads(self._derived_path(kind, key).read_bytes())  # type: ignore[no-any-return]
        except (FileNotFoundError, ValueError):
            return None

    def put_derived(self, kind: str, key: str, value: object) -> None:
        atomic_write(
            self._derived_path(kind, key), json.dumps(value, sort_keys=True).encode(), cache=True
        )

    def derived_lock(self, kind: str, key: str) -> FileLock:
        return self._lock(kind, key)

    def tree(self, key: str) -> Path:
        """Where a directory tree checked against `key` (its NAR hash) is kept."""
        return self.root / "trees" / key

    def tree_lock(self, key: str) -> FileLock:
        return self._lock("tree", key)

    def temporary(self) -> Path:
        """A directory for work in progress, on the cache's file system (so results can be
        renamed into place)."""
        path = self.root / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _page_path(self, url: str) -> Path:
        key = hashlib.sha256(strip_credentials(url).encode()).hexdigest()
        return self.root / "pages" / f"{key}.json"

    def page(self, url: str) -> CachedPage | None:
        """What is recorded of a page, or None if absent, damaged or without its body."""
        try:
            raw = json.loads(self._page_path(url).read_bytes())
            page = CachedPage(
                raw["url"],
                raw["content_type"],
                raw["digest"],
                Freshness(float(raw["received"]), float(raw["lifetime"])),
                raw.get("etag"),
                raw.get("last_modified"),
            )
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
        return page if self._blob_path(page.digest).is_file() else None

    def put_page(self, request_url: str, page: CachedPage, body: bytes | None = None) -> None:
        """Record a page: its body (unless already stored, as after a 304), then its facts."""
        if body is not None:
            atomic_write(self._blob_path(page.digest), body, cache=True)
        record = {
            "url": page.url,
            "content_type": page.content_type,
            "digest": page.digest,
            "received": page.freshness.received,
            "lifetime": page.freshness.lifetime,
            "etag": page.etag,
            "last_modified": page.last_modified,
        }
        atomic_write(self._page_path(request_url), json.dumps(record).encode(), cache=True)
