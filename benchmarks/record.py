#!/usr/bin/env python3
"""Record what the benchmark's tools fetch from PyPI, into a recording outside the repository.

    python benchmarks/record.py [--set forty --set issue ...] [--with-pip-compile]
                                [--snapshot TIME] [--write-manifest]

Needs pypi.org and files.pythonhosted.org, and ``uv`` on PATH.  For each root set:

1. **Reference.** ``uv pip compile`` resolves the roots on PyPI itself for
   ``x86_64-manylinux_2_28`` and ``aarch64-manylinux_2_28`` (``--exclude-newer SNAPSHOT``): the
   pins every later answer is checked against.  For a timed set, for the controls, also for
   ``x86_64-apple-darwin`` and ``aarch64-apple-darwin`` (``MACOSX_DEPLOYMENT_TARGET`` set to
   machci's default macOS target) and once ``--universal``.
2. **Recording.** The index server runs as a recording proxy on 127.0.0.1 (see server.py) and
   the tools run through it with empty caches, as ``run.py`` will run them: uv for both
   platforms, machci for both Linux systems; for a timed set also the controls (uv
   ``--universal``, machci for one system and for four); and pip-compile with
   ``--with-pip-compile``.  The
   proxy fetches each page, ``.metadata`` file, whole file or (for a set served without PEP
   658 metadata) range of a wheel the first time one is asked for, and stores it as PyPI sent
   it.  Until its metadata is recorded a wheel's page entry carries a stand-in hash, which
   machci rejects; so the round repeats until one adds nothing.
3. **Check.** The tools run once more against the recording alone: nothing may be missing, and
   uv's pins must equal the reference.

A recording grows: what is already recorded is never fetched again, so recording another set, or
again after the tools changed, only adds.  ``--write-manifest`` copies the recording's manifest
to ``benchmarks/manifest.json``; otherwise the recording is compared with that file.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server import IndexServer
from store import (
    COMMITTED_MANIFEST,
    PYPI_SIMPLE,
    Recording,
    compare,
    load_committed,
    recording_dir,
)
from tools import (
    DARWIN_PLATFORMS,
    DEFAULT_SETS,
    FOUR_SYSTEMS,
    ONE_SYSTEM,
    SETS,
    THREE_SYSTEMS,
    UNIVERSAL,
    UV_PLATFORMS,
    RootSet,
    Sample,
    Tool,
    check_pins,
    choose_pip_compile,
    log,
    machci_tool,
    pip_compile_tool,
    scratch,
    timed,
    uv_tool,
)
from upstream import Upstream

# The controls' runs (timed sets only), named as run.py names them.
CONTROL_MACHCI = {"machci-1": ONE_SYSTEM, "machci-3": THREE_SYSTEMS, "machci-4": FOUR_SYSTEMS}
CONTROL_UV = "uv-universal"
MAX_ROUNDS = 8
TIMEOUT = 1800.0  # a recording run fetches from PyPI, and may build sdists


def labels_for(root_set: RootSet, with_pip_compile: bool) -> list[str]:
    """The runs that record a set, by label: those of run.py (the controls on timed sets)."""
    labels = [f"uv {p}" for p in UV_PLATFORMS]
    labels.append("machci")
    if root_set.timed:
        labels += [CONTROL_UV, *CONTROL_MACHCI]
    if with_pip_compile:
        labels.append("pip-compile")
    return labels


def tools_for(
    root_set: RootSet, url: str, snapshot: str, with_pip_compile: bool
) -> list[tuple[str, Tool]]:
    """The runs that record a set: (label, tool)."""
    reqs = root_set.requirements
    out: list[tuple[str, Tool]] = []
    for label in labels_for(root_set, with_pip_compile):
        if label == "machci":
            out.append((label, machci_tool(reqs, url, snapshot)))
        elif label in CONTROL_MACHCI:
            out.append((label, machci_tool(reqs, url, snapshot, CONTROL_MACHCI[label], label)))
        elif label == CONTROL_UV:
            out.append((label, uv_tool(reqs, url, snapshot, UNIVERSAL, label)))
        elif label.startswith("uv "):
            out.append((label, uv_tool(reqs, url, snapshot, label.removeprefix("uv "))))
        elif label == "pip-compile":
            chosen = choose_pip_compile(None)
            out.append((label, pip_compile_tool(reqs, url, chosen)))
    return out


def reference_platforms(root_set: RootSet) -> tuple[str, ...]:
    """What uv resolves on PyPI itself for a set: the Linux platforms; for a timed set also
    the Darwin ones and a universal resolution, for the controls."""
    if root_set.timed:
        return (*UV_PLATFORMS, *DARWIN_PLATFORMS, UNIVERSAL)
    return UV_PLATFORMS


def run_once(tool: Tool, root: Path, run: int, timeout: float) -> tuple[Sample, Path]:
    """One cold run: a new cache under root; the sample and the tool's answer."""
    cache, work = root / f"cache-{run}", root / f"work-{run}"
    work.mkdir(parents=True)
    argv, answer = tool.command(cache, work, run)
    stdout = answer if tool.answer_on_stdout else work / "stdout"
    env = dict(tool.env, XDG_CACHE_HOME=str(root / f"xdg-{run}"))
    return timed(argv, env, work, stdout, timeout), answer


