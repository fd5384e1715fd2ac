"""The workflow `machci init` writes: how its jobs hand each other systems, images and caches.

The template is read as data: which job runs when, which of the action's outputs feed the build
matrix and the macOS job, and that the manifest names the images the build jobs pushed (the
action derives both from the same image name, action/images.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from machci import release

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "action" / "templates" / "machci.yml"


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return data


WORKFLOW = load(TEMPLATE)
JOBS: dict[str, dict[str, Any]] = WORKFLOW["jobs"]
ACTION = load(ROOT / "action.yml")


def machci_step(job: str) -> dict[str, Any]:
    """The job's one step that uses machci's action."""
    steps = [s for s in JOBS[job]["steps"] if s.get("uses", "").startswith("machci/action@")]
    assert len(steps) == 1, job
    step: dict[str, Any] = steps[0]
    assert step["uses"] == release.action_reference()
    return step


def test_the_jobs() -> None:
    assert list(JOBS) == ["check", "build", "macos", "manifest", "bump"]
    assert {job: machci_step(job)["with"]["command"] for job in JOBS} == {
        "check": "check",
        "build": "build",
        "macos": "build",
        "manifest": "manifest",
        "bump": "bump",
    }


def test_check_runs_on_pushes_to_main_and_pull_requests() -> None:
    triggers = WORKFLOW["on"]  # a string in YAML 1.2, as ruamel.yaml reads it
    assert triggers["push"] == {"branches": ["main"]}
    assert "pull_request" in triggers
    check = JOBS["check"]["if"]
    assert check == "github.event_name == 'push' || github.event_name == 'pull_request'"
    assert JOBS["bump"]["if"] == (
        "github.event_name == 'schedule' || github.event_name == 'workflow_dispatch'"
    )


def test_the_check_job_hands_on_machci_yamls_systems() -> None:
    step = machci_step("check")
    outputs = JOBS["check"]["outputs"]
    for name in ("systems", "image-systems"):
        assert name in ACTION["outputs"]
        assert outputs[name] == f"${{{{ steps.{step['id']}.outputs.{name} }}}}"
    build = JOBS["build"]
    assert build["needs"] == "check"
    assert build["strategy"]["matrix"] == {
        "system": "${{ fromJSON(needs.check.outputs.image-systems) }}"
    }
    assert build["if"] == "contains(needs.check.outputs.image-systems, 'linux')"
    assert machci_step("build")["with"]["systems"] == "${{ matrix.system }}"
    macos = JOBS["macos"]
    assert macos["needs"] == "check"
    assert macos["if"] == "contains(needs.check.outputs.systems, '\"aarch64-darwin\"')"
    assert macos["runs-on"].startswith("macos-")
    assert machci_step("macos")["with"]["systems"] == "aarch64-darwin"
    assert "image-name" not in machci_step("macos")["with"]  # macOS builds no image


def test_each_image_is_built_on_its_architecture() -> None:
    runs_on = JOBS["build"]["runs-on"]
    assert runs_on == (
        "${{ matrix.system == 'aarch64-linux' && 'ubuntu-24.04-arm' || 'ubuntu-24.04' }}"
    )


def test_the_manifest_joins_what_the_builds_pushed() -> None:
    build, manifest = machci_step("build"), machci_step("manifest")
    # The same name for both, lowercased by the action; the tag is machci.yaml's for both.
    assert build["with"]["image-name"] == "ghcr.io/${{ github.repository }}"
    assert manifest["with"]["image-name"] == build["with"]["image-name"]
    assert "systems" not in manifest["with"]  # machci.yaml's Linux systems, as the matrix
    assert build["with"]["push"] == "${{ github.event_name == 'push' }}"
    assert JOBS["manifest"]["needs"] == "build"
    assert JOBS["manifest"]["if"] == "github.event_name == 'push'"
    for job in ("build", "manifest"):
        assert JOBS[job]["permissions"] == {"contents": "read", "packages": "write"}


def test_the_binary_cache_is_configured_once_for_every_build() -> None:
    cache = {
        "cachix": "${{ vars.MACHCI_CACHIX }}",
        "attic": "${{ vars.MACHCI_ATTIC }}",
        "cache-token": "${{ secrets.MACHCI_CACHE_TOKEN }}",
    }
    for job in ("build", "macos"):
        given = machci_step(job)["with"]
        assert {key: given[key] for key in cache} == cache
    for job in ("check", "manifest", "bump"):
        assert not set(cache) & set(machci_step(job)["with"])


def test_checkouts_keep_no_credentials() -> None:
    for name, job in JOBS.items():
        checkouts = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
        assert len(checkouts) == 1, name
        assert checkouts[0]["with"]["persist-credentials"] is False
