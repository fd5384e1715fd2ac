#!/usr/bin/env python3
"""How machci's lock time and peak RSS grow with the size of the dependency graph.

The recorded sets (run.py) stop at a few hundred pins, where a quadratic step still looks
cheap. This mode locks seeded synthetic projects of growing size on a loopback index and
prints, for each pair of consecutive sizes, the growth exponent log(t2/t1) / log(n2/n1):
near 1 is linear, clearly above 1 is a cost that will dominate at scale::

    python benchmarks/growth.py
    python benchmarks/growth.py --sizes 100,300,1000,3000 --runs 1 --systems 3
    python benchmarks/growth.py --json growth.json

Each size is a layered DAG: 15 % of the packages are roots (the requirements file), every
other package has an unconditional parent one layer up, so every package is pinned; further
edges carry version specifiers, extras and environment markers, and a few caps below a
package's newest version make the resolver backtrack a little. Packages have 3-6 versions
with upload times (some after the snapshot, some pre-releases), a py3-none-any wheel with
PEP 658 metadata each, and for some platform wheels and an sdist. Each round runs, for every
size, one cold lock (new cache) and one warm lock (that cache again). Exit status: 0 when every
run locked every package, 1 otherwise.
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for _path in (HERE, HERE.parent):  # tools.py beside this file; tests.fixtures from the root
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from packaging.utils import canonicalize_name  # noqa: E402
from packaging.version import Version  # noqa: E402
from tools import (  # noqa: E402
    ONE_SYSTEM,
    REPO,
    THREE_SYSTEMS,
    log,
    machci_tool,
    parse_machci_lock,
    timed,
)

from tests.fixtures.builders import Dist  # noqa: E402
from tests.fixtures.index import Index  # noqa: E402

# 3000 packages is in reach (--sizes 100,300,1000,3000) but takes minutes per lock, since
# resolvelib checks every criterion against every pin each round; the default stays near 2 min.
DEFAULT_SIZES = (100, 300, 1000)
DEFAULT_RUNS = 3
DEFAULT_TIMEOUT = 600.0
SEED = 691
SNAPSHOT = "2026-12-01T00:00:00Z"
PAGE_CACHE = "max-age=600"  # PyPI's, as server.py serves it: a warm lock asks for no page
SYSTEMS = {1: ONE_SYSTEM, 3: THREE_SYSTEMS}

LAYERS = 7  # the roots' layer and six below it: about as deep as real application graphs
ROOT_SHARE = 0.15
CAPPED_SHARE = 0.03  # packages some dependents cap below their newest version: backtracking
BINARY_SHARE = 0.12  # packages with platform wheels beside the pure one
SDIST_SHARE = 0.3  # releases with an sdist too
EXTRA_NAMES = ("speedups", "cli", "socks", "yaml")
# True or false for CPython 3.12 on some systems; every package is pinned through an
# unconditional edge as well, so the pin count does not depend on them.
MARKERS = (
    'python_version < "3.10"',
    'sys_platform == "darwin"',
    'sys_platform == "linux"',
    'platform_machine == "x86_64"',
    'python_version >= "3.9"',
    'implementation_name == "cpython"',
    'platform_system == "Windows"',
)
PLATFORM_TAGS = (
    "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64",
    "cp312-cp312-macosx_11_0_arm64",
    "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
)
FIRST_UPLOAD = datetime(2019, 1, 1, tzinfo=UTC)
AFTER_SNAPSHOT = datetime(2026, 12, 3, 12, tzinfo=UTC)


# -- the synthetic projects --------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    version: str
    upload_time: str
    requires_dist: tuple[str, ...]
    requires_python: str | None
    provides_extra: tuple[str, ...]
    tags: tuple[str, ...]  # wheel tags
    sdist: bool
    visible: bool  # uploaded before the snapshot and final: a version the lock may pin


@dataclass(frozen=True)
class Project:
    name: str
    releases: tuple[Release, ...]


@dataclass
class Synthetic:
    """One generated graph: its projects and the requirements file that roots it."""

    size: int
    projects: list[Project]
    roots: list[str]  # requirement lines
    edges: int  # Requires-Dist lines over every release

    def dists(self) -> Iterator[Dist]:
        for project in self.projects:
            for r in project.releases:
                common: dict[str, Any] = {
                    "requires_dist": r.requires_dist,
                    "requires_python": r.requires_python,
                    "provides_extra": r.provides_extra,
                    "upload_time": r.upload_time,
                }
                for tag in r.tags:
                    yield Dist(project.name, r.version, tag=tag, **common)
                if r.sdist:
                    yield Dist(project.name, r.version, kind="sdist", **common)

    def pinnable(self) -> dict[str, set[str]]:
        """Per package, the versions a correct lock may pin (final, before the snapshot)."""
        return {
            canonicalize_name(p.name): {r.version for r in p.releases if r.visible}
            for p in self.projects
        }

    def requirements_text(self) -> str:
        head = f"# growth benchmark: {self.size} packages, seed-generated\n"
        return head + "".join(f"{line}\n" for line in self.roots)


@dataclass
class _Node:
    name: str
    versions: list[str]  # visible versions, oldest first
    target: int  # index in versions that every specifier admits
    capped: bool
    extra: str | None
    spine: list[int] = field(default_factory=list)  # unconditional children


def _versions(rng: random.Random) -> list[str]:
    major, minor, patch = rng.randint(0, 3), rng.randint(0, 9), 0
    out = [f"{major}.{minor}.{patch}"]
    for _ in range(rng.randint(3, 6) - 1):
        step = rng.random()
        if step < 0.15:
            major, minor, patch = major + 1, 0, 0
        elif step < 0.6:
            minor, patch = minor + 1, 0
        else:
            patch += 1
        out.append(f"{major}.{minor}.{patch}")
    return out


def _specifier(node: _Node, rng: random.Random, cap: bool) -> str:
    """A specifier admitting node's target version; cap: also below its newest version."""
    versions, t = node.versions, node.target
    target = Version(versions[t])
    low = versions[rng.randint(0, t)]
    if cap:
        return f">={low},<{versions[-1]}"
    r = rng.random()
    if r < 0.15:
        return ""
    if r < 0.55:
        return f">={low}"
    if r < 0.75:
        return f">={low},<{target.major + 1}"
    if r < 0.85:
        same = [v for v in versions[: t + 1] if Version(v).major == target.major]
        v = Version(rng.choice(same))
        return f"~={v.major}.{v.minor}"
    if r < 0.92:
        return f"=={target.major}.*"
    others = [v for i, v in enumerate(versions) if i != t]
    return f">={low},!={rng.choice(others)}"


