"""sdist backends that fail: a failing build-requirements query falls back to the static ones, a
version whose metadata cannot be prepared is an error (or, when asked, a bounded skip), and
failures are cached so the same backend is not run again for the same answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from machci.config.load import load_config
from machci.nix.settings import settings_digest
from tests.fixtures.index import Index
from tests.fixtures.mailbox import MAIL, Mailbox
from tests.helpers import lock, machci, write_project

LINUX = ("x86_64-linux", "aarch64-linux")
NO_R = "raise RuntimeError('cannot find R: R_HOME is not set and R is not on PATH')"


def r_project(project: Path, index: Index, extra: str = "") -> Path:
    """A machci.yaml project with rPackages (so rpy2 is a root) on both Linux systems."""
    return write_project(project, index, "", LINUX, "rPackages: [data_table]\n" + extra)


def publish_rpy2(index: Index, *, static: bool = True) -> None:
    """rpy2 as on PyPI: 3.6.x a pure wheel needing rpy2-rinterface, which is an sdist only, whose
    backend needs R to answer anything; older rpy2 releases without it."""
    for name in ("setuptools", "cffi"):
        index.publish(name, "70.0" if name == "setuptools" else "1.17")
    index.publish("rpy2", "3.1.0", requires_dist=("cffi>=1.10",))
    for version in ("3.6.2", "3.6.3"):
        index.publish("rpy2", version, requires_dist=(f"rpy2-rinterface>={version}",))
        index.publish(
            "rpy2-rinterface",
            version,
            kind="sdist",
            requires_dist=("cffi>=1.15.1",),
            build_requires=("setuptools>=61", "cffi>=1.15.1"),
            pkg_info=static,  # metadata 2.2, nothing Dynamic
            backend_prelude=NO_R,
        )


def test_rpy2_resolves_to_the_newest_release_without_r(index: Index, tmp_path: Path) -> None:
    publish_rpy2(index)
    project = r_project(tmp_path / "project", index)
    result = machci(project, "lock", "--json")
    for system in LINUX:
        assert result.versions(system) == {
            "cffi": "1.17",
            "rpy2": "3.6.3",
            "rpy2-rinterface": "3.6.3",
            "setuptools": "70.0",  # a build requirement
        }
        interface = result.packages(system)["rpy2-rinterface"]
        assert interface["provider"] == "sdist"
        assert interface["build_requires"] == ["cffi", "setuptools"]  # the static ones
    assert "skipping" not in result.err
    assert result.err == (
        "machci: warning: rpy2-rinterface 3.6.3 (rpy2_rinterface-3.6.3.tar.gz): asking the"
        " build backend for its build requirements failed: RuntimeError: cannot find R: R_HOME"
        " is not set and R is not on PATH; locked with its static [build-system].requires"
        " instead (nixpkgs' build asks the backend again, with default.nix's inputs)\n"
    )


def test_a_backend_that_cannot_prepare_metadata_is_an_error_and_nothing_is_written(
    index: Index, tmp_path: Path
) -> None:
    publish_rpy2(index, static=False)
    project = r_project(tmp_path / "project", index)
    result = machci(project, "sync")
    assert result.code == 2
    assert result.err.startswith(
        "machci: error: cannot prepare the metadata of rpy2-rinterface 3.6.3"
        " (rpy2_rinterface-3.6.3.tar.gz): preparing metadata with the build backend failed:"
        " RuntimeError: cannot find R: R_HOME is not set and R is not on PATH\n"
        "  last lines of output:\n"
    )
    for way in (
        "`rpy2-rinterface!=3.6.3` in a requirements or constraints file",
        "`providers: {rpy2-rinterface: wheel}`",
        "build it with older build tools (it builds with setuptools, cffi):"
        " `buildConstraints: ['setuptools<N']` in machci.yaml, or --build-constraint FILE",
        "`metadataFailures: skip` in machci.yaml, or --skip-metadata-failures",
    ):
        assert way in result.err
    assert "3.1.0" not in result.err
    assert not (project / "default.nix").exists()


def counting_backend(*, fail: bool = True) -> str:
    """A backend prelude that mails a letter each time it runs (backends may write nothing
    outside their work directory), then fails."""
    mail = f"{MAIL}\nimport uuid as _uuid\n_mail('ran-' + _uuid.uuid4().hex, 1)\n"
    return mail + (NO_R if fail else "")


def runs(mailbox: Mailbox) -> int:
    """How many times a counting backend ran while `mailbox` was open."""
    return sum(name.startswith("ran-") for name in mailbox.letters)


def backends_of(project: Path) -> Mailbox:
    """The mailboxes of the backends `lock` runs in `project` (its cache in .cache)."""
    return Mailbox(project / ".cache" / "v2" / "tmp")


def test_a_failure_is_cached_and_the_backend_not_run_again(index: Index, tmp_path: Path) -> None:
    with backends_of(tmp_path / "p") as counter:
        _failure_is_cached(index, tmp_path, counter)


def _failure_is_cached(index: Index, tmp_path: Path, counter: Mailbox) -> None:
    index.publish("helper-build", "1.0")
    index.publish(
        "broken",
        "1.0",
        kind="sdist",
        pkg_info=False,
        build_requires=("helper-build",),
        backend_prelude=counting_backend(),
    )
    helper = ("GET", "/files/helper_build-1.0-py3-none-any.whl")
    first = lock(index, tmp_path / "p", "broken\n")
    assert first.code == 2
    assert "cannot prepare the metadata of broken 1.0 (broken-1.0.tar.gz)" in first.err
    ran = runs(counter)
    assert ran == 2  # asked for its build requirements, then for its metadata
    assert index.requests.count(helper) == 1  # pip installed what it builds with
    again = lock(index, tmp_path / "p", "broken\n")
    assert again.code == 2
    assert again.err == first.err  # the same message, the backend's output included
    assert runs(counter) == ran
    assert index.requests.count(helper) == 1  # nor pip
    # Another build environment (here: build constraints) may fare differently: asked again.
    (tmp_path / "p" / "c.txt").write_text("unrelated<1\n")
    constrained = lock(index, tmp_path / "p", "broken\n", "--build-constraint", "c.txt")
    assert constrained.code == 2, constrained.err
    assert runs(counter) == 2 * ran
    # --refresh asks again (a tool the backend lacked may have been installed since).
    assert lock(index, tmp_path / "p", "broken\n", "--refresh").code == 2
    assert runs(counter) == 3 * ran
    assert lock(index, tmp_path / "p", "broken\n").code == 2
    assert runs(counter) == 3 * ran


def test_a_cached_fallback_is_asked_again_with_refresh(index: Index, tmp_path: Path) -> None:
    index.publish("norinterface", "1.0", kind="sdist", backend_prelude=counting_backend())
    with backends_of(tmp_path / "p") as counter:
        for refresh, count in (((), 1), ((), 1), (("--refresh",), 2)):
            result = lock(index, tmp_path / "p", "norinterface\n", *refresh)
            assert result.versions() == {"norinterface": "1.0"}
            assert "asking the build backend for its build requirements failed" in result.err
            assert runs(counter) == count


def test_the_backends_output_cannot_drive_the_terminal(index: Index, tmp_path: Path) -> None:
    loud = "raise RuntimeError('\\x1b[2J\\x1b]0;owned\\x07 gone')"
    index.publish("loud", "1.0", kind="sdist", pkg_info=False, backend_prelude=loud)
    result = lock(index, tmp_path / "p", "loud\n")
    assert result.code == 2
    assert "\x1b" not in result.err and "\x07" not in result.err
    assert "RuntimeError: \\x1b[2J\\x1b]0;owned\\x07 gone" in result.err


def test_a_timed_out_query_falls_back_and_is_asked_again(index: Index, tmp_path: Path) -> None:
    """A time limit is a failure like another (the static build requirements stand in) but
    not cached: with more time, or on a faster machine, the backend may answer."""
    sleepy = counting_backend(fail=False) + "import time\ntime.sleep(60)\n"
    index.publish("sleepy", "1.0", kind="sdist", backend_prelude=sleepy)
    with backends_of(tmp_path / "p") as counter:
        for attempt in (1, 2):
            result = lock(index, tmp_path / "p", "sleepy\n", "--timeout", "3")
            assert result.versions() == {"sleepy": "1.0"}
            assert result.err == (
                "machci: warning: sleepy 1.0 (sleepy-1.0.tar.gz): asking the build backend for"
                " its build requirements timed out after 3 s (--timeout); locked with its static"
                " [build-system].requires instead (nixpkgs' build asks the backend again, with"
                " default.nix's inputs)\n"
            )
            assert runs(counter) == attempt


def publish_failing(index: Index, versions: range) -> None:
    for number in versions:
        index.publish("many", f"{number}.0", kind="sdist", pkg_info=False, backend_prelude=NO_R)


def test_skipping_is_reported_and_bounded(index: Index, tmp_path: Path) -> None:
    index.publish("many", "1.0", kind="sdist", pkg_info=False)
    publish_failing(index, range(2, 12))  # ten versions whose backend fails
    skipped = lock(index, tmp_path / "p", "many\n", "--skip-metadata-failures")
    assert skipped.versions() == {"many": "1.0"}
    warnings = skipped.err.splitlines()
    assert [w.split(" (")[0] for w in warnings] == [
        f"machci: warning: skipping many {n}.0" for n in range(11, 1, -1)
    ]
    publish_failing(index, range(12, 13))  # the eleventh
    refused = lock(index, tmp_path / "p", "many\n", "--skip-metadata-failures")
    assert refused.code == 2
    listed = ", ".join(f"{n}.0" for n in range(12, 1, -1))
    assert (
        f"machci: error: many: the metadata of 11 versions could not be prepared ({listed}),"
        " and metadataFailures: skip passes over at most 10 versions of a package; the last"
        " one:\ncannot prepare the metadata of many 2.0 (many-2.0.tar.gz)"
    ) in refused.err


@pytest.mark.parametrize(
    "text, message",
    [
        ("metadataFailures: sometimes\n", "metadataFailures: expected error or skip, got"),
        ("metadataFailures: [skip]\n", "metadataFailures: expected error or skip, got ['skip']"),
    ],
)
def test_a_bad_metadata_failures_setting_is_refused(
    index: Index, tmp_path: Path, text: str, message: str
) -> None:
    project = r_project(tmp_path / "project", index, text)
    result = machci(project, "sync")
    assert result.code == 2
    assert result.err.startswith(f"machci: error: machci.yaml:5: {message}")
    assert not (project / "default.nix").exists()


def test_skipping_enters_the_settings_digest(index: Index, tmp_path: Path) -> None:
    index.publish("app", "1.0")
    index.publish("rpy2", "3.1.0")
    project = r_project(tmp_path / "project", index)
    (project / "requirements.txt").write_text("app\n")
    assert machci(project, "sync").code == 1
    assert machci(project, "check").code == 0
    assert machci(project, "check", "--skip-metadata-failures").code == 1
    digests = []
    for text in ("", "metadataFailures: error\n", "metadataFailures: skip\n"):
        path = r_project(tmp_path / "variant", index, text) / "machci.yaml"
        digests.append(settings_digest(load_config(path), path.parent / "default.nix"))
    assert digests[0] == digests[1] != digests[2]  # the default leaves earlier files in sync
