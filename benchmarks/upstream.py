"""PyPI as the recording proxy reaches it: pages, PEP 658 metadata, whole files, parts of files.

The PyPI reachable from here is a mirror: its JSON pages lack ``core-metadata`` and some wheels'
``.metadata`` files answer 404.  pypi.org serves a ``.metadata`` file for its wheels, and PEP 658
defines that file as the wheel's ``*.dist-info/METADATA`` member, so where the mirror has none
the member is read out of the wheel with HTTP range requests (the wheel is not downloaded).
"""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from pathlib import Path
from typing import IO, cast

import urllib3

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
USER_AGENT = "machci-benchmark-recorder/2"


class UpstreamError(Exception):
    """PyPI answered something the recording cannot use."""


class Upstream:
    def __init__(self, index: str, workers: int = 16) -> None:
        self.index = index.rstrip("/") + "/"
        retry = urllib3.Retry(
            total=5,
            backoff_factor=0.5,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=("GET",),
        )
        self.pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=workers,
            retries=retry,
            timeout=urllib3.Timeout(connect=30, read=120),
            headers={"User-Agent": USER_AGENT},
        )
        self.lock = threading.Lock()
        self.requests = 0
        self.bytes = 0

    def _count(self, size: int) -> None:
        with self.lock:
            self.requests += 1
            self.bytes += size

    def get(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        response = self.pool.request("GET", url, headers=headers or {})
        self._count(len(response.data))
        return response.status, response.data

    def page(self, name: str) -> bytes | None:
        """The project's PEP 691 JSON page as sent, or None when the index has no such project."""
        status, body = self.get(f"{self.index}{name}/", {"Accept": JSON_TYPE})
        if status == 404:
            return None
        if status != 200:
            raise UpstreamError(f"{name}: the index answered HTTP {status}")
        return body

    def metadata(self, url: str, size: int) -> tuple[bytes, str]:
        """A wheel's core metadata and where it came from ("index" or "wheel")."""
        status, body = self.get(url + ".metadata")
        if status == 200:
            return body, "index"
        if status != 404:
            raise UpstreamError(f"{url}.metadata: HTTP {status}")
        with zipfile.ZipFile(cast(IO[bytes], RangeFile(self, url, size))) as wheel:
            members = [
                n
                for n in wheel.namelist()
                if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            ]
            if len(members) != 1:
                raise UpstreamError(f"{url}: no single .dist-info/METADATA")
            return wheel.read(members[0]), "wheel"

    def part(self, url: str, first: int, last: int) -> bytes:
        """Bytes first..last of a file, by a range request."""
        status, body = self.get(url, {"Range": f"bytes={first}-{last}"})
        if status != 206 or len(body) != last - first + 1:
            raise UpstreamError(f"{url}: bytes {first}-{last}: HTTP {status}, {len(body)} bytes")
        return body

    def download(self, url: str, digest: str, target: Path) -> None:
        """Stream a whole file to target and check it against its sha256."""
        response = self.pool.request("GET", url, preload_content=False)
        try:
            if response.status != 200:
                raise UpstreamError(f"{url}: HTTP {response.status}")
            hasher = hashlib.sha256()
            size = 0
            with target.open("wb") as out:
                for chunk in response.stream(1 << 20):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        finally:
            response.release_conn()
        self._count(size)
        if hasher.hexdigest() != digest:
            target.unlink(missing_ok=True)
            raise UpstreamError(f"{url}: sha256 {hasher.hexdigest()}, the page says {digest}")


class RangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file through HTTP range requests."""

    BLOCK = 64 * 1024

    def __init__(self, upstream: Upstream, url: str, size: int) -> None:
        super().__init__()
        self.upstream = upstream
        self.url = url
        self.size = size
        self.pos = 0
        self.chunks: list[tuple[int, bytes]] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, size: int | None = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self.pos + size)
        if end <= self.pos:
            return b""
        data = self._range(self.pos, end)
        self.pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def _range(self, start: int, end: int) -> bytes:
        for chunk_start, chunk in self.chunks:
            if chunk_start <= start and end <= chunk_start + len(chunk):
                return chunk[start - chunk_start : end - chunk_start]
        # A whole block at a time; anything in the last block fetches the whole tail, where the
        # end-of-central-directory record and (usually) the central directory live.
        first = max(0, self.size - self.BLOCK) if start >= self.size - self.BLOCK else start
        last = max(end, min(self.size, first + self.BLOCK))
        status, body = self.upstream.get(self.url, {"Range": f"bytes={first}-{last - 1}"})
        if status == 200 and len(body) == self.size:
            body = body[first:last]
        elif status != 206 or len(body) != last - first:
            raise UpstreamError(f"{self.url}: a range request answered HTTP {status}")
        self.chunks.append((first, body))
        return body[start - first : end - first]