def size_of(recording: Recording) -> int:
    parts = sum(len(p) for p in recording.parts.values())
    return len(recording.pages) + len(recording.metadata) + len(recording.files) + parts


def reference_pins(root_set: RootSet, snapshot: str, timeout: float) -> dict[str, dict[str, str]]:
    """uv's answer on PyPI itself, per platform."""
    out: dict[str, dict[str, str]] = {}
    with scratch("machci-bench-reference-") as root:
        for run, platform_ in enumerate(reference_platforms(root_set)):
            tool = uv_tool(root_set.requirements, PYPI_SIMPLE, snapshot, platform_)
            if tool.unavailable:
                raise SystemExit(f"record: {tool.unavailable}")
            sample, answer = run_once(tool, root, run, timeout)
            if not sample.ok:
                raise SystemExit(f"record: uv on PyPI ({platform_}) failed: {sample.error}")
            out.update(tool.parse(answer))
            log(f"{root_set.name}: reference for {platform_}: {len(out[platform_])} pins")
    return out


def record_set(
    root_set: RootSet,
    recording: Recording,
    server: IndexServer,
    with_pip_compile: bool,
    timeout: float,
) -> tuple[list[str], dict[str, Any]]:
    """Run the tools through the recording proxy until a round records nothing new.

    Returns the runs' labels and what it took: rounds, items added, bytes of wheels (whole or
    ranges) a tool read only for their metadata (passed through), wheels too large to pass
    through whole (refused).
    """
    runs = tools_for(root_set, server.url, recording.snapshot, with_pip_compile)
    passed: dict[str, int] = {}
    refused: set[str] = set()
    first = size_of(recording)
    with scratch("machci-bench-record-") as root:
        counter = 0
        for round_ in range(1, MAX_ROUNDS + 1):
            before = size_of(recording)
            failed: list[str] = []
            for label, tool in runs:
                if tool.unavailable:
                    raise SystemExit(f"record: {label}: {tool.unavailable}")
                counter += 1
                server.reset_stats()
                sample, _answer = run_once(tool, root, counter, timeout)
                stats = server.stats()
                state = "ok" if sample.ok else f"failed ({sample.error[-300:]})"
                log(f"{root_set.name}: round {round_}: {label} {sample.seconds:.1f} s, {state}")
                for what in stats.passed:
                    log(f"  {label} read {what} for its metadata: passed through")
                for what in stats.misses:
                    log(f"  {label} asked for {what}: too large, refused")
                through = sum(n for k, n in stats.bytes.items() if k.startswith("file passed"))
                passed[label] = passed.get(label, 0) + through
                refused.update(stats.misses)
                if not sample.ok:
                    failed.append(f"{label}: {sample.error}")
            added = size_of(recording) - before
            recording.save()
            log(f"{root_set.name}: round {round_} recorded {added} new items")
            if added == 0:
                if failed:
                    raise SystemExit(f"record: {root_set.name}: " + "; ".join(failed))
                return [label for label, _ in runs], {
                    "finished": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "rounds": round_,
                    "added": size_of(recording) - first,
                    "passed_through_bytes": {k: v for k, v in passed.items() if v},
                    "refused": sorted(refused),
                }
    raise SystemExit(f"record: {root_set.name}: still recording after {MAX_ROUNDS} rounds")