def _spelled(name: str, rng: random.Random) -> str:
    """Requires-Dist spells some names otherwise than the index (normalisation, PEP 503)."""
    return name.replace("-", "_").title() if rng.random() < 0.1 else name


def _requirement(node: _Node, rng: random.Random, marker: str = "", cap: bool = False) -> str:
    extra = f"[{node.extra}]" if node.extra and rng.random() < 0.3 else ""
    text = f"{_spelled(node.name, rng)}{extra}{_specifier(node, rng, cap)}"
    return f"{text}; {marker}" if marker else text


def _layers(size: int) -> list[range]:
    roots = max(1, round(size * ROOT_SHARE))
    rest = size - roots
    bounds = [range(0, roots)]
    start = roots
    for layer in range(LAYERS - 1):
        end = roots + rest * (layer + 1) // (LAYERS - 1)
        bounds.append(range(start, end))
        start = end
    return [b for b in bounds if len(b)]


def _pick(layer: range, rng: random.Random) -> int:
    """A package of the layer, the first ones much more often: hubs, as six or typing-extensions."""
    return layer.start + int(len(layer) * rng.random() ** 2)


def generate(size: int, seed: int = SEED) -> Synthetic:
    """The seeded graph of `size` packages (the same bytes every time), in O(size)."""
    if size < 10:
        raise ValueError("at least 10 packages")
    rng = random.Random(f"{seed}-{size}")
    layers = _layers(size)
    layer_of = [i for i, layer in enumerate(layers) for _ in layer]
    nodes: list[_Node] = []
    for i in range(size):
        versions = _versions(rng)
        capped = rng.random() < CAPPED_SHARE
        leaf = layer_of[i] == len(layers) - 1
        extra = rng.choice(EXTRA_NAMES) if not leaf and rng.random() < 0.2 else None
        nodes.append(
            _Node(f"syn-{i:05d}", versions, len(versions) - (2 if capped else 1), capped, extra)
        )
    for layer_index in range(1, len(layers)):
        for child in layers[layer_index]:
            parent = rng.choice(layers[layer_index - 1])
            nodes[parent].spine.append(child)

    projects: list[Project] = []
    edges = 0
    for i, node in enumerate(nodes):
        layer = layer_of[i]
        deeper = layers[layer + 1 :]
        # (requirement, first version index that declares it)
        deps: list[tuple[str, int]] = []
        for child in node.spine:
            target = nodes[child]
            cap = target.capped and rng.random() < 0.5
            deps.append((_requirement(target, rng, cap=cap), 0))
        if deeper:
            chosen: set[int] = set(node.spine)
            for _ in range(rng.randint(1, 5)):
                near = rng.random() < 0.6 or len(deeper) == 1
                child = _pick(deeper[0] if near else rng.choice(deeper[1:]), rng)
                if child in chosen:
                    continue
                chosen.add(child)
                target = nodes[child]
                marker = rng.choice(MARKERS) if rng.random() < 0.15 else ""
                cap = target.capped and rng.random() < 0.3
                since = 0 if rng.random() < 0.7 else rng.randint(1, len(node.versions) - 1)
                deps.append((_requirement(target, rng, marker, cap), since))
        extra_deps: list[str] = []
        if node.extra and deeper:
            for _ in range(rng.randint(1, 2)):
                target = nodes[_pick(rng.choice(deeper), rng)]
                extra_deps.append(_requirement(target, rng, f'extra == "{node.extra}"'))
        binary = rng.random() < BINARY_SHARE
        tags = ("py3-none-any", *PLATFORM_TAGS) if binary else ("py3-none-any",)
        base_python = rng.choice((None, ">=3.7", ">=3.8", ">=3.8", ">=3.9"))
        ancient = rng.random() < 0.1  # its oldest release does not install on 3.12
        uploaded = FIRST_UPLOAD + timedelta(
            days=rng.randint(0, 1460), seconds=rng.randint(0, 86399)
        )
        releases: list[Release] = []
        for v, version in enumerate(node.versions):
            requires = tuple(text for text, since in deps if since <= v)
            requires += tuple(extra_deps)  # every release: a lock may pin an older one
            python = ">=2.7,<3.8" if ancient and v == 0 else base_python
            releases.append(
                Release(
                    version,
                    _stamp(uploaded),
                    requires,
                    python,
                    (node.extra,) if node.extra else (),
                    tags,
                    rng.random() < SDIST_SHARE,
                    True,
                )
            )
            uploaded += timedelta(days=rng.randint(10, 150), seconds=rng.randint(0, 86399))
        newest = releases[-1]
        top = Version(newest.version)
        if rng.random() < 0.05:  # a release candidate, uploaded before the snapshot
            pre = f"{top.major}.{top.minor + 1}.0rc1"
            releases.append(_later(newest, pre, _stamp(uploaded)))
        if rng.random() < 0.1:  # a release after the snapshot: the lock must not see it
            releases.append(_later(newest, f"{top.major + 1}.0.0", _stamp(AFTER_SNAPSHOT)))
        edges += sum(len(r.requires_dist) for r in releases)
        projects.append(Project(node.name, tuple(releases)))

    roots: list[str] = []
    for i in layers[0]:
        node = nodes[i]
        marker = 'python_version >= "3.8"' if rng.random() < 0.05 else ""
        spec = _requirement(node, rng, marker) if rng.random() < 0.5 else node.name
        roots.append(spec)
    return Synthetic(size, projects, roots, edges)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _later(newest: Release, version: str, upload_time: str) -> Release:
    return Release(
        version,
        upload_time,
        newest.requires_dist,
        newest.requires_python,
        newest.provides_extra,
        newest.tags,
        newest.sdist,
        False,
    )


