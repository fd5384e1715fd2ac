"""What an sdist's build backend can see and do while machci asks it questions.

The fixture backends here run code on import (`backend_prelude`) that writes down their
environment, tries the network, the file system and other processes, sleeps or spawns
processes, so each test shows from the inside what the sandbox allows. A backend may write
nothing but its work directory, so it reports through a mailbox there that the test reads while
the backend waits (tests/fixtures/mailbox.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.index import Index
from tests.fixtures.mailbox import MAIL, Mailbox
from tests.helpers import SNAPSHOT, lock, run

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "SOURCE_DATE_EPOCH"}
SECRETS = ("GITHUB_TOKEN", "MACHCI_TOKEN", "AWS_SECRET_ACCESS_KEY", "NPM_TOKEN", "PYTHONPATH")


def _namespaces_work() -> bool:
    unshare = shutil.which("unshare")
    if sys.platform != "linux" or unshare is None:
        return False
    probe = [unshare, "--user", "--map-root-user", "--net", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


NAMESPACES = _namespaces_work()


def _mailbox(project: Path) -> Mailbox:
    """The mailboxes of the backends `machci lock` runs in `project` (its cache in .cache)."""
    return Mailbox(project / ".cache" / "v2" / "tmp")


def _probe(port: int) -> str:
    """Backend code that mails its environment, directory and a loopback connection."""
    return f"""{MAIL}
import os as _os, socket as _socket
_sock = _socket.socket()
_sock.settimeout(5)
try:
    _sock.connect(("127.0.0.1", {port}))
    _reached = True
except OSError:
    _reached = False
_sock.close()
_mail("probe", {{"env": dict(_os.environ), "cwd": _os.getcwd(), "reached": _reached}})
"""


def _port(index: Index) -> int:
    return int(index.url.split(":")[2].split("/")[0])


def test_a_backend_gets_no_secrets_a_temporary_home_and_no_network(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in SECRETS:
        monkeypatch.setenv(key, "secret-value")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    index.publish(
        "probe",
        "1.0",
        kind="sdist",
        dynamic=("Requires-Dist",),
        backend_prelude=_probe(_port(index)),
    )
    with _mailbox(tmp_path / "p") as mailbox:
        result = lock(index, tmp_path / "p", "probe\n")
    assert result.code == 0, result.err
    seen: dict[str, Any] = mailbox.letters["probe"]
    env: dict[str, str] = seen["env"]
    assert "secret-value" not in json.dumps(env)
    # Python may coerce a C locale itself (PEP 538); nothing else is there.
    assert set(env) - {"LC_CTYPE"} <= ALLOWED
    scratch = (tmp_path / "p" / ".cache" / "v2" / "tmp").resolve()
    for path in (env["HOME"], env["TMPDIR"], seen["cwd"]):
        assert Path(path).is_relative_to(scratch)
    assert not Path(env["HOME"]).exists()  # gone with the run
    assert env["SOURCE_DATE_EPOCH"] == "315532800"
    assert seen["reached"] is not NAMESPACES
    assert ("without a network namespace" in result.err) is not NAMESPACES


@pytest.mark.parametrize(
    "unshare",
    [None, "echo 'unshare: unshare failed: Operation not permitted' >&2; exit 1"],
    ids=["missing", "not-permitted"],
)
def test_without_namespaces_backends_run_with_the_network_and_the_run_says_so_once(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unshare: str | None
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if unshare is not None:
        (bin_dir / "unshare").write_text(f"#!/bin/sh\n{unshare}\n")
        (bin_dir / "unshare").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    for name in ("first", "second"):
        index.publish(
            name,
            "1.0",
            kind="sdist",
            dynamic=("Requires-Dist",),
            backend_prelude=_probe(_port(index)),
        )
    with _mailbox(tmp_path / "p") as mailbox:
        result = lock(index, tmp_path / "p", "first\nsecond\n")
    assert result.code == 0, result.err
    assert mailbox.letters["probe"]["reached"] is True
    why = (
        "util-linux's unshare is not on PATH"
        if unshare is None
        else "unshare cannot create user namespaces here"
        " (unshare: unshare failed: Operation not permitted)"
    )
    warning = f"machci: warning: sdist build backends run without a network namespace: {why};"
    assert result.err.count(warning) == 1, result.err


def _spawn(token: str) -> str:
    """Backend code that starts a process of its own session, named by `token` in its argv,
    that would live 15 minutes, and mails its PID."""
    return f"""{MAIL}