def verify_set(
    root_set: RootSet,
    recording: Recording,
    server: IndexServer,
    labels: Iterable[str],
    reference: Mapping[str, Any],
    timeout: float,
) -> None:
    """Every recording run again, on the recording alone: no misses; uv gives the reference."""
    wanted = set(labels)
    runs = tools_for(root_set, server.url, recording.snapshot, "pip-compile" in wanted)
    with scratch("machci-bench-verify-") as root:
        for run, (label, tool) in enumerate(runs):
            server.reset_stats()
            sample, answer = run_once(tool, root, run, timeout)
            stats = server.stats()
            if not sample.ok or stats.misses:
                missing = ", ".join(stats.misses[:5])
                raise SystemExit(
                    f"record: {root_set.name}: {label} on the recording: "
                    + (sample.error if not sample.ok else f"asked for unrecorded {missing}")
                )
            pins = check_pins(tool.parse(answer), reference)
            log(f"{root_set.name}: {label} on the recording alone: {pins}")
            if label.startswith("uv") and "differ" in pins:
                raise SystemExit(f"record: {root_set.name}: {label} differs from the reference")


def record(
    sets: Iterable[RootSet],
    recording: Recording,
    *,
    with_pip_compile: bool = False,
    timeout: float = TIMEOUT,
    say: Callable[[str], None] = log,
) -> None:
    """Record the sets into the recording (which grows) and check the result."""
    started = time.monotonic()
    upstream = Upstream(PYPI_SIMPLE)
    for root_set in sets:
        reference = reference_pins(root_set, recording.snapshot, timeout)
        with IndexServer(recording, upstream, pep658=root_set.pep658) as server:
            labels, session = record_set(root_set, recording, server, with_pip_compile, timeout)
        with IndexServer(recording, pep658=root_set.pep658) as server:
            verify_set(root_set, recording, server, labels, reference, timeout)
        before = recording.sets.get(root_set.name, {})
        sessions = list(before.get("sessions", []))
        if session["added"]:
            sessions.append(session)
        recording.sets[root_set.name] = {
            "requirements": root_set.requirements.name,
            "roots": root_set.roots(),
            "reference": reference,
            "recorded_with": sorted({*before.get("recorded_with", []), *labels}),
            "sessions": sessions,
        }
        recording.save()
    sizes = recording.sizes()
    say(
        f"recording {recording.root}: {len(recording.pages)} pages, {len(recording.metadata)}"
        f" metadata files, {len(recording.files)} whole files, parts of"
        f" {len(recording.parts)} wheels; on disk (compressed):"
        + ", ".join(f" {kind} {size / 1e6:.1f} MB" for kind, size in sizes.items())
        + f"; {upstream.requests} requests, {upstream.bytes / 1e6:.1f} MB from PyPI"
        f" in {time.monotonic() - started:.0f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        choices=sorted(SETS),
        help=f"root set to record (repeatable; default: {', '.join(DEFAULT_SETS)})",
    )
    parser.add_argument("--with-pip-compile", action="store_true", help="also record pip-compile")
    parser.add_argument("--snapshot", help="RFC 3339 UTC time (default: the committed manifest's)")
    parser.add_argument("--recording", type=Path, help="recording directory")
    parser.add_argument(
        "--write-manifest",
        action="store_true",
        help=f"copy the recording's manifest to {COMMITTED_MANIFEST.name} (a new snapshot)",
    )
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per tool run")
    args = parser.parse_args(argv)
    committed = load_committed() if COMMITTED_MANIFEST.is_file() else None
    snapshot = args.snapshot or (committed or {}).get("snapshot")
    if not snapshot:
        parser.error("--snapshot is needed: there is no committed manifest")
    recording = Recording(args.recording or recording_dir(snapshot), snapshot)
    sets = [SETS[name] for name in args.sets or DEFAULT_SETS]
    record(sets, recording, with_pip_compile=args.with_pip_compile, timeout=args.timeout)
    if args.write_manifest:
        recording.save()
        COMMITTED_MANIFEST.write_text((recording.root / "manifest.json").read_text())
        log(f"wrote {COMMITTED_MANIFEST}")
    elif committed is not None:
        for line in compare(recording.manifest(), committed):
            log(f"against {COMMITTED_MANIFEST.name}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
