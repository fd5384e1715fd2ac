#!/usr/bin/env python3
"""Time machci against uv and pip-compile on the recorded PyPI snapshot.

    python benchmarks/run.py [--runs 3] [--only uv|pip-compile|machci|machci-check]
                             [--json results.json]

Starts ``server.py``'s index on 127.0.0.1, then for each tool takes ``--runs`` cold runs (each
with a new, empty cache directory) and ``--runs`` warm runs (reusing the last cold run's cache),
and reports the medians, the peak RSS of the tool's process tree, and machci's ratios to uv
against its targets.  ``machci-check`` times ``machci sync`` (cold, warm and resolving, no-op)
against ``machci check`` on a project of the same roots.  See README.md beside this file.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from server import DEFAULT_DATA, IndexServer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
REQUIREMENTS = HERE / "requirements.txt"
WORK = HERE / ".work"  # git-ignored
PIP_TOOLS_VENV = WORK / "pip-tools-py312"
PYTHON = "3.12"
UV_PLATFORM = "x86_64-manylinux_2_28"
MACHCI_SYSTEMS = ("x86_64-linux", "aarch64-linux")
TOOLS = ("uv", "pip-compile", "machci")
SYNC_CHECK = "machci-check"  # machci sync vs machci check, on a project directory
SELECTABLE = (*TOOLS, SYNC_CHECK)  # what --only takes
TARGET_WARM = 3.0  # machci warm / uv warm
TARGET_COLD = 1.5  # machci cold / uv cold
TARGET_RSS_MB = 150.0  # machci peak RSS
TARGET_CHECK = 0.1  # machci check / machci sync (warm cache, resolving)
DEFAULT_TIMEOUT = 180.0
# Which reference pins (manifest["reference"], uv on real PyPI) each system is checked against.
REFERENCE_OF = {
    "x86_64-linux": "x86_64-manylinux_2_28",
    "aarch64-linux": "aarch64-manylinux_2_28",
    "x86_64-manylinux_2_28": "x86_64-manylinux_2_28",
    "aarch64-manylinux_2_28": "aarch64-manylinux_2_28",
}


def log(message: str) -> None:
    print(f"run: {message}", file=sys.stderr, flush=True)


# -- one timed run ---------------------------------------------------------------------------


@dataclass
class Sample:
    seconds: float
    rss_mb: float
    ok: bool
    error: str = ""
    server: dict[str, int] = field(default_factory=dict)


def tail(text: str, lines: int = 6, width: int = 400) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    joined = " | ".join(line.strip() for line in kept)
    return joined if len(joined) <= width else "..." + joined[-width:]


# Linux starts a process's max RSS at the size of the address space it exec'd from, so a tool
# forked straight from this process (which holds the whole index in memory) would report at
# least this process's RSS.  A minimal interpreter (``-I -S``, ~10 MiB) spawns the tool instead,
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
    """Run cmd to completion: wall time and the max RSS of its process tree.

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
        seconds, rss_mb = float(timing["seconds"]), timing["maxrss_kib"] / 1024
    except (OSError, ValueError, KeyError):
        seconds, rss_mb = outer, 0.0
    if timed_out.is_set():
        return Sample(seconds, rss_mb, False, f"timed out after {timeout:g} s")
    if proc.returncode not in ok_codes:
        detail = tail(stderr) or tail(stdout.read_text(errors="replace"))
        return Sample(seconds, rss_mb, False, f"exit {proc.returncode}: {detail}")
    return Sample(seconds, rss_mb, True)


# -- the tools -------------------------------------------------------------------------------


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
    explain: Callable[[str], str] = lambda error: error  # a failure, told plainly


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