def publish(synthetic: Synthetic, root: Path) -> Index:
    """A started loopback index serving every file of the graph (PEP 691 pages, PEP 658)."""
    index = Index(root)
    index.page_cache_control = PAGE_CACHE
    index.add(*synthetic.dists())
    index.start()
    return index


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    rss_mb: float
    ok: bool
    error: str = ""
    pins: dict[str, int] = field(default_factory=dict)  # per system
    requests: int = 0  # what the index answered during the run


@dataclass
class SizeResult:
    size: int
    roots: int
    edges: int
    files: int
    generate_seconds: float
    cold: list[Run] = field(default_factory=list)
    warm: list[Run] = field(default_factory=list)

    def ok(self) -> bool:
        return all(r.ok for r in self.cold + self.warm) and bool(self.cold and self.warm)


@dataclass
class GrowthResult:
    systems: list[str]
    runs: int
    seed: int
    sizes: list[SizeResult]
    seconds: float = 0.0

    def ok(self) -> bool:
        return all(s.ok() for s in self.sizes)


def check_lock(
    answer: Path, synthetic: Synthetic, systems: Sequence[str]
) -> tuple[dict[str, int], str]:
    """Pins per system, and what is wrong with them: every package once, at a visible version."""
    try:
        locked = parse_machci_lock(answer)
    except (OSError, ValueError) as exc:
        return {}, f"unreadable lock: {exc}"
    counts = {system: len(locked.get(system, {})) for system in systems}
    allowed = synthetic.pinnable()
    problems: list[str] = []
    for system in systems:
        pins = locked.get(system, {})
        if len(pins) != synthetic.size:
            missing = sorted(set(allowed) - set(pins))[:3]
            problems.append(f"{system}: {len(pins)} pins of {synthetic.size} (missing {missing})")
        wrong = sorted(f"{n}=={v}" for n, v in pins.items() if v not in allowed.get(n, ()))[:3]
        if wrong:
            problems.append(f"{system}: pinned versions it may not: {', '.join(wrong)}")
    return counts, "; ".join(problems)


