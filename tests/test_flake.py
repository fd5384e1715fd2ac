"""`flake: true`: flake.nix beside default.nix, kept in sync by `machci sync` and checked by
`machci check`; its outputs evaluated with real Nix against the stand-in nixpkgs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from machci.config.load import load_config
from machci.errors import InputError
from machci.nix.settings import settings_digest
from tests.fixtures.index import Index
from tests.test_sync import machci, make_project, quick_check

FLAKE_HEADER = "# machci-flake: flake.nix\n"


@pytest.fixture
def project(index: Index, tmp_path: Path) -> Path:
    index.publish("app", "1.0", requires_dist=("dep",))
    index.publish("dep", "1.0")
    path = make_project(tmp_path / "project", index)
    config = path / "machci.yaml"
    config.write_text(config.read_text() + "flake: true\n")
    return path


def test_sync_writes_the_flake_and_check_follows_it(index: Index, project: Path) -> None:
    first = machci(project, "sync")
    assert first.code == 1, first.err
    assert "created" in first.err and "default.nix" in first.err and "flake.nix" in first.err
    default_nix = (project / "default.nix").read_text()
    flake = (project / "flake.nix").read_text()
    assert FLAKE_HEADER in default_nix.split("\n{", 1)[0]
    head = flake.split("\n{", 1)[0]
    assert "# machci-output: flake.nix\n" in head
    assert "# machci-input: sha256:" in head and head.count("# machci-input:") == 1
    assert head.rstrip().splitlines()[-2].endswith(" default.nix")
    assert 'inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";' in flake
    before = len(index.requests)
    assert machci(project, "sync").code == 0
    assert len(index.requests) == before
    assert quick_check(project) == (0, [], "")
    assert machci(project, "check").code == 0


def test_a_hand_edited_or_missing_flake_is_found_without_yaml(project: Path) -> None:
    assert machci(project, "sync").code == 1
    flake = project / "flake.nix"
    original = flake.read_text()
    flake.write_text(original.replace("nixos-unstable", "nixos-25.11"))
    code, loaded, err = quick_check(project)
    assert (code, loaded) == (1, [])
    assert "flake.nix was edited by hand" in err
    assert machci(project, "sync").code == 1
    assert flake.read_text() == original
    flake.unlink()
    code, loaded, err = quick_check(project)
    assert (code, loaded) == (1, [])
    assert "flake.nix does not exist yet" in err
    assert machci(project, "check", "--python", "3.12").code == 1  # the full path says so too
    assert machci(project, "sync").code == 1
    assert flake.read_text() == original


def test_the_flake_is_stale_when_the_file_it_imports_changed(project: Path) -> None:
    assert machci(project, "sync").code == 1
    (project / "requirements.txt").write_text("app\ndep\n")
    code, _loaded, err = quick_check(project)
    assert code == 1
    assert "requirements.txt changed since default.nix was generated" in err
    assert machci(project, "sync").code == 1
    assert quick_check(project)[0] == 0
    generated = project / "default.nix"
    generated.write_text(generated.read_text() + "\n")
    code, _loaded, err = quick_check(project)
    assert code == 1
    assert "default.nix was edited by hand" in err
    assert "default.nix changed since flake.nix was generated" in err


def test_a_foreign_flake_is_not_overwritten_without_force(project: Path) -> None:
    (project / "flake.nix").write_text("{ outputs = _: { }; }\n")
    refused = machci(project, "sync")
    assert refused.code == 2
    assert "flake.nix has no machci header" in refused.err
    assert not (project / "default.nix").exists()
    assert machci(project, "sync", "--force").code == 1
    assert "# machci-output: flake.nix" in (project / "flake.nix").read_text()


def test_turning_the_flake_off_removes_machcis_flake_only(project: Path) -> None:
    assert machci(project, "sync").code == 1
    config = project / "machci.yaml"
    config.write_text(config.read_text().replace("flake: true\n", "flake: false\n"))
    assert machci(project, "check").code == 1  # the settings changed
    result = machci(project, "sync")
    assert result.code == 1 and "removed" in result.err
    assert not (project / "flake.nix").exists()
    assert FLAKE_HEADER not in (project / "default.nix").read_text()
    assert machci(project, "check").code == 0
    (project / "flake.nix").write_text("{ outputs = _: { }; }\n")  # the user's own
    config.write_text(config.read_text().replace("flake: false\n", ""))
    result = machci(project, "sync")  # machci.yaml's bytes changed, its settings did not
    assert (result.code, result.err) == (1, "machci: updated default.nix\n")
    assert (project / "flake.nix").read_text() == "{ outputs = _: { }; }\n"


def test_the_flake_is_byte_identical_for_the_same_inputs(index: Index, tmp_path: Path) -> None:
    index.publish("app", "1.0")
    texts = []
    for name in ("one", "two"):
        path = make_project(tmp_path / name, index)
        config = path / "machci.yaml"
        config.write_text(
            config.read_text() + "flake: {nixpkgs: 'github:NixOS/nixpkgs/nixos-25.11'}\n"
        )
        assert machci(path, "sync").code == 1
        texts.append((path / "flake.nix").read_bytes())
    assert texts[0] == texts[1]
    assert b'"github:NixOS/nixpkgs/nixos-25.11"' in texts[0]
    assert str(tmp_path).encode() not in texts[0]


# --- configuration -------------------------------------------------------------------------------


def _load(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "machci.yaml"
    path.write_text("requirements: [requirements.txt]\n" + text)
    return path


def test_flake_settings_and_their_digest(tmp_path: Path) -> None:
    off = load_config(_load(tmp_path, ""))
    assert off.flake is None and off.written == (tmp_path / "default.nix",)
    plain = load_config(_load(tmp_path, "flake: true\n"))
    assert plain.flake is not None
    assert plain.flake.nixpkgs == "github:NixOS/nixpkgs/nixos-unstable"
    assert plain.written == (tmp_path / "default.nix", tmp_path / "flake.nix")
    pinned = load_config(_load(tmp_path, "flake: {nixpkgs: 'github:NixOS/nixpkgs/nixos-25.11'}\n"))
    assert pinned.flake is not None and pinned.flake.nixpkgs.endswith("nixos-25.11")
    digests = {settings_digest(c, tmp_path / "default.nix") for c in (off, plain, pinned)}
    assert len(digests) == 3
    assert load_config(_load(tmp_path, "flake: false\n")) == off.with_changes(
        path=tmp_path / "machci.yaml"
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("flake: yes please\n", "flake: expected true, false or a mapping"),
        ("flake: {nixpkgs: ''}\n", "flake: nixpkgs: '' is not a flake reference"),
        ("flake: {nixpkgs: 'github:a b'}\n", "is not a flake reference"),
        ("flake: {nixpkgs: 3}\n", "flake: nixpkgs: expected a string"),
        ("flake: {nixpks: x}\n", "unknown key flake: 'nixpks'; did you mean 'nixpkgs'?"),
        ("flake: {app: tool}\n", "flake: app: only the project's own scripts"),
        ("project: .\nflake: {app: ../tool}\n", "flake: app: '../tool' is not the name"),
        ("output: flake.nix\nflake: true\n", "flake: the output is named flake.nix itself"),
    ],
)
def test_bad_flake_settings_name_their_line(tmp_path: Path, text: str, message: str) -> None:
    path = _load(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_config(path)
    assert message in str(info.value)
    line = next(n for n, t in enumerate(path.read_text().splitlines(), 1) if t.startswith("flake"))
    assert str(info.value).startswith(f"{path}:{line}:")


def test_the_digest_of_a_file_written_without_a_flake_is_unchanged(tmp_path: Path) -> None:
    """Files written before the key existed stay in sync: it enters the digest only when on."""
    config = load_config(_load(tmp_path, "flake: false\n"))
    assert json.dumps(settings_digest(config, tmp_path / "default.nix")) == json.dumps(
        settings_digest(load_config(_load(tmp_path, "")), tmp_path / "default.nix")
    )


def test_bump_rewrites_the_flake_with_the_file(index: Index, project: Path) -> None:
    assert machci(project, "sync").code == 1
    index.publish("dep", "2.0", upload_time="2025-06-01T00:00:00Z")
    result = machci(project, "bump", "--to", "2025-07-01T00:00:00Z")
    assert result.code == 0, result.err
    assert result.err.endswith("machci.yaml, default.nix and flake.nix\n")
    assert "# machci-data: pypi" in (project / "flake.nix").read_text()
    assert "2025-07-01T00:00:00Z" in (project / "flake.nix").read_text().split("\n{", 1)[0]
    assert quick_check(project) == (0, [], "")
