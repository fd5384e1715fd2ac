#!/usr/bin/env python3
"""Time machci against uv on a recording of PyPI's full pages, and check against targets.

    python benchmarks/run.py [--pairs 5] [--set forty --set issue --set airflow --set torch]
                             [--offline] [--live] [--with-pip-compile] [--json results.json]
                             [--no-sync-check] [--no-growth] [--no-evaluation] [--latency MS]

Records what is missing first (needs PyPI once; ``--offline`` refuses), then serves the
recording on 127.0.0.1 with PyPI's caching headers (server.py) and, for each root set, takes
``--pairs`` interleaved cold runs (machci, uv, machci, uv, ...; each a new, empty cache) and as
many warm ones (each tool reusing its last cold cache).  machci locks two Linux systems and uv
compiles for one platform; on the timed sets three controls run in the same rounds: machci for
one system and for three (against the same uv runs) and machci for four systems against ``uv
pip compile --universal``.  Then ``machci sync`` cold, warm and no-op, and ``machci check``
interleaved with a bare ``python -I -c pass``; the airflow set's three-system sync (peak RSS);
the evaluation of its three-system default.nix (evaluation.py); and how lock time and memory
grow with the graph (growth.py, synthetic graphs of 100 to 3,000 packages).  The report gives
medians with their spread (min-max), each pair's ratio, bytes and requests served per run,
peak RSS of the cold and of the warm runs, and the issues' targets with PASS or MISS.
``--live`` runs the lock pairs against PyPI itself instead; ``--latency`` serves the recording
as over a network, each answer a round trip late.  See README.md beside this file.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evaluation import main as evaluation_main
from growth import as_json, measure_growth, report_growth
from record import CONTROL_MACHCI, CONTROL_UV, labels_for, record
from server import IndexServer
from store import (
    COMMITTED_MANIFEST,
    PYPI_SIMPLE,
    Recording,
    compare,
    load_committed,
    mismatches,
    recording_dir,
)
from tools import (
    MACHCI_SYSTEMS,
    PYTHON,
    REPO,
    SETS,
    THREE_SYSTEMS,
    UNIVERSAL,
    RootSet,
    Sample,
    Tool,
    check_pins,
    choose_pip_compile,
    clean_env,
    log,
    machci_tool,
    pin_count,
    pip_compile_tool,
    scratch,
    timed,
    uv_tool,
)

DEFAULT_PAIRS = 5
DEFAULT_TIMEOUT = 600.0
TIMED_SETS = ("forty", "issue", "airflow")
SYNC_CHECK_SET = "forty"
# The targets of the performance issue.
TARGET_WARM = 3.0  # machci warm two-system lock / uv warm one-system compile
TARGET_CHECK = 2.0  # machci check / bare python -I -c pass
TARGET_RSS_MB = 150.0  # machci peak RSS, warm two-system lock
TARGET_TORCH_MB = 50.0  # bytes machci downloads to lock torch for two Linux systems
# The targets of the issue on performance at scale (warm, pair by pair against uv's one-system
# compile): one system, three systems, cold; and the three-system sync's peak RSS.
TARGET_ONE_SYSTEM = 1.2
TARGET_THREE_SYSTEMS = 2.0
TARGET_COLD = 1.0
SCALE_SET = "airflow"  # its three-system sync is measured too (peak RSS)
TARGET_SCALE_RSS_MB = 150.0
GROWTH_SIZES = (100, 300, 1000, 3000)
GROWTH_RUNS = 2
# The torch target, with PEP 658 metadata and without (wheels read by range requests).
TORCH_TARGETS = (("torch", "torch, 2 systems"), ("torch-ranges", "torch, 2 systems, no PEP 658"))
# The ratios reported pair by pair, (tool, base, what): the targets' headline, then two
# controls on the timed sets, one system against one and four systems against --universal.
RATIOS = (
    ("machci", "uv", "headline: 2 systems against 1"),
    ("machci-1", "uv", "control: 1 system against 1, the same platform"),
    ("machci-3", "uv", "control: 3 systems (those nixpkgs supports) against 1"),
    ("machci-4", CONTROL_UV, "control: 4 systems against 1 universal resolution"),
)


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def spread(values: Sequence[float], digits: int = 2, unit: str = "") -> str:
    """ "median (min-max)", or "n/a"."""
    if not values:
        return "n/a"
    m = statistics.median(values)
    if len(values) == 1:
        return f"{m:.{digits}f}{unit}"
    return f"{m:.{digits}f}{unit} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def mb(n: float) -> float:
    return n / 1e6


# -- measuring the lock ------------------------------------------------------------------------


@dataclass
class Series:
    """One tool's runs on one root set."""

    tool: str
    note: str
    command: list[str] = field(default_factory=list)
    cold: list[Sample] = field(default_factory=list)
    warm: list[Sample] = field(default_factory=list)
    error: str = ""
    pin_check: str = ""
    pins: dict[str, dict[str, str]] = field(default_factory=dict)  # the last answer's

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.cold)

    def seconds(self, kind: str) -> list[float]:
        return [s.seconds for s in getattr(self, kind)] if self.ok else []

    def peak_rss_mb(self, kind: str) -> float | None:
        runs: list[Sample] = getattr(self, kind)
        return max(s.rss_mb for s in runs) if runs and self.ok else None

    def served(self, kind: str, what: Callable[[Sample], float]) -> list[float]:
        return [what(s) for s in getattr(self, kind)] if self.ok else []

    def to_json(self) -> dict[str, Any]:
        return {
            "note": self.note,
            "status": "ok" if self.ok else f"failed: {self.error}",
            "command": self.command,
            "pin_check": self.pin_check,
            "pins": {system: len(pins) for system, pins in self.pins.items()},
            "peak_rss_mb": {kind: self.peak_rss_mb(kind) for kind in ("cold", "warm")},
            "cold": [asdict(s) for s in self.cold],
            "warm": [asdict(s) for s in self.warm],
        }