def lock_once(
    synthetic: Synthetic,
    index: Index,
    requirements: Path,
    cache: Path,
    work: Path,
    systems: Sequence[str],
    timeout: float,
    label: str,
) -> Run:
    tool = machci_tool(requirements, index.url, SNAPSHOT, systems, name=label)
    argv, answer = tool.command(cache, work, 0)
    before = len(index.requests)
    sample = timed(argv, tool.env, work, answer, timeout)
    run = Run(sample.seconds, sample.rss_mb, sample.ok, sample.error)
    run.requests = len(index.requests) - before
    if run.ok:
        run.pins, problem = check_lock(answer, synthetic, systems)
        if problem:
            run.ok, run.error = False, problem
    answer.unlink(missing_ok=True)
    return run


def measure_growth(
    sizes: Sequence[int],
    runs: int,
    systems: Sequence[str],
    timeout: float,
    seed: int = SEED,
) -> GrowthResult:
    """Lock every size `runs` times cold and warm, interleaved: round by round, size by size,
    so that whatever else the machine does falls on every size alike."""
    started = time.monotonic()
    # An installed machci is byte-compiled; so is the working tree, as run.py does.
    compileall.compile_dir(REPO / "machci", quiet=1)
    result = GrowthResult(list(systems), runs, seed, [])
    indexes: list[Index] = []
    with tempfile.TemporaryDirectory(prefix="machci-growth-") as tmp:
        work = Path(tmp)
        try:
            graphs: list[tuple[Synthetic, Index, Path, SizeResult]] = []
            for size in sizes:
                began = time.perf_counter()
                synthetic = generate(size, seed)
                index = publish(synthetic, work / f"index-{size}")
                indexes.append(index)
                requirements = work / f"requirements-{size}.txt"
                requirements.write_text(synthetic.requirements_text())
                entry = SizeResult(
                    size,
                    len(synthetic.roots),
                    synthetic.edges,
                    len(index.dists),
                    time.perf_counter() - began,
                )
                log(
                    f"{size} packages: {entry.roots} roots, {entry.edges} Requires-Dist lines,"
                    f" {entry.files} files, generated and published in"
                    f" {entry.generate_seconds:.1f} s"
                )
                graphs.append((synthetic, index, requirements, entry))
                result.sizes.append(entry)
            for round_ in range(1, runs + 1):
                for synthetic, index, requirements, entry in graphs:
                    cache = work / f"cache-{entry.size}-{round_}"
                    for kind, series in (("cold", entry.cold), ("warm", entry.warm)):
                        label = f"machci-{entry.size}-{kind}-{round_}"
                        run = lock_once(
                            synthetic, index, requirements, cache, work, systems, timeout, label
                        )
                        series.append(run)
                        verdict = "ok" if run.ok else f"FAILED: {run.error}"
                        log(
                            f"round {round_}/{runs}, {entry.size} packages, {kind}:"
                            f" {run.seconds:.2f} s, {run.rss_mb:.0f} MB,"
                            f" {run.requests} requests, {verdict}"
                        )
                    shutil.rmtree(cache, ignore_errors=True)
        finally:
            for index in indexes:
                index.stop()
    result.seconds = time.monotonic() - started
    return result


# -- the report --------------------------------------------------------------------------------


