"""On-disk cache: content-addressed blobs, index pages (what is known of each, and its body, in
one file), and unpacked trees kept under their NAR hash (sources/depsdb/tarballs.py).

Blobs are stored under their sha256 and checked on every read, so a corrupted entry is detected
and fetched again instead of poisoning a lock. Only regular files are read, never through a
symbolic link and within a size bound: an entry that is anything else (a directory, a FIFO, a
link to /dev/zero) is damage, discarded like a corrupted one.

Every write goes to a temporary file that is then renamed, so concurrent runs (and interrupted
ones) never see half-written entries; a file lock per key keeps two processes from downloading
the same thing twice. No credentials are stored: pages are keyed by their URL without them, and
the URLs recorded (sources/http.py) have none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machci.atomic import atomic_write
from machci.redaction import strip_credentials
from machci.sources.coding import CODINGS
from machci.sources.freshness import Freshness

if TYPE_CHECKING:
    from filelock import FileLock

CACHE_VERSION = "v2"
# A record (what is known of a page, a derived value) larger than this is damage, not data: the
# largest, listings of pages, are far smaller than the pages they come from.
MAX_RECORD_BYTES = 256 * 1024 * 1024
_CHUNK = 1 << 20
_HEAD_CHUNK = 4096  # a page's record, the first line of its file, is far shorter
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _discard(path: Path) -> None:
    """Remove a damaged entry, whatever it is, so that it is fetched and written again.
    Failing that, writing it again reports the problem."""
    with contextlib.suppress(OSError):
        if stat.S_ISDIR(path.lstat().st_mode):
            shutil.rmtree(path)
        else:
            path.unlink()


def _read_entry(
    path: Path,
    limit: int | None = None,
    sha256: str | None = None,
    *,
    head: bool = False,
) -> bytes | None:
    """The bytes of a cache entry; None when it is absent, or damaged (then discarded): not a
    regular file (a FIFO would block, /dev/zero never end), a symbolic link, larger than
    `limit`, or not matching the `sha256` it is stored under (hashed as it is read). `head`:
    only its first line (without the line break), which must be under `limit`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:  # a symbolic link (O_NOFOLLOW), no permission, ...
        _discard(path)
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            data = None
        elif head:
            data = _read_line(fd, limit or info.st_size)
        elif limit is not None and info.st_size > limit:
            data = None
        else:
            data = _read_checked(fd, info.st_size, sha256)
    except OSError:
        data = None
    finally:
        os.close(fd)
    if data is None:
        _discard(path)
    return data


def _read_line(fd: int, limit: int) -> bytes | None:
    """The first line from fd (under `limit` bytes), or None if there is none."""
    chunks: list[bytes] = []
    read = 0
    while read <= limit:
        chunk = os.read(fd, _HEAD_CHUNK)
        if not chunk:
            return None
        line, newline, _rest = chunk.partition(b"\n")
        chunks.append(line)
        if newline:
            return b"".join(chunks)
        read += len(chunk)
    return None


def _read_checked(fd: int, size: int, sha256: str | None) -> bytes | None:
    """`size` bytes from fd, hashed while read if a `sha256` is given; None if they differ in
    length or hash."""
    digest = hashlib.sha256() if sha256 is not None else None
    chunks = []
    read = 0
    while read <= size:
        chunk = os.read(fd, min(_CHUNK, size + 1 - read))
        if not chunk:
            break
        if digest is not None:
            digest.update(chunk)
        chunks.append(chunk)
        read += len(chunk)
    if read != size or (digest is not None and digest.hexdigest() != sha256):
        return None
    return b"".join(chunks)


def _write_entry(path: Path, data: bytes) -> None:
    """Write an entry, replacing a damaged one that is a directory (which rename cannot)."""
    try:
        atomic_write(path, data, cache=True)
    except IsADirectoryError:
        _discard(path)
        atomic_write(path, data, cache=True)


