"""Resolution against the hermetic index, through `machci lock --json`."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from tests.fixtures.index import Index
from tests.helpers import lock, run

LINUX = ("x86_64-linux", "aarch64-linux")
ALL = ("aarch64-darwin", "aarch64-linux", "x86_64-darwin", "x86_64-linux")
X86_2_28 = "cp312-cp312-manylinux_2_28_x86_64"
X86_2014 = "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64"


def test_markers_are_evaluated_for_each_target(index: Index, tmp_path: Path) -> None:
    for name in ("darwin-only", "arm-linux", "arm-mac", "not-linux", "py313"):
        index.publish(name, "1.0")
    index.publish(
        "app",
        "1.0",
        requires_dist=(
            'arm-linux; platform_machine == "aarch64"',
            'arm-mac; platform_machine == "arm64" and platform_system == "Darwin"',
        ),
    )
    requirements = (
        "app\n"
        'darwin-only; sys_platform == "darwin"\n'
        'not-linux; platform_system != "Linux"\n'
        'py313; python_version >= "3.13"\n'
    )
    result = lock(index, tmp_path, requirements, systems=ALL)
    got = {system: set(result.versions(system)) for system in ALL}
    assert got == {
        "x86_64-linux": {"app"},
        "aarch64-linux": {"app", "arm-linux"},
        "x86_64-darwin": {"app", "darwin-only", "not-linux"},
        "aarch64-darwin": {"app", "arm-mac", "darwin-only", "not-linux"},
    }


def test_best_ranked_wheel_is_chosen_per_system(index: Index, tmp_path: Path) -> None:
    for tag in (
        "py3-none-any",
        X86_2014,
        X86_2_28,
        "cp312-cp312-musllinux_1_2_x86_64",
        "cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64",
        "cp312-cp312-macosx_11_0_universal2",
        "cp312-cp312-macosx_11_0_arm64",
    ):
        index.publish("fast", "1.0", tag=tag)
    result = lock(index, tmp_path, "fast\n", systems=ALL)
    chosen = {s: result.packages(s)["fast"]["file"]["filename"] for s in ALL}
    assert chosen == {
        "x86_64-linux": f"fast-1.0-{X86_2_28}.whl",
        "aarch64-linux": "fast-1.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "aarch64-darwin": "fast-1.0-cp312-cp312-macosx_11_0_arm64.whl",
        "x86_64-darwin": "fast-1.0-cp312-cp312-macosx_11_0_universal2.whl",
    }


def test_abi3_wheel_of_older_minor_is_used(index: Index, tmp_path: Path) -> None:
    index.publish("stable", "1.0", tag="cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64")
    result = lock(index, tmp_path, "stable\n")
    filename = result.packages()["stable"]["file"]["filename"]
    assert filename == "stable-1.0-cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"


def test_no_compatible_file_names_system_and_files(index: Index, tmp_path: Path) -> None:
    index.publish("muslonly", "1.0", tag="cp312-cp312-musllinux_1_2_x86_64")
    index.publish("muslonly", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64")
    result = lock(index, tmp_path, "muslonly\n", systems=LINUX)
    assert result.code == 1
    assert "aarch64-linux" in result.err
    assert "muslonly-1.0-cp312-cp312-musllinux_1_2_x86_64.whl" in result.err
    assert "Traceback" not in result.err


def test_extras_pull_their_dependencies(index: Index, tmp_path: Path) -> None:
    index.publish("plain", "1.0")
    index.publish("socks", "1.0")
    index.publish("linux-extra", "1.0")
    index.publish("mac-extra", "1.0")
    index.publish(
        "client",
        "1.0",
        provides_extra=("socks",),
        requires_dist=(
            "plain",
            'socks; extra == "socks"',
            'linux-extra; extra == "socks" and sys_platform == "linux"',
            'mac-extra; extra == "socks" and sys_platform == "darwin"',
        ),
    )
    without = lock(index, tmp_path / "a", "client\n")
    assert set(without.versions()) == {"client", "plain"}
    result = lock(index, tmp_path / "b", "client[ socks ]\n")
    assert set(result.versions()) == {"client", "plain", "socks", "linux-extra"}
    package = result.packages()["client"]
    assert package["extras"] == ["socks"]
    assert package["dependencies"] == ["linux-extra", "plain", "socks"]


def test_requires_python_filters_versions(index: Index, tmp_path: Path) -> None:
    index.publish("modern", "1.0", requires_python=">=3.8")
    index.publish("modern", "2.0", requires_python=">=3.13")
    assert lock(index, tmp_path / "a", "modern\n").versions()["modern"] == "1.0"
    newer = lock(index, tmp_path / "b", "modern\n", "--python", "3.13")
    assert newer.versions()["modern"] == "2.0"
    assert newer.lock["systems"]["x86_64-linux"]["python"] == "3.13"


def test_yanked_skipped_unless_pinned(index: Index, tmp_path: Path) -> None:
    index.publish("yank", "1.0")
    index.publish("yank", "2.0", yanked="broken")
    assert lock(index, tmp_path / "a", "yank\n").versions()["yank"] == "1.0"
    assert lock(index, tmp_path / "b", "yank==2.0\n").versions()["yank"] == "2.0"
    assert lock(index, tmp_path / "c", "yank>=1.5\n").code == 1


def test_snapshot_hides_newer_uploads(index: Index, tmp_path: Path) -> None:
    index.publish("moving", "1.0", upload_time="2024-06-01T00:00:00Z")
    index.publish("moving", "2.0", upload_time="2025-06-01T00:00:00Z")
    index.publish("future", "1.0", upload_time="2026-01-01T00:00:00Z")
    pinned = lock(index, tmp_path / "a", "moving\n", snapshot="2025-01-01T00:00:00Z")
    assert pinned.versions()["moving"] == "1.0"
    assert pinned.lock["data"]["snapshot"] == "2025-01-01T00:00:00Z"
    later = lock(index, tmp_path / "b", "moving\n", snapshot="2025-06-01T00:00:00Z")
    assert later.versions()["moving"] == "2.0"  # the cut-off instant is included
    hidden = lock(index, tmp_path / "c", "future\n")
    assert hidden.code == 1
    assert "after the snapshot" in hidden.err


def test_provider_order_beats_version_order(index: Index, tmp_path: Path) -> None:
    index.publish("mixed", "1.0")
    index.publish("mixed", "2.0", kind="sdist")
    default = lock(index, tmp_path / "a", "mixed\n")
    assert (default.versions()["mixed"], default.packages()["mixed"]["provider"]) == (
        "1.0",
        "wheel",
    )
    flipped = lock(index, tmp_path / "b", "mixed\n", "--provider", "mixed=sdist,wheel")
    assert flipped.packages()["mixed"]["provider"] == "sdist"
    assert flipped.versions()["mixed"] == "2.0"
    only_wheel = lock(index, tmp_path / "c", "mixed>=2\n", "--provider", "wheel")
    assert only_wheel.code == 1
    assert "providers wheel" in only_wheel.err


def test_a_wheel_of_the_same_version_beats_an_sdist_with_build_needs(
    index: Index, tmp_path: Path
) -> None:
    rust = (("Cargo.toml", b"[package]\n"),)
    index.publish("oxide", "1.0", kind="sdist")
    index.publish("oxide", "2.0", kind="sdist", extra_files=rust)
    index.publish("oxide", "2.0")
    index.publish("newest", "2.0")
    index.publish("newest", "3.0", kind="sdist", extra_files=rust)  # no 3.0 wheel: stays
    index.publish("plain", "2.0", kind="sdist")
    index.publish("plain", "2.0")  # the sdist needs nothing: stays
    providers = ("--provider", "sdist,wheel")
    result = lock(index, tmp_path / "a", "oxide\nnewest\nplain\n", *providers)
    chosen = {name: (p["version"], p["provider"]) for name, p in result.packages().items()}
    assert chosen == {
        "oxide": ("2.0", "wheel"),
        "newest": ("3.0", "sdist"),
        "plain": ("2.0", "sdist"),
    }
    only_sdist = lock(index, tmp_path / "b", "oxide\n", "--provider", "sdist")
    assert only_sdist.packages()["oxide"]["provider"] == "sdist"
    assert only_sdist.versions()["oxide"] == "2.0"


def test_the_sdist_comes_right_after_the_wheel_that_was_moved_up(
    index: Index, tmp_path: Path
) -> None:
    index.publish("oxide", "1.0", kind="sdist")
    index.publish("oxide", "2.0", kind="sdist", extra_files=(("Cargo.toml", b"[package]\n"),))
    index.publish("oxide", "2.0", requires_dist=("not-on-the-index",))  # unusable
    result = lock(index, tmp_path, "oxide\n", "--provider", "sdist,wheel")
    package = result.packages()["oxide"]
    assert (package["version"], package["provider"]) == ("2.0", "sdist")


def test_a_version_rejected_for_its_dependencies_is_not_built_from_its_sdist(
    index: Index, tmp_path: Path
) -> None:
    index.publish("dep", "1.0")
    index.publish("lib", "1.0", kind="sdist")  # static metadata: read, not built
    index.publish("lib", "2.0", requires_dist=("dep>=5",))  # no such dep: rejected
    index.publish("lib", "2.0", kind="sdist", dynamic=("Requires-Dist",))  # would need a build
    result = lock(index, tmp_path, "lib\n")
    assert result.code == 0, result.err
    assert (result.packages()["lib"]["version"], result.packages()["lib"]["provider"]) == (
        "1.0",
        "sdist",
    )
    assert not any(path.endswith("lib-2.0.tar.gz") for _, path in index.requests)


def test_backtracks_to_a_compatible_version(index: Index, tmp_path: Path) -> None:
    index.publish("shared", "1.0")
    index.publish("shared", "2.0")
    index.publish("left", "1.0", requires_dist=("shared>=1",))
    index.publish("left", "2.0", requires_dist=("shared<2",))
    index.publish("right", "1.0", requires_dist=("shared>=2",))
    result = lock(index, tmp_path, "left\nright\n")
    assert result.versions() == {"left": "1.0", "right": "1.0", "shared": "2.0"}


def test_conflict_names_both_sides_and_parents(index: Index, tmp_path: Path) -> None:
    index.publish("shared", "1.0")
    index.publish("shared", "2.0")
    index.publish("old-lib", "1.0", requires_dist=("shared<2",))
    result = lock(index, tmp_path, "shared>=2\nold-lib\n", systems=LINUX)
    assert result.code == 1
    assert "cannot resolve for aarch64-linux (Python 3.12)" in result.err
    assert "shared>=2 is required by requirements.txt:1" in result.err
    assert "shared<2 is required by old-lib 1.0 (from requirements.txt:2)" in result.err
    assert "Traceback" not in result.err


def test_prereleases_only_when_asked(index: Index, tmp_path: Path) -> None:
    index.publish("beta", "1.0")
    index.publish("beta", "2.0b1")
    index.publish("onlybeta", "0.1a1")
    assert lock(index, tmp_path / "a", "beta\n").versions()["beta"] == "1.0"
    assert lock(index, tmp_path / "b", "beta>=2.0b1\n").versions()["beta"] == "2.0b1"
    assert lock(index, tmp_path / "c", "--pre\nbeta\n").versions()["beta"] == "2.0b1"
    assert lock(index, tmp_path / "d", "onlybeta\n").versions()["onlybeta"] == "0.1a1"


def test_hashes_select_the_file(index: Index, tmp_path: Path) -> None:
    index.publish("hashed", "1.0")
    index.publish("hashed", "2.0")
    good = index.sha256("hashed-1.0-py3-none-any.whl")
    result = lock(index, tmp_path / "a", f"hashed --hash=sha256:{good}\n")
    assert result.packages()["hashed"]["file"]["sha256"] == good
    wrong = lock(index, tmp_path / "b", f"hashed==2.0 --hash=sha256:{'0' * 64}\n")
    assert wrong.code == 1
    assert "hashed" in wrong.err


def test_direct_reference_needs_and_checks_a_hash(index: Index, tmp_path: Path) -> None:
    index.publish("direct", "3.0")
    filename = "direct-3.0-py3-none-any.whl"
    url = f"{index.files_url}/{filename}"
    digest = index.sha256(filename)
    result = lock(index, tmp_path / "a", f"direct @ {url}#sha256={digest}\n")
    assert result.packages()["direct"]["file"] == {
        "filename": filename,
        "url": url,
        "sha256": digest,
    }
    missing = lock(index, tmp_path / "b", f"direct @ {url}\n")
    assert missing.code == 2
    assert "needs a hash" in missing.err and "requirements.txt:1" in missing.err
    bad = lock(index, tmp_path / "c", f"direct @ {url}#sha256={'1' * 64}\n")
    assert bad.code == 2
    assert "hash mismatch" in bad.err


def test_constraints_limit_without_adding(index: Index, tmp_path: Path) -> None:
    index.publish("limited", "1.0")
    index.publish("limited", "2.0")
    index.publish("unused", "1.0")
    (tmp_path / "constraints.txt").write_text("limited<2\nunused==1.0\n")
    result = lock(index, tmp_path, "-c constraints.txt\nlimited\n")
    assert result.versions() == {"limited": "1.0"}


def test_sdist_dependencies_static_and_from_backend(index: Index, tmp_path: Path) -> None:
    index.publish("leaf", "1.0")
    index.publish("backend-dep", "1.0")
    index.publish("static", "1.0", kind="sdist", requires_dist=("leaf",))
    index.publish(
        "dynamic",
        "1.0",
        kind="sdist",
        dynamic=("Requires-Dist",),
        requires_dist=("backend-dep",),
    )
    index.publish("noinfo", "1.0", kind="sdist", pkg_info=False, requires_dist=("leaf",))
    result = lock(index, tmp_path, "static\ndynamic\nnoinfo\n")
    packages = result.packages()
    assert packages["static"]["dependencies"] == ["leaf"]
    assert packages["dynamic"]["dependencies"] == ["backend-dep"]
    assert packages["noinfo"]["dependencies"] == ["leaf"]
    assert {p["provider"] for n, p in packages.items() if n in ("static", "dynamic")} == {"sdist"}


def test_sdist_build_requirements_are_pinned(index: Index, tmp_path: Path) -> None:
    index.publish("flit-core", "3.9")
    index.publish("flit-core", "4.0", upload_time="2026-01-01T00:00:00Z")
    index.publish("built", "1.0", kind="sdist", build_requires=("flit-core>=3",))
    result = lock(index, tmp_path, "built\n", systems=LINUX)
    for system in LINUX:
        packages = result.packages(system)
        assert packages["built"]["build_requires"] == ["flit-core"]
        assert packages["built"]["dependencies"] == []
        assert packages["flit-core"]["version"] == "3.9"


def test_backend_build_requirements_are_pinned_per_system(index: Index, tmp_path: Path) -> None:
    # pypa/build checks what get_requires_for_build_wheel answers, so nixpkgs needs it too.
    index.publish("helper-tool", "1.0")
    asks = ("helper-tool", "win-only; sys_platform == 'win32'")
    index.publish(
        "from-backend",
        "1.0",
        kind="sdist",
        dynamic=("Requires-Dist",),
        dynamic_build_requires=asks,
    )
    index.publish("static-info", "1.0", kind="sdist", dynamic_build_requires=asks)
    result = lock(index, tmp_path, "from-backend\nstatic-info\n", systems=LINUX)
    for system in LINUX:
        packages = result.packages(system)
        assert packages["from-backend"]["build_requires"] == ["helper-tool"]
        assert packages["static-info"]["build_requires"] == ["helper-tool"]
        assert set(packages) == {"from-backend", "static-info", "helper-tool"}


def test_unknown_package_and_unmatched_version(index: Index, tmp_path: Path) -> None:
    index.publish("known", "1.0")
    index.publish("known", "1.1")
    unknown = lock(index, tmp_path / "a", "nosuchthing\n")
    assert unknown.code == 1
    assert "no package named 'nosuchthing'" in unknown.err
    unmatched = lock(index, tmp_path / "b", "known>=5\n")
    assert unmatched.code == 1
    assert "no version of known matches >=5 (available: 1.1, 1.0)" in unmatched.err


def test_output_is_byte_identical_across_cache_states(index: Index, tmp_path: Path) -> None:
    index.publish("dep", "1.0")
    index.publish("top", "1.0", requires_dist=("dep",), tag=X86_2014)
    index.publish("top", "1.0", tag="py3-none-any", requires_dist=("dep",))
    index.publish("src", "1.0", kind="sdist", build_requires=("dep",))
    requirements = "top\nsrc\n"
    cold = lock(index, tmp_path / "p", requirements, systems=LINUX)
    warm = lock(index, tmp_path / "p", requirements, systems=LINUX)
    blobs = sorted((tmp_path / "p" / ".cache").rglob("blobs/*"))
    assert blobs
    for blob in blobs[::2]:
        blob.write_bytes(b"corrupted")
    repaired = lock(index, tmp_path / "p", requirements, systems=LINUX)
    elsewhere = lock(index, tmp_path / "q", requirements, systems=LINUX)
    assert cold.code == 0
    assert cold.out == warm.out == repaired.out == elsewhere.out


@pytest.mark.parametrize("system", LINUX)
def test_why_prints_paths_per_system(index: Index, tmp_path: Path, system: str) -> None:
    index.publish("leaf", "1.0")
    index.publish("middle", "1.0", requires_dist=("leaf",))
    (tmp_path / "requirements.txt").write_text("middle\n")
    with contextlib.chdir(tmp_path):
        result = run(
            "why", "Leaf", "-r", "requirements.txt", "--index-url", index.url, "--system", system
        )
    assert result.code == 0, result.err
    assert f"{system} (leaf 1.0):" in result.out
    assert "(middle) -> middle -> leaf" in result.out


def test_pyproject_dependencies_extras_and_groups(index: Index, tmp_path: Path) -> None:
    for name in ("core", "server-dep", "test-dep", "lint-dep"):
        index.publish(name, "1.0")
    (tmp_path / "pyproject.toml").write_text(
        "[project]\n"
        'name = "demo"\n'
        'version = "0"\n'
        'dependencies = ["core"]\n'
        "[project.optional-dependencies]\n"
        'server = ["server-dep"]\n'
        "[dependency-groups]\n"
        'lint = ["lint-dep"]\n'
        'test = ["test-dep", {include-group = "lint"}]\n'
    )
    with contextlib.chdir(tmp_path):
        plain = run("lock", "--json", "-r", "pyproject.toml", "--index-url", index.url)
        full = run(
            "lock",
            "--json",
            "-r",
            "pyproject.toml",
            "--index-url",
            index.url,
            "--extra",
            "server",
            "--group",
            "test",
        )
    assert plain.versions() == {"core": "1.0"}
    assert set(full.versions()) == {"core", "server-dep", "test-dep", "lint-dep"}
    roots = full.lock["systems"]["x86_64-linux"]["roots"]
    assert {"name": "core", "requirement": "core", "source": "pyproject.toml:4"} in roots


def test_direct_reference_with_extras(index: Index, tmp_path: Path) -> None:
    index.publish("addon", "1.0")
    index.publish(
        "direct", "3.0", provides_extra=("more",), requires_dist=('addon; extra == "more"',)
    )
    filename = "direct-3.0-py3-none-any.whl"
    url = f"{index.files_url}/{filename}#sha256={index.sha256(filename)}"
    index.fault("/simple/direct/", status=404)  # only the URL knows this file
    result = lock(index, tmp_path, f"direct[more] @ {url}\n")
    packages = result.packages()
    assert packages["direct"]["extras"] == ["more"]
    assert packages["direct"]["dependencies"] == ["addon"]
    assert packages["direct"]["file"]["url"] == url.split("#")[0]


def test_version_with_broken_metadata_is_skipped(index: Index, tmp_path: Path) -> None:
    index.publish("fragile", "1.0")
    index.publish("fragile", "2.0", requires_dist=("dep >>> 1",))
    result = lock(index, tmp_path / "a", "fragile\n")
    assert result.versions() == {"fragile": "1.0"}
    pinned = lock(index, tmp_path / "b", "fragile==2.0\n")
    assert pinned.code == 1
    assert "fragile-2.0-py3-none-any.whl: invalid requirement 'dep >>> 1'" in pinned.err


def _publish_flaky(index: Index) -> None:
    """flaky 2.0, whose backend cannot prepare its metadata, and 1.0, whose backend can."""
    failing = b"def prepare_metadata_for_build_wheel(d, c=None):\n    raise RuntimeError('boom')\n"
    index.publish("flaky", "1.0", kind="sdist", dynamic=("Requires-Dist",))
    index.publish(
        "flaky",
        "2.0",
        kind="sdist",
        dynamic=("Requires-Dist",),
        extra_files=(("_backend/backend.py", failing),),
    )


def test_a_version_whose_metadata_cannot_be_prepared_is_an_error(
    index: Index, tmp_path: Path
) -> None:
    _publish_flaky(index)
    result = lock(index, tmp_path, "flaky\n", systems=LINUX)
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith(
        "machci: error: cannot prepare the metadata of flaky 2.0 (flaky-2.0.tar.gz): preparing"
        " metadata with the build backend failed: RuntimeError: boom\n"
    )
    assert "    | RuntimeError: boom\n" in result.err  # the backend's last lines
    assert "skipping" not in result.err


@pytest.mark.parametrize(
    "how", [("--skip-metadata-failures",), ("--config", "machci.yaml")], ids=["cli", "yaml"]
)
def test_skipping_versions_whose_metadata_cannot_be_prepared_is_a_choice(
    index: Index, tmp_path: Path, how: tuple[str, ...]
) -> None:
    _publish_flaky(index)
    (tmp_path / "machci.yaml").write_text("metadataFailures: skip\n")
    result = lock(index, tmp_path, "flaky\n", *how, systems=LINUX)
    assert result.versions("x86_64-linux") == result.versions("aarch64-linux") == {"flaky": "1.0"}
    assert result.err == (
        "machci: warning: skipping flaky 2.0 (flaky-2.0.tar.gz): preparing metadata with the"
        " build backend failed: RuntimeError: boom\n"
    )


def test_a_version_whose_metadata_does_not_parse_is_skipped_with_a_warning(
    index: Index, tmp_path: Path
) -> None:
    index.publish("fragile", "1.0")
    index.publish("fragile", "2.0", requires_dist=("dep >>> 1",))
    result = lock(index, tmp_path, "fragile\n", systems=LINUX)
    assert result.versions() == {"fragile": "1.0"}
    assert result.err == (
        "machci: warning: skipping fragile 2.0 (fragile-2.0-py3-none-any.whl): invalid"
        " requirement 'dep >>> 1'\n"
    )


def test_the_hashes_of_an_extra_hold_for_its_base_package(index: Index, tmp_path: Path) -> None:
    for tag in ("py3-none-any", X86_2_28):  # the binary wheel ranks first on x86_64-linux
        index.publish(
            "tool",
            "1.0",
            tag=tag,
            provides_extra=("cli",),
            requires_dist=('click; extra == "cli"',),
        )
    index.publish("click", "8.0")
    pure = "tool-1.0-py3-none-any.whl"
    result = lock(index, tmp_path, f"tool[cli]==1.0 --hash=sha256:{index.sha256(pure)}\n")
    assert result.packages()["tool"]["file"]["filename"] == pure
    assert result.packages()["tool"]["extras"] == ["cli"]
    assert set(result.versions()) == {"tool", "click"}


def test_every_hash_of_a_direct_reference_is_accepted(index: Index, tmp_path: Path) -> None:
    index.publish("direct", "3.0")
    filename = "direct-3.0-py3-none-any.whl"
    url = f"{index.files_url}/{filename}"
    right, wrong = index.sha256(filename), "0" * 64  # the wrong one sorts first
    result = lock(
        index, tmp_path / "a", f"direct @ {url} --hash=sha256:{wrong} --hash=sha256:{right}\n"
    )
    assert result.packages()["direct"]["file"] == {
        "filename": filename,
        "url": url,
        "sha256": right,
    }
    neither = lock(
        index, tmp_path / "b", f"direct @ {url} --hash=sha256:{wrong} --hash=sha256:{'1' * 64}\n"
    )
    assert (neither.code, neither.err) == (
        2,
        f"machci: error: {url}: the file's sha256 is none of its 2 --hash values\n",
    )


def test_a_dependency_for_any_extra_but_one_belongs_to_the_base_package(
    index: Index, tmp_path: Path
) -> None:
    index.publish("dep", "1.0")
    index.publish("testdep", "1.0")
    index.publish(
        "lib",
        "1.0",
        provides_extra=("test",),
        requires_dist=('dep; extra != "test"', 'testdep; extra == "test"'),
    )
    result = lock(index, tmp_path, "lib\n")
    assert result.versions() == {"lib": "1.0", "dep": "1.0"}
    assert result.packages()["lib"]["dependencies"] == ["dep"]