@dataclass
class SetResult:
    root_set: RootSet
    pins: int
    series: dict[str, Series] = field(default_factory=dict)

    def ratios(self, kind: str, tool: str = "machci", base: str = "uv") -> list[float]:
        """Pair by pair: tool's time over base's."""
        a, b = self.series.get(tool), self.series.get(base)
        if a is None or b is None or not a.ok or not b.ok:
            return []
        return [x / y for x, y in zip(a.seconds(kind), b.seconds(kind), strict=False) if y]


class Counting:
    """Resets the server's counters before a run and copies them into its sample after."""

    def __init__(self, server: IndexServer | None) -> None:
        self.server = server

    def before(self) -> None:
        if self.server is not None:
            self.server.reset_stats()

    def after(self, sample: Sample) -> Sample:
        if self.server is not None:
            stats = self.server.stats()
            sample.requests, sample.bytes = dict(stats.requests), dict(stats.bytes)
            sample.misses = stats.misses
        return sample


def measure_set(
    root_set: RootSet,
    tools: list[Tool],
    counting: Counting,
    pairs: int,
    timeout: float,
    reference: Mapping[str, Any],
) -> SetResult:
    """Interleaved runs: cold pairs, then warm pairs (warm only for timed sets)."""
    result = SetResult(root_set, len(reference.get("x86_64-manylinux_2_28", {})))
    for tool in tools:
        result.series[tool.name] = Series(tool.name, tool.note, error=tool.unavailable)
    with scratch(f"machci-bench-{root_set.name}-") as root:
        work = root / "work"
        work.mkdir()
        caches: dict[str, Path] = {}
        answers: dict[str, Path] = {}
        run = 0

        def one(tool: Tool, kind: str, cache: Path) -> None:
            nonlocal run
            series = result.series[tool.name]
            if series.error:
                return
            run += 1
            argv, answer = tool.command(cache, work, run)
            answers[tool.name] = answer
            if not series.command:
                series.command = [a.replace(str(root), "$TMP") for a in argv]
            stdout = answer if tool.answer_on_stdout else work / f"{tool.name}-{run}.stdout"
            env = dict(tool.env, XDG_CACHE_HOME=str(root / "xdg-cache"))
            counting.before()
            sample = counting.after(timed(argv, env, work, stdout, timeout))
            served = f", {mb(sample.total_bytes):.1f} MB in {sample.total_requests} requests"
            state = "" if sample.ok else f"  FAILED ({sample.error[-400:]})"
            if sample.misses:
                state += f"  {len(sample.misses)} NOT RECORDED ({', '.join(sample.misses[:3])})"
            log(
                f"{root_set.name} {tool.name:<12} {kind} {run}: {sample.seconds:6.2f} s"
                f"  {sample.rss_mb:6.1f} MB{served if counting.server else ''}{state}"
            )
            getattr(series, kind).append(sample)
            if not sample.ok:
                series.error = sample.error
            elif sample.misses:
                series.error = f"asked for what was not recorded: {', '.join(sample.misses[:5])}"

        for _ in range(pairs if root_set.timed else 1):
            for tool in tools:
                if tool.name in caches:
                    shutil.rmtree(caches[tool.name], ignore_errors=True)
                caches[tool.name] = root / f"cache-{tool.name}-{run + 1}"
                one(tool, "cold", caches[tool.name])
        for _ in range(pairs if root_set.timed else 0):
            for tool in tools:
                one(tool, "warm", caches[tool.name])
        for tool in tools:
            series = result.series[tool.name]
            answer = answers.get(tool.name)
            if series.ok and answer is not None and answer.exists():
                try:
                    series.pins = tool.parse(answer)
                    series.pin_check = check_pins(series.pins, reference)
                except (OSError, ValueError) as exc:
                    series.pin_check = f"unreadable answer: {exc}"
    return result


