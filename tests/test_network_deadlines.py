"""--timeout bounds each whole request: an index that asks to retry after a day, or sends its
answer a byte a second, ends the run with one message naming the URL instead of holding it.

The runs are real `machci lock` processes, given far longer than they need (they used to hang
for a day or more): the bound proves the hang is gone, not how fast machci is.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from machci.errors import SourceError
from machci.sources.auth import Credentials
from machci.sources.cache import Cache
from machci.sources.http import Http
from tests.fixtures.index import Index
from tests.fixtures.loopback import LoopbackServer, LoopbackService, QuietHandler
from tests.helpers import SNAPSHOT, lock

ROOT = Path(__file__).resolve().parent.parent
BOUND = 30.0  # seconds a `--timeout 5` run may take here; the hangs were days


def lock_process(url: str, project: Path, *args: str) -> tuple[int, str, float]:
    """`machci lock --timeout 5` in a process of its own: (exit code, stderr, seconds taken)."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "requirements.txt").write_text("app\n")
    argv = [sys.executable, "-m", "machci", "lock", "--json", "-r", "requirements.txt"]
    argv += ["--index-url", url, "--cache-dir", ".cache", "--snapshot", SNAPSHOT]
    argv += ["--timeout", "5", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    try:
        done = subprocess.run(
            argv, cwd=project, env=env, capture_output=True, text=True, timeout=BOUND * 4
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"machci lock still running after {BOUND * 4:g} s: {exc.stderr!r}")
    return done.returncode, done.stderr, time.monotonic() - start


@pytest.mark.parametrize(
    ("status", "retry_after", "asked"),
    [
        (429, "86400", "86400"),
        (503, "86400", "86400"),
        # A date next year: about 31,536,000 s, give or take the time the test takes.
        (503, "next-year", "315"),
        (429, "9" * 400, "1000000000"),
    ],
    ids=["429-a-day", "503-a-day", "503-next-year", "429-400-digits"],
)
def test_a_retry_after_beyond_the_timeout_ends_the_run(
    index: Index, tmp_path: Path, status: int, retry_after: str, asked: str
) -> None:
    index.publish("app", "1.0")
    if retry_after == "next-year":
        retry_after = format_datetime(datetime.now(UTC) + timedelta(days=365), usegmt=True)
    index.fault("/simple/app/", status=status, headers={"Retry-After": retry_after})
    code, err, seconds = lock_process(index.url, tmp_path)
    assert seconds < BOUND, err
    assert code == 2, err
    assert err.startswith(
        f"machci: error: {index.url}/app/: the server answered HTTP {status} and asked to"
        f" retry after {asked}"
    ), err
    assert err.endswith(" s, longer than --timeout (5 s) allows a request; try again later\n")
    assert err.count("\n") == 1


def test_a_short_retry_after_is_honoured(index: Index, tmp_path: Path) -> None:
    index.publish("app", "1.0")
    index.fault("/simple/app/", status=429, headers={"Retry-After": "1"}, times=2)
    result = lock(index, tmp_path, "app\n", "--timeout", "5")
    assert result.versions() == {"app": "1.0"}
    assert [r.path for r in index.log].count("/simple/app/") == 3


@pytest.mark.parametrize(
    "path",
    [
        "/simple/app/",  # a page
        "/files/app-1.0-py3-none-any.whl.metadata",  # a .metadata file
        "/files/app-1.0-py3-none-any.whl",  # a wheel without .metadata: a file's body
    ],
)
def test_a_body_sent_a_byte_a_second_times_out(index: Index, tmp_path: Path, path: str) -> None:
    index.publish("app", "1.0", serve_metadata=path.endswith(".metadata"))
    index.fault(path, trickle=1.0)
    code, err, seconds = lock_process(index.url, tmp_path)
    assert seconds < BOUND, err
    assert code == 2, err
    assert f"{index.base_url}{path}: timed out after " in err, err
    assert err.endswith(" s (--timeout 5 bounds each whole request)\n"), err
    assert err.count("\n") == 1


def test_a_large_file_arriving_slowly_but_steadily_is_not_cut_off(
    index: Index, tmp_path: Path
) -> None:
    """A file's body earns a second for every 64 KiB it delivers: 1.5 MiB at 192 KiB/s takes
    8 s, longer than --timeout 5, and still arrives."""
    payload = (("extra.bin", os.urandom(3 << 19)),)  # random: the wheel stays 1.5 MiB
    wheel = index.publish("app", "1.0", serve_metadata=False, extra_files=payload).filename
    index.fault(f"/files/{wheel}", trickle=0.33, trickle_bytes=1 << 16)
    code, err, seconds = lock_process(index.url, tmp_path)
    assert (code, err) == (0, "")
    assert seconds > 5  # it did take longer than --timeout


class _SlowHeaders(QuietHandler):
    """Answers every request with a status line and headers sent a byte a second."""

    server: LoopbackServer

    def do_GET(self) -> None:
        self.close_connection = True
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Padding: " + b"x" * 1000
        for offset in range(len(head)):
            try:
                self.wfile.write(head[offset : offset + 1])
                self.wfile.flush()
            except OSError:
                return
            if self.server.stopping.wait(1.0):
                return


class SlowHeaders(LoopbackService):
    handler = _SlowHeaders


def test_headers_sent_a_byte_a_second_time_out(tmp_path: Path) -> None:
    with SlowHeaders() as server:
        url = f"{server.base_url}/simple"
        code, err, seconds = lock_process(url, tmp_path)
    assert seconds < BOUND, err
    assert code == 2, err
    assert err.startswith(f"machci: error: cannot fetch {url}/app/: timed out after "), err


def test_a_streamed_download_sent_a_byte_a_second_times_out(index: Index, tmp_path: Path) -> None:
    """Data tarballs are written to a file as they arrive (Http.download): the same bound."""
    wheel = index.publish("app", "1.0").filename
    url = f"{index.files_url}/{wheel}"
    index.fault(f"/files/{wheel}", trickle=1.0)
    http = Http(Cache(tmp_path / "cache"), credentials=Credentials([index.url]), timeout=2)
    errors: list[str] = []

    def download() -> None:
        try:
            http.download(url, io.BytesIO(), http.limits.archive)
        except SourceError as exc:
            errors.append(exc.message)

    worker = threading.Thread(target=download, daemon=True)
    worker.start()
    worker.join(BOUND)
    assert not worker.is_alive(), "Http.download still running"
    assert errors == [
        f"cannot fetch {url}: timed out after 2 s (--timeout 2 bounds each whole request)"
    ]
