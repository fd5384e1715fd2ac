"""The bump's pull request body: release notes links, advisories, the dependents graph, escaping.

The index's JSON API is the loopback emulation; everything it says is treated as hostile.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from machci.commands.bump_body import MAX_NODES, escape, link, markdown_body, title
from machci.commands.bump_notes import normalise_label, notes_link, project_page
from machci.commands.bump_report import Advisory, BumpResult, Change, Details, ReleaseNotes
from tests.fixtures.index import Index
from tests.helpers import machci

CONFIG = """\
requirements: [requirements.txt]
systems: [x86_64-linux]
data:
  index: {url}
  snapshot: "2025-01-01T00:00:00Z"
providers: {{_default: 'wheel,sdist'}}
"""
TO = ("--to", "2025-07-01T00:00:00Z")


@pytest.fixture
def project(index: Index, tmp_path: Path) -> Path:
    index.publish("app", "1.0", requires_dist=("lib",), upload_time="2024-06-01T00:00:00Z")
    index.publish("lib", "1.0", upload_time="2024-06-01T00:00:00Z")
    index.publish("lib", "2.0", upload_time="2025-06-01T00:00:00Z")
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("app\n")
    (project / "machci.yaml").write_text(CONFIG.format(url=index.url))
    assert machci(project, "sync").code == 1
    return project


def vulnerability(ident: str, **extra: object) -> dict[str, object]:
    return {"id": ident, "aliases": [], "summary": f"{ident} summary", "details": "",
            "fixed_in": [], "link": f"https://osv.dev/vulnerability/{ident}",
            "withdrawn": None, **extra}  # fmt: skip


def test_vulnerabilities_fixed_and_introduced(index: Index, project: Path) -> None:
    index.set_release_info("lib", "1.0", vulnerabilities=[vulnerability("PYSEC-1"),
                           vulnerability("GHSA-both")])  # fmt: skip
    index.set_release_info("lib", "2.0", vulnerabilities=[vulnerability("GHSA-new"),
                           vulnerability("GHSA-both")])  # fmt: skip
    result = machci(project, "bump", "--dry-run", "--format", "markdown", *TO)
    assert result.code == 0, result.err
    fixed, introduced = result.out.split("### Vulnerabilities introduced")
    assert "[PYSEC-1](<https://osv.dev/vulnerability/PYSEC-1>)" in fixed
    assert "GHSA-new" in introduced and "GHSA-new" not in fixed
    assert "GHSA-both" not in result.out
    assert "| lib | x86_64-linux | 1.0 → 2.0 | upgraded |" in result.out
    assert 'n_app["app"] --> n_lib["lib"]' in result.out
    again = machci(project, "bump", "--dry-run", "--format", "markdown", *TO)
    assert again.out == result.out  # deterministic


def test_release_notes_link_is_picked_by_label(index: Index, project: Path) -> None:
    index.set_release_info(
        "lib",
        "2.0",
        project_urls={
            "Homepage": "https://example.org/",
            "Release Notes": "https://example.org/notes",
            "What's new": "javascript:alert(1)",
        },
    )
    result = machci(project, "bump", "--dry-run", "--format", "markdown", *TO)
    assert "- [lib 2.0](<https://example.org/notes>)" in result.out


def test_release_notes_link_comes_from_the_core_metadata(index: Index, project: Path) -> None:
    index.publish(
        "lib",
        "2.1",
        upload_time="2025-06-02T00:00:00Z",
        project_urls=(("Source", "https://example.org/src"), ("Changelog", "https://ex.org/c")),
    )
    index.set_release_info("lib", "2.1", project_urls={"Changelog": "https://api.example/c"})
    for flags in ((), ("--no-advisories",)):  # the metadata's link needs no JSON API
        result = machci(project, "bump", "--dry-run", "--format", "markdown", *flags, *TO)
        assert result.code == 0, result.err
        assert "- [lib 2.1](<https://ex.org/c>)" in result.out
        assert "api.example" not in result.out


def test_without_a_label_the_index_page_is_linked() -> None:
    assert notes_link({"Homepage": "https://example.org/"}) is None
    assert notes_link({"CHANGE-LOG": "https://x.org/c", "News": "https://x.org/n"}) == (
        "https://x.org/c"
    )
    assert normalise_label("What's New") == "whatsnew"
    assert notes_link((("Changes", "https://x.org/c"), ("Home", "https://x.org/"))) == (
        "https://x.org/c"
    )
    assert project_page("https://pypi.org/simple", "lib", "2.0") == (
        "https://pypi.org/project/lib/2.0/"
    )
    assert project_page("https://u:p@mirror.example/simple/", "lib", "2.0") == (
        "https://mirror.example/simple/lib/"
    )


def test_api_down_is_one_line_and_the_bump_succeeds(index: Index, project: Path) -> None:
    index.fault("/json", status=503)
    result = machci(project, "bump", "--format", "markdown", *TO)
    assert result.code == 0, result.err
    assert result.out.count("Known vulnerabilities: the index's JSON API could not be read") == 1
    assert machci(project, "check").code == 0


def test_no_advisories_makes_no_api_request(index: Index, project: Path) -> None:
    before = len(index.requests)
    result = machci(project, "bump", "--dry-run", "--format", "markdown", "--no-advisories", *TO)
    assert result.code == 0, result.err
    assert not any(path.startswith("/pypi/") for _, path in index.requests[before:])
    assert "\nKnown vulnerabilities: not asked for \\(--no-advisories\\).\n" in result.out


def test_text_format_is_the_table() -> None:
    result = BumpResult([Change("a", "1", "2", ("x86_64-linux",))], "old", "new", written=False)
    assert result.report().startswith("Data revision: old → new\n\n| package |")


HOSTILE = "<img src=x onerror=alert(1)> [click](javascript:x) | `code` \n# heading"


def test_hostile_strings_are_escaped() -> None:
    advisory = Advisory(HOSTILE, HOSTILE, "javascript:alert(1)")
    details = Details(
        index=HOSTILE,
        notes={"lib": ReleaseNotes("javascript:alert(1)", (advisory,), ())},
        edges=(('x"];click x "javascript:alert(1)', "lib"),),
    )
    result = BumpResult(
        [Change("lib", "1.0", HOSTILE, ("x86_64-linux",))], HOSTILE, "new", False, details
    )
    body = markdown_body(result)
    assert not re.search(r"(?<!\\)[<`]", body.split("```mermaid")[0].replace("<http", ""))
    assert not re.search(r"(?<!\\)\]\(javascript", body) and "\n# heading" not in body
    assert "javascript:alert(1)" not in body.replace("javascript:alert\\(1\\)", "")
    assert '"];click' not in body
    assert title("t", result) == "[security] t"
    assert link("x", "http://ok.example/a)b") == "[x](<http://ok.example/a%29b>)"
    assert escape("a|b @team #1") == "a\\|b \\@team \\#1"


def test_the_graph_is_bounded() -> None:
    changes = [Change(f"p{i:03}", "1", "2", ("x86_64-linux",)) for i in range(MAX_NODES + 10)]
    body = markdown_body(BumpResult(changes, "a", "b", False, Details()))
    graph = body.split("```mermaid")[1].split("```")[0]
    assert graph.count(":::changed") == MAX_NODES
    assert f"The graph shows {MAX_NODES} of {MAX_NODES + 10} packages." in body