# -- machci sync vs machci check ---------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    argv: tuple[str, ...]  # after the interpreter
    exit_code: int  # what a correct run exits with
    cold_cache: bool = False  # a new, empty cache directory for every run
    remove_output: bool = False  # delete default.nix before every run, so sync must resolve


MACHCI = ("-m", "machci")
# In this order: the cold runs fill the cache the warm ones reuse and leave default.nix up to
# date for the no-op runs; then check and a bare interpreter, interleaved.  `machci sync` exits
# 1 when it creates the file.
SYNC_STEPS = (
    Step("sync_cold", "sync, cold (new cache, no default.nix)", (*MACHCI, "sync"), 1, True, True),
    Step("sync_warm", "sync, warm (cache kept, no default.nix)", (*MACHCI, "sync"), 1, False, True),
    Step("sync_noop", "sync, no-op (default.nix up to date)", (*MACHCI, "sync"), 0),
)
CHECK_STEPS = (
    Step("check", "check (default.nix up to date)", (*MACHCI, "check"), 0),
    Step("python", "bare python -I -c pass", ("-I", "-c", "pass"), 0),
)


@dataclass
class SyncCheck:
    note: str
    config: str = ""
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    error: str = ""
    output_check: str = ""

    def seconds(self, key: str) -> list[float]:
        return [s.seconds for s in self.samples.get(key, [])]

    def ratios(self) -> list[float]:
        """check / python, pair by pair."""
        pairs = zip(self.seconds("check"), self.seconds("python"), strict=False)
        return [c / p for c, p in pairs if p]

    def to_json(self) -> dict[str, Any]:
        return {
            "note": self.note,
            "config": self.config,
            "status": "ok" if not self.error else f"failed: {self.error}",
            "output_check": self.output_check,
            "steps": {k: [asdict(s) for s in v] for k, v in self.samples.items()},
        }


