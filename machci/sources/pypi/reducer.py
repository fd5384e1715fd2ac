"""Reducing index pages to listings in worker processes.

Inflating a page, reading its JSON and reducing it to a listing (pages.py) is CPU work in
Python, and a cold lock of an application reads over a hundred megabytes of pages (airflow's
315 projects: 121 MB, 30 MB as gzip'd on the wire): done by the fetching threads, it was most
of the lock's time, all of it under one interpreter lock while the other core idled. Pages of
at least LARGE_PAGE bytes as they came go to two worker processes instead, still compressed;
smaller ones, where sending the page costs more than it saves, are reduced by the thread that
fetched them.

A worker is `python -m machci.sources.pypi.reducer`, started with the first large page (a warm
run or a small project starts none), with an environment of its import path alone: it holds no
token or credential, and runs only machci's own page reader (nothing from the index is
executed). It is not a multiprocessing child, which would run the caller's main script again in
each worker. A request is a JSON header and the page's bytes as they came; the answer, the
listing's text or why the page cannot be read. If a worker cannot start or dies, pages are
reduced in-process.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import queue
import struct
import subprocess
import sys
import threading
from datetime import datetime
from typing import IO

from machci.errors import SourceError
from machci.limits import Limit
from machci.redaction import redact
from machci.sources.cache import CachedPage
from machci.sources.coding import inflate
from machci.sources.pypi.pages import Listing, WheelFilter, listing

LARGE_PAGE = 8 * 1024  # bytes of page as it came (gzip'd, about a quarter of the text)
WORKERS = 2
_SIZE = struct.Struct(">Q")
_ANSWERS = {b"L": True, b"E": False}  # a listing's text; an error's message


class _Lost(Exception):
    """A worker that did not answer (it could not start, or died)."""


def _send(stream: IO[bytes], *parts: bytes) -> None:
    for part in parts:
        stream.write(_SIZE.pack(len(part)))
        stream.write(part)
    stream.flush()


def _receive(stream: IO[bytes]) -> bytes:
    head = stream.read(_SIZE.size)
    if len(head) != _SIZE.size:
        raise _Lost
    (size,) = _SIZE.unpack(head)
    data = stream.read(size)
    if len(data) != size:
        raise _Lost
    return data


class _Worker:
    def __init__(self) -> None:
        # Only the import path: a worker needs machci and nothing of the caller's environment.
        # `-P`: not the working directory first, so the worker imports the caller's machci.
        path = os.pathsep.join(p for p in sys.path if p)
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # a failure is seen again in-process, and reported there
            env={"PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"},
        )

    def reduce(self, header: dict[str, object], body: bytes) -> tuple[bool, str]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            _send(stdin, json.dumps(header).encode(), body)
            kind, text = _receive(stdout), _receive(stdout)
        except OSError as exc:
            raise _Lost from exc
        if kind not in _ANSWERS:
            raise _Lost
        return _ANSWERS[kind], text.decode()

    def stop(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):  # one that died has closed its end
                self.process.stdin.close()  # the worker ends at the end of its input
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class Reducer:
    """Reduces pages to listings: large ones in worker processes, while they work."""

    def __init__(self, large_page: int = LARGE_PAGE, workers: int = WORKERS) -> None:
        self.large_page = large_page
        self.workers = workers
        self._lock = threading.Lock()
        self._started: list[_Worker] = []
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._broken = False

    def listing(
        self,
        page: CachedPage,
        body: bytes,
        limit: Limit,
        wheels: WheelFilter | None,
        snapshot: datetime | None,
        project: str,
    ) -> tuple[Listing, str]:
        """The listing of `page`, whose `body` is as it came (inflated under `limit`), and its
        text as the cache keeps it: a worker answers with the text, which is kept as it came
        rather than joined again."""
        if len(body) >= self.large_page and not self._broken:
            header: dict[str, object] = {
                "url": page.url,
                "content_type": page.content_type,
                "encoding": page.encoding,
                "limit": [limit.what, limit.variable, limit.size],
                "tags": sorted(wheels.tags) if wheels is not None else None,
                "snapshot": snapshot.isoformat() if snapshot is not None else None,
                "project": project,
            }
            try:
                done, text = self._reduce(header, body)
            except (_Lost, OSError):
                with self._lock:
                    self._broken = True
            else:
                if not done:
                    raise SourceError(text)
                found = Listing.from_text(text)
                if found is not None:
                    return found, text
        readable = inflate(body, page.encoding, limit, redact(page.url))
        found = listing(page.url, page.content_type, readable, wheels, snapshot, project)
        return found, found.to_text()

    def _reduce(self, header: dict[str, object], body: bytes) -> tuple[bool, str]:
        with self._lock:
            if self._idle.empty() and len(self._started) < self.workers:
                self._started.append(_Worker())
                self._idle.put(self._started[-1])
        worker = self._idle.get()
        try:
            return worker.reduce(header, body)
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        with self._lock:
            started, self._started = self._started, []
        for worker in started:
            worker.stop()


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """A worker's loop: answer each request until the input ends.

    Without the cycle collector, as the machci command runs (cli.py): reading a page makes
    hundreds of thousands of objects, none in a cycle, and looking for cycles among them took
    a sixteenth of a worker's time."""
    gc.disable()
    filters: dict[tuple[str, ...], WheelFilter] = {}  # decisions per tag triple kept
    while True:
        try:
            header = json.loads(_receive(requests))
            body = _receive(requests)
        except _Lost:
            return
        wheels = None
        if header["tags"] is not None:
            tags = tuple(header["tags"])
            wheels = filters.get(tags)
            if wheels is None:
                wheels = filters[tags] = WheelFilter(tags)
        snapshot = header["snapshot"]
        try:
            url = header["url"]
            body = inflate(body, header["encoding"], Limit(*header["limit"]), redact(url))
            found = listing(
                url,
                header["content_type"],
                body,
                wheels,
                datetime.fromisoformat(snapshot) if snapshot is not None else None,
                header["project"],
            )
        except SourceError as exc:
            _send(answers, b"E", exc.message.encode())
        else:
            _send(answers, b"L", found.to_text().encode())


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
    # Every answer is flushed as it is sent. The lock waits for its workers to end: tearing the
    # interpreter down, object by object, took 50 ms of the end of a cold lock.
    os._exit(0)
