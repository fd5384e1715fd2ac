"""The root sets, the tools' command lines, and the spawner that times one run.

Shared by ``record.py`` (which runs the tools once through the recording proxy) and ``run.py``
(which times them), so both run exactly the same commands.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from store import WORK

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PIP_TOOLS_VENV = WORK / "pip-tools-py312"
PYTHON = "3.12"
UV_PLATFORM = "x86_64-manylinux_2_28"
UV_PLATFORMS = ("x86_64-manylinux_2_28", "aarch64-manylinux_2_28")
MACHCI_SYSTEMS = ("x86_64-linux", "aarch64-linux")
# The controls: machci for one system against uv for the same platform; machci for four
# systems against one universal resolution of uv's.
ONE_SYSTEM = ("x86_64-linux",)
THREE_SYSTEMS = ("x86_64-linux", "aarch64-linux", "aarch64-darwin")  # what nixpkgs supports
FOUR_SYSTEMS = ("x86_64-linux", "aarch64-linux", "x86_64-darwin", "aarch64-darwin")
UNIVERSAL = "universal"  # uv pip compile --universal, in place of a --python-platform
DARWIN_PLATFORMS = ("x86_64-apple-darwin", "aarch64-apple-darwin")
# machci's default macOS deployment target (`--macos`); uv's Darwin references are given the
# same with MACOSX_DEPLOYMENT_TARGET (uv's own default is 13.0).
MACOS = "14.0"
# Which reference pins (uv on PyPI, per platform) each system's answer is checked against.
REFERENCE_OF = {
    "x86_64-linux": "x86_64-manylinux_2_28",
    "aarch64-linux": "aarch64-manylinux_2_28",
    "x86_64-darwin": "x86_64-apple-darwin",
    "aarch64-darwin": "aarch64-apple-darwin",
    "x86_64-manylinux_2_28": "x86_64-manylinux_2_28",
    "aarch64-manylinux_2_28": "aarch64-manylinux_2_28",
    UNIVERSAL: UNIVERSAL,
}


def log(message: str) -> None:
    print(f"{Path(sys.argv[0]).stem}: {message}", file=sys.stderr, flush=True)


# -- root sets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RootSet:
    name: str
    requirements: Path
    timed: bool  # False: only bytes and requests are of interest (one cold run per tool)
    about: str
    pep658: bool = True  # False: served without PEP 658 metadata (server.py --no-metadata)

    def roots(self) -> list[str]:
        out = []
        for line in self.requirements.read_text().splitlines():
            text = line.split("#", 1)[0].strip()
            if text:
                out.append(str(Requirement(text)))
        return out


SETS = {
    s.name: s
    for s in (
        RootSet("forty", HERE / "requirements.txt", True, "40 roots of web and data projects"),
        RootSet("issue", HERE / "requirements-issue.txt", True, "25 roots, the issue's shape"),
        RootSet(
            "airflow",
            HERE / "requirements-airflow.txt",
            True,
            "apache-airflow with eight providers' extras, an application's size",
        ),
        RootSet("torch", HERE / "requirements-torch.txt", False, "torch, bytes only"),
        RootSet(
            "torch-ranges",
            HERE / "requirements-torch.txt",
            False,
            "torch, bytes only, on an index without PEP 658 metadata",
            pep658=False,
        ),
    )
}
DEFAULT_SETS = ("forty", "issue", "airflow", "torch", "torch-ranges")


# -- one timed run -----------------------------------------------------------------------------


@dataclass
class Sample:
    seconds: float
    rss_mb: float
    ok: bool
    error: str = ""
    requests: dict[str, int] = field(default_factory=dict)  # served by the index, by kind
    bytes: dict[str, int] = field(default_factory=dict)
    misses: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


def tail(text: str, lines: int = 6, width: int = 400) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    joined = " | ".join(line.strip() for line in kept)
    return joined if len(joined) <= width else "..." + joined[-width:]


# Linux starts a process's max RSS at the size of the address space it exec'd from, so a tool
# forked straight from the harness (which holds the whole recording in memory) would report at
# least the harness's RSS.  A minimal interpreter (``-I -S``, ~10 MB) spawns the tool instead,
# times it from spawn to exit and reads its tree's max RSS with ``wait4``.
SPAWNER = """
import json, os, sys, time
result, argv = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_pid, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
code = os.waitstatus_to_exitcode(status)
with open(result, "w") as f:
    json.dump({"seconds": seconds, "maxrss_kib": usage.ru_maxrss, "code": code}, f)
