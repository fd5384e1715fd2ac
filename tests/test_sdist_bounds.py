"""Hostile sdists: members that inflate to gigabytes, and backends that answer through a file
machci cannot read safely (a FIFO, a link to a device, garbage, hundreds of megabytes)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, lock

ROOT = Path(__file__).resolve().parents[1]
HUGE = 256 << 20  # inflated size of the hostile member: far over the 16 MiB metadata limit
PEAK = 200 << 20  # what a whole `machci lock` may hold at most while refusing it

# Runs `machci lock` as a child and reports its exit code, its standard error and the peak
# resident size of it and its children (ru_maxrss is in KiB on Linux). Its address space is
# capped, so that a run that would take gigabytes fails early instead of starving the machine.
_MEASURE = """
import json, resource, subprocess, sys
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
done = subprocess.run(
    sys.argv[1:], stdin=subprocess.DEVNULL, capture_output=True, text=True, preexec_fn=cap
)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"code": done.returncode, "err": done.stderr, "peak": peak}))
"""


class _Zeros(io.RawIOBase):
    """`size` zero bytes, made as they are read."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def _inflating_tar(top: str, member: str) -> bytes:
    """A gzip tar whose `member` inflates to HUGE zero bytes (some 250 KB compressed)."""
    raw = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w|") as archive,
        io.BufferedReader(_Zeros(HUGE), 1 << 20) as zeros,
    ):
        directory = tarfile.TarInfo(top)
        directory.type, directory.mode = tarfile.DIRTYPE, 0o755
        archive.addfile(directory)
        pyproject = b'[build-system]\nrequires = []\nbuild-backend = "backend"\n'
        info = tarfile.TarInfo(f"{top}/pyproject.toml")
        info.size = len(pyproject)
        archive.addfile(info, io.BytesIO(pyproject))
        info = tarfile.TarInfo(f"{top}/{member}")
        info.size = HUGE
        archive.addfile(info, zeros)
    return raw.getvalue()