def _present(path: Path) -> bool:
    """Whether an entry is there as a regular file; anything else there is discarded."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return False
    if stat.S_ISREG(mode):
        return True
    _discard(path)
    return False


def default_cache_dir() -> Path:
    import platformdirs  # imported when needed, as filelock: neither is on a warm run's way

    return Path(platformdirs.user_cache_dir("machci"))


@dataclass(frozen=True)
class CachedPage:
    """What is known of an index page; its body, stored after it, is read only when needed."""

    url: str  # final URL after redirects (relative file URLs resolve against it)
    content_type: str
    digest: str  # the body's sha256: the key of the body blob and of what is derived from it
    freshness: Freshness
    etag: str | None = None
    last_modified: str | None = None
    encoding: str = ""  # the body's content coding, as it came and is stored ("" = none)


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = root / CACHE_VERSION

    def _blob_path(self, sha256: str) -> Path:
        # One flat directory per kind: sharding costs a mkdir per shard on every cold run.
        return self.root / "blobs" / sha256

    def _lock(self, kind: str, key: str) -> FileLock:
        path = self.root / "locks" / kind / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        from filelock import FileLock  # a warm run takes no lock: not imported at start-up

        return FileLock(path)

    def blob(self, sha256: str) -> bytes | None:
        """The bytes stored under sha256, or None if absent or corrupted (then removed)."""
        return _read_entry(self._blob_path(sha256), sha256=sha256)

    def has_blob(self, sha256: str) -> bool:
        """Whether sha256 is stored (unchecked: `blob` still verifies what it reads)."""
        return _present(self._blob_path(sha256))

    def put_blob(self, sha256: str, data: bytes) -> None:
        """Store bytes the caller has checked against sha256."""
        _write_entry(self._blob_path(sha256), data)

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

    def _derived_path(self, kind: str, key: str, suffix: str = ".json") -> Path:
        return self.root / kind / f"{key}{suffix}"

    def derived(self, kind: str, key: str) -> object | None:
        """A JSON value computed from immutable input `key` (e.g. an sdist's sha256).

        The value cannot be checked against the input without the input, but the record names
        the key it was written for: one that names another (a record copied or moved under
        this address) or none is not used, and is computed again."""
        record = _json_record(self._derived_path(kind, key))
        if not isinstance(record, dict) or record.get("address") != key or "value" not in record:
            return None
        value: object = record["value"]
        return value

    def put_derived(self, kind: str, key: str, value: object) -> None:
        record = {"address": key, "value": value}
        _write_entry(self._derived_path(kind, key), json.dumps(record, sort_keys=True).encode())

    def derived_text(self, kind: str, key: str) -> str | None:
        """Like `derived`, for a value kept as text that its reader splits itself: a JSON
        parse of every page's listing was a tenth of a warm lock. The first line names the
        address and the length of the text, so that a record moved, cut short or added to is
        computed again."""
        data = _read_entry(self._derived_path(kind, key, ".txt"), MAX_RECORD_BYTES)
        if data is None:
            return None
        try:
            text = data.decode()
        except UnicodeDecodeError:
            return None
        head, _, value = text.partition("\n")
        return value if head == f"{key} {len(value)}" else None

    def put_derived_text(self, kind: str, key: str, value: str) -> None:
        record = f"{key} {len(value)}\n{value}"
        _write_entry(self._derived_path(kind, key, ".txt"), record.encode())

    def derived_lock(self, kind: str, key: str) -> FileLock:
        return self._lock(kind, key)

    def tree(self, key: str) -> Path:
        """Where a directory tree checked against `key` (its NAR hash) is kept. Anything else
        found there (a file, a FIFO, a symbolic link, which machci never makes) is damage,
        removed so that the tree is fetched again."""
        path = self.root / "trees" / key
        with contextlib.suppress(OSError):
            if not stat.S_ISDIR(path.lstat().st_mode):
                _discard(path)
        return path

    def tree_lock(self, key: str) -> FileLock:
        return self._lock("tree", key)

    def temporary(self) -> Path:
        """A directory for work in progress, on the cache's file system (so results can be
        renamed into place)."""
        path = self.root / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _page_path(self, url: str, suffix: str = ".page") -> Path:
        key = hashlib.sha256(strip_credentials(url).encode()).hexdigest()
        return self.root / "pages" / f"{key}{suffix}"

    def page(self, url: str) -> CachedPage | None:
        """What is recorded of a page, or None if absent or damaged.

        One file per page, its record (JSON) the first line and its body the rest: a cold lock
        of an application writes hundreds of pages, and a file for each record and another for
        each body doubled the files it created. A page revalidated since (a 304) has a newer
        record of its own beside it (`.json`), so that renewing a page's freshness does not
        write its body again."""
        renewed = _page_record(_json_record(self._page_path(url, ".json")))
        if renewed is not None:
            return renewed
        line = _read_entry(self._page_path(url), MAX_RECORD_BYTES, head=True)
        try:
            return _page_record(json.loads(line)) if line is not None else None
        except (ValueError, RecursionError):
            return None

    def page_body(self, url: str, page: CachedPage) -> bytes | None:
        """The body stored for `page`, or None if absent or not the one its record names (the
        file is then discarded)."""
        path = self._page_path(url)
        data = _read_entry(path)
        if data is None:
            return None
        _record, newline, body = data.partition(b"\n")
        if not newline or hashlib.sha256(body).hexdigest() != page.digest:
            _discard(path)
            return None
        return body

    def put_page(self, request_url: str, page: CachedPage, body: bytes | None = None) -> None:
        """Record a page with its body; without one (after a 304), its newer record alone."""
        record = json.dumps(
            {
                "url": page.url,
                "content_type": page.content_type,
                "digest": page.digest,
                "received": page.freshness.received,
                "lifetime": page.freshness.lifetime,
                "etag": page.etag,
                "last_modified": page.last_modified,
                "encoding": page.encoding,
            }
        ).encode()
        renewed = self._page_path(request_url, ".json")
        if body is None:
            _write_entry(renewed, record)
            return
        # JSON escapes line breaks: the record is the file's first line.
        _write_entry(self._page_path(request_url), record + b"\n" + body)
        _discard(renewed)  # if there, it names the body this one replaces


def _page_record(raw: object) -> CachedPage | None:
    """The CachedPage a record holds, or None if it is not one."""
    if not isinstance(raw, dict) or not _SHA256.fullmatch(str(raw.get("digest"))):
        return None  # the digest keys what is derived from the body
    encoding = raw.get("encoding", "")
    if not isinstance(encoding, str) or encoding not in CODINGS:
        return None
    try:
        return CachedPage(
            raw["url"],
            raw["content_type"],
            raw["digest"],
            Freshness(float(raw["received"]), float(raw["lifetime"])),
            raw.get("etag"),
            raw.get("last_modified"),
            encoding,
        )
    except (ValueError, KeyError, TypeError):
        return None


def _json_record(path: Path) -> Any:
    """A JSON record, or None when it is absent or damaged (unreadable, not JSON)."""
    data = _read_entry(path, MAX_RECORD_BYTES)
    if data is None:
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None