def measure_sync_check(
    root_set: RootSet,
    url: str,
    snapshot: str,
    counting: Counting,
    pairs: int,
    timeout: float,
    machci_systems: Sequence[str] = MACHCI_SYSTEMS,
    *,
    with_check: bool = True,
) -> SyncCheck:
    """Time `machci sync` and (`with_check`) `machci check` in a project directory of a set's
    roots, locked for `machci_systems`."""
    systems = ", ".join(machci_systems)
    result = SyncCheck(f"{root_set.name} roots, {len(machci_systems)} systems: {systems}")
    env = clean_env("MACHCI_")
    env["PYTHONPATH"] = str(REPO)  # the working tree's machci, installed or not
    with scratch("machci-bench-sync-check-") as root:
        project, work = root / "project", root / "work"
        project.mkdir()
        work.mkdir()
        env["XDG_CACHE_HOME"] = str(root / "xdg-cache")
        shutil.copyfile(root_set.requirements, project / "requirements.txt")
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

        def one(step: Step) -> bool:
            nonlocal run, cache
            run += 1
            if step.cold_cache:
                shutil.rmtree(cache, ignore_errors=True)
                cache = root / f"cache-{run}"
            if step.remove_output:
                output.unlink(missing_ok=True)
            argv = [sys.executable, *step.argv]
            if step.argv[:2] == MACHCI:
                argv += ["--cache-dir", str(cache)]
            stdout = work / f"{step.key}-{run}.stdout"
            counting.before()
            sample = timed(argv, env, project, stdout, timeout, ok_codes=(step.exit_code,))
            sample = counting.after(sample)
            state = "" if sample.ok else f"  FAILED ({sample.error[-400:]})"
            log(f"{step.key:<10} {run}: {sample.seconds:6.3f} s  {sample.rss_mb:6.1f} MB{state}")
            result.samples.setdefault(step.key, []).append(sample)
            if not sample.ok:
                result.error = f"{step.label}: {sample.error}"
                return False
            if step.remove_output:
                generated.add(output.read_bytes())
            return True

        for step in SYNC_STEPS:
            for _ in range(pairs):
                if not one(step):
                    return result
        for _ in range(pairs if with_check else 0):
            for step in CHECK_STEPS:
                if not one(step):
                    return result
        nix = next(iter(generated), b"")
        resolving = 2 * pairs
        result.output_check = (
            f"default.nix: {len(nix):,} bytes, the same from all {resolving} resolving runs"
            if len(generated) == 1
            else f"default.nix: {len(generated)} different versions from {resolving} runs"
        )
    return result


# -- the report --------------------------------------------------------------------------------


@dataclass
class Target:
    label: str
    shown: str  # the measured value, with its spread
    value: float | None
    limit: float
    strict: bool = False  # value < limit rather than <=

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "n/a"
        ok = self.value < self.limit if self.strict else self.value <= self.limit
        return "PASS" if ok else "MISS"

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "shown": self.shown,
            "limit": self.limit,
            "verdict": self.verdict,
        }

    @classmethod
    def ratio(cls, label: str, ratios: Sequence[float], limit: float, digits: int) -> Target:
        """A limit on the median of pairwise ratios, shown with their spread."""
        return cls(label, spread(ratios, digits, "x"), median(ratios), limit)

    @classmethod
    def rss(cls, label: str, rss: float | None, limit: float) -> Target:
        """A limit on a peak RSS in MB (None: not measured)."""
        return cls(label, "n/a" if rss is None else f"{rss:.0f} MB", rss, limit)


def served_column(series: Series, kind: str) -> str:
    values = series.served(kind, lambda s: mb(s.total_bytes))
    requests = series.served(kind, lambda s: s.total_requests)
    if not values:
        return "n/a"
    low, high = int(min(requests)), int(max(requests))
    count = str(low) if low == high else f"{low}-{high}"
    return f"{statistics.median(values):.2f} MB / {count}"


def by_kind(result: SetResult) -> str:
    """Each tool's cold bytes by kind of request (pages, metadata, ...)."""
    parts = []
    for series in result.series.values():
        if not series.ok:
            continue
        kinds = sorted({k for s in series.cold for k in s.bytes})
        shown = ", ".join(
            f"{kind} {mb(statistics.median(s.bytes.get(kind, 0) for s in series.cold)):.2f} MB"
            for kind in kinds
        )
        parts.append(f"{series.tool}: {shown or 'nothing'}")
    return "; ".join(parts)


def pins_compared(result: SetResult) -> str:
    """machci's four systems against uv's universal resolution, by count: what each pinned."""
    four, universal = result.series.get("machci-4"), result.series.get(CONTROL_UV)
    if four is None or universal is None or not four.ok or not universal.ok:
        return ""
    systems = " + ".join(str(len(pins)) for pins in four.pins.values())
    names = {name for pins in four.pins.values() for name in pins}
    pairs = {(name, v) for pins in four.pins.values() for name, v in pins.items()}
    answer = universal.pins.get(UNIVERSAL, {})
    return (
        f"pins, 4 systems against --universal: machci-4 {systems} ({len(names)} names,"
        f" {len(pairs)} name-version pairs over the four); uv-universal {pin_count(answer)}"
        f" pins of {len(answer)} names, for every platform (Windows included) and CPython"
        f" {PYTHON} and later"
    )


