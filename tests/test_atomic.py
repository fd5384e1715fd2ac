"""Writing user files: replaced whole, through symbolic links, and never over a device or pipe."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from pathlib import Path

import pytest

from machci.atomic import atomic_write, remove_leftovers
from machci.errors import OutputError


def test_a_file_is_replaced_whole_and_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "default.nix"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default.nix"]  # no temporary left


def test_a_symbolic_link_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real" / "default.nix"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "default.nix"
    link.symlink_to(real)
    atomic_write(link, b"new")
    assert link.is_symlink()
    assert real.read_bytes() == b"new"
    remove_leftovers(link)  # looks beside the file the link names
    assert sorted(p.name for p in real.parent.iterdir()) == ["default.nix"]


def test_a_pipe_is_written_to_not_replaced(tmp_path: Path) -> None:
    """`-o` naming a pipe (or /dev/null, a character device) must not rename a file over it:
    as root, that replaced /dev/null itself."""
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    atomic_write(fifo, b"lock\n")
    reader.join(timeout=10)
    assert received == [b"lock\n"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_stream_named_under_proc_is_written_in_place() -> None:
    """/dev/stdout and /proc/self/fd/N name the stream, even when it goes to a file."""
    read_end, write_end = os.pipe()
    try:
        atomic_write(Path(f"/proc/self/fd/{write_end}"), b"pins\n")
        os.close(write_end)
        assert os.read(read_end, 100) == b"pins\n"
    finally:
        os.close(read_end)
        with contextlib.suppress(OSError):  # closed already unless the write failed
            os.close(write_end)


def test_a_directory_in_the_way_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "default.nix").mkdir()
    with pytest.raises(OutputError, match=r"cannot write .*default\.nix"):
        atomic_write(tmp_path / "default.nix", b"x")
    assert (tmp_path / "default.nix").is_dir()
