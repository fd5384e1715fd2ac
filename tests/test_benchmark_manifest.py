"""The benchmark refuses a recording that is not the one its committed manifest describes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from types import ModuleType
from typing import Any

from tests.helpers import benchmark_module


def store() -> ModuleType:
    return benchmark_module("store")


def manifest() -> dict[str, Any]:
    return {
        "snapshot": "2026-11-01T00:00:00Z",
        "pages": {"six": {"sha256": "a" * 64, "as_of_snapshot": "b" * 64}},
        "metadata": {"m": {"sha256": "c" * 64}},
        "files": {"f": {"sha256": "d" * 64}},
        "sets": {"forty": {"reference": {"six": "1.16.0"}}},
    }


def test_the_committed_manifest_matches_itself() -> None:
    committed = store().load_committed()
    assert store().mismatches(committed, committed) == []


def test_what_makes_a_recording_another_one() -> None:
    mismatches = store().mismatches
    committed = manifest()
    later = copy.deepcopy(committed)
    later["pages"]["six"]["sha256"] = "e" * 64  # uploads after the snapshot: the same files
    later["pages"]["numpy"] = {"sha256": "f" * 64, "as_of_snapshot": "0" * 64}
    assert mismatches(later, committed) == []
    changes: list[tuple[Callable[[dict[str, Any]], object], str]] = [
        (lambda m: m.update(snapshot="2026-12-01T00:00:00Z"), "snapshot 2026-12-01T00:00:00Z"),
        (lambda m: m["pages"]["six"].update(as_of_snapshot="1" * 64), "1 pages differ"),
        (lambda m: m["metadata"]["m"].update(sha256="2" * 64), "1 metadata differ"),
        (lambda m: m["files"]["f"].update(sha256="3" * 64), "1 files differ"),
        (lambda m: m["sets"].update(forty={"reference": {"six": "1.0"}}), "set forty"),
    ]
    for change, reason in changes:
        recorded = copy.deepcopy(committed)
        change(recorded)
        found = mismatches(recorded, committed)
        assert len(found) == 1 and found[0].startswith(reason), found