def report_set(result: SetResult, live: bool) -> list[str]:
    s = result.root_set
    runs = "cold runs (new cache each), then warm runs" if s.timed else "one cold run each"
    lines = [
        f"set {s.name}: {s.about} ({len(s.roots())} roots in {s.requirements.name},"
        f" {result.pins} pins); {runs}; interleaved",
        "",
    ]
    header = f"{'tool':<13} {'cold s':>22} {'warm s':>22} {'peak RSS MB cold':>16} {'warm':>6}"
    if not live:
        header += f"  {'served cold: MB / requests':>27}  {'warm':>18}"
    lines.append(header + "  pins")
    for series in result.series.values():
        if not series.ok:
            lines.append(f"{series.tool:<13} n/a, failed: {series.error[-600:]}")
            continue
        rss = [series.peak_rss_mb(kind) for kind in ("cold", "warm")]
        cold_rss, warm_rss = (f"{v:.1f}" if v is not None else "" for v in rss)
        row = (
            f"{series.tool:<13} {spread(series.seconds('cold')):>22}"
            f" {spread(series.seconds('warm')):>22} {cold_rss:>16} {warm_rss:>6}"
        )
        if not live:
            row += f"  {served_column(series, 'cold'):>27}  {served_column(series, 'warm'):>18}"
        lines.append(f"{row}  {series.pin_check}")
    lines.append("peak RSS: the largest of the cold runs, and of the warm runs")
    if not live:
        lines.append("bytes served, cold (median of runs), by kind: " + by_kind(result))
    compared = pins_compared(result)
    if compared:
        lines.append(compared)
    for tool, base, what in RATIOS:
        for kind in ("cold", "warm"):
            ratios = result.ratios(kind, tool, base)
            if ratios:
                each = ", ".join(f"{r:.1f}" for r in ratios)
                lines.append(
                    f"{tool} / {base} ({what}), {kind}: {spread(ratios, 1, 'x')};"
                    f" pair by pair: {each}"
                )
    lines.append("")
    lines += [f"  {series.tool}: {series.note}" for series in result.series.values()]
    return lines


def report_sync_check(result: SyncCheck, live: bool) -> list[str]:
    lines = [
        f"machci sync vs machci check: a project of the {result.note}; medians (min-max)",
        "",
        f"{'step':<40} {'s':>22} {'peak RSS MB':>12}" + ("" if live else f" {'requests':>9}"),
    ]
    for step in (*SYNC_STEPS, *CHECK_STEPS):
        samples = result.samples.get(step.key, [])
        if not samples:
            continue
        seconds = [s.seconds for s in samples]
        digits = 3 if max(seconds) < 1 else 2
        requests = sorted({s.total_requests for s in samples})
        count = str(requests[0]) if len(requests) == 1 else f"{requests[0]}-{requests[-1]}"
        row = f"{step.label:<40} {spread(seconds, digits):>22}"
        row += f" {max(s.rss_mb for s in samples):>12.1f}"
        lines.append(row + ("" if live else f" {count:>9}"))
    lines.append("")
    lines.append(f"  {result.output_check}" if not result.error else f"  failed: {result.error}")
    ratios = result.ratios()
    if ratios:
        each = ", ".join(f"{r:.2f}" for r in ratios)
        lines.append(f"check / python: {spread(ratios, 2, 'x')}; pair by pair: {each}")
    check, sync = median(result.seconds("check")), median(result.seconds("sync_warm"))
    if check is not None and sync:
        lines.append(f"check / sync warm (resolving): {check / sync:.3f}x")
    return lines