def uv_tool(requirements: Path, url: str, snapshot: str, platform_: str = UV_PLATFORM) -> Tool:
    uv = shutil.which("uv")
    env = clean_env("UV_")
    env.update({"UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"})

    def command(cache: Path, work: Path, run: int) -> tuple[list[str], Path]:
        argv = [
            uv or "uv", "pip", "compile", str(requirements),
            "--index-url", url,
            "--python-version", PYTHON,
            "--python-platform", platform_,
            "--exclude-newer", snapshot,
            "--cache-dir", str(cache),
            "-o", os.devnull,
        ]  # fmt: skip
        return argv, work / f"uv-{run}.stdout"  # uv prints the pins to stdout as well

    def parse(path: Path) -> dict[str, dict[str, str]]:
        return {platform_: parse_requirements_pins(path.read_text())}

    return Tool(
        "uv",
        f"uv {tool_version(['uv', '--version'])}; 1 system: CPython {PYTHON}, {platform_}",
        command,
        env,
        parse,
        unavailable="" if uv else "uv is not on PATH",
    )


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


def has_pip_tools(python: str) -> bool:
    return pip_tools_version(python) is not None


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
    """A git-ignored venv on python312 with this interpreter's pip-tools and pip versions."""
    pins = []
    for dist in ("pip-tools", "pip"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            pins.append(f"{dist}=={importlib.metadata.version(dist)}")
    venv_python = PIP_TOOLS_VENV / "bin" / "python"
    log(f"setting up pip-compile on Python 3.12 in {PIP_TOOLS_VENV} ({', '.join(pins)}) ...")
    env = clean_env("UV_", "PIP_")
    env.update({"UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never"})
    shutil.rmtree(PIP_TOOLS_VENV, ignore_errors=True)
    subprocess.run(
        ["uv", "venv", "--quiet", "--python", python312, str(PIP_TOOLS_VENV)], env=env, check=True
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
    if sys.version_info[:2] == (3, 12) and has_pip_tools(sys.executable):
        return PipCompile(sys.executable, platform.python_version(), "the running interpreter")
    if venv_python.exists() and has_pip_tools(str(venv_python)):
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
    log("no CPython 3.12 with pip-tools: pip-compile runs on this interpreter instead")
    return PipCompile(sys.executable, platform.python_version(), "the running interpreter")


def pip_compile_tool(requirements: Path, url: str, override: str | None) -> Tool:
    chosen = choose_pip_compile(override)
    env = clean_env("PIP_", "PIP_TOOLS_", "CUSTOM_COMPILE_COMMAND")
    env.update(
        {
            "PIP_CONFIG_FILE": os.devnull,  # no /etc/pip.conf, /etc/xdg/pip, ~/.config/pip
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "NO_COLOR": "1",
        }
    )

    def command(cache: Path, work: Path, run: int) -> tuple[list[str], Path]:
        out = work / f"pip-compile-{run}.txt"  # new each run: an existing one seeds the pins
        out.unlink(missing_ok=True)
        argv = [
            chosen.python, "-m", "piptools", "compile", str(requirements),
            "--index-url", url,
            # pip caches HTTP responses only from https origins and trusted hosts: without
            # this, its warm runs would fetch everything again
            "--trusted-host", "127.0.0.1",
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
    note = (
        f"pip-compile {version or '?'}; resolves for its own interpreter:"
        f" CPython {chosen.version}, {machine}{libc} ({chosen.note})"
    )
    unavailable = "" if version else f"no pip-tools in {chosen.python}"

    def explain(error: str) -> str:
        if "404" in error and ".whl" in error:
            return (
                "pip downloads every pinned wheel after resolving, and the wheels were not"
                f" recorded (run without --pip-compile-wheels none) [{error}]"
            )
        if "No matching distribution" in error and not chosen.version.startswith("3.12."):
            return (
                f"pip-compile resolves for CPython {chosen.version}, and the snapshot has"
                f" cp312 wheels only (give --pip-compile-python a CPython 3.12) [{error}]"
            )
        return error

    return Tool("pip-compile", note, command, env, parse, False, unavailable, explain)


def machci_tool(requirements: Path, url: str, snapshot: str) -> Tool:
    env = clean_env("MACHCI_")
    env["PYTHONPATH"] = str(REPO)  # the working tree's machci, installed or not

    def command(cache: Path, work: Path, run: int) -> tuple[list[str], Path]:
        argv = [
            sys.executable, "-m", "machci", "lock",
            "-r", str(requirements),
            "--python", PYTHON,
            *(a for s in MACHCI_SYSTEMS for a in ("--system", s)),
            "--index-url", url,
            "--snapshot", snapshot,
            "--cache-dir", str(cache),
            "--json",
        ]  # fmt: skip
        return argv, work / f"machci-{run}.json"

    return Tool(
        "machci",
        f"{len(MACHCI_SYSTEMS)} systems: CPython {PYTHON}, {', '.join(MACHCI_SYSTEMS)}",
        command,
        env,
        parse_machci_lock,
    )


def tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.stdout.strip().split(" ")[1] if " " in out.stdout.strip() else out.stdout.strip()


# -- measuring a tool ------------------------------------------------------------------------


@dataclass
class Result:
    tool: str
    note: str
    command: list[str] = field(default_factory=list)
    cold: list[Sample] = field(default_factory=list)
    warm: list[Sample] = field(default_factory=list)
    error: str = ""
    pins: dict[str, dict[str, str]] = field(default_factory=dict)
    pin_check: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.cold) and bool(self.warm)

    @property
    def cold_median(self) -> float | None:
        return statistics.median(s.seconds for s in self.cold) if self.ok else None

    @property
    def warm_median(self) -> float | None:
        return statistics.median(s.seconds for s in self.warm) if self.ok else None

    @property
    def peak_rss_mb(self) -> float | None:
        return max(s.rss_mb for s in [*self.cold, *self.warm]) if self.ok else None

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "note": self.note,
            "status": "ok" if self.ok else f"failed: {self.error}",
            "command": self.command,
            "cold_median_s": self.cold_median,
            "warm_median_s": self.warm_median,
            "peak_rss_mb": self.peak_rss_mb,
            "cold": [asdict(s) for s in self.cold],
            "warm": [asdict(s) for s in self.warm],
            "pins": self.pins,
            "pin_check": self.pin_check,
        }


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def measure(
    tool: Tool, server: IndexServer, runs: int, timeout: float, reference: Mapping[str, Any]
) -> Result:
    result = Result(tool.name, tool.note)
    if tool.unavailable:
        result.error = tool.unavailable
        return result
    with scratch(f"machci-bench-{tool.name}-") as root:
        work = root / "work"
        work.mkdir()
        env = dict(tool.env, XDG_CACHE_HOME=str(root / "xdg-cache"))
        answer: Path | None = None
        cache = root / "cache-0"

        def one(kind: str, run: int, cache: Path) -> Sample:
            nonlocal answer
            argv, answer = tool.command(cache, work, run)
            if not result.command:
                result.command = [a.replace(str(root), "$TMP") for a in argv]
            stdout = answer if tool.answer_on_stdout else work / f"{tool.name}-{run}.stdout"
            server.reset_counts()
            sample = timed(argv, env, work, stdout, timeout)
            sample.server = server.counts()
            status = f"{sample.seconds:6.2f} s  {sample.rss_mb:6.1f} MiB"
            log(f"{tool.name:<11} {kind} {run}: {status}" + ("" if sample.ok else "  FAILED"))
            return sample

        for run in range(1, runs + 1):
            if run > 1:
                shutil.rmtree(cache, ignore_errors=True)
            cache = root / f"cache-{run}"
            sample = one("cold", run, cache)
            result.cold.append(sample)
            if not sample.ok:
                result.error = tool.explain(sample.error)
                return result
        for run in range(runs + 1, 2 * runs + 1):
            sample = one("warm", run, cache)
            result.warm.append(sample)
            if not sample.ok:
                result.error = tool.explain(sample.error)
                return result
        if answer is not None and answer.exists():
            try:
                result.pins = tool.parse(answer)
            except (OSError, ValueError) as exc:
                result.pin_check = f"unreadable answer: {exc}"
        if result.pins and not result.pin_check:
            result.pin_check = check_pins(result.pins, reference)
    return result


def check_pins(pins: Mapping[str, Mapping[str, str]], reference: Mapping[str, Any]) -> str:
    """Compare each system's pins with uv's resolution on real PyPI (recorded in the manifest)."""
    parts: list[str] = []
    for system, got in pins.items():
        ref = reference.get(REFERENCE_OF.get(system, "x86_64-manylinux_2_28"), {})
        differ = sorted(n for n in set(got) | set(ref) if got.get(n) != ref.get(n))
        verdict = "= ref" if not differ else f"{len(differ)} differ from ref: {', '.join(differ)}"
        parts.append(f"{len(got)} ({verdict})")
    return " + ".join(parts)


def validate(server: IndexServer, requirements: Path, timeout: float) -> bool:
    """uv on the local index, for both Linux platforms, must give the recorded reference pins."""
    reference: Mapping[str, Any] = server.snapshot.manifest.get("reference", {})
    good = True
    with scratch("machci-bench-validate-") as root:
        for platform_ in ("x86_64-manylinux_2_28", "aarch64-manylinux_2_28"):
            tool = uv_tool(requirements, server.url, server.snapshot.snapshot, platform_)
            if tool.unavailable:
                print(f"validate: {tool.unavailable}")
                return False
            argv, answer = tool.command(root / f"cache-{platform_}", root, 0)
            sample = timed(argv, tool.env, root, answer, timeout)
            if not sample.ok:
                print(f"validate: uv {platform_}: failed: {sample.error}")
                good = False
                continue
            check = check_pins(tool.parse(answer), reference)
            print(f"validate: uv {platform_}: {check} in {sample.seconds:.2f} s")
            good = good and "differ" not in check and platform_ in reference
    return good


# -- machci sync vs machci check -------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    command: str  # the machci subcommand
    exit_code: int  # what a correct run exits with
    cold_cache: bool = False  # a new, empty cache directory for every run
    remove_output: bool = False  # delete default.nix before every run, so sync must resolve


# In this order: the cold runs fill the cache the warm ones reuse, and leave default.nix up to
# date for the no-op runs and the checks.  `machci sync` exits 1 when it creates the file.
SYNC_CHECK_STEPS = (
    Step("sync_cold", "sync, cold (new cache, no default.nix)", "sync", 1, True, True),
    Step("sync_warm", "sync, warm (cache kept, no default.nix)", "sync", 1, remove_output=True),
    Step("sync_noop", "sync, no-op (default.nix up to date)", "sync", 0),
    Step("check", "check (default.nix up to date)", "check", 0),
)


@dataclass
class SyncCheckResult:
    note: str
    config: str = ""  # the project's machci.yaml
    commands: dict[str, list[str]] = field(default_factory=dict)
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    error: str = ""
    output_check: str = ""  # is every default.nix a resolving run wrote the same?

    def median(self, key: str) -> float | None:
        runs = self.samples.get(key, [])
        return statistics.median(s.seconds for s in runs) if runs and not self.error else None

    def peak_rss_mb(self, key: str) -> float | None:
        runs = self.samples.get(key, [])
        return max(s.rss_mb for s in runs) if runs and not self.error else None

    def requests(self, key: str) -> str:
        """Index requests per run: one number if every run made as many, else min-max."""
        totals = [sum(s.server.values()) for s in self.samples.get(key, [])]
        if not totals:
            return "n/a"
        low, high = min(totals), max(totals)
        return str(low) if low == high else f"{low}-{high}"

    def to_json(self) -> dict[str, Any]:
        return {
            "note": self.note,
            "status": "ok" if not self.error else f"failed: {self.error}",
            "config": self.config,
            "output_check": self.output_check,
            "steps": {
                step.key: {
                    "label": step.label,
                    "command": self.commands.get(step.key, []),
                    "expected_exit": step.exit_code,
                    "median_s": self.median(step.key),
                    "peak_rss_mb": self.peak_rss_mb(step.key),
                    "runs": [asdict(s) for s in self.samples.get(step.key, [])],
                }
                for step in SYNC_CHECK_STEPS
            },
        }


def measure_sync_check(
    requirements: Path, url: str, snapshot: str, server: IndexServer, runs: int, timeout: float
) -> SyncCheckResult:
    """Time `machci sync` and `machci check` in a project directory of the benchmark's roots."""
    systems = ", ".join(MACHCI_SYSTEMS)
    result = SyncCheckResult(f"{len(MACHCI_SYSTEMS)} systems: CPython {PYTHON}, {systems}")
    env = clean_env("MACHCI_")
    env["PYTHONPATH"] = str(REPO)  # the working tree's machci, installed or not
    with scratch("machci-bench-sync-check-") as root:
        project, work = root / "project", root / "work"
        project.mkdir()
        work.mkdir()
        env["XDG_CACHE_HOME"] = str(root / "xdg-cache")
        shutil.copyfile(requirements, project / "requirements.txt")
        result.config = (
            "requirements: [requirements.txt]\n"
            f'python: "{PYTHON}"\n'
            f"systems: [{systems}]\n"
            f'data: {{index: {url}, snapshot: "{snapshot}"}}\n'
        )
        (project / "machci.yaml").write_text(result.config)
        output = project / "default.nix"
        generated: set[bytes] = set()
        cache = root / "cache-0"
        run = 0
        for step in SYNC_CHECK_STEPS:
            result.samples[step.key] = []
            for _ in range(runs):
                run += 1
                if step.cold_cache:
                    shutil.rmtree(cache, ignore_errors=True)
                    cache = root / f"cache-{run}"
                if step.remove_output:
                    output.unlink(missing_ok=True)
                argv = [
                    sys.executable, "-m", "machci", step.command, "--cache-dir", str(cache)
                ]  # fmt: skip
                result.commands.setdefault(step.key, [a.replace(str(root), "$TMP") for a in argv])
                server.reset_counts()
                stdout = work / f"{step.key}-{run}.stdout"
                sample = timed(argv, env, project, stdout, timeout, ok_codes=(step.exit_code,))
                sample.server = server.counts()
                status = f"{sample.seconds:6.2f} s  {sample.rss_mb:6.1f} MiB"
                failed = "" if sample.ok else f"  FAILED ({sample.error})"
                log(f"{step.key:<11} {run}: {status}{failed}")
                result.samples[step.key].append(sample)
                if not sample.ok:
                    result.error = f"{step.label}: {sample.error}"
                    return result
                if step.remove_output:
                    generated.add(output.read_bytes())
        nix = next(iter(generated), b"")
        result.output_check = (
            f"default.nix: {len(nix):,} bytes, the same from all {2 * runs} resolving runs"
            if len(generated) == 1
            else f"default.nix: {len(generated)} different versions from {2 * runs} resolving runs"
        )
    return result


def sync_check_ratios(result: SyncCheckResult | None) -> list[Ratio]:
    def div(a: str, b: str) -> float | None:
        if result is None:
            return None
        x, y = result.median(a), result.median(b)
        return x / y if x is not None and y else None

    return [
        Ratio("check / sync warm (resolving)", div("check", "sync_warm"), TARGET_CHECK),
        Ratio("check / sync cold", div("check", "sync_cold"), TARGET_CHECK),
        Ratio("check / sync no-op", div("check", "sync_noop"), None),
    ]


# -- the report ------------------------------------------------------------------------------


@dataclass
class Ratio:
    label: str
    value: float | None
    target: float | None  # None: for information
    unit: str = "x"

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "info"
        if self.value is None:
            return "n/a"
        return "PASS" if self.value <= self.target else "MISS"

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "target": self.target,
            "unit": self.unit,
            "verdict": self.verdict,
        }


