"""The Action's images: what `build` pushes, what `manifest` joins, what `check` tells the matrix.

nix-build and docker are stand-ins on PATH that record their arguments (nix-build makes its `-o`
link), so these run without Nix or a registry.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from action.__main__ import main as action_main
from action.images import image_systems, manifest_command, reference
from tests.fixtures.repos import ActionRun, Workspace, parse_outputs

FAKE_NIX_BUILD = """#!/bin/sh
echo "nix-build $*" >> "{log}"
while [ $# -gt 0 ]; do
  if [ "$1" = -o ]; then ln -sfn "{store}/$(basename "$2")" "$2"; fi
  shift
done
"""
FAKE_DOCKER = '#!/bin/sh\necho "docker $*" >> "{log}"\n'


@dataclass
class Tools:
    log: Path

    def calls(self, tool: str) -> list[str]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [line.removeprefix(f"{tool} ") for line in lines if line.startswith(f"{tool} ")]


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tools:
    directory = tmp_path / "bin"
    directory.mkdir()
    store = tmp_path / "store"
    store.mkdir()
    log = tmp_path / "tools.log"
    for name, script in (("nix-build", FAKE_NIX_BUILD), ("docker", FAKE_DOCKER)):
        path = directory / name
        path.write_text(script.format(log=log, store=store))
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}:{Path('/usr/bin')}:{Path('/bin')}")
    return Tools(log)


def step(
    workspace: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    **inputs: str,
) -> ActionRun:
    """One run of the action's machci step, in-process, with inputs as action.yml passes them."""
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.write_text("")
    summary.write_text("")
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(workspace.path))
    monkeypatch.setenv("MACHCI_COMMAND", command)
    for name in ("SYSTEMS", "IMAGE_NAME", "PUSH", "LOAD"):
        monkeypatch.delenv(f"MACHCI_{name}", raising=False)
    for name, value in inputs.items():
        monkeypatch.setenv(f"MACHCI_{name.upper()}", value)
    stdout = io.StringIO()
    with contextlib.chdir(workspace.path), contextlib.redirect_stdout(stdout):
        code = action_main([])
    return ActionRun(
        code, stdout.getvalue(), parse_outputs(output.read_text()), summary.read_text()
    )


def set_systems(workspace: Workspace, systems: str, image: str = "") -> None:
    config = workspace.path / "machci.yaml"
    text = config.read_text().replace("systems: [x86_64-linux]", f"systems: [{systems}]")
    config.write_text(text + image)


def test_references_follow_the_image_name_and_tag() -> None:
    assert reference("ghcr.io/acme/app", "1.0", "aarch64-linux") == "ghcr.io/acme/app:1.0-arm64"
    assert image_systems(["aarch64-darwin", "aarch64-linux", "x86_64-linux"]) == (
        "aarch64-linux",
        "x86_64-linux",
    )
    assert manifest_command("app", "1.0", ["x86_64-linux", "aarch64-linux"]) == [
        "docker",
        "buildx",
        "imagetools",
        "create",
        "--tag",
        "app:1.0",
        "app:1.0-amd64",
        "app:1.0-arm64",
    ]


def test_check_tells_the_workflow_the_systems(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_systems(workspace, "x86_64-linux, aarch64-darwin")
    result = step(workspace, tmp_path, monkeypatch, "check")
    assert result.code == 1  # machci.yaml changed since the sync: the outputs are there anyway
    assert json.loads(result.outputs["systems"]) == ["x86_64-linux", "aarch64-darwin"]
    assert json.loads(result.outputs["image-systems"]) == ["x86_64-linux"]


def test_the_manifest_joins_what_the_builds_pushed(
    workspace: Workspace, tools: Tools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_systems(workspace, "x86_64-linux, aarch64-linux", "image:\n  name: app\n  tag: '2.1'\n")
    name = "ghcr.io/acme/app"  # the image-name input, as the workflow template sets it
    pushed = []
    for system in ("x86_64-linux", "aarch64-linux"):  # one build job per system
        built = step(
            workspace, tmp_path, monkeypatch, "build", systems=system, image_name=name, push="true"
        )
        assert built.code == 0, built.stdout
        pushed.append(built.outputs["image"])
    assert pushed == [f"{name}:2.1-amd64", f"{name}:2.1-arm64"]
    docker = tools.calls("docker")
    assert [call for call in docker if call.startswith("push ")] == [f"push {p}" for p in pushed]
    joined = step(workspace, tmp_path, monkeypatch, "manifest", image_name=name)
    assert joined.code == 0, joined.stdout
    assert joined.outputs["image"] == f"{name}:2.1"
    assert tools.calls("docker")[len(docker) :] == [
        f"buildx imagetools create --tag {name}:2.1 {' '.join(pushed)}"
    ]
    assert f"`{name}:2.1-arm64`" in joined.summary


def test_the_manifest_takes_the_systems_input(
    workspace: Workspace, tools: Tools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    joined = step(workspace, tmp_path, monkeypatch, "manifest", systems="aarch64-linux")
    assert joined.code == 0, joined.stdout
    assert tools.calls("docker") == [
        "buildx imagetools create --tag machci-env:latest machci-env:latest-arm64"
    ]


def test_no_manifest_without_a_linux_system(
    workspace: Workspace, tools: Tools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_systems(workspace, "aarch64-darwin")
    result = step(workspace, tmp_path, monkeypatch, "manifest")
    assert result.code == 2
    assert "::error::no image to join" in result.stdout
    assert tools.calls("docker") == []


def test_macos_builds_the_environment_without_an_image(
    workspace: Workspace, tools: Tools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_systems(workspace, "x86_64-linux, aarch64-darwin")
    result = step(workspace, tmp_path, monkeypatch, "build", systems="aarch64-darwin")
    assert result.code == 0, result.stdout
    link = workspace.path / "result-env-aarch64-darwin"
    assert tools.calls("nix-build") == [
        "default.nix -A env --argstr system aarch64-darwin --arg pkgs"
        f' import <nixpkgs> {{ system = "aarch64-darwin"; }} -o {link}'
    ]
    assert tools.calls("docker") == []
    assert result.outputs["image"] == ""
    assert "environment for aarch64-darwin" in result.summary


def test_build_refuses_an_unknown_system(
    workspace: Workspace, tools: Tools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = step(workspace, tmp_path, monkeypatch, "build", systems="riscv64-linux")
    assert result.code == 2
    assert "not riscv64-linux" in result.stdout
    assert tools.calls("nix-build") == []
