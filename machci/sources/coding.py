"""Content codings of index pages: a page is kept as it came and inflated where it is read.

Pages are text that compresses fourfold to tenfold, and indexes send them gzip'd when asked
(sources/http.py asks). Keeping a page as it came over the wire means a quarter of the bytes to
hash, write to the cache and hand to a reducer process (sources/pypi/reducer.py), which inflates
it: that work leaves the process that fetches and resolves. Inflating is bounded by the page
limit, so a small page that inflates to gigabytes is refused after the limit's worth of it, as
it was when pages were inflated while read.
"""

from __future__ import annotations

import zlib

from machci.errors import SourceError
from machci.limits import Limit

# Content-Encoding as an index sends it -> as the cache records it ("" = as is).
_CODINGS = {"": "", "identity": "", "gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}
CODINGS = frozenset(_CODINGS.values())


def coding(header: str | None) -> str | None:
    """The content coding a Content-Encoding header names, None for one machci cannot read
    (a server may send only what it was asked for: gzip, or the page as it is)."""
    return _CODINGS.get((header or "").strip().lower())


def inflate(body: bytes, encoding: str, limit: Limit, where: str) -> bytes:
    """The page `body` in `encoding` as it reads, at most `limit` bytes of it; `where` names
    the page in messages."""
    if not encoding:
        if len(body) > limit.size:
            raise limit.refuse(where)
        return body
    parts: list[bytes] = []
    room = limit.size + 1  # one byte past the limit says the page is over it
    rest, first = body, True
    while rest:
        inflater = _inflater(encoding, rest)
        try:
            part = inflater.decompress(rest, room)
        except zlib.error as exc:
            if not first:
                break  # bytes after the last gzip member: ignored, as by urllib3 and gzip(1)
            raise SourceError(f"{where}: the page is not valid {encoding} data ({exc})") from exc
        room -= len(part)
        if room <= 0:
            raise limit.refuse(where)
        if not inflater.eof:
            raise SourceError(f"{where}: the page's {encoding} data ends early")
        parts.append(part)
        # gzip allows several members one after another (urllib3 reads them all).
        rest, first = (inflater.unused_data if encoding == "gzip" else b""), False
    return b"".join(parts)


def _inflater(encoding: str, data: bytes) -> zlib._Decompress:
    if encoding == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    # "deflate" is meant as zlib's format, but some servers send the bare deflate stream
    # (as browsers and urllib3 accept): a zlib stream starts with a header whose 16 bits are
    # a multiple of 31.
    wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
    return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
