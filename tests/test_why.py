"""`machci why` answers from an in-sync default.nix, offline, exactly as resolving answers; an
out-of-sync file is not used."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, machci

NIXPKGS = {
    "django": [
        {"attr": "django", "version": "4.2.16"},
        {"attr": "django_5", "version": "5.1.4"},
    ]
}
# Found and not, asked by a name that is not canonical, reached through build requirements,
# only on one system, and from nixpkgs.
NAMES = ("leaf", "Leaf", "middle", "mac-only", "tool", "asgiref", "django", "nope")


def make_project(index: Index, path: Path) -> Path:
    index.publish("leaf", "1.0")
    index.publish("mac-only", "1.0")
    index.publish("middle", "1.0", requires_dist=("leaf", 'mac-only; sys_platform == "darwin"'))
    index.publish("tool", "1.0", kind="sdist", build_requires=("leaf",))
    index.publish("asgiref", "3.8")
    for version in ("4.2.16", "5.1.4"):
        index.publish("django", version, requires_dist=("asgiref>=3",))
    path.mkdir(parents=True)
    (path / "requirements.txt").write_text(
        'middle\n-r more.txt\ntool ; sys_platform == "linux"\nLeaf>=1  # named again\n'
    )
    (path / "more.txt").write_text("django<5\n")
    (path / "nixpkgs-python.json").write_text(json.dumps(NIXPKGS))
    (path / "machci.yaml").write_text(
        "requirements: [requirements.txt]\n"
        "systems: [x86_64-linux, aarch64-darwin]\n"
        f"data: {{index: {index.url}, snapshot: '{SNAPSHOT}'}}\n"
        "providers: {django: 'nixpkgs,wheel'}\n"
        "nixpkgs: {index: nixpkgs-python.json}\n"
    )
    return path


def test_the_synced_file_answers_offline_as_resolving_does(index: Index, tmp_path: Path) -> None:
    project = make_project(index, tmp_path / "project")
    resolved = {name: machci(project, "why", name) for name in NAMES}  # no default.nix yet
    assert 'requirements.txt:3 (tool; sys_platform == "linux") -> tool (build) -> leaf' in (
        resolved["leaf"].out
    )
    assert "more.txt:1 (django<5) -> django -> asgiref" in resolved["asgiref"].out
    assert "not needed on: x86_64-linux" in resolved["mac-only"].out
    assert "comes from nixpkgs' attribute django; nixpkgs also offers" in resolved["django"].out
    assert resolved["nope"].code == 1
    assert machci(project, "sync").code == 1
    index.stop()
    requests = len(index.requests)
    for name in NAMES:
        offline = machci(project, "why", name, cache="empty")
        assert offline == resolved[name], name
    assert len(index.requests) == requests
    assert not (project / "empty").exists()


def test_an_out_of_sync_file_is_not_used(index: Index, tmp_path: Path) -> None:
    project = make_project(index, tmp_path / "project")
    assert machci(project, "sync").code == 1
    (project / "more.txt").write_text("django<5\nasgiref\n")
    stale = machci(project, "why", "asgiref")
    assert stale.code == 0
    assert "more.txt:2 (asgiref) -> asgiref" in stale.out
    assert stale.err == (
        "machci: warning: default.nix is out of sync, so this answer comes from resolving again"
        " (`machci check` says what changed)\n"
    )
    other = machci(project, "why", "asgiref", "--python", "3.13")  # no such file meant
    assert other.code == 0 and other.err == ""
