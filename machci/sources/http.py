"""HTTP for index pages and files: kept-alive pools, retries with backoff, cache, offline mode.

Requests carry HTTP Basic credentials (sources/auth.py) but never user-info, and every body is
read under a size cap (limits.py). Each request, its retries and their waits included,
ends within --timeout (sources/deadlines.py): a server that asks to retry after longer, or
sends its answer a byte at a time, ends the run rather than holding it. URLs in messages go
through `redact`. Parts of files come with range requests (sources/pypi/lazywheel.py reads a wheel's
metadata so).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, BinaryIO, TextIO
from urllib.parse import urljoin

from machci import __version__
from machci.config.defaults import DEFAULT_TIMEOUT
from machci.errors import SourceError
from machci.limits import Limit, Limits

# Re-exported: the source modules take everything about URLs on the network from here.
from machci.redaction import redact as redact
from machci.redaction import strip_credentials as strip_credentials
from machci.sources.auth import Credentials, netrc_path
from machci.sources.cache import Cache, CachedPage
from machci.sources.coding import coding, inflate
from machci.sources.deadlines import Deadline, Watchdog
from machci.sources.freshness import NO_STORE, Freshness, lifetime

if TYPE_CHECKING:
    import urllib3
    from urllib3.exceptions import HTTPError

DEFAULT_RETRIES = 3
# Requests in flight. Over a network a cold lock waits on round trips, and more in flight
# shorten it (airflow, 20 ms a round trip: 16 threads took 0.90x the time of 8); on loopback,
# where reading the pages bounds it, 16 are as fast as 8, for 5-7 MiB more at the peak.
WORKERS = 16
CHUNK = 1 << 16
DRAIN = 1 << 16  # an unwanted body up to this size is read, so its connection can be reused
# Pages are text that compresses fourfold to tenfold (PyPI serves them gzip'd when asked); they
# are kept as they came and inflated where they are read (sources/coding.py), under the page
# limit. Files are asked for as they are: their hash is of their bytes.
PAGE_ENCODINGS = "gzip"
READ_ATTEMPTS = 2  # one more try: a proxy may have cut the body short
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF = 0.25  # seconds before the second retry, doubling after (none before the first)
MAX_REDIRECTS = 3
FOREVER = 1e9  # seconds: a longer Retry-After is read as this (and refused all the same)
# A file's body (not a page or .metadata) gets a second more for every 64 KiB that arrives:
# a large file on a slow link still comes, a trickle is cut off when --timeout is over.
FILE_GRACE = 1 / (64 * 1024)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class Progress:
    """A one-line fetch counter on a terminal's stderr; silent when stderr is not a TTY."""

    def __init__(self, stream: TextIO | None = None, delay: float = 1.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.started = time.monotonic()
        self.delay = delay
        self.count = 0
        self.shown = False
        self.lock = threading.Lock()

    def tick(self) -> None:
        if not self.enabled:
            return
        with self.lock:
            self.count += 1
            if time.monotonic() - self.started >= self.delay:
                self.stream.write(f"\rmachci: fetched {self.count} index pages and files")
                self.stream.flush()
                self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


class CacheMiss(Exception):
    """The answer needs more than reading the cache, which a cache-only scope refuses
    (`Http.cache_only`): the caller hands the work to a thread that may wait for it."""


@dataclass(frozen=True)
class _Reply:
    status: int
    url: str  # where the answer came from (after redirects), without user-info
    headers: Mapping[str, str]  # case-insensitive
    body: bytes  # empty unless the status is 200, or 206 when a part was asked for
    authenticated: bool  # whether the request carried credentials


@dataclass(frozen=True)
class RangeReply:
    """A part of a file, as a 206 answer gave it."""

    start: int  # where `data` begins in the file
    data: bytes
    size: int  # the whole file's


class Http:
    def __init__(
        self,
        cache: Cache,
        *,
        credentials: Credentials,
        offline: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        progress: Progress | None = None,
        refresh: bool = False,
    ) -> None:
        """`refresh`: revalidate every stored page, however fresh its Cache-Control says."""
        self.cache = cache
        self.credentials = credentials
        self.offline = offline
        self.refresh = refresh
        self.limits = Limits.from_environment()
        self.progress = progress or Progress()
        self.timeout = timeout
        self.retries = retries
        self.watchdog = Watchdog()
        self._pool: urllib3.PoolManager | None = None
        self._pool_lock = threading.Lock()
        self._scope = threading.local()

    @contextlib.contextmanager
    def cache_only(self) -> Iterator[None]:
        """In this thread, answer from the cache alone: a request, or other work a caller
        marks with `beyond_cache` (reducing a page, running a build), raises CacheMiss."""
        self._scope.cache_only = True
        try:
            yield
        finally:
            self._scope.cache_only = False

    def beyond_cache(self) -> None:
        """What follows goes beyond reading the cache: refused in a cache-only scope."""
        if getattr(self._scope, "cache_only", False):
            raise CacheMiss

    def pool(self) -> urllib3.PoolManager:
        """Made at the first request, with urllib3 imported then: a run answered from the
        cache (a warm lock) makes none."""
        with self._pool_lock:
            if self._pool is None:
                import urllib3

                from machci.sources.watched import WATCHED_POOLS

                # Redirects only: retries are made here, where they count against the
                # request's deadline (urllib3 would sleep a Retry-After of a day, and time each
                # attempt anew).
                retry = urllib3.Retry(
                    total=None,
                    connect=0,
                    read=0,
                    other=0,
                    status=0,
                    redirect=MAX_REDIRECTS,
                    respect_retry_after_header=False,
                    raise_on_status=False,
                )
                self._pool = urllib3.PoolManager(
                    num_pools=8,
                    maxsize=WORKERS,
                    retries=retry,
                    headers={"User-Agent": f"machci/{__version__}"},
                )
                self._pool.pool_classes_by_scheme = WATCHED_POOLS
            return self._pool

    def _open(
        self,
        url: str,
        target: str,
        headers: dict[str, str],
        deadline: Deadline,
        *,
        as_sent: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        """The answer's headers, after up to `retries` retries of failures and of statuses
        worth retrying (429, 5xx), all within the deadline; the body is left to read, in its
        content coding if `as_sent`."""
        pool = self.pool()
        from urllib3 import Timeout
        from urllib3.exceptions import HTTPError, MaxRetryError

        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            wait = min(self.timeout, deadline.left())
            if wait <= 0:
                raise _timed_out(url, deadline)
            try:
                response = pool.request(
                    "GET",
                    target,
                    headers=headers,
                    preload_content=False,
                    decode_content=not as_sent,
                    timeout=Timeout(connect=wait, read=wait),
                )
            except HTTPError as exc:
                if deadline.expired:
                    raise _timed_out(url, deadline) from exc
                if last or not _pause(_backoff(attempt), deadline):
                    reason = (exc.reason or exc) if isinstance(exc, MaxRetryError) else exc
                    raise SourceError(f"cannot fetch {redact(url)}: {_describe(reason)}") from exc
                continue
            self.progress.tick()
            if response.status not in RETRY_STATUSES or last:
                return response
            asked = retry_after(response.headers.get("Retry-After"))
            if asked is None and _backoff(attempt) > deadline.left():
                return response  # no time for another try: the caller reports the status
            _discard(response)
            if asked is not None and asked > deadline.left():
                raise _asked_to_wait(url, response.status, asked, self.timeout)
            if not _pause(_backoff(attempt) if asked is None else asked, deadline):
                raise _timed_out(url, deadline)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _get(
        self,
        url: str,
        headers: dict[str, str],
        limit: Limit,
        partial: Limit | None = None,
        *,
        grace: float = 0.0,
        as_sent: bool = False,
    ) -> _Reply:
        """One answer; a 200's body is read whole (under `limit`), so is a 206's when `partial`
        is given (under it), any other is let go; `as_sent`: in its content coding. The whole
        of it, retries included, within --timeout, plus `grace` seconds for each byte of body
        received."""
        self.beyond_cache()
        target, auth = self.credentials.prepare(url)
        failure: HTTPError
        with self.watchdog.request(self.timeout, grace) as deadline:
            from urllib3.exceptions import HTTPError  # loaded by the pool

            for _attempt in range(READ_ATTEMPTS):
                response = self._open(url, target, {**headers, **auth}, deadline, as_sent=as_sent)
                body = b""
                status = response.status
                read = limit if status == 200 else partial if status == 206 else None
                if read is not None:
                    try:
                        body = _read(response, read, url, deadline)
                    except HTTPError as exc:  # cut short, or too slow, after the headers
                        if deadline.expired:
                            raise _timed_out(url, deadline) from exc
                        failure = exc
                        continue
                else:
                    _discard(response)
                return _Reply(
                    status=response.status,
                    url=urljoin(target, response.url or ""),  # urllib3 may give only the path
                    headers=response.headers,
                    body=body,
                    authenticated=bool(auth),
                )
        raise SourceError(f"cannot fetch {redact(url)}: {_describe(failure)}") from failure

    def page(
        self, url: str, accept: str, *, not_before: float | None = None
    ) -> tuple[CachedPage, bytes | None] | None:
        """An index page, with its body as it came (in the page's content coding) when it was
        just received (else `page_body` reads it when needed), or None when the index says 404.

        A stored page is used without a request while fresh (sources/freshness.py) and, for a
        snapshot instant `not_before`, only if received after it; otherwise it is revalidated
        with its ETag and Last-Modified.
        """
        cached = self.cache.page(url)
        if self.offline:
            if cached is None:
                raise SourceError(f"offline: {redact(url)} is not in the cache")
            return cached, None
        if (
            cached is not None
            and not self.refresh
            and cached.freshness.fresh(time.time(), not_before)
        ):
            return cached, None
        headers = {"Accept": accept, "Accept-Encoding": PAGE_ENCODINGS}
        if cached is not None and cached.etag:
            headers["If-None-Match"] = cached.etag
        if cached is not None and cached.last_modified:
            headers["If-Modified-Since"] = cached.last_modified
        reply = self._get(url, headers, self.limits.page, as_sent=True)
        received = time.time()
        if reply.status == 304 and cached is not None:
            revalidated = replace(cached, freshness=Freshness(received, lifetime(reply.headers)))
            if revalidated.freshness.lifetime > 0:  # else nothing changed worth writing
                self.cache.put_page(url, revalidated)
            return revalidated, None
        if reply.status == 404:
            return None
        if reply.status != 200:
            raise _refusal(url, reply, "the index")
        encoding = _page_coding(url, reply)
        fresh_for = lifetime(reply.headers)
        page = CachedPage(
            url=strip_credentials(reply.url),  # a redirect may have led to a signed URL
            content_type=reply.headers.get("Content-Type", ""),
            digest=hashlib.sha256(reply.body).hexdigest(),
            freshness=Freshness(received, max(fresh_for, 0.0)),
            etag=reply.headers.get("ETag"),
            last_modified=reply.headers.get("Last-Modified"),
            encoding=encoding,
        )
        if fresh_for != NO_STORE:
            self.cache.put_page(url, page, reply.body)
        return page, reply.body

    def page_body(self, url: str, accept: str, page: CachedPage) -> bytes:
        """The stored body of a page `page` returned, in its content coding. One that turns out
        missing or damaged is fetched again, and must be the same."""
        body = self.cache.page_body(url, page)
        if body is not None:
            return body
        if self.offline:
            raise SourceError(f"offline: {redact(url)} is not in the cache")
        reply = self._get(
            url,
            {"Accept": accept, "Accept-Encoding": PAGE_ENCODINGS},
            self.limits.page,
            as_sent=True,
        )
        if reply.status != 200:
            raise _refusal(url, reply, "the index")
        same = _page_coding(url, reply) == page.encoding
        if not same or hashlib.sha256(reply.body).hexdigest() != page.digest:
            raise SourceError(f"{redact(url)}: the page changed while it was read; run again")
        self.cache.put_page(url, page, reply.body)
        return reply.body

    def page_text(self, url: str, accept: str, page: CachedPage, body: bytes | None) -> bytes:
        """A page's body as it reads, inflated under the page limit: the `body` `page`
        returned, else the stored one."""
        stored = body if body is not None else self.page_body(url, accept, page)
        return inflate(stored, page.encoding, self.limits.page, redact(url))

    def file(self, url: str, sha256: str, *, small: bool = False) -> bytes:
        """The file at url, verified against sha256 (hex), from the cache when possible.

        `small` files (metadata) are fetched without taking the cache's file lock, under the
        metadata size limit instead of the distribution one.
        """
        limit = self.limits.metadata if small else self.limits.distribution

        def fetch() -> bytes:
            if self.offline:
                raise SourceError(f"offline: {redact(url)} is not in the cache")
            last = ""
            for _attempt in range(READ_ATTEMPTS):
                reply = self._get(url, {}, limit, grace=0.0 if small else FILE_GRACE)
                if reply.status != 200:
                    raise _refusal(url, reply, "the server")
                data = reply.body
                actual = hashlib.sha256(data).hexdigest()
                if actual == sha256:
                    return data
                last = actual
            raise SourceError(
                f"hash mismatch for {redact(url)}: expected sha256 {sha256}, got {last}"
                f" ({len(data)} bytes)"
            )

        return self.cache.blob_or_fetch(sha256, fetch, lock=not small)

    def unpinned(self, url: str) -> bytes:
        """A file whose hash nobody knows yet (an archive of packagesExtra): fetched on every
        lock, under the distribution limit; the caller pins what it gets."""
        if self.offline:
            raise SourceError(f"offline: {redact(url)} has no hash to find it by in the cache")
        reply = self._get(url, {}, self.limits.distribution, grace=FILE_GRACE)
        if reply.status != 200:
            raise _refusal(url, reply, "the server")
        return reply.body

    def ranged(
        self, url: str, sha256: str, start: int, stop: int | None = None
    ) -> RangeReply | None:
        """Bytes [start, stop) of the file at url; with stop None, its last -start bytes.

        None says to read the whole file with `file` instead: offline, or when the answer is
        not that part. A server that ignores Range sends the whole file (read under the
        distribution limit), and a file no larger than the part comes whole: either is kept in
        the cache if it matches sha256, so `file` has it without asking again. Parts are read
        under the metadata limit: they are asked for to read metadata.
        """
        if self.offline:
            return None
        wanted = f"bytes=-{-start}" if stop is None else f"bytes={start}-{stop - 1}"
        reply = self._get(
            url,
            {"Range": wanted},
            self.limits.distribution,  # a server that ignores Range sends the whole file
            self.limits.metadata,
            grace=FILE_GRACE,
        )
        whole = reply.body if reply.status == 200 else None
        if reply.status == 206 and (part := _part(reply)) is not None:
            first = max(part.size + start, 0) if stop is None else start
            last = part.size if stop is None else min(stop, part.size)
            if (part.start, part.start + len(part.data)) != (first, last):
                return None
            if len(part.data) < part.size:
                return part
            whole = part.data
        if whole is not None and hashlib.sha256(whole).hexdigest() == sha256:
            self.cache.put_blob(sha256, whole)
        return None

    def sha256_among(self, url: str, hashes: frozenset[str]) -> str:
        """Which of a direct reference's --hash values its file has: the only one, or the one
        the file (from the cache, else downloaded) turns out to match."""
        ordered = sorted(hashes)
        if len(ordered) == 1:
            return ordered[0]
        for sha256 in ordered:
            try:
                self.file(url, sha256)
            except SourceError as exc:
                if "hash mismatch" in exc.message:
                    continue
                raise
            return sha256
        raise SourceError(
            f"{redact(url)}: the file's sha256 is none of its {len(ordered)} --hash values"
        )

    def download(self, url: str, into: BinaryIO, limit: Limit) -> None:
        """The body at url written to `into` as it arrives, under `limit`, uncached: for
        archives whose hash can be checked only once unpacked (sources/depsdb/tarballs.py)."""
        if self.offline:
            raise SourceError(f"offline: {redact(url)} is not in the cache")
        self.beyond_cache()
        target, auth = self.credentials.prepare(url)
        with self.watchdog.request(self.timeout, FILE_GRACE) as deadline:
            response = self._open(url, target, auth, deadline)
            from urllib3.exceptions import HTTPError  # loaded by the pool

            if response.status != 200:
                _discard(response)
                reply = _Reply(response.status, url, response.headers, b"", bool(auth))
                raise _refusal(url, reply, "the server")
            try:
                _stream(response, limit, url, into.write, deadline)
            except HTTPError as exc:  # cut short, or too slow, after the headers
                if deadline.expired:
                    raise _timed_out(url, deadline) from exc
                raise SourceError(f"cannot fetch {redact(url)}: {_describe(exc)}") from exc


def _page_coding(url: str, reply: _Reply) -> str:
    sent = reply.headers.get("Content-Encoding")
    encoding = coding(sent)
    if encoding is None:
        raise SourceError(
            f"{redact(url)}: the index sent the page in the content coding {sent!r};"
            f" machci asks for {PAGE_ENCODINGS} or the page as it is"
        )
    return encoding


def _part(reply: _Reply) -> RangeReply | None:
    """The part a 206 answer holds, if its Content-Range gives the size and fits the body."""
    match = _CONTENT_RANGE.fullmatch(reply.headers.get("Content-Range", ""))
    if match is None:
        return None
    first, last, size = (int(n) for n in match.groups())
    if last - first + 1 != len(reply.body) or last >= size:
        return None
    return RangeReply(first, reply.body, size)


def _read(response: urllib3.BaseHTTPResponse, limit: Limit, url: str, deadline: Deadline) -> bytes:
    chunks: list[bytes] = []
    _stream(response, limit, url, chunks.append, deadline)
    return b"".join(chunks)


def _stream(
    response: urllib3.BaseHTTPResponse,
    limit: Limit,
    url: str,
    write: Callable[[bytes], object],
    deadline: Deadline,
) -> None:
    """The body, chunk by chunk, refused past `limit`: by its declared length before reading,
    else as it arrives, so no more than the limit is ever read."""
    complete = False
    try:
        declared = response.length_remaining  # Content-Length, when the server sent one
        if declared is not None and declared > limit.size:
            raise limit.refuse(redact(url), declared)
        size = 0
        for chunk in response.stream(CHUNK):
            size += len(chunk)
            if size > limit.size:
                raise limit.refuse(redact(url))
            deadline.received(len(chunk))
            write(chunk)
        complete = True
    finally:
        if not complete:
            response.close()  # the rest is never read: the connection cannot be reused
        response.release_conn()


def _discard(response: urllib3.BaseHTTPResponse) -> None:
    """Let go of an unwanted body: a small one is read so the connection is reused, a large or
    unknown one closes the connection instead."""
    remaining = response.length_remaining
    if remaining is not None and remaining <= DRAIN:
        response.drain_conn()
    else:
        response.close()
    response.release_conn()


def _backoff(attempt: int) -> float:
    """Seconds to wait before retrying after failed attempt number `attempt` (from 0)."""
    return 0.0 if attempt == 0 else BACKOFF * 2 ** (attempt - 1)


def _pause(seconds: float, deadline: Deadline) -> bool:
    """Sleep before a retry if the deadline leaves time for it and for the retry itself."""
    if seconds >= deadline.left():
        return False
    time.sleep(seconds)
    return True


def retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for (delay-seconds or an HTTP date), None when absent
    or unreadable (then the usual backoff applies)."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return min(float(text), FOREVER) if len(text) < 16 else FOREVER
    import email.utils  # only for a Retry-After date: a warm run makes no request at all

    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return max(moment.timestamp() - time.time(), 0.0)


def _asked_to_wait(url: str, status: int, seconds: float, timeout: float) -> SourceError:
    return SourceError(
        f"{redact(url)}: the server answered HTTP {status} and asked to retry after"
        f" {math.ceil(seconds)} s, longer than --timeout ({timeout:g} s) allows a request;"
        " try again later"
    )


def _timed_out(url: str, deadline: Deadline) -> SourceError:
    return SourceError(
        f"cannot fetch {redact(url)}: timed out after {deadline.elapsed():.0f} s"
        f" (--timeout {deadline.seconds:g} bounds each whole request)"
    )


def _refusal(url: str, reply: _Reply, who: str) -> SourceError:
    message = f"{redact(url)}: {who} answered HTTP {reply.status}"
    if reply.status == 401 and reply.authenticated:
        message += "; it refused the credentials"
    elif reply.status == 401:
        message += (
            "; it needs credentials: put them in the index URL as user-info"
            f" or in the netrc file ({netrc_path()})"
        )
    return SourceError(message)


def _describe(error: BaseException) -> str:
    text = redact(str(error))
    lowered = text.lower()
    if "timed out" in lowered or "timeout" in lowered:
        return "timed out"
    if "incompleteread" in lowered or "incomplete" in lowered:
        return "the response was truncated"
    if "connection refused" in lowered or "newconnectionerror" in lowered:
        return "connection refused (is the index reachable?)"
    if "too many 5" in lowered or "too many error responses" in lowered:
        return "the server kept answering with errors"
    return text.split(":", 1)[-1].strip() or type(error).__name__