def scale_targets(results: Mapping[str, SetResult], scale_sync: SyncCheck | None) -> list[Target]:
    """The targets of the issue on performance at scale."""
    out: list[Target] = []
    for name, result in results.items():
        if not result.root_set.timed:
            continue
        checks = (
            ("machci-1", "warm", TARGET_ONE_SYSTEM, "1 system warm"),
            ("machci-3", "warm", TARGET_THREE_SYSTEMS, "3 systems warm"),
            ("machci-1", "cold", TARGET_COLD, "1 system cold"),
        )
        for tool, kind, limit, what in checks:
            label = f"{what} <= {limit:g}x uv {kind} ({name})"
            out.append(Target.ratio(label, result.ratios(kind, tool), limit, 2))
    if scale_sync is not None:
        warm = scale_sync.samples.get("sync_warm", [])
        label = f"peak RSS <= {TARGET_SCALE_RSS_MB:g} MB, 3-system sync warm ({SCALE_SET})"
        rss = max((s.rss_mb for s in warm), default=None)
        out.append(Target.rss(label, rss, TARGET_SCALE_RSS_MB))
    return out


def targets(results: Mapping[str, SetResult], sync_check: SyncCheck | None) -> list[Target]:
    out: list[Target] = []
    for name, result in results.items():
        if not result.root_set.timed:
            continue
        label = f"warm lock <= {TARGET_WARM:g}x uv warm ({name})"
        out.append(Target.ratio(label, result.ratios("warm"), TARGET_WARM, 1))
    if sync_check is not None:
        label = f"check <= {TARGET_CHECK:g}x bare python"
        out.append(Target.ratio(label, sync_check.ratios(), TARGET_CHECK, 2))
    for name, result in results.items():
        machci = result.series.get("machci")
        if result.root_set.timed and machci is not None:
            label = f"peak RSS <= {TARGET_RSS_MB:g} MB, warm lock ({name})"
            out.append(Target.rss(label, machci.peak_rss_mb("warm"), TARGET_RSS_MB))
    for name, label in TORCH_TARGETS:
        torch = results.get(name)
        machci = torch.series.get("machci") if torch is not None else None
        if machci is not None and machci.ok and machci.cold[0].bytes:
            downloaded = mb(machci.cold[0].total_bytes)
            out.append(
                Target(
                    f"{label}: machci downloads < {TARGET_TORCH_MB:g} MB",
                    f"{downloaded:.1f} MB",
                    downloaded,
                    TARGET_TORCH_MB,
                    strict=True,
                )
            )
    return out


def report_targets(found: list[Target], live: bool, title: str) -> list[str]:
    title += ", LIVE" if live else ""
    lines = [f"{title:<52} {'measured':>22}  verdict"]
    lines += [f"{t.label:<52} {t.shown:>22}  {t.verdict}" for t in found]
    return lines


def machine() -> str:
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python"
        f" {platform.python_version()}; load average {load} (other processes may run)"
    )


def evaluate_scale_lock(url: str, snapshot: str, timeout: float) -> list[str]:
    """Lock the airflow set for three systems and evaluate its default.nix (evaluation.py
    --lock): the time to instantiate `env` per system, and how the file's size grows."""
    root_set = SETS[SCALE_SET]
    tool = machci_tool(root_set.requirements, url, snapshot, THREE_SYSTEMS, "machci-3")
    with scratch("machci-bench-evaluation-") as root:
        argv, answer = tool.command(root / "cache", root, 0)
        sample = timed(argv, tool.env, root, answer, timeout)
        if not sample.ok:
            return [f"evaluation of the {SCALE_SET} lock: failed to lock ({sample.error})"]
        captured = root / "evaluation.txt"
        with captured.open("w") as out, contextlib.redirect_stdout(out):
            code = evaluation_main(["--lock", str(answer), "--sizes", "--runs", "5"])
        title = f"### default.nix of the {SCALE_SET} set, three systems (evaluation.py --lock)"
        return [title, "", *captured.read_text().splitlines(), f"(exit status {code})"]


# -- main --------------------------------------------------------------------------------------


def needs_recording(recording: Recording, root_set: RootSet, with_pip_compile: bool) -> bool:
    """Whether the recording lacks the set, or a run of it (a control, pip-compile)."""
    entry = recording.sets.get(root_set.name)
    if entry is None or entry.get("roots") != root_set.roots():
        return True
    recorded = set(entry.get("recorded_with", []))
    return not set(labels_for(root_set, with_pip_compile)) <= recorded