import subprocess as _sp, sys as _sys
_child = _sp.Popen(
    [_sys.executable, "-c", "import time; time.sleep(900)", {token!r}], start_new_session=True
)
_mail("spawned", _child.pid)
"""


def _processes_named(token: str) -> list[int]:
    """PIDs of the processes with `token` as an argument (their PID here, outside)."""
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and token.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
    return found


@contextlib.contextmanager
def _reaping(token: str) -> Iterator[None]:
    """Kill what is left of `token`'s processes afterwards, whatever the test found."""
    try:
        yield
    finally:
        for pid in _processes_named(token):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _gone_within(token: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _processes_named(token):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_the_timeout_bounds_a_backend_and_what_it_started(index: Index, tmp_path: Path) -> None:
    token = f"machci-test-{uuid.uuid4().hex}"
    index.publish(
        "sleepy",
        "1.0",
        kind="sdist",
        backend_prelude=f"{_spawn(token)}\n_time = __import__('time')\n_time.sleep(60)",
    )
    start = time.monotonic()
    with _reaping(token), _mailbox(tmp_path / "p") as mailbox:
        result = lock(index, tmp_path / "p", "sleepy\n", "--timeout", "3")
        assert time.monotonic() - start < 20
        # Its PKG-INFO is static: the static build requirements stand in for the query that
        # timed out.
        assert result.code == 0, result.err
        assert (
            "sleepy-1.0.tar.gz): asking the build backend for its build requirements timed out"
            " after 3 s (--timeout)"
        ) in result.err
        assert "spawned" in mailbox.letters
        if NAMESPACES:  # its PID namespace ended with it
            assert _gone_within(token, 10)


@contextlib.contextmanager
def _watch_processes() -> Iterator[list[tuple[bytes, bytes]]]:
    """(argv, environment) of every process that could be read while the block ran."""
    seen: list[tuple[bytes, bytes]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit() or proc.name == str(os.getpid()):
                    continue
                with contextlib.suppress(OSError):
                    seen.append(((proc / "cmdline").read_bytes(), (proc / "environ").read_bytes()))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join()


@pytest.mark.skipif(sys.platform != "linux", reason="reads other processes' argv from /proc")
def test_pip_gets_the_index_credentials_through_its_environment_never_its_argv(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "secret-value")
    password = f"pw-{uuid.uuid4().hex}"
    url = index.url.replace("http://", f"http://user:{password}@")
    index.publish("helper-build", "1.0")
    index.publish("needs", "1.0", kind="sdist", build_requires=("helper-build",))
    index.fault("/files/helper_build-1.0-py3-none-any.whl", delay=1.5)  # pip is slow to watch
    project = tmp_path / "p"
    project.mkdir()
    (project / "requirements.txt").write_text("needs\n")
    argv = ["lock", "--json", "-r", "requirements.txt", "--index-url", url]
    argv += ["--cache-dir", ".cache", "--snapshot", SNAPSHOT, "--system", "x86_64-linux"]
    with contextlib.chdir(project), _watch_processes() as seen:
        result = run(*argv)
    assert result.packages()["needs"]["build_requires"] == ["helper-build"]
    # This run's pip installs into the project's cache (other pips may run on the machine).
    ours = str(project).encode()
    pips = [(cmd, env) for cmd, env in seen if b"\0pip\0install\0" in cmd and ours in cmd]
    assert pips, "pip was never seen running"
    assert not [cmd for cmd, _env in seen if password.encode() in cmd]
    for _cmd, env in pips:
        variables = env.split(b"\0")
        assert f"PIP_INDEX_URL={url}".encode() in variables
        assert not [v for v in variables if v.startswith(b"GITHUB_TOKEN=")]


def test_work_directories_of_a_killed_run_are_removed_by_the_next(
    index: Index, tmp_path: Path
) -> None:
    index.publish(
        "slow",
        "1.0",
        kind="sdist",
        backend_prelude=f"{MAIL}\n_mail('started', True)\nimport time\ntime.sleep(60)",
    )
    index.publish("quick", "1.0")
    project = tmp_path / "p"
    project.mkdir()
    (project / "requirements.txt").write_text("slow\n")
    argv = [sys.executable, "-m", "machci", "lock", "-r", "requirements.txt"]
    argv += ["--index-url", index.url, "--cache-dir", ".cache", "--snapshot", SNAPSHOT]
    killed = subprocess.Popen(
        argv,
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with _mailbox(project) as mailbox:
        assert mailbox.wait("started") is True
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    scratch = project / ".cache" / "v2" / "tmp"
    (left,) = scratch.iterdir()
    assert left.name.startswith("machci-run-")
    live = scratch / "machci-run-live"  # a run still going, as old as the killed one
    live.mkdir()
    held = os.open(live / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)
    old = time.time() - 3600
    for path in (left, live):
        os.utime(path, (old, old))
    young = scratch / "machci-run-young"  # a run between making its directory and locking it
    young.mkdir()
    try:
        assert lock(index, project, "quick\n").code == 0
        assert sorted(p.name for p in scratch.iterdir()) == [live.name, young.name]
    finally:
        os.close(held)


def test_a_work_area_that_cannot_be_made_is_one_error(index: Index, tmp_path: Path) -> None:
    index.publish("needs", "1.0", kind="sdist")
    scratch = tmp_path / "p" / ".cache" / "v2" / "tmp"
    scratch.parent.mkdir(parents=True)
    scratch.write_text("a file where the work area goes\n")
    result = lock(index, tmp_path / "p", "needs\n")
    assert result.code == 2
    assert f"machci: error: cannot make a work directory in {scratch.resolve()}: File exists" in (
        result.err
    )


# Building off (`build: false`, `--no-build`) ---------------------------------------------------


# Backend code that mails "ran": proof that the backend ran.
RAN = f"{MAIL}\n_mail('ran', True)"


@pytest.mark.parametrize(
    "dist, why",
    [
        ({"dynamic": ("Requires-Dist",)}, "PKG-INFO lists Requires-Dist as Dynamic"),
        ({"dynamic": ("Requires-Python",)}, "PKG-INFO lists Requires-Python as Dynamic"),
        ({"metadata_version": "2.1"}, "PKG-INFO is Metadata-Version 2.1, older than 2.2"),
        ({"pkg_info": False}, "it has no PKG-INFO"),
    ],
)
@pytest.mark.parametrize("how", ["build: false", "--no-build"])
def test_with_building_off_an_sdist_without_static_metadata_is_refused(
    index: Index, tmp_path: Path, dist: dict[str, Any], why: str, how: str
) -> None:
    index.publish("dyn", "1.0", kind="sdist", backend_prelude=RAN, **dist)
    project = tmp_path / "p"
    project.mkdir()
    (project / "machci.yaml").write_text(f"{how if how.startswith('build') else ''}\n")
    options = ("--config", "machci.yaml") + (("--no-build",) if how == "--no-build" else ())
    with _mailbox(project) as mailbox:
        result = lock(index, project, "dyn\n", *options)
    assert result.code == 1
    assert (
        f"dyn 1.0: its metadata is not static ({why}), and building is off (build: false);"
        " allow a wheel (providers), pin a version with static metadata, or turn building on"
    ) in result.err
    assert "Traceback" not in result.err
    assert not mailbox.letters


def test_with_building_off_the_resolver_takes_the_next_version_with_static_metadata(
    index: Index, tmp_path: Path
) -> None:
    index.publish("pkg", "2.0", kind="sdist", dynamic=("Requires-Dist",))
    index.publish("pkg", "1.0", kind="sdist")
    assert lock(index, tmp_path / "off", "pkg\n", "--no-build").versions() == {"pkg": "1.0"}
    assert lock(index, tmp_path / "on", "pkg\n").versions() == {"pkg": "2.0"}


def test_with_building_off_static_metadata_locks_with_the_static_build_requirements_only(
    index: Index, tmp_path: Path
) -> None:
    index.publish("helper-build", "1.0")
    index.publish("zeta-tool", "1.0")
    index.publish("leaf", "1.0")
    index.publish(
        "plain",
        "1.0",
        kind="sdist",
        requires_dist=("leaf",),
        build_requires=("helper-build",),
        dynamic_build_requires=("zeta-tool",),
        backend_prelude=RAN,
    )
    project = tmp_path / "p"
    with _mailbox(project) as mailbox:
        built = lock(index, project, "plain\n")
    assert built.packages()["plain"]["build_requires"] == ["helper-build", "zeta-tool"]
    assert mailbox.letters == {"ran": True}
    before = len(index.requests)
    with _mailbox(project) as mailbox:
        unbuilt = lock(index, project, "plain\n", "--no-build")  # the same cache
    packages = unbuilt.packages()
    assert packages["plain"]["build_requires"] == ["helper-build"]
    assert packages["plain"]["dependencies"] == ["leaf"]
    assert "zeta-tool" not in packages
    assert not mailbox.letters
    assert ("GET", "/files/helper_build-1.0-py3-none-any.whl") not in index.requests[before:]


def test_build_in_machci_yaml_is_checked_and_part_of_the_settings(
    index: Index, tmp_path: Path
) -> None:
    index.publish("app", "1.0")
    project = tmp_path / "p"
    project.mkdir()
    (project / "requirements.txt").write_text("app\n")
    config = f"requirements: [requirements.txt]\ndata: {{index: {index.url}}}\n"
    (project / "machci.yaml").write_text(config + "build: 'no'\n")
    with contextlib.chdir(project):
        bad = run("lock", "--cache-dir", ".cache")
        assert bad.code == 2
        assert "machci.yaml:3: build: expected true or false, got 'no'" in bad.err
        (project / "machci.yaml").write_text(config + "build: true\n")
        assert run("sync", "--cache-dir", ".cache").code == 1
        assert run("check").code == 0
        stale = run("check", "--no-build")
        assert stale.code == 1
        assert "the settings (machci.yaml or command-line options) changed" in stale.err


# Other processes, a killed machci, the file system -------------------------------------------


def _snoop(password: str) -> str:
    """Backend code that mails which processes it sees, and where it found `password`."""
    return f"""{MAIL}
import os as _os
_found, _pids = [], []
for _entry in _os.listdir("/proc"):
    if _entry.isdigit():
        _pids.append(int(_entry))
        for _what in ("cmdline", "environ"):
            try:
                with open(f"/proc/{{_entry}}/{{_what}}", "rb") as _file:
                    if {password.encode()!r} in _file.read():
                        _found.append(f"{{_entry}}/{{_what}}")
            except OSError:
                pass
_mail("snoop", {{"found": _found, "pids": _pids}})
"""


def _machci(project: Path, url: str) -> subprocess.Popen[bytes]:
    """`machci lock` of `project`'s requirements.txt as a process of its own session."""
    argv = [sys.executable, "-m", "machci", "lock", "-r", "requirements.txt"]
    argv += ["--index-url", url, "--cache-dir", ".cache", "--snapshot", SNAPSHOT]
    return subprocess.Popen(
        argv,
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.skipif(not NAMESPACES, reason="needs user namespaces")
def test_a_backend_sees_only_its_own_processes_and_not_the_index_password(
    index: Index, tmp_path: Path
) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    index.auth = ("user", password)
    index.publish("snoop", "1.0", kind="sdist", backend_prelude=_snoop(password))
    project = tmp_path / "p"
    project.mkdir()
    (project / "requirements.txt").write_text("snoop\n")
    # The password is on machci's own command line, as a user may well put it.
    url = index.url.replace("http://", f"http://user:{password}@")
    with _mailbox(project) as mailbox:
        machci = _machci(project, url)
        _out, err = machci.communicate(timeout=120)
    assert machci.returncode == 0, err.decode()
    seen = mailbox.letters["snoop"]
    assert seen["found"] == []
    # Its PID namespace's /proc: confine.py (PID 1) and the hook's interpreter, nothing else.
    assert sorted(seen["pids"]) == [1, 2]


@pytest.mark.skipif(not NAMESPACES, reason="needs a PID namespace")
def test_processes_a_backend_started_die_with_a_killed_machci(index: Index, tmp_path: Path) -> None:
    token = f"machci-test-{uuid.uuid4().hex}"
    prelude = f"{_spawn(token)}\nimport time as _time\n_time.sleep(60)"
    index.publish("lingering", "1.0", kind="sdist", backend_prelude=prelude)
    project = tmp_path / "p"
    project.mkdir()
    (project / "requirements.txt").write_text("lingering\n")
    with _reaping(token), _mailbox(project) as mailbox:
        machci = _machci(project, index.url)
        try:
            mailbox.wait("spawned")
            assert _processes_named(token)  # started, in a session of its own
        finally:
            os.kill(machci.pid, signal.SIGKILL)  # machci alone, not its process group
            machci.communicate()
        assert _gone_within(token, 10)


def _trespass(targets: dict[str, Path], sock: Path) -> str:
    """Backend code that tries to write each of `targets` and its own HOME, to connect to the
    Unix socket `sock`, and mails what happened."""
    paths = {name: str(path) for name, path in targets.items()}
    return f"""{MAIL}
import os as _os, socket as _socket
_paths = dict({paths!r}, work=_os.path.join(_os.environ["HOME"], "mine"))
_done = {{}}
for _name, _path in _paths.items():
    try:
        with open(_path, "w") as _file:
            _file.write("written by a build backend")
        _done[_name] = "written"
    except OSError as _exc:
        _done[_name] = _exc.strerror
_client = _socket.socket(_socket.AF_UNIX)
try:
    _client.connect({str(sock)!r})
    _done["socket"] = "connected"
except OSError as _exc:
    _done["socket"] = _exc.strerror
_client.close()
_mail("trespass", _done)
"""


@contextlib.contextmanager
def _unix_server(path: Path) -> Iterator[list[int]]:
    """A Unix socket server at `path`; yields the list it appends to for each connection."""
    connections: list[int] = []
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                client, _address = server.accept()
                connections.append(1)
                client.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield connections
    finally:
        stop.set()
        thread.join()
        server.close()


@pytest.mark.skipif(not NAMESPACES, reason="needs user and mount namespaces")
def test_a_backend_writes_only_its_work_directory_and_reaches_no_unix_socket(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    project = tmp_path / "p"
    targets = {
        "project": project / "setup-was-here",
        "cache": project / ".cache" / "v2" / "planted",
        "home": home / ".bashrc",
        "tmp": tmp_path / "planted",
    }
    sock = tmp_path / "s.sock"
    index.publish("trespass", "1.0", kind="sdist", backend_prelude=_trespass(targets, sock))
    with _unix_server(sock) as connections, _mailbox(project) as mailbox:
        result = lock(index, project, "trespass\n")
    assert result.code == 0, result.err
    done = mailbox.letters["trespass"]
    assert done["work"] == "written"
    # Read-only where the directory is on the way to the work directory, else not there at all.
    hidden = {"Read-only file system", "No such file or directory"}
    for name, path in targets.items():
        assert done[name] in hidden, name
        assert not path.exists()
    assert done["socket"] == "No such file or directory"
    assert connections == []