def _ok_values(runs: Sequence[Run], what: str) -> list[float]:
    return [float(getattr(r, what)) for r in runs if r.ok]


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _spread(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def exponent(n1: int, v1: float | None, n2: int, v2: float | None) -> float | None:
    """log(v2/v1) / log(n2/n1): 1 grows linearly with the graph, 2 quadratically."""
    if v1 is None or v2 is None or v1 <= 0 or v2 <= 0 or n1 == n2:
        return None
    return math.log(v2 / v1) / math.log(n2 / n1)


def _k(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def figures(result: GrowthResult) -> list[dict[str, Any]]:
    """Per size: medians, peaks and the exponents from the size before (None for the first)."""
    out: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for s in result.sizes:
        cold, warm = _ok_values(s.cold, "seconds"), _ok_values(s.warm, "seconds")
        row: dict[str, Any] = {
            "size": s.size,
            "pins": sorted({n for r in s.cold + s.warm if r.ok for n in r.pins.values()}),
            "cold_s": _median(cold),
            "warm_s": _median(warm),
            "rss_cold_mb": max(_ok_values(s.cold, "rss_mb"), default=None),
            "rss_warm_mb": max(_ok_values(s.warm, "rss_mb"), default=None),
            "requests_cold": _median(_ok_values(s.cold, "requests")),
            "requests_warm": _median(_ok_values(s.warm, "requests")),
        }
        for key in ("cold_s", "warm_s", "rss_cold_mb", "rss_warm_mb"):
            row[f"k_{key}"] = (
                None
                if previous is None
                else exponent(previous["size"], previous[key], s.size, row[key])
            )
        out.append(row)
        previous = row
    return out


def report_growth(result: GrowthResult) -> list[str]:
    """The markdown table: times with their spread, peak RSS, and the growth exponents."""
    systems = ", ".join(result.systems)
    lines = [
        f"### Growth: lock time and peak RSS against graph size ({systems})",
        "",
        f"Synthetic layered graphs (seed {result.seed}), {result.runs} cold and {result.runs}"
        " warm locks per size, interleaved. Times: median (min-max), seconds. Peak RSS: the"
        " largest over the runs, MB. k: growth exponent from the size above,"
        " log(t2/t1) / log(n2/n1); 1 is linear.",
        "",
        "| packages | roots | pins | cold s | warm s | warm ms/pkg | peak RSS MB cold / warm"
        " | requests cold / warm | k cold | k warm | k RSS cold / warm |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s, row in zip(result.sizes, figures(result), strict=True):
        pins = "/".join(str(p) for p in row["pins"]) or "n/a"
        if s.ok():
            pins += " (= all)" if row["pins"] == [s.size] else ""
        warm = row["warm_s"]
        per_package = "n/a" if warm is None else f"{warm / s.size * 1000:.2f}"
        rss = " / ".join(
            "n/a" if row[k] is None else f"{row[k]:.0f}" for k in ("rss_cold_mb", "rss_warm_mb")
        )
        requests = " / ".join(
            "n/a" if row[k] is None else f"{row[k]:.0f}" for k in ("requests_cold", "requests_warm")
        )
        lines.append(
            f"| {s.size} | {s.roots} | {pins}"
            f" | {_spread(_ok_values(s.cold, 'seconds'))}"
            f" | {_spread(_ok_values(s.warm, 'seconds'))}"
            f" | {per_package} | {rss} | {requests}"
            f" | {_k(row['k_cold_s'])} | {_k(row['k_warm_s'])}"
            f" | {_k(row['k_rss_cold_mb'])} / {_k(row['k_rss_warm_mb'])} |"
        )
    failures = [
        f"- {s.size} packages, {kind} run {i}: {r.error}"
        for s in result.sizes
        for kind, series in (("cold", s.cold), ("warm", s.warm))
        for i, r in enumerate(series, 1)
        if not r.ok
    ]
    if failures:
        lines += ["", "Failed runs:", *failures]
    lines += [
        "",
        "Peak RSS includes the interpreter and machci's imports, a constant that pulls its"
        " exponent below the growth of what the graph itself costs.",
    ]
    return lines


def as_json(result: GrowthResult) -> dict[str, Any]:
    return {**asdict(result), "figures": figures(result), "ok": result.ok()}


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of sizes: {text!r}") from None
    if not sizes or any(n < 10 for n in sizes) or sorted(set(sizes)) != sizes:
        raise argparse.ArgumentTypeError("sizes must be increasing, each at least 10")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=list(DEFAULT_SIZES),
        help="comma-separated package counts (default: %(default)s)",
    )
    parser.add_argument(
        "--runs", type=int, default=DEFAULT_RUNS, help="cold and warm locks per size (3)"
    )
    parser.add_argument(
        "--systems", type=int, choices=sorted(SYSTEMS), default=1, help="systems to lock (1)"
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"graph seed ({SEED})")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per run (600)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    result = measure_growth(args.sizes, args.runs, SYSTEMS[args.systems], args.timeout, args.seed)
    print("\n".join(report_growth(result)))
    print(f"\n{result.seconds:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps(as_json(result), indent=1) + "\n")
    return 0 if result.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