def _inflating_zip(top: str, member: str) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr(f"{top}/pyproject.toml", b"[build-system]\nrequires = []\n")
        with archive.open(f"{top}/{member}", "w") as target:
            chunk = bytes(1 << 20)
            for _ in range(HUGE // len(chunk)):
                target.write(chunk)
    return raw.getvalue()


def _serve(index: Index, project: str, filename: str, data: bytes) -> None:
    """Make `filename` (with `data`) the only file on `project`'s page."""
    index.publish(project, "0.1")  # the page exists; its body is replaced below
    entry = {
        "filename": filename,
        "url": f"{index.files_url}/{filename}",
        "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
        "upload-time": "2024-01-01T00:00:00Z",
    }
    index.fault(f"/simple/{project}/", body=json.dumps({"files": [entry]}).encode())
    index.fault(f"/files/{filename}", body=data)


def _measured_lock(
    index: Index, project: Path, *options: str, requirement: str = "big"
) -> tuple[int, str, int]:
    """(exit code, standard error, peak bytes) of `machci lock` run as a process of its own;
    bounded in time, since a run reading from a FIFO would wait forever."""
    project.mkdir()
    (project / "requirements.txt").write_text(f"{requirement}\n")
    argv = [sys.executable, "-m", "machci", "lock", "-r", "requirements.txt", "--index-url"]
    argv += [index.url, "--cache-dir", ".cache", "--snapshot", SNAPSHOT, *options]
    measure = subprocess.Popen(
        [sys.executable, "-c", _MEASURE, *argv],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, _err = measure.communicate(timeout=120)
    finally:  # a run that hangs is stopped with its whole process group
        if measure.poll() is None:
            os.killpg(measure.pid, signal.SIGKILL)
            measure.wait()
    report = json.loads(out)
    return report["code"], report["err"], report["peak"]


@pytest.mark.parametrize(
    "suffix, member, options",
    [
        (".tar.gz", "PKG-INFO", ()),
        (".tar.gz", "PKG-INFO", ("--no-build",)),
        (".zip", "PKG-INFO", ()),
        (".tar.gz", "pyproject.toml", ()),
    ],
    ids=["tar", "tar-no-build", "zip", "tar-pyproject"],
)
def test_an_sdist_member_that_inflates_is_refused_in_bounded_memory(
    index: Index, tmp_path: Path, suffix: str, member: str, options: tuple[str, ...]
) -> None:
    make = _inflating_zip if suffix == ".zip" else _inflating_tar
    data = make("big-1.0", member)
    assert len(data) < 2 << 20
    filename = f"big-1.0{suffix}"
    _serve(index, "big", filename, data)
    project = tmp_path / "p"
    code, err, peak = _measured_lock(index, project, *options)
    assert code != 0
    assert (
        f"{member}: metadata file larger than the limit of 16 MiB ({HUGE} bytes);"
        " set MACHCI_MAX_METADATA_BYTES to raise it"
    ) in err
    assert filename in err
    assert "Traceback" not in err
    assert peak < PEAK, f"peak resident size {peak >> 20} MiB"
    assert not (project / "default.nix").exists()


def test_the_metadata_limit_variable_bounds_sdist_members(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index.publish("small", "1.0", kind="sdist")
    monkeypatch.setenv("MACHCI_MAX_METADATA_BYTES", "82")
    refused = lock(index, tmp_path / "low", "small\n", "--no-build")
    assert refused.code != 0
    assert (
        "small-1.0.tar.gz): pyproject.toml: metadata file larger than the limit of 82 bytes"
        " (83 bytes); set MACHCI_MAX_METADATA_BYTES to raise it"
    ) in refused.err
    monkeypatch.setenv("MACHCI_MAX_METADATA_BYTES", "83")
    assert lock(index, tmp_path / "high", "small\n", "--no-build").versions() == {"small": "1.0"}


def _tamper(hook: str, action: str) -> str:
    """Backend code that, when the interpreter running `hook` exits (after the hook wrote its
    answer), does `action` to the answer file `out`."""
    return f"""
import atexit as _atexit, os as _os, sys as _sys
def _tamper():
    out = _sys.argv[3]
    if _sys.argv[1] == {hook!r}:
        {action}
_atexit.register(_tamper)
"""


REPLACED = (
    "(tamper-1.0.tar.gz): preparing metadata with the build backend: its answer is not in the file"
    " machci made for it (metadata.out was replaced; answers are read only from that regular file)"
)
NOT_JSON = "(tamper-1.0.tar.gz): asking the build backend for its build requirements: its answer is"


@pytest.mark.parametrize(
    "hook, action, message",
    [
        ("metadata", "_os.unlink(out); _os.mkfifo(out)", REPLACED),
        ("metadata", "_os.unlink(out); _os.symlink('/dev/zero', out)", REPLACED),
        (
            "metadata",
            "open(out + '.new', 'wb').write(open(out, 'rb').read());"
            " _os.replace(out + '.new', out)",
            REPLACED,
        ),
        (
            "requires",
            "open(out, 'wb').write(bytes([0xFF]) + b' not json')",
            f"{NOT_JSON} not JSON ('utf-8' codec can't decode byte 0xff in position 0: invalid"
            " start byte)",
        ),
        (
            "requires",
            "open(out, 'wb').write(b'[' * 100000 + b']' * 100000)",
            f"{NOT_JSON} not JSON (maximum recursion depth exceeded",
        ),
        (
            "metadata",
            "_os.truncate(out, 300 << 20)",
            "(tamper-1.0.tar.gz): preparing metadata with the build backend: its answer: metadata"
            " file larger than the limit of 16 MiB (314572800 bytes); set MACHCI_MAX_METADATA_BYTES"
            " to raise it",
        ),
    ],
    ids=["fifo", "dev-zero", "replaced", "garbage", "deep", "300-mb"],
)
def test_a_backend_answer_is_read_only_from_the_file_machci_made_and_bounded(
    index: Index, tmp_path: Path, hook: str, action: str, message: str
) -> None:
    """A metadata answer that is not the file machci made, or too large, is the error that a
    failing backend is; a build-requirements answer that is not JSON falls back to the static
    requirements, with a warning. Neither hangs, takes memory or ends in a traceback."""
    index.publish(
        "tamper",
        "1.0",
        kind="sdist",
        dynamic=("Requires-Dist",),
        backend_prelude=_tamper(hook, action),
    )
    project = tmp_path / "p"
    code, err, peak = _measured_lock(index, project, requirement="tamper")
    if hook == "metadata":
        assert code == 2, err
        assert not (project / "default.nix").exists()
    else:
        assert code == 0, err
        assert "locked with its static [build-system].requires instead" in err
    assert message in err
    assert "Traceback" not in err
    assert peak < PEAK, f"peak resident size {peak >> 20} MiB"


@pytest.mark.parametrize(
    "plant",
    [
        "_os.symlink(VICTIM, _path)",
        "_os.mkfifo(_path)",
        "_os.mkdir(_path); open(_os.path.join(_path, 'x'), 'w').close()",
        "_os.symlink('/dev/zero', _path)",
    ],
    ids=["link-out", "fifo", "directory", "dev-zero"],
)
def test_what_a_backend_leaves_in_its_work_directory_never_leads_machci_astray(
    index: Index, tmp_path: Path, plant: str
) -> None:
    # While asked for its build requirements, the backend puts something where machci writes
    # its next log, its next answer, its HOME and its TMPDIR; then it prepares metadata.
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    prelude = f"""
import os as _os, shutil as _shutil, sys as _sys
VICTIM = {str(victim)!r}
if _sys.argv[1] == "requires":
    _work = _os.path.dirname(_sys.argv[3])
    for _name in ("output.log", "metadata.out", "home", "tmp", ".root"):
        _path = _os.path.join(_work, _name)
        if _os.path.isdir(_path) and not _os.path.islink(_path):
            _shutil.rmtree(_path)
        elif _os.path.lexists(_path):
            _os.unlink(_path)
        {plant}
"""
    index.publish(
        "planter", "1.0", kind="sdist", dynamic=("Requires-Dist",), backend_prelude=prelude
    )
    project = tmp_path / "p"
    code, err, peak = _measured_lock(index, project, requirement="planter")
    assert code == 0, err
    assert victim.read_text() == "precious\n"
    assert peak < PEAK


def test_an_sdist_of_too_many_members_is_refused_in_bounded_memory(
    index: Index, tmp_path: Path
) -> None:
    # Empty members cost 512 compressible bytes each, and about a kilobyte of memory when read.
    raw = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w|", format=tarfile.USTAR_FORMAT) as archive,
    ):
        directory = tarfile.TarInfo("big-1.0")
        directory.type = tarfile.DIRTYPE
        archive.addfile(directory)
        for number in range(100_001):
            archive.addfile(tarfile.TarInfo(f"big-1.0/{number}"))
    _serve(index, "big", "big-1.0.tar.gz", raw.getvalue())
    project = tmp_path / "p"
    code, err, peak = _measured_lock(index, project, "--no-build")
    assert code != 0
    assert "big-1.0.tar.gz: more than 100000 members; no sdist is that large" in err
    assert "Traceback" not in err
    assert peak < PEAK, f"peak resident size {peak >> 20} MiB"
