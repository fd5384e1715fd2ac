"""Nothing from a name becomes code: hostile index data, settings and names reach Nix only as
data, which evaluating the generated file returns unchanged."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, run
from tests.nixtools import nix, require, stand_in, sync_project

require("nix-instantiate", "nix-bin")

# Interpolation, quotes, a backslash and an escaped interpolation, with no space (not in a URL).
HOSTILE = '${builtins.abort"pwned"}"\\\'\\${x}${'


def evaluate(expression: str) -> object:
    result = nix("nix-instantiate", "--eval", "--strict", "--json", "-E", expression)
    return json.loads(result.stdout)


def test_a_hostile_file_url_from_the_index_is_data(index: Index, tmp_path: Path) -> None:
    index.publish("alpha", "1.0", serve_metadata=False)
    filename = "alpha-1.0-py3-none-any.whl"
    url = f"{index.files_url}/{filename}?q={HOSTILE}"
    page = {
        "meta": {"api-version": "1.1"},
        "name": "alpha",
        "files": [
            {
                "filename": filename,
                "url": url,
                "hashes": {"sha256": index.sha256(filename)},
                "upload-time": "2024-01-01T00:00:00Z",
            }
        ],
    }
    index.fault("/simple/alpha/", body=json.dumps(page).encode())
    default_nix = sync_project(index, tmp_path / "project", "alpha\n")
    got = evaluate(f"(import {default_nix} {{ pkgs = {stand_in()}; }}).packages.alpha.src.url")
    assert got == url


def test_hostile_image_settings_are_data(index: Index, tmp_path: Path) -> None:
    index.publish("alpha", "1.0")
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("alpha\n")
    # Name and tag follow the OCI reference grammar (quotes or `${` there are refused when
    # machci.yaml is read, see test_malformed_inputs.py); the command is free text.
    name, tag, cmd = "localhost:5000/team/my_app", "v1.0_x-Y", ["python", f"-c\t{HOSTILE}"]
    (project / "machci.yaml").write_text(
        "requirements: [requirements.txt]\nsystems: [x86_64-linux]\n"
        f"data: {{index: {index.url}, snapshot: '{SNAPSHOT}'}}\n"
        f"image: {{name: {json.dumps(name)}, tag: {json.dumps(tag)}, cmd: {json.dumps(cmd)}}}\n"
    )
    with contextlib.chdir(project):
        assert run("sync", "--cache-dir", ".cache").code == 1
    # A stand-in whose buildLayeredImage returns its arguments, so they can be read back.
    pkgs = (
        "{ dockerTools.buildLayeredImage = args: args; stdenv.hostPlatform.system ="
        ' "x86_64-linux"; python312 = { pythonVersion = "3.12"; }; }'
    )
    image = f"(import {project / 'default.nix'} {{ pkgs = {pkgs}; }}).image"
    got = evaluate(f"let i = {image}; in [ i.name i.tag i.config.Cmd ]")
    assert got == [name, tag, cmd]
