"""Bad inputs on the command line and on disk: one message naming what is wrong, exit 2, nothing
written, no traceback, and nothing that hangs."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fixtures.builders import Dist, build_bytes
from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, Run, lock, run


def lock_in(project: Path, *args: str) -> Run:
    """`machci lock` in `project` with its requirements.txt, before any index is asked."""
    project.mkdir(exist_ok=True)
    if not (project / "requirements.txt").exists():
        (project / "requirements.txt").write_text("app\n")
    with contextlib.chdir(project):
        return run(
            "lock", "-r", "requirements.txt", "--index-url", "http://127.0.0.1:9/simple", *args
        )


@contextlib.contextmanager
def fifo(path: Path) -> Iterator[Path]:
    """A FIFO whose blocked reader, if any, gets an end of file after a few seconds, so a
    regression fails the test instead of hanging the suite."""
    os.mkfifo(path)
    done = threading.Event()

    def release() -> None:
        deadline = time.monotonic() + 3
        while not done.wait(0.1):
            if time.monotonic() < deadline:
                continue
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # no reader is waiting
                continue

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        done.set()
        thread.join()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-inf", "1e300", "3601"])
def test_bad_timeouts(tmp_path: Path, value: str) -> None:
    result = lock_in(tmp_path, f"--timeout={value}")
    assert result.code == 2
    assert result.err.startswith(f"machci: error: --timeout {float(value):g}: expected a number")
    assert result.err.endswith("of seconds above 0 and at most 3600\n")


def test_the_largest_timeout_is_accepted(index: Index, tmp_path: Path) -> None:
    index.publish("app", "1.0")
    assert lock(index, tmp_path, "app\n", "--timeout", "3600").versions() == {"app": "1.0"}


def test_a_cache_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("")
    result = lock_in(tmp_path, "--cache-dir", "notes.txt")
    assert (result.code, result.err) == (
        2,
        "machci: error: --cache-dir notes.txt is not a directory\n",
    )


@pytest.mark.parametrize("entries", ["pages", "blobs"])
def test_a_cache_entry_of_the_wrong_kind_is_replaced(
    index: Index, tmp_path: Path, entries: str
) -> None:
    """A directory where an entry belongs is damage: discarded, fetched and written again
    (tests/test_malformed_inputs.py tries the other kinds)."""
    index.publish("app", "1.0")
    first = lock(index, tmp_path, "app\n")
    replaced = sorted((tmp_path / ".cache").rglob(f"{entries}/*"))
    assert replaced
    for path in replaced:
        path.unlink()
        path.mkdir()
    result = lock(index, tmp_path, "app\n")
    assert (result.code, result.err, result.lock) == (0, "", first.lock)
    assert all(path.is_file() for path in replaced)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("pypi.org/simple", "it must start with http:// or https://"),
        ("ftp://mirror.example/simple", "it must start with http:// or https://"),
        ("http://", "it names no host"),
        ("https://pypi.org:99999/simple", "Port out of range 0-65535"),
        ("http://[::1/simple", "Invalid IPv6 URL"),
        ("https://pypi.org/sim ple", "it contains ' '"),
        ("https://pypi.org/simple\n", "it contains '\\n'"),
    ],
)
def test_index_urls_that_are_not_urls(tmp_path: Path, url: str, problem: str) -> None:
    for option in ("--index-url", "--extra-index-url"):
        with contextlib.chdir(tmp_path):
            (tmp_path / "requirements.txt").write_text("app\n")
            result = run("lock", "-r", "requirements.txt", option, url)
        assert (result.code, result.err) == (
            2,
            f"machci: error: {option} {url!r} is not an index URL: {problem}\n",
        )


def test_an_index_url_in_a_requirements_file(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("app\n--extra-index-url pypi.org/simple\n")
    result = lock_in(tmp_path)
    assert (result.code, result.err) == (
        2,
        "machci: error: requirements.txt:2: --extra-index-url 'pypi.org/simple' is not an"
        " index URL: it must start with http:// or https://\n",
    )


@pytest.mark.parametrize("python", ["3.10", "3.15", "2.7"])
def test_unsupported_pythons(tmp_path: Path, python: str) -> None:
    message = (
        f"machci: error: unsupported Python version {python!r}: machci targets the CPython"
        " versions nixpkgs ships, 3.11, 3.12, 3.13, 3.14\n"
    )
    assert (
        lock_in(tmp_path, "--python", python).code,
        lock_in(tmp_path, "--python", python).err,
    ) == (2, message)
    with contextlib.chdir(tmp_path):
        init = run("init", "--python", python)
    assert (init.code, init.err) == (2, message)
    assert not (tmp_path / "machci.yaml").exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--glibc", "2.9999", "glibc 2.9999 is out of range: expected 2.17 to 2.99"),
        ("--macos", "99.0", "macos 99.0 is out of range: expected 11.0 to 40.99"),
    ],
)
def test_absurd_glibc_and_macos(tmp_path: Path, option: str, value: str, message: str) -> None:
    result = lock_in(tmp_path, option, value)
    assert (result.code, result.err) == (2, f"machci: error: {message}\n")


def _in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "snapshot",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "9999-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
        _in_days(2),
    ],
)
def test_out_of_range_snapshots(tmp_path: Path, snapshot: str) -> None:
    result = lock_in(tmp_path, "--snapshot", snapshot)
    assert (result.code, result.err) == (
        2,
        f"machci: error: snapshot {snapshot} is out of range: expected a time from"
        " 2000-01-01T00:00:00Z to now (at most a day ahead of this clock)\n",
    )


def test_a_snapshot_with_nanoseconds_is_refused(tmp_path: Path) -> None:
    result = lock_in(tmp_path, "--snapshot", "2025-01-01T00:00:00.123456789Z")
    assert (result.code, result.err) == (
        2,
        "machci: error: snapshot '2025-01-01T00:00:00.123456789Z' has more than 6 fractional"
        " digits; machci keeps snapshots to the microsecond\n",
    )


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_special_files_as_requirements_are_refused_without_reading(
    tmp_path: Path, kind: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    target = project / "requirements.txt"
    with contextlib.ExitStack() as stack:
        if kind == "fifo":
            stack.enter_context(fifo(target))
        elif kind == "device":
            target.symlink_to("/dev/null")  # /dev/zero would never end
        else:
            target.mkdir()
        start = time.monotonic()
        result = lock_in(project)
    assert time.monotonic() - start < 2
    described = {"fifo": "a FIFO", "device": "a character device", "directory": "a directory"}
    assert (result.code, result.err) == (
        2,
        f"machci: error: requirements.txt: cannot read: it is {described[kind]}, not a regular"
        " file\n",
    )


def test_an_included_fifo_is_refused(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("app\n-r more.txt\n")
    with fifo(tmp_path / "more.txt"):
        result = lock_in(tmp_path)
    assert (result.code, result.err) == (
        2,
        f"machci: error: {Path('more.txt')}: cannot read: it is a FIFO, not a regular file\n",
    )


def test_a_fifo_as_machci_yaml_is_refused(tmp_path: Path) -> None:
    with fifo(tmp_path / "machci.yaml"), contextlib.chdir(tmp_path):
        result = run("lock", "--config", "machci.yaml")
    assert (result.code, result.err) == (
        2,
        "machci: error: machci.yaml: cannot read: it is a FIFO, not a regular file\n",
    )


def test_a_nul_in_a_requirements_file_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("app\n-r more\0.txt\n")
    result = lock_in(tmp_path)
    assert (result.code, result.err) == (
        2,
        "machci: error: requirements.txt:2: contains a NUL character\n",
    )


def test_bad_input_exits_2_with_nothing_written(index: Index, tmp_path: Path) -> None:
    """The same holds for `machci sync`: the previous file stays."""
    index.publish("app", "1.0")
    (tmp_path / "requirements.txt").write_text("app\n")
    (tmp_path / "machci.yaml").write_text(
        f"requirements: [requirements.txt]\ndata: {{index: {index.url}, snapshot: '{SNAPSHOT}'}}\n"
    )
    with contextlib.chdir(tmp_path):
        assert run("sync", "--cache-dir", ".cache").code == 1
        before = Path("default.nix").read_bytes()
        for bad in (("--timeout", "nan"), ("--python", "3.9"), ("--macos", "99.0")):
            result = run("sync", "--cache-dir", ".cache", *bad)
            assert result.code == 2 and result.err.count("\n") == 1, result.err
        shutil.rmtree(".cache")
        (tmp_path / "requirements.txt").write_text("app\nnot-there\n")
        assert run("sync", "--cache-dir", ".cache").code == 2
        assert Path("default.nix").read_bytes() == before


def test_a_nul_that_reaches_the_renderer_is_an_error(index: Index, tmp_path: Path) -> None:
    """Names from a nixpkgs index are written into default.nix as they are."""
    index.publish("app", "1.0")
    (tmp_path / "requirements.txt").write_text("app\n")
    (tmp_path / "nixpkgs-python.json").write_text(
        json.dumps({"app": [{"attr": "app\0evil", "version": "1.0"}]})
    )
    (tmp_path / "machci.yaml").write_text(
        "requirements: [requirements.txt]\nsystems: [x86_64-linux]\n"
        f"data: {{index: {index.url}, snapshot: '{SNAPSHOT}'}}\n"
        "providers: {_default: nixpkgs}\nnixpkgs: {index: nixpkgs-python.json}\n"
    )
    with contextlib.chdir(tmp_path):
        result = run("sync", "--cache-dir", ".cache")
    assert (result.code, result.err) == (
        2,
        "machci: error: cannot write a NUL character into Nix: 'app\\x00evil'\n",
    )
    assert not (tmp_path / "default.nix").exists()


def _sdist_members(dist: Dist) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(fileobj=io.BytesIO(build_bytes(dist))) as archive:
        return [
            (member, archive.extractfile(member).read() if member.isfile() else None)  # type: ignore[union-attr]
            for member in archive.getmembers()
        ]


def _evil_sdist(kind: str) -> tuple[str, bytes]:
    """escape 1.0's sdist with one more member: outside the tree, or a link out of it."""
    members = _sdist_members(Dist("escape", "1.0", kind="sdist", dynamic=("Requires-Dist",)))
    raw = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(raw, "w") as archive:
            for member, data in members:
                if data is not None:
                    archive.writestr(member.name, data)
            archive.writestr("escape-1.0/../../evil", b"out")
        return "escape-1.0.zip", raw.getvalue()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for member, data in members:
            archive.addfile(member, io.BytesIO(data) if data is not None else None)
        evil = tarfile.TarInfo("escape-1.0/../../evil" if kind == "tar" else "escape-1.0/link")
        if kind == "tar":
            evil.size = 3
            archive.addfile(evil, io.BytesIO(b"out"))
        else:
            evil.type, evil.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
            archive.addfile(evil)
    return "escape-1.0.tar.gz", raw.getvalue()


@pytest.mark.parametrize("kind", ["zip", "tar", "link"])
def test_an_sdist_member_outside_its_tree_skips_the_version(
    index: Index, tmp_path: Path, kind: str
) -> None:
    index.publish("escape", "0.9", kind="sdist", dynamic=("Requires-Dist",))
    filename, data = _evil_sdist(kind)
    good = "escape-0.9.tar.gz"
    files = [
        {
            "filename": name,
            "url": f"{index.files_url}/{name}",
            "hashes": {"sha256": sha256},
            "upload-time": "2024-01-01T00:00:00Z",
        }
        for name, sha256 in (
            (good, index.sha256(good)),
            (filename, hashlib.sha256(data).hexdigest()),
        )
    ]
    index.fault("/simple/escape/", body=json.dumps({"files": files}).encode())
    index.fault(f"/files/{filename}", body=data)
    result = lock(index, tmp_path, "escape\n", "--provider", "sdist")
    assert result.versions() == {"escape": "0.9"}
    assert result.err.startswith(f"machci: warning: skipping escape 1.0 ({filename}): ")
    assert not (tmp_path.parent / "evil").exists()
