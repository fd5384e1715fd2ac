"""benchmarks/growth.py generates the same graph every time, and reports in its format."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import benchmark_module


def growth() -> ModuleType:
    return benchmark_module("growth")


def test_the_graph_is_seeded_and_roots_every_package() -> None:
    g = growth()
    one, two = g.generate(60), g.generate(60)
    assert one == two
    assert one != g.generate(60, seed=1)
    assert len(one.projects) == 60
    assert len(one.roots) == 9  # 15 %
    names = {p.name for p in one.projects}
    for project in one.projects:
        assert 3 <= sum(r.visible for r in project.releases) <= 6
        assert all("py3-none-any" in r.tags for r in project.releases)
    # every package but the roots has an unconditional parent in every release
    reached = {p.name for p in one.projects[:9]}
    for project in one.projects:
        for release in project.releases:
            for line in release.requires_dist:
                if ";" not in line:
                    name = re.split(r"[\[<>=!~;]", line, maxsplit=1)[0]
                    reached.add(name.lower().replace("_", "-"))
    assert reached == names


def test_a_tiny_run_locks_every_package_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "growth.json"
    code = growth().main(["--sizes", "20,30", "--runs", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    rows = [line for line in printed.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [row.split("|")[1].strip() for row in rows] == ["20", "30"]
    assert "| 30 (= all) |" in rows[1]
    cells = rows[1].split("|")[1:-1]
    assert len(cells) == 11
    assert re.fullmatch(r"-?\d+\.\d\d", cells[8].strip())  # k cold
    doc = json.loads(out.read_text())
    assert doc["ok"] is True
    assert [f["size"] for f in doc["figures"]] == [20, 30]
    assert doc["figures"][1]["pins"] == [30]
    assert doc["figures"][0]["k_warm_s"] is None