def ratios(results: Mapping[str, Result]) -> list[Ratio]:
    def div(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    m, uv, pc = results.get("machci"), results.get("uv"), results.get("pip-compile")
    out: list[Ratio] = []

    def val(r: Result | None, what: str) -> float | None:
        return None if r is None else getattr(r, what)

    out.append(
        Ratio(
            "machci warm / uv warm",
            div(val(m, "warm_median"), val(uv, "warm_median")),
            TARGET_WARM,
        )
    )
    out.append(
        Ratio(
            "machci cold / uv cold",
            div(val(m, "cold_median"), val(uv, "cold_median")),
            TARGET_COLD,
        )
    )
    out.append(Ratio("machci peak RSS", val(m, "peak_rss_mb"), TARGET_RSS_MB, " MiB"))
    out.append(
        Ratio(
            "machci cold / pip-compile cold",
            div(val(m, "cold_median"), val(pc, "cold_median")),
            None,
        )
    )
    out.append(
        Ratio(
            "machci warm / pip-compile warm",
            div(val(m, "warm_median"), val(pc, "warm_median")),
            None,
        )
    )
    return out


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def ratio_table(ratio_list: list[Ratio]) -> list[str]:
    lines = [f"{'ratio':<32} {'value':>10}  {'target':>12}  verdict"]
    for ratio in ratio_list:
        if ratio.unit == "x":
            # three decimals below 0.1, so that a value just under or over 0.1 reads as such
            digits = 3 if ratio.value is not None and ratio.value < 0.1 else 2
            value = "n/a" if ratio.value is None else f"{ratio.value:.{digits}f}x"
            target = "" if ratio.target is None else f"<= {ratio.target:g}x"
        else:
            value = "n/a" if ratio.value is None else f"{ratio.value:.1f}{ratio.unit}"
            target = f"<= {ratio.target:g}{ratio.unit}"
        lines.append(f"{ratio.label:<32} {value:>10}  {target:>12}  {ratio.verdict}")
    return lines


def report(
    results: Mapping[str, Result], server: IndexServer, runs: int, ratio_list: list[Ratio]
) -> str:
    manifest = server.snapshot.manifest
    index = (
        f"index {server.url} ({'absolute' if server.absolute_urls else 'page-relative'} file URLs)"
    )
    lines = [
        f"machci resolver benchmark: {len(manifest['roots'])} roots, "
        f"{len(manifest['projects'])} projects recorded from PyPI at {manifest['snapshot']}",
    ]
    if not results:  # --only machci-check
        return "\n".join([*lines, index])
    lines += [
        f"{index}; {runs} cold runs (new cache each) and {runs} warm runs (cache reused); medians",
        "",
        f"{'tool':<12} {'cold s':>8} {'warm s':>8} {'peak RSS MiB':>13}  pins",
    ]
    for r in results.values():
        if r.ok:
            row = (
                f"{r.tool:<12} {fmt(r.cold_median):>8} {fmt(r.warm_median):>8}"
                f" {fmt(r.peak_rss_mb, 1):>13}  {r.pin_check or '?'}"
            )
        else:
            row = f"{r.tool:<12} {'n/a':>8} {'n/a':>8} {'n/a':>13}  n/a, failed: {r.error}"
        lines.append(row)
    lines.append("")
    for r in results.values():
        lines.append(f"  {r.tool}: {r.note}")
    lines.append("")
    lines += ratio_table(ratio_list)
    lines.append("")
    lines.append(
        "uv resolves one system; machci resolves two (its targets compare it with uv's one)."
    )
    return "\n".join(lines)


def report_sync_check(result: SyncCheckResult, runs: int, ratio_list: list[Ratio]) -> str:
    lines = [
        f"machci sync vs machci check: a project of the same roots; {result.note};"
        f" {runs} runs per step; medians",
        "",
        f"{'step':<40} {'s':>7} {'peak RSS MiB':>13} {'exit':>5} {'requests':>9}",
    ]
    for step in SYNC_CHECK_STEPS:
        if step.key not in result.samples:
            continue
        lines.append(
            f"{step.label:<40} {fmt(result.median(step.key)):>7}"
            f" {fmt(result.peak_rss_mb(step.key), 1):>13} {step.exit_code:>5}"
            f" {result.requests(step.key):>9}"
        )
    lines.append("")
    lines.append(f"  {result.output_check}" if not result.error else f"  failed: {result.error}")
    lines.append("")
    lines += ratio_table(ratio_list)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time machci, uv and pip-compile on the recorded PyPI snapshot."
    )
    parser.add_argument("--runs", type=int, default=3, help="cold and warm runs per tool (3)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TOOL",
        help=(
            "run only this tool (repeatable, or comma-separated): "
            f"{', '.join(SELECTABLE)} ({SYNC_CHECK}: machci sync vs machci check)"
        ),
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="recorded data (data/)")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per run (180)"
    )
    parser.add_argument(
        "--relative-urls",
        action="store_true",
        help="serve page-relative file URLs, as recorded (default: absolute, as pypi.org)",
    )
    parser.add_argument(
        "--pip-compile-python",
        metavar="PYTHON",
        help="interpreter with pip-tools to run pip-compile on (default: a CPython 3.12)",
    )
    parser.add_argument(
        "--pip-compile-wheels",
        choices=("stub", "none"),
        default="stub",
        help="serve pip-compile metadata-only stub wheels (default) or 404s",
    )
    parser.add_argument(
        "--validate",
        action="store_true",
        help="only check that uv resolves the snapshot to the recorded pins on both platforms",
    )
    args = parser.parse_args(argv)
    if args.validate:
        with IndexServer(args.data, absolute_urls=not args.relative_urls) as server:
            return 0 if validate(server, REQUIREMENTS, args.timeout) else 1
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    only = {t.strip() for item in args.only for t in item.split(",") if t.strip()}
    if only - set(SELECTABLE):
        unknown = ", ".join(sorted(only - set(SELECTABLE)))
        parser.error(f"--only takes {', '.join(SELECTABLE)}; not {unknown}")
    tools = [t for t in TOOLS if not only or t in only]
    with_sync_check = not only or SYNC_CHECK in only
    requirements = REQUIREMENTS

    started = time.monotonic()
    with IndexServer(args.data, absolute_urls=not args.relative_urls) as server:
        snapshot = server.snapshot.snapshot
        reference: Mapping[str, Any] = server.snapshot.manifest.get("reference", {})
        results: dict[str, Result] = {}
        for name in tools:
            if name == "uv":
                tool = uv_tool(requirements, server.url, snapshot)
            elif name == "pip-compile":
                stub = args.pip_compile_wheels == "stub"
                if stub:
                    server.prepare_stubs()
                url = server.stub_url if stub else server.url
                tool = pip_compile_tool(requirements, url, args.pip_compile_python)
                tool.note += (
                    "; index view with metadata-only stub wheels (pip downloads every pinned"
                    " wheel after resolving)"
                    if stub
                    else "; plain index view (wheels answer 404)"
                )
            else:
                tool = machci_tool(requirements, server.url, snapshot)
            results[name] = measure(tool, server, args.runs, args.timeout, reference)
        sync_check: SyncCheckResult | None = None
        if with_sync_check:
            sync_check = measure_sync_check(
                requirements, server.url, snapshot, server, args.runs, args.timeout
            )
        ratio_list = ratios(results) if results else []
        check_ratios = sync_check_ratios(sync_check) if sync_check is not None else []
        text = report(results, server, args.runs, ratio_list)
        if sync_check is not None:
            text += "\n\n" + report_sync_check(sync_check, args.runs, check_ratios)
        print(text, flush=True)
        log(f"done in {time.monotonic() - started:.0f} s")
        if args.json:
            doc = {
                "snapshot": snapshot,
                "roots": server.snapshot.roots,
                "projects": len(server.snapshot.manifest["projects"]),
                "runs": args.runs,
                "index_url": server.url,
                "absolute_urls": server.absolute_urls,
                "machine": {
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                },
                "targets": {
                    "warm_ratio": TARGET_WARM,
                    "cold_ratio": TARGET_COLD,
                    "peak_rss_mb": TARGET_RSS_MB,
                    "check_sync_ratio": TARGET_CHECK,
                },
                "tools": {name: r.to_json() for name, r in results.items()},
                "sync_check": None if sync_check is None else sync_check.to_json(),
                "ratios": [r.to_json() for r in [*ratio_list, *check_ratios]],
            }
            args.json.write_text(json.dumps(doc, indent=1) + "\n")
            log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
