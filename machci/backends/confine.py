"""The first process inside a build backend's namespaces: it builds the file system the backend
sees, then runs the backend and ends with it, or with machci.

`unshare` starts it as PID 1 of a new PID namespace, in new user, network and mount namespaces,
with a `/proc` of that PID namespace mounted (`--mount-proc`). It then makes an empty tmpfs the
new root and binds into it, read-only, the system directories (`/usr`, `/etc`, …), the Python
installation and the directories it is told to, and, writable, the backend's work directory,
plus `/proc` and a few devices; `pivot_root` makes that the root and the old root is unmounted,
so nothing else of the machine's file system is there at all: not the project, not `$HOME`, not
`/tmp` or `/run` with their Unix sockets (a socket on a read-only mount still accepts
connections, so hiding it is the only way). The new root itself is made read-only last.

Then it runs the command as its child and waits for it or for machci: it holds the read end of
a pipe whose write end only machci holds, so when machci dies, even by SIGKILL, the pipe reports
that, this process exits, and the kernel kills every process left in the PID namespace.

It runs as `python -I` with a path of this file, so it imports nothing but the standard library.
Its one argument before the command is a JSON object: "root" (an empty directory to mount the
new root on), "readable" and "writable" (lists of paths), "cwd", and "lifeline" (a descriptor).
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import select
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# <sys/mount.h>, <sched.h>
MS_RDONLY, MS_NOSUID, MS_NODEV = 1, 2, 4
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
CLONE_NEWNS = 0x00020000
# statvfs's flags of a mount and the mount flags that set them.
KEPT_FLAGS = (
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, 8),
    (os.ST_NOATIME, 1024),
    (os.ST_NODIRATIME, 2048),
    (os.ST_RELATIME, 1 << 21),
)
MNT_DETACH = 2
# <linux/mount.h>, for mount_setattr(2) (Linux 5.12), the same number on every architecture.
SYS_MOUNT_SETATTR = 442
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = -100, 0x8000, 1
# pivot_root(2) has no C library wrapper; its number differs by architecture.
SYS_PIVOT_ROOT = {
    "x86_64": 155,
    "aarch64": 41,
    "riscv64": 41,
    "ppc64le": 203,
    "s390x": 217,
    "i686": 217,
    "armv7l": 218,
}
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
NIX_STORE = "/nix/store"  # not /nix/var, which holds the Nix daemon's socket
DEVICES = ("null", "zero", "full", "random", "urandom")
EXIT_LIFELINE = 137  # as if killed: machci is gone

_libc = ctypes.CDLL(None, use_errno=True)


class _MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    encoded = [None if s is None else s.encode() for s in (source, target, fstype)]
    result = _libc.mount(encoded[0], encoded[1], encoded[2], ctypes.c_ulong(flags), data.encode())
    _check(result, f"mount {target}")


def _read_only(target: str) -> None:
    """Make the mount at `target` and every mount below it read-only."""
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    result = _libc.syscall(
        SYS_MOUNT_SETATTR,
        AT_FDCWD,
        target.encode(),
        AT_RECURSIVE,
        ctypes.byref(attr),
        ctypes.sizeof(attr),
    )
    if result == 0:
        return
    if ctypes.get_errno() != 38:  # ENOSYS: a kernel before 5.12 remounts the top mount only
        _check(result, f"make {target} read-only")
    kept = os.statvfs(target).f_flag  # a remount must repeat the flags it may not clear
    flags = sum(flag for st, flag in KEPT_FLAGS if kept & st)
    _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)


def _make_path(root: Path, path: Path, *, directory: bool) -> Path | None:
    """`root` + `path` made one component at a time, never through a symbolic link (which
    would lead out of `root` while the old root is still there); None where one is in the way."""
    current = root
    parts = path.parts[1:]
    for index, part in enumerate(parts):
        current = current / part
        if current.is_symlink():
            return None
        if not current.exists():
            if index == len(parts) - 1 and not directory:
                current.touch(0o644, exist_ok=False)
            else:
                current.mkdir(0o755)
    return current


def _bind(root: Path, path: Path, *, writable: bool) -> None:
    """Bind `path` at the same place under `root`, under its own name and under its real one
    when they differ (a virtualenv's links lead to either). A read-only one brings the mounts
    below it; a writable one does not (the new root is mounted inside the work directory)."""
    if not path.exists():
        return
    real = path.resolve()
    for name in dict.fromkeys((Path(os.path.abspath(path)), real)):  # noqa: PTH100 (no links)
        target = _make_path(root, name, directory=real.is_dir())
        if target is None:
            continue
        _mount(str(real), str(target), None, MS_BIND | (0 if writable else MS_REC))
        if not writable:
            _read_only(str(target))


def _system_entry(root: Path, path: Path) -> None:
    """A top-level system directory, or the same symbolic link (`/bin` -> `usr/bin`)."""
    if path.is_symlink():
        (root / path.name).symlink_to(path.readlink())
    elif path.is_dir():
        _bind(root, path, writable=False)


def _devices(root: Path) -> None:
    dev = root / "dev"
    dev.mkdir(0o755)
    for name in DEVICES:
        device = Path("/dev", name)
        if device.exists():
            target = _make_path(root, device, directory=False)
            assert target is not None
            _mount(str(device), str(target), None, MS_BIND)
    (dev / "fd").symlink_to("/proc/self/fd")
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        (dev / name).symlink_to(f"/proc/self/fd/{number}")


def python_paths() -> list[Path]:
    """Where this interpreter lives: its prefixes and its executable's directories."""
    executable = Path(sys.executable)
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    return list(dict.fromkeys([*map(Path, paths), executable.parent, executable.resolve().parent]))


def confine(root: Path, readable: Sequence[Path], writable: Sequence[Path]) -> None:
    """Make the new root at `root` and move into it (see the module's docstring)."""
    machine = platform.machine()
    if machine not in SYS_PIVOT_ROOT:
        raise OSError(f"pivot_root: no system call number known for {machine}")
    # A mount namespace of its own, whatever `unshare` did: nothing here may ever change the
    # mounts of the machine (were it started without namespaces, by root).
    _check(_libc.unshare(CLONE_NEWNS), "unshare the mount namespace")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", str(root), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
    for entry in SYSTEM:
        _system_entry(root, Path(entry))
    for path in [Path(NIX_STORE), *python_paths(), *readable]:
        _bind(root, path, writable=False)
    for path in writable:
        _bind(root, path, writable=True)
    _devices(root)
    proc = root / "proc"
    proc.mkdir(0o755)
    _mount("/proc", str(proc), None, MS_BIND | MS_REC)  # this PID namespace's (--mount-proc)
    os.chdir(root)
    _check(_libc.syscall(SYS_PIVOT_ROOT[machine], b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "unmount the old root")
    os.chdir("/")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def supervise(command: Sequence[str], lifeline: int | None) -> int:
    """Run `command` and return its exit status; exit at once when the lifeline breaks."""
    child = subprocess.Popen(command)
    poller = select.poll()
    watched = os.pidfd_open(child.pid)
    poller.register(watched, select.POLLIN)
    if lifeline is not None:
        poller.register(lifeline, select.POLLIN | select.POLLHUP)
    while True:
        for fd, _event in poller.poll():
            if fd == lifeline:
                return EXIT_LIFELINE
            if fd == watched:
                code = child.wait()
                return code if code >= 0 else 128 - code


def main(argv: Sequence[str]) -> int:
    spec = json.loads(argv[1])
    try:
        readable = [Path(path) for path in spec["readable"]]
        confine(Path(spec["root"]), readable, [Path(path) for path in spec["writable"]])
        os.chdir(spec["cwd"])
    except OSError as exc:
        print(f"cannot confine the build backend: {exc}", file=sys.stderr)  # CONFINE_FAILED
        return 125
    return supervise(argv[2:], spec["lifeline"])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