sys.exit(code if 0 <= code < 256 else 128 + (-code & 127))
"""


def timed(
    cmd: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    stdout: Path,
    timeout: float,
    ok_codes: Collection[int] = (0,),
) -> Sample:
    """Run cmd to completion: wall time and the max RSS of its process tree (MB, 10^6 bytes).

    The run succeeded if cmd exits with one of ok_codes.
    """
    result = stdout.with_name(stdout.name + ".timing.json")
    result.unlink(missing_ok=True)
    argv = [sys.executable, "-I", "-S", "-c", SPAWNER, str(result), *cmd]
    with stdout.open("wb") as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group, so a timeout ends all of it
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
        outer = time.perf_counter() - started
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    try:
        timing = json.loads(result.read_text())
        seconds, rss_mb = float(timing["seconds"]), timing["maxrss_kib"] * 1024 / 1e6
    except (OSError, ValueError, KeyError):
        seconds, rss_mb = outer, 0.0
    if timed_out.is_set():
        return Sample(seconds, rss_mb, False, f"timed out after {timeout:g} s")
    if proc.returncode not in ok_codes:
        detail = tail(stderr) or tail(stdout.read_text(errors="replace"))
        return Sample(seconds, rss_mb, False, f"exit {proc.returncode}: {detail}")
    return Sample(seconds, rss_mb, True)


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- the tools ---------------------------------------------------------------------------------


@dataclass
class Tool:
    name: str
    note: str
    # (cache dir, work dir, run number) -> (argv, path the tool's answer lands in)
    command: Callable[[Path, Path, int], tuple[list[str], Path]]
    env: dict[str, str]
    parse: Callable[[Path], dict[str, dict[str, str]]]  # answer -> {system: {name: version}}
    answer_on_stdout: bool = True  # else stdout goes to a file of its own
    unavailable: str = ""  # why it cannot run at all


def clean_env(*drop_prefixes: str) -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(drop_prefixes) and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }


def parse_requirements_pins(text: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            pins[canonicalize_name(name.split("[", 1)[0])] = version.split(";")[0].strip()
    return pins


def parse_universal_pins(text: str) -> dict[str, str]:
    """uv's universal answer: a name may be pinned twice, under exclusive markers (a fork);
    its versions are then joined with " | ", in the order uv wrote them."""
    pins: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            key = canonicalize_name(name.split("[", 1)[0])
            pins.setdefault(key, []).append(version.split(";")[0].strip())
    return {name: " | ".join(versions) for name, versions in pins.items()}


def pin_count(pins: Mapping[str, str]) -> int:
    """How many pins an answer holds: a forked name counts once per version."""
    return sum(len(v.split(" | ")) for v in pins.values())


def parse_machci_lock(path: Path) -> dict[str, dict[str, str]]:
    doc = json.loads(path.read_text())
    systems = doc.get("systems", {}) if isinstance(doc, dict) else {}
    out: dict[str, dict[str, str]] = {}
    if isinstance(systems, dict):
        for system, body in systems.items():
            packages = body.get("packages", {}) if isinstance(body, dict) else {}
            if isinstance(packages, dict):
                out[system] = {
                    canonicalize_name(n): str(p.get("version"))
                    for n, p in packages.items()
                    if isinstance(p, dict)
                }
    return out


def tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.stdout.strip().split(" ")[1] if " " in out.stdout.strip() else out.stdout.strip()


def uv_tool(
    requirements: Path, url: str, snapshot: str, platform_: str = UV_PLATFORM, name: str = "uv"
) -> Tool:
    """uv pip compile for one platform, or (platform_ UNIVERSAL) one universal resolution."""
    uv = shutil.which("uv")
    env = clean_env("UV_", "MACOSX_DEPLOYMENT_TARGET")
    env.update({"UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"})
    if platform_ in DARWIN_PLATFORMS:
        env["MACOSX_DEPLOYMENT_TARGET"] = MACOS
    target = ["--universal"] if platform_ == UNIVERSAL else ["--python-platform", platform_]

    def command(cache: Path, work: Path, run: int) -> tuple[list[str], Path]:
        argv = [
            uv or "uv", "pip", "compile", str(requirements),
            "--index-url", url,
            "--python-version", PYTHON,
            *target,
            "--exclude-newer", snapshot,
            "--cache-dir", str(cache),
            "-o", os.devnull,
        ]  # fmt: skip
        return argv, work / f"{name}-{run}.stdout"  # uv prints the pins to stdout as well

    def parse(path: Path) -> dict[str, dict[str, str]]:
        if platform_ == UNIVERSAL:
            return {UNIVERSAL: parse_universal_pins(path.read_text())}
        return {platform_: parse_requirements_pins(path.read_text())}

    version = tool_version(["uv", "--version"])
    if platform_ == UNIVERSAL:
        note = (
            f"uv {version}; 1 universal resolution (--universal): every platform, CPython"
            f" {PYTHON} and later (--python-version {PYTHON})"
        )
    else:
        note = f"uv {version}; 1 system: CPython {PYTHON}, {platform_}"
        if platform_ in DARWIN_PLATFORMS:
            note += f", MACOSX_DEPLOYMENT_TARGET={MACOS}"
    return Tool(
        name,
        note,
        command,
        env,
        parse,
        unavailable="" if uv else "uv is not on PATH (pip install uv)",
    )


def machci_tool(
    requirements: Path,
    url: str,
    snapshot: str,
    systems: Sequence[str] = MACHCI_SYSTEMS,
    name: str = "machci",
) -> Tool:
    env = clean_env("MACHCI_")
    env["PYTHONPATH"] = str(REPO)  # the working tree's machci, installed or not

    def command(cache: Path, work: Path, run: int) -> tuple[list[str], Path]:
        argv = [
            sys.executable, "-m", "machci", "lock",
            "-r", str(requirements),
            "--python", PYTHON,
            *(a for s in systems for a in ("--system", s)),
            "--index-url", url,
            "--snapshot", snapshot,
            "--cache-dir", str(cache),
            "--json",
        ]  # fmt: skip
        return argv, work / f"{name}-{run}.json"

    count = f"{len(systems)} system{'s' if len(systems) > 1 else ''}"
    note = f"{count}: CPython {PYTHON}, {', '.join(systems)}"
    if any(s.endswith("-darwin") for s in systems):
        note += f" (macOS {MACOS}, machci's default)"
    return Tool(name, note, command, env, parse_machci_lock)


# -- pip-compile -------------------------------------------------------------------------------


@dataclass
class PipCompile:
    python: str
    version: str  # the interpreter's X.Y.Z
    note: str


def python_version_of(python: str) -> str | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def pip_tools_version(python: str) -> str | None:
    """The pip-tools version installed for python, or None."""
    code = "import importlib.metadata as m, piptools; print(m.version('pip-tools'))"
    try:
        out = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def find_python312() -> str | None:
    candidates: list[str] = []
    if sys.version_info[:2] == (3, 12):
        candidates.append(sys.executable)
    found = shutil.which("python3.12")
    if found:
        candidates.append(found)
    for root in (Path.home() / ".pyenv" / "versions", Path("/usr/local/bin"), Path("/usr/bin")):
        candidates += [str(p) for p in sorted(root.glob("3.12*/bin/python3.12"), reverse=True)]
        candidates += [str(p) for p in root.glob("python3.12")]
    for python in candidates:
        version = python_version_of(python)
        if version and version.startswith("3.12."):
            return python
    return None


def bootstrap_pip_tools(python312: str) -> str:
    """A git-ignored venv on python312 with pip-tools (this interpreter's version, if any)."""
    pins = ["pip-tools"]
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        pins = [f"pip-tools=={importlib.metadata.version('pip-tools')}"]
    venv_python = PIP_TOOLS_VENV / "bin" / "python"
    log(f"setting up pip-compile on Python 3.12 in {PIP_TOOLS_VENV} ({', '.join(pins)}) ...")
    env = clean_env("UV_", "PIP_")
    env.update({"UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never"})
    shutil.rmtree(PIP_TOOLS_VENV, ignore_errors=True)
    subprocess.run(
        ["uv", "venv", "--quiet", "--seed", "--python", python312, str(PIP_TOOLS_VENV)],
        env=env,
        check=True,
    )
    subprocess.run(
        ["uv", "pip", "install", "--quiet", "--python", str(venv_python), *pins],
        env=env,
        check=True,
    )
    return str(venv_python)


def choose_pip_compile(override: str | None) -> PipCompile:
    """pip-compile resolves for the interpreter it runs on, so run it on a CPython 3.12."""
    if override:
        version = python_version_of(override) or "?"
        return PipCompile(override, version, f"--pip-compile-python {override}")
    venv_python = PIP_TOOLS_VENV / "bin" / "python"
    if sys.version_info[:2] == (3, 12) and pip_tools_version(sys.executable):
        return PipCompile(sys.executable, platform.python_version(), "the running interpreter")
    if venv_python.exists() and pip_tools_version(str(venv_python)):
        version = python_version_of(str(venv_python)) or "?"
        return PipCompile(str(venv_python), version, f"venv {PIP_TOOLS_VENV.relative_to(REPO)}")
    python312 = find_python312()
    if python312 is not None:
        try:
            python = bootstrap_pip_tools(python312)
            version = python_version_of(python) or "?"
            return PipCompile(python, version, f"venv {PIP_TOOLS_VENV.relative_to(REPO)}")
        except (OSError, subprocess.SubprocessError) as exc:
            log(f"cannot set up pip-tools on {python312}: {exc}")
    return PipCompile(sys.executable, platform.python_version(), "the running interpreter")


def pip_compile_tool(requirements: Path, url: str, chosen: PipCompile) -> Tool:
    env = clean_env("PIP_", "PIP_TOOLS_", "CUSTOM_COMPILE_COMMAND")
    env.update(
        {
            "PIP_CONFIG_FILE": os.devnull,  # no /etc/pip.conf, /etc/xdg/pip, ~/.config/pip
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "NO_COLOR": "1",
        }
    )
    host = url.split("//", 1)[-1].split("/", 1)[0].split(":", 1)[0]

    def command(cache: Path, work: Path, run: int) -> tuple[list[str], Path]:
        out = work / f"pip-compile-{run}.txt"  # new each run: an existing one seeds the pins
        out.unlink(missing_ok=True)
        argv = [
            chosen.python, "-m", "piptools", "compile", str(requirements),
            "--index-url", url,
            # pip caches HTTP responses only from https origins and trusted hosts: without
            # this, its warm runs would fetch everything again
            "--trusted-host", host,
            "--cache-dir", str(cache),
            "--no-header", "--no-config",
            "-o", str(out),
        ]  # fmt: skip
        return argv, out

    def parse(path: Path) -> dict[str, dict[str, str]]:
        # checked against the reference for this machine's architecture
        return {f"{platform.machine()}-manylinux_2_28": parse_requirements_pins(path.read_text())}

    machine = f"{platform.system().lower()} {platform.machine()}"
    glibc = platform.libc_ver()
    libc = f", {glibc[0]} {glibc[1]}" if glibc[0] else ""
    version = pip_tools_version(chosen.python)
    unavailable = ""
    if not version:
        unavailable = f"no pip-tools in {chosen.python}"
    elif not chosen.version.startswith(f"{PYTHON}."):
        unavailable = f"pip-compile resolves for its interpreter, and no CPython {PYTHON} was found"
    note = (
        f"pip-compile {version or '?'}; resolves for its own interpreter:"
        f" CPython {chosen.version}, {machine}{libc} ({chosen.note})"
    )
    return Tool("pip-compile", note, command, env, parse, False, unavailable)


def check_pins(pins: Mapping[str, Mapping[str, str]], reference: Mapping[str, Any]) -> str:
    """Each system's pins against the reference (uv on PyPI, recorded in the manifest)."""
    parts: list[str] = []
    for system, got in pins.items():
        ref = reference.get(REFERENCE_OF.get(system, UV_PLATFORM), {})
        differ = sorted(n for n in set(got) | set(ref) if got.get(n) != ref.get(n))
        if not ref:
            verdict = "no reference"
        elif not differ:
            verdict = "= ref"
        else:
            verdict = f"{len(differ)} differ from ref: {', '.join(differ)}"
        count = pin_count(got)
        shown = f"{count}" if count == len(got) else f"{count} pins of {len(got)} names"
        parts.append(f"{shown} ({verdict})")
    return " + ".join(parts)