def build_tools(root_set: RootSet, url: str, snapshot: str, pip_compile: Tool | None) -> list[Tool]:
    """In the order they run in each round: the headline pair, then (timed sets) the controls
    -- machci for one system right after uv for that platform, machci for four systems and
    uv --universal -- and pip-compile."""
    reqs = root_set.requirements
    tools = [machci_tool(reqs, url, snapshot), uv_tool(reqs, url, snapshot)]
    if root_set.timed:
        tools += [
            machci_tool(reqs, url, snapshot, systems, name)
            for name, systems in CONTROL_MACHCI.items()
        ]
        tools.append(uv_tool(reqs, url, snapshot, UNIVERSAL, CONTROL_UV))
    if pip_compile is not None and root_set.timed:
        tools.append(pip_compile)
    return tools


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        choices=sorted(SETS),
        help="root set (repeatable; default: all; --live: forty and issue)",
    )
    parser.add_argument(
        "--pairs", type=int, default=DEFAULT_PAIRS, help=f"cold and warm pairs ({DEFAULT_PAIRS})"
    )
    parser.add_argument("--offline", action="store_true", help="never record (no network)")
    parser.add_argument(
        "--live", action="store_true", help="time the lock against PyPI itself (no recording)"
    )
    parser.add_argument(
        "--with-pip-compile", action="store_true", help="also time pip-compile (timed sets)"
    )
    parser.add_argument("--pip-compile-python", metavar="PYTHON", help="its interpreter")
    parser.add_argument(
        "--no-sync-check", action="store_true", help="skip machci sync vs machci check"
    )
    parser.add_argument(
        "--no-growth", action="store_true", help="skip the growth of lock time with graph size"
    )
    parser.add_argument(
        "--no-evaluation",
        action="store_true",
        help="skip evaluating the airflow set's three-system default.nix",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="MS",
        help="serve the recording as over a network: each answer and each new connection"
        " waits a round trip of MS milliseconds (0: loopback speed)",
    )
    parser.add_argument("--recording", type=Path, help="recording directory")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per run (600)"
    )
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    if args.live and args.offline:
        parser.error("--live needs the network")
    if args.latency < 0 or (args.latency and args.live):
        parser.error("--latency is a non-negative round trip for the recording (not --live)")
    latency = args.latency / 1000
    if args.live and any(not SETS[name].pep658 for name in args.sets or ()):
        parser.error("--live cannot hide PyPI's PEP 658 metadata: that set needs the recording")
    committed = load_committed()
    snapshot = str(committed["snapshot"])
    default_sets = TIMED_SETS if args.live else tuple(SETS)
    sets = [SETS[name] for name in args.sets or default_sets]
    started = time.monotonic()
    header = [f"machci benchmark, snapshot {snapshot}; {machine()}"]
    # An installed machci is byte-compiled (pip compiles at install); the working tree is made
    # so too, or every run would compile it again wherever PYTHONDONTWRITEBYTECODE is set.
    compileall.compile_dir(REPO / "machci", quiet=1)

    recording = Recording(args.recording or recording_dir(snapshot), snapshot)
    if not args.live:
        missing = [s for s in sets if needs_recording(recording, s, args.with_pip_compile)]
        if missing and args.offline:
            names = ", ".join(s.name for s in missing)
            print(
                f"run: the recording in {recording.root} lacks {names}; --offline refuses to"
                " record it (run without --offline once, with access to PyPI)",
                file=sys.stderr,
            )
            return 2
        if missing:
            log(f"recording {', '.join(s.name for s in missing)} first (needs PyPI) ...")
            record(missing, recording, with_pip_compile=args.with_pip_compile)
        refused = mismatches(recording.manifest(), committed)
        if refused:
            print(
                f"run: the recording in {recording.root} does not match"
                f" {COMMITTED_MANIFEST.name}: " + "; ".join(refused) + ". Its figures would not"
                " be comparable; record anew into an empty directory (--recording DIR)",
                file=sys.stderr,
            )
            return 2
        differences = compare(recording.manifest(), committed)
        header.append(
            f"recording {recording.root}, against {COMMITTED_MANIFEST.name}: "
            + "; ".join(differences)
        )

    chosen = choose_pip_compile(args.pip_compile_python) if args.with_pip_compile else None
    results: dict[str, SetResult] = {}
    sync_check: SyncCheck | None = None
    scale_sync: SyncCheck | None = None
    evaluation: list[str] = []

    def measure(root_set: RootSet, url: str, counting: Counting) -> None:
        pip_compile = (
            pip_compile_tool(root_set.requirements, url, chosen) if chosen is not None else None
        )
        tools = build_tools(root_set, url, snapshot, pip_compile)
        reference = recording.sets.get(root_set.name, committed["sets"].get(root_set.name, {}))
        results[root_set.name] = measure_set(
            root_set, tools, counting, args.pairs, args.timeout, reference.get("reference", {})
        )

    def run_all(url: str, counting: Counting) -> None:
        nonlocal sync_check, scale_sync
        for root_set in sets:
            if root_set.pep658:
                measure(root_set, url, counting)
                continue
            # Its own index, without PEP 658.
            with IndexServer(recording, pep658=False, latency=latency) as hidden:
                measure(root_set, hidden.url, Counting(hidden))
        if not args.no_sync_check and not args.live:
            sync_check = measure_sync_check(
                SETS[SYNC_CHECK_SET], url, snapshot, counting, args.pairs, args.timeout
            )
            if SCALE_SET in (s.name for s in sets):
                scale_sync = measure_sync_check(
                    SETS[SCALE_SET],
                    url,
                    snapshot,
                    counting,
                    args.pairs,
                    args.timeout,
                    THREE_SYSTEMS,
                    with_check=False,
                )
        if not args.no_evaluation and SCALE_SET in (s.name for s in sets):
            evaluation.extend(evaluate_scale_lock(url, snapshot, args.timeout))

    if args.live:
        header.append(
            f"LIVE: against {PYPI_SIMPLE} itself; times depend on the network and on PyPI,"
            " and bytes are not counted"
        )
        run_all(PYPI_SIMPLE, Counting(None))
    else:
        with IndexServer(recording, latency=latency) as server:
            header.append(f"index {server.url}: the recording, with PyPI's caching headers")
            if latency:
                header.append(
                    f"LATENCY: each answer, and each new connection, waits {args.latency:g} ms"
                    " (a round trip); bodies arrive at loopback speed"
                )
            run_all(server.url, Counting(server))

    growth = None
    if not args.no_growth and not args.live:
        growth = measure_growth(GROWTH_SIZES, GROWTH_RUNS, ("x86_64-linux",), args.timeout)

    lines = [*header, ""]
    for result in results.values():
        lines += [*report_set(result, args.live), ""]
    if sync_check is not None:
        lines += [*report_sync_check(sync_check, args.live), ""]
    if scale_sync is not None:
        lines += [*report_sync_check(scale_sync, args.live), ""]
    if evaluation:
        lines += [*evaluation, ""]
    if growth is not None:
        lines += [*report_growth(growth), ""]
    found = targets(results, sync_check)
    scale = scale_targets(results, scale_sync)
    over = f", {args.latency:g} MS LATENCY" if latency else ""
    lines += report_targets(found, args.live, f"target (performance issue{over})")
    lines += ["", *report_targets(scale, args.live, f"target (performance at scale{over})")]
    print("\n".join(lines), flush=True)
    log(f"done in {time.monotonic() - started:.0f} s")
    if args.json:
        doc = {
            "snapshot": snapshot,
            "live": args.live,
            "latency_ms": args.latency,
            "pairs": args.pairs,
            "machine": machine(),
            "sets": {
                name: {
                    "roots": r.root_set.roots(),
                    "tools": {t: s.to_json() for t, s in r.series.items()},
                    "ratios": {
                        f"{tool} / {base}": {k: r.ratios(k, tool, base) for k in ("cold", "warm")}
                        for tool, base, _ in RATIOS
                        if tool in r.series and base in r.series
                    },
                }
                for name, r in results.items()
            },
            "sync_check": None if sync_check is None else sync_check.to_json(),
            "scale_sync": None if scale_sync is None else scale_sync.to_json(),
            "evaluation": evaluation,
            "growth": None if growth is None else as_json(growth),
            "targets": [t.to_json() for t in (*found, *scale)],
        }
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
