"""A wheel's METADATA read with HTTP range requests, for indexes without PEP 658 metadata.

Downloading whole wheels for their metadata costs gigabytes for a project such as torch; the
parts that hold it are a few kilobytes to a few megabytes. As pip and uv do, zipfile reads the
wheel through a file object that asks the server only for what it reads: the end of the file
first (the end record, ZIP64 or not, and any comment), then the central directory where the end
did not hold it, then the METADATA member.

What is read so cannot be checked against the wheel's sha256, which covers the whole file; pip
and uv are in the same position. The wheel itself stays pinned by that hash wherever it is
fetched to be installed. The METADATA read is kept as a derived cache entry of the wheel's
sha256, so a later run asks for nothing. A server that ignores ranges sends the whole wheel,
which `Http.ranged` checks and keeps as a download; it is then read from the cache as before.
"""

from __future__ import annotations

import base64
import contextlib
import io
import zipfile
import zlib
from collections.abc import Callable

from machci.dists import InvalidMetadata
from machci.limits import Limit
from machci.sources.http import Http, RangeReply

RECORD = "wheel-metadata-v1"  # derived cache entries: the METADATA's bytes, base64
# The end record with the longest comment a zip can have, and the ZIP64 end record and locator
# that may come before it: the first request holds them all.
TAIL = 22 + 0xFFFF + 20 + 56
LOCAL_HEADER = 30  # the fixed part of a member's local header
# Room for the local header's extra field, whose size the central directory does not give;
# a longer one costs another request.
LOCAL_EXTRA = 1 << 10

Fetch = Callable[[int, int | None], RangeReply | None]


class _Unserved(Exception):
    """A part is over the limit, or the server did not give it as asked: the whole wheel is
    read instead."""


class _Remote:
    """The wheel as zipfile reads it: the parts fetched so far, and a request for each gap."""

    def __init__(self, fetch: Fetch, tail: RangeReply, limit: int) -> None:
        self.fetch = fetch
        self.size = tail.size
        self.limit = limit  # no part larger than this is asked for
        self.parts: list[tuple[int, bytes]] = [(tail.start, tail.data)]
        self.position = 0

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        # A position before the start (a corrupt offset) is taken as the start: zipfile finds
        # no valid record there, as at any wrong offset.
        self.position = max(base + offset, 0)
        return self.position

    def read(self, n: int = -1, /) -> bytes:
        start = self.position
        stop = self.size if n < 0 else min(start + n, self.size)
        if stop <= start:
            return b""
        self.fill(start, stop)
        first, data = next(p for p in self.parts if p[0] <= start and stop <= p[0] + len(p[1]))
        self.position = stop
        return data[start - first : stop - first]

    def fill(self, start: int, stop: int) -> None:
        """Ask for what of [start, stop) is missing; parts that touch are joined, so that the
        range then lies in one."""
        gaps, at = [], start
        for first, data in self.parts:
            if first > at and at < stop:
                gaps.append((at, min(first, stop)))
            at = max(at, first + len(data))
        if at < stop:
            gaps.append((at, stop))
        for gap_start, gap_stop in gaps:
            if gap_stop - gap_start > self.limit:
                raise _Unserved
            reply = self.fetch(gap_start, gap_stop)
            if reply is None or reply.size != self.size:  # not served, or another file now
                raise _Unserved
            self.parts.append((reply.start, reply.data))
        joined: list[tuple[int, bytes]] = []
        for first, data in sorted(self.parts, key=lambda p: p[0]):
            if joined and first <= joined[-1][0] + len(joined[-1][1]):
                head, kept = joined[-1]
                joined[-1] = (head, kept + data[head + len(kept) - first :])
            else:
                joined.append((first, data))
        self.parts = joined


def read_metadata(fetch: Fetch, filename: str, limit: Limit) -> bytes | None:
    """The wheel's single top-level .dist-info/METADATA, refused over `limit`; None when the
    server does not give the parts (the whole wheel is read then). No part larger than `limit`
    is asked for."""
    tail = fetch(-min(TAIL, limit.size), None)
    if tail is None:
        return None
    remote = _Remote(fetch, tail, limit.size)
    try:
        with zipfile.ZipFile(remote) as archive:
            names = [
                n
                for n in archive.namelist()
                if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            ]
            if len(names) != 1:
                raise InvalidMetadata("the wheel has no single .dist-info/METADATA")
            info = archive.getinfo(names[0])
            size = max(info.file_size, info.compress_size)
            if size > limit.size:
                raise limit.refuse(f"{filename}: {names[0]}", size)
            # The member in one request, not one per read zipfile makes.
            start = info.header_offset
            name_size = len(info.orig_filename.encode())
            length = LOCAL_HEADER + name_size + LOCAL_EXTRA + info.compress_size
            remote.fill(start, min(start + length, remote.size))
            return archive.read(info)
    except _Unserved:
        return None
    # Beyond BadZipFile: a corrupt deflate stream, data cut short, a member zipfile cannot
    # read (another compression method, encryption).
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise InvalidMetadata(f"not a valid wheel ({exc})") from exc


def remote_metadata(http: Http, url: str, sha256: str, filename: str) -> bytes | None:
    """The wheel's METADATA read with range requests, now or by an earlier run; None to read it
    from the whole wheel (in the cache already, or the server does not serve ranges)."""
    cache = http.cache
    kept = cache.derived(RECORD, sha256)
    if isinstance(kept, str):
        with contextlib.suppress(ValueError):  # a damaged entry: read again
            return base64.b64decode(kept, validate=True)
    if cache.has_blob(sha256):
        return None
    metadata = read_metadata(
        lambda start, stop: http.ranged(url, sha256, start, stop), filename, http.limits.metadata
    )
    if metadata is not None:
        cache.put_derived(RECORD, sha256, base64.b64encode(metadata).decode("ascii"))
    return metadata
