"""Opt-in checks against the real PyPI (MACHCI_LIVE=1): the bundled example stays reproducible."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

from tests.helpers import run

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "basic"


@pytest.mark.live
def test_example_regenerates_byte_for_byte(tmp_path: Path) -> None:
    project = tmp_path / "basic"
    shutil.copytree(EXAMPLE, project)
    (project / "default.nix").unlink()
    with contextlib.chdir(project):
        result = run("sync", "--cache-dir", str(tmp_path / "cache"))
    assert result.code == 1, result.err
    assert (project / "default.nix").read_bytes() == (EXAMPLE / "default.nix").read_bytes()
