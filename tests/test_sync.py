"""`machci sync` and `machci check`: exit codes, fast path, refusals and failure safety."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from machci import __version__
from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, Run, run

ROOT = Path(__file__).resolve().parents[1]


def make_project(path: Path, index: Index, requirements: str = "app\n") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "requirements.txt").write_text(requirements)
    (path / "machci.yaml").write_text(
        "requirements: [requirements.txt]\n"
        "systems: [x86_64-linux, aarch64-linux]\n"
        f"data: {{index: {index.url}, snapshot: '{SNAPSHOT}'}}\n"
    )
    return path


def machci(project: Path, *args: str) -> Run:
    with contextlib.chdir(project):
        return run(*args, "--cache-dir", ".cache")


@pytest.fixture
def project(index: Index, tmp_path: Path) -> Path:
    index.publish("app", "1.0", requires_dist=("dep",))
    index.publish("dep", "1.0")
    return make_project(tmp_path / "project", index)


def test_sync_creates_then_is_a_no_op_without_network(index: Index, project: Path) -> None:
    first = machci(project, "sync")
    assert first.code == 1
    assert "created" in first.err
    before = len(index.requests)
    second = machci(project, "sync")
    assert second.code == 0
    assert "up to date" in second.err
    assert len(index.requests) == before  # the header's digests matched: nothing was resolved
    assert machci(project, "check").code == 0


def test_changed_requirements_are_stale_then_resynced(index: Index, project: Path) -> None:
    index.publish("extra", "1.0")
    assert machci(project, "sync").code == 1
    (project / "requirements.txt").write_text("app\nextra\n")
    check = machci(project, "check")
    assert check.code == 1
    assert "requirements.txt changed since default.nix was generated" in check.err
    assert machci(project, "sync", "--check").code == 1
    assert machci(project, "sync").code == 1
    assert '"extra-1.0-py3-none-any.whl"' in (project / "default.nix").read_text()
    assert machci(project, "check").code == 0


def test_settings_change_is_stale(project: Path) -> None:
    assert machci(project, "sync").code == 1
    check = machci(project, "check", "--python", "3.13")
    assert check.code == 1
    assert "settings" in check.err


def test_output_is_identical_from_any_cache_state(index: Index, tmp_path: Path) -> None:
    index.publish("app", "1.0", requires_dist=("dep",))
    index.publish("dep", "1.0")
    one = make_project(tmp_path / "one", index)
    two = make_project(tmp_path / "two", index)
    assert machci(one, "sync").code == 1
    (one / "default.nix").unlink()
    assert machci(one, "sync").code == 1  # warm cache this time
    assert machci(two, "sync").code == 1  # cold cache
    text = (one / "default.nix").read_bytes()
    assert text == (two / "default.nix").read_bytes()
    assert b"\r" not in text and str(tmp_path).encode() not in text


def test_hand_edit_is_detected_and_repaired(project: Path) -> None:
    assert machci(project, "sync").code == 1
    original = (project / "default.nix").read_text()
    (project / "default.nix").write_text(original.replace('version = "1.0";', 'version = "6.6";'))
    check = machci(project, "check")
    assert check.code == 1
    assert "edited by hand" in check.err
    assert machci(project, "sync").code == 1
    assert (project / "default.nix").read_text() == original


def test_missing_input_listed_in_header(project: Path) -> None:
    (project / "more.txt").write_text("dep\n")
    (project / "requirements.txt").write_text("app\n-r more.txt\n")
    assert machci(project, "sync").code == 1
    assert "more.txt" in (project / "default.nix").read_text().split("{", 1)[0]
    (project / "more.txt").unlink()
    check = machci(project, "check")
    assert check.code == 1
    assert "more.txt is listed as an input but no longer exists" in check.err


def test_foreign_file_is_not_overwritten_without_force(project: Path) -> None:
    (project / "default.nix").write_text("{ hand = 'written'; }\n")
    refused = machci(project, "sync")
    assert refused.code == 2
    assert "has no machci header" in refused.err
    assert (project / "default.nix").read_text() == "{ hand = 'written'; }\n"
    assert machci(project, "check").code == 2
    assert machci(project, "sync", "--force").code == 1
    assert machci(project, "check").code == 0


def test_header_from_a_newer_machci_is_refused(project: Path) -> None:
    assert machci(project, "sync").code == 1
    text = (project / "default.nix").read_text()
    newer = text.replace(f"# machci-version: {__version__}", "# machci-version: 99.0")
    (project / "default.nix").write_text(newer)
    refused = machci(project, "sync")
    assert refused.code == 2
    assert "generated by machci 99.0, newer than this machci" in refused.err
    assert (project / "default.nix").read_text() == newer


def test_check_without_generated_file(project: Path) -> None:
    check = machci(project, "check")
    assert check.code == 1
    assert "does not exist yet" in check.err


@contextlib.contextmanager
def immutable(directory: Path) -> Iterator[None]:
    """Make a directory unwritable even for root (chattr +i); skip where unsupported."""
    if subprocess.run(["chattr", "+i", str(directory)], capture_output=True).returncode:
        pytest.skip("chattr +i is not supported here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


def test_read_only_output_path(index: Index, project: Path) -> None:
    index.publish("dep", "2.0")
    assert machci(project, "sync").code == 1
    before = (project / "default.nix").read_bytes()
    (project / "requirements.txt").write_text("app\ndep>=2\n")
    with immutable(project):
        result = machci(project, "sync")
    assert result.code == 2
    assert "default.nix" in result.err and "Traceback" not in result.err
    assert (project / "default.nix").read_bytes() == before


def test_killed_sync_leaves_the_old_file(index: Index, project: Path) -> None:
    index.publish("slow", "1.0")
    assert machci(project, "sync").code == 1
    before = (project / "default.nix").read_bytes()
    (project / "requirements.txt").write_text("app\nslow\n")
    index.fault("/simple/slow/", delay=30)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "machci", "sync", "--cache-dir", ".cache"],
        cwd=project,
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while ("GET", "/simple/slow/") not in index.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    index.clear_faults()
    assert (project / "default.nix").read_bytes() == before
    assert machci(project, "check").code == 1


@pytest.mark.parametrize("command", ["check", "sync"])
def test_check_and_no_op_sync_import_neither_yaml_nor_the_resolver(
    project: Path, command: str
) -> None:
    """Both run on every commit: with machci.yaml's bytes recorded in the header, neither loads
    YAML, the schema, the resolver or the network stack."""
    assert machci(project, "sync").code == 1
    code = (
        f"import sys; from machci.cli import main; code = main(['{command}']);"
        " heavy = ('resolvelib', 'urllib3', 'machci.resolve.provider', 'ruamel.yaml',"
        " 'jsonschema', 'machci.config.model');"
        " heavy = sorted(m for m in heavy if m in sys.modules);"
        " print(code, heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "0 []"
    if command == "sync":
        assert result.stderr == "machci: default.nix is up to date\n"


# Runs `machci check` in a fresh interpreter; prints its exit code, then the modules it loaded
# that only the full path needs.
_QUICK_CHECK = (
    "import sys; before = set(sys.modules); from machci.cli import main; code = main(['check']);"
    " full = ('ruamel', 'ruamel.yaml', 'yaml', 'machci.config.model',"
    " 'machci.resolve.provider', 'packaging');"
    " print(code, *sorted(m for m in full if m in sys.modules and m not in before))"
)


def quick_check(project: Path) -> tuple[int, list[str], str]:
    """Exit code, the full path's modules it loaded, and standard error of `machci check`."""
    result = subprocess.run(
        [sys.executable, "-c", _QUICK_CHECK],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    code, *loaded = result.stdout.split()
    return int(code), loaded, result.stderr


@pytest.mark.parametrize("output", [None, "default.nix", "nix/env.nix", "'nix/env.nix'"])
def test_check_reads_no_yaml_wherever_the_output_goes(project: Path, output: str | None) -> None:
    """As in examples/basic: a commented machci.yaml that may set `output`."""
    config = project / "machci.yaml"
    text = "# settings of this project\n" + config.read_text()
    config.write_text(text + (f"output: {output}  # the generated file\n" if output else ""))
    written = project / (output or "default.nix").strip("'")
    assert machci(project, "sync").code == 1
    assert written.is_file()
    assert quick_check(project) == (0, [], "")
    (project / "requirements.txt").write_text("app\ndep\n")
    code, loaded, err = quick_check(project)
    assert (code, loaded) == (1, [])
    assert f"requirements.txt changed since {written.name} was generated" in err


@pytest.mark.parametrize(
    "change, message",
    [
        ("python: '3.13'\n", "the settings (machci.yaml or command-line options) changed"),
        ("output: other.nix\n", "other.nix does not exist yet"),
    ],
)
def test_a_changed_machci_yaml_takes_the_full_check(
    project: Path, change: str, message: str
) -> None:
    config = project / "machci.yaml"
    assert machci(project, "sync").code == 1
    config.write_text(config.read_text() + change)
    code, loaded, err = quick_check(project)
    assert code == 1 and "machci.config.model" in loaded
    assert message in err


def test_a_hand_edit_is_found_without_yaml(project: Path) -> None:
    assert machci(project, "sync").code == 1
    generated = project / "default.nix"
    generated.write_text(generated.read_text().replace('version = "1.0";', 'version = "6.6";'))
    code, loaded, err = quick_check(project)
    assert (code, loaded) == (1, [])
    assert "default.nix was edited by hand" in err


def test_a_copy_of_the_generated_file_is_not_taken_for_it(project: Path) -> None:
    """A YAML escape spells `output` without its letters, so the quick path looks at the
    default location, where a copy of the generated file sits; its header names another file."""
    config = project / "machci.yaml"
    config.write_text(config.read_text() + '"outp\\x75t": env.nix\n')
    assert machci(project, "sync").code == 1
    generated = project / "env.nix"
    shutil.copy(generated, project / "default.nix")
    generated.write_text(generated.read_text().replace('version = "1.0";', 'version = "6.6";'))
    code, loaded, err = quick_check(project)
    assert code == 1 and "machci.config.model" in loaded
    assert "env.nix was edited by hand" in err


def test_a_header_without_its_file_name_takes_the_full_check(project: Path) -> None:
    """Files generated before the header named its file are still checked, with YAML."""
    assert machci(project, "sync").code == 1
    generated = project / "default.nix"
    generated.write_text(generated.read_text().replace("# machci-output: default.nix\n", ""))
    code, loaded, _err = quick_check(project)
    assert code == 0 and "machci.config.model" in loaded


def test_failed_resolution_keeps_the_file(index: Index, project: Path) -> None:
    assert machci(project, "sync").code == 1
    before = (project / "default.nix").read_bytes()
    (project / "requirements.txt").write_text("app\nnot-there\n")
    result = machci(project, "sync")
    assert result.code == 2 and "no package named 'not-there'" in result.err  # 1 is "changed"
    assert (project / "default.nix").read_bytes() == before
    assert not list(project.glob(".default.nix.*"))


def test_settings_from_command_line_options_are_recorded(project: Path) -> None:
    assert machci(project, "sync", "--python", "3.13").code == 1
    header = (project / "default.nix").read_text().split("{", 1)[0]
    assert "(command-line options)" in header
    stale = machci(project, "check")  # without the option the settings differ
    assert stale.code == 1 and "settings" in stale.err
    assert machci(project, "check", "--python", "3.13").code == 0


def test_custom_output_location(project: Path) -> None:
    config = project / "machci.yaml"
    config.write_text(config.read_text() + "output: nix/env.nix\n")
    assert machci(project, "sync").code == 1
    assert (project / "nix" / "env.nix").is_file()
    assert not (project / "default.nix").exists()
    assert machci(project, "check").code == 0
    config.write_text(config.read_text() + "python: '3.13'\n")
    assert machci(project, "check").code == 1


def test_an_input_file_name_with_a_newline_is_refused(index: Index, tmp_path: Path) -> None:
    """In the header the rest of the name would be Nix code, run on every import."""
    index.publish("app", "1.0")
    project = tmp_path / "project"
    project.mkdir()
    evil = 'req\nbuiltins.abort "pwned" #.txt'
    (project / evil).write_text("app\n")
    (project / "machci.yaml").write_text(
        'requirements: ["req\\nbuiltins.abort \\"pwned\\" #.txt"]\n'
        f"data: {{index: {index.url}, snapshot: '{SNAPSHOT}'}}\n"
    )
    result = machci(project, "sync")
    assert (result.code, result.err) == (
        2,
        f"machci: error: input file name {evil!r} contains the control character '\\n', which"
        " the generated file's header (Nix comments) cannot hold; rename the file\n",
    )
    assert not (project / "default.nix").exists()


def test_a_fractional_snapshot_is_kept_in_the_lock_and_the_header(
    index: Index, tmp_path: Path
) -> None:
    index.publish("app", "1.0", upload_time="2024-12-31T23:59:59.25Z")
    index.publish("app", "2.0", upload_time="2024-12-31T23:59:59.75Z")
    project = make_project(tmp_path / "project", index)
    config = project / "machci.yaml"
    config.write_text(config.read_text().replace(SNAPSHOT, "2024-12-31T23:59:59.5Z"))
    assert machci(project, "sync").code == 1
    text = (project / "default.nix").read_text()
    assert f"# machci-data: pypi {index.url} 2024-12-31T23:59:59.5Z\n" in text
    assert '"app-1.0-py3-none-any.whl"' in text and "app-2.0" not in text
    with contextlib.chdir(project):
        locked = run("lock", "--json", "--cache-dir", ".cache").lock
    assert locked["data"]["snapshot"] == "2024-12-31T23:59:59.5Z"
    bump = machci(project, "bump", "--to", "2024-12-31T23:59:59.750001Z")
    assert bump.code == 0, bump.err
    assert "2024-12-31T23:59:59.5Z → 2024-12-31T23:59:59.750001Z" in bump.out
    assert "snapshot: '2024-12-31T23:59:59.750001Z'" in config.read_text()
    assert (
        f"# machci-data: pypi {index.url} 2024-12-31T23:59:59.750001Z\n"
        in (project / "default.nix").read_text()
    )


def test_leftovers_of_a_killed_write_are_removed_by_the_next_sync(project: Path) -> None:
    assert machci(project, "sync").code == 1
    leftover = project / ".default.nix.k1ll3d00.tmp"
    leftover.write_text("half a file")
    busy = project / ".default.nix.wr1t1ng0.tmp"
    busy.write_text("being written")
    other = project / ".machci.yaml.k1ll3d00.tmp"
    other.write_text("not ours")
    with busy.open("rb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # as atomic_write holds it while writing
        assert machci(project, "sync").code == 0  # the fast path cleans up too
    assert not leftover.exists()
    assert busy.exists() and other.exists()


def test_a_write_in_progress_is_not_taken_for_a_leftover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another run cleaning up while this one writes (here: just before the rename) must leave
    the temporary file alone."""
    from machci.atomic import atomic_write, remove_leftovers

    target = tmp_path / "default.nix"
    sync_to_disk = os.fsync

    def clean_then_sync(fd: int) -> None:
        remove_leftovers(target)
        sync_to_disk(fd)

    monkeypatch.setattr(os, "fsync", clean_then_sync)
    atomic_write(target, b"new\n")
    assert target.read_bytes() == b"new\n"
