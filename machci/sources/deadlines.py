"""Deadlines for whole requests: urllib3's timeouts bound each wait on a socket, not a request.

A server that sends its headers or body one byte a second never lets a single read time out,
and would hold a run for days. Each request therefore runs under a `Deadline`: the connection
classes of sources/watched.py register every socket the request uses with it, and a watchdog
thread shuts those sockets down when the deadline passes, which ends the blocked read with an
error that the caller reports as a timeout. A file's body may earn more time as it arrives
(`grace`), so a large file on a slow link still comes while a trickle does not.

Not covered: name resolution (the system resolver cannot be interrupted) and a TLS handshake
that trickles (its socket is not reachable until the handshake is done; each of its reads is
bounded by the timeout all the same).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

IDLE = 5.0  # seconds the watchdog thread waits for a request before it ends
_local = threading.local()  # the deadline of the request this thread is making, if any


class Deadline:
    """When one request must be over, and the sockets to shut down then."""

    def __init__(self, seconds: float, grace: float) -> None:
        """`grace`: seconds the deadline moves on for each byte of body received."""
        self.seconds = seconds
        self.grace = grace
        self.started = time.monotonic()
        self.until = self.started + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def left(self) -> float:
        return 0.0 if self.expired else self.until - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def received(self, size: int) -> None:
        """Body bytes arrived: a file's body earns `grace` for each."""
        if self.grace:
            with self._lock:
                self.until += size * self.grace

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:  # registered late: no read may start on it
            _shut(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Wake whatever waits on the socket. The plain socket method also reaches a TLS socket's
    descriptor (SSLSocket.shutdown would first drop its TLS state under a reading thread)."""
    with contextlib.suppress(OSError):  # closed or detached already: nothing waits on it
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Watchdog:
    """One thread that expires the deadlines of the requests in flight."""

    def __init__(self) -> None:
        self._active: set[Deadline] = set()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def request(self, seconds: float, grace: float = 0.0) -> Iterator[Deadline]:
        """A deadline for the request made inside the block by this thread."""
        deadline = Deadline(seconds, grace)
        with self._changed:
            self._active.add(deadline)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="machci-deadlines", daemon=True
                )
                self._thread.start()
            self._changed.notify()
        previous = getattr(_local, "deadline", None)
        _local.deadline = deadline
        try:
            yield deadline
        finally:
            _local.deadline = previous
            with self._changed:
                self._active.discard(deadline)

    def _run(self) -> None:
        """Expire deadlines as they pass; end after a while with none (the next request starts
        the thread again), so that runs in one process leave no threads behind."""
        with self._changed:
            while True:
                now = time.monotonic()
                for deadline in [d for d in self._active if d.until <= now]:
                    self._active.discard(deadline)
                    deadline.expire()
                nearest = min((d.until for d in self._active), default=None)
                if nearest is None:
                    self._changed.wait(IDLE)
                    if not self._active:
                        self._thread = None
                        return
                    continue
                # A deadline only moves later: waking at its old instant just looks again.
                self._changed.wait(max(nearest - now, 0.001))


def watch(sock: socket.socket | None) -> None:
    """Register a socket of the request this thread is making with its deadline."""
    deadline: Deadline | None = getattr(_local, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.watch(sock)
