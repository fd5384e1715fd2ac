"""Running the machci CLI in-process against the test index."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from machci.cli import main
from tests.fixtures.index import Index

SNAPSHOT = "2025-01-01T00:00:00Z"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def lock(self) -> dict[str, Any]:
        assert self.code == 0, self.err
        data: dict[str, Any] = json.loads(self.out)
        return data

    def packages(self, system: str = "x86_64-linux") -> dict[str, Any]:
        packages: dict[str, Any] = self.lock["systems"][system]["packages"]
        return packages

    def versions(self, system: str = "x86_64-linux") -> dict[str, str]:
        return {name: p["version"] for name, p in self.packages(system).items()}


def run(*argv: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return Run(code, out.getvalue(), err.getvalue())


def machci(project: Path, *args: str, cache: str = ".cache") -> Run:
    """machci run inside `project`, its cache kept there (`--cache-dir`)."""
    with contextlib.chdir(project):
        return run(*args, "--cache-dir", cache)


def lock(
    index: Index,
    project: Path,
    requirements: str,
    *args: str,
    systems: tuple[str, ...] = ("x86_64-linux",),
    snapshot: str | None = SNAPSHOT,
) -> Run:
    """`machci lock --json` run inside `project` for a requirements text (cache in .cache)."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "requirements.txt").write_text(requirements)
    argv = ["lock", "--json", "-r", "requirements.txt", "--index-url", index.url]
    argv += ["--cache-dir", ".cache"]
    if snapshot:
        argv += ["--snapshot", snapshot]
    for system in systems:
        argv += ["--system", system]
    with contextlib.chdir(project):
        return run(*argv, *args)


def write_project(
    project: Path,
    index: Index,
    requirements: str,
    systems: tuple[str, ...] = ("x86_64-linux",),
    extra: str = "",
) -> Path:
    """A project: requirements.txt, and a machci.yaml that reads it, locks for `systems` from
    the test index at SNAPSHOT, and adds `extra` (YAML lines)."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "requirements.txt").write_text(requirements)
    (project / "machci.yaml").write_text(
        "requirements: [requirements.txt]\n"
        f"systems: [{', '.join(systems)}]\n"
        f"data: {{index: {index.url}, snapshot: '{SNAPSHOT}'}}\n" + extra
    )
    return project


def benchmark_module(name: str) -> ModuleType:
    """benchmarks/NAME.py, which the benchmark runs as a script beside its siblings."""
    benchmarks = Path(__file__).resolve().parents[1] / "benchmarks"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", benchmarks / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
