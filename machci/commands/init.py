"""`machci init`: set a repository up — machci.yaml, the pre-commit hooks, the CI workflow.

Every step is idempotent and never clobbers user edits: existing files are extended
(.pre-commit-config.yaml, round-trip with ruamel.yaml) or left alone (machci.yaml, the workflow).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from machci import release
from machci.atomic import atomic_write
from machci.config.defaults import CONFIG_NAME, parse_python
from machci.config.layers import index_url
from machci.config.model import DEFAULT_INDEX, format_snapshot, parse_snapshot
from machci.config.yamledit import RoundTrip
from machci.errors import InputError, Location
from machci.redaction import strip_credentials

HOOKS_REPO = release.REPOSITORY_URL
# The JSON Schema of machci.yaml as released with this version: editors with the YAML language
# server complete and check the file from it (the package ships the same file).
SCHEMA_URL = release.schema_url()
HOOK_IDS = ("machci-sync", "machci-check")
PRE_COMMIT = ".pre-commit-config.yaml"
WORKFLOW = Path(".github") / "workflows" / "machci.yml"
REQUIREMENT_CANDIDATES = ("requirements.txt", "requirements.in", "pyproject.toml")


@dataclass(frozen=True)
class Step:
    path: Path
    outcome: str  # "created", "updated", "kept"


def _config_text(
    requirements: str, python: str, systems: list[str], snapshot: str, index: str
) -> str:
    return (
        f"# yaml-language-server: $schema={SCHEMA_URL}\n"
        "# machci: requirements in, a reproducible Nix Python environment out.\n"
        "# Regenerate default.nix with `machci sync`; move the data pin with `machci bump`.\n"
        f"requirements: [{requirements}]\n"
        f'python: "{python}"\n'
        f"systems: [{', '.join(systems)}]\n"
        "data:\n"
        "  source: pypi\n"
        f"  index: {index}\n"
        f'  snapshot: "{snapshot}"   # only files uploaded at or before this instant exist\n'
        "providers:\n"
        '  _default: "wheel,sdist"\n'
        "output: default.nix\n"
    )


def find_requirements(root: Path) -> str:
    for name in REQUIREMENT_CANDIDATES:
        if (root / name).is_file():
            return name
    raise InputError(
        f"no requirements found in {root}: create one of {', '.join(REQUIREMENT_CANDIDATES)}"
        " or pass -r FILE"
    )


def write_config(
    root: Path, requirements: str, python: str, systems: list[str], snapshot: str, index: str
) -> Step:
    path = root / CONFIG_NAME
    if path.exists():
        return Step(path, "kept")
    atomic_write(path, _config_text(requirements, python, systems, snapshot, index).encode())
    return Step(path, "created")


def _hooks_entry() -> CommentedMap:
    entry = CommentedMap()
    entry["repo"] = HOOKS_REPO
    entry["rev"] = release.tag()  # immutable, as pre-commit wants
    entry["hooks"] = CommentedSeq([CommentedMap(id=hook) for hook in HOOK_IDS])
    return entry


def _hook_ids(entry: object) -> set[str]:
    hooks = entry.get("hooks") if isinstance(entry, dict) else None
    if not isinstance(hooks, list):
        return set()
    return {h["id"] for h in hooks if isinstance(h, dict) and isinstance(h.get("id"), str)}


def machci_block(repos: list[object]) -> dict[str, object] | None:
    """The repos entry that holds machci's hooks, whatever its URL (machci's repository, a fork,
    a mirror, a local path): recognised by the hook ids, else by machci's URL."""
    for entry in repos:
        if isinstance(entry, dict) and _hook_ids(entry) & set(HOOK_IDS):
            return entry
    for entry in repos:
        if isinstance(entry, dict) and entry.get("repo") == HOOKS_REPO:
            return entry
    return None


def add_hooks(root: Path) -> Step:
    """Add both hooks to .pre-commit-config.yaml (creating it), leaving everything else as is."""
    path = root / PRE_COMMIT
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    edit = RoundTrip(text, Location.of(path))
    document = edit.document
    repos = document.setdefault("repos", CommentedSeq())
    ours = machci_block(repos)
    present = set().union(*(_hook_ids(entry) for entry in repos))
    if ours is None:
        repos.append(_hooks_entry())
    elif ours.get("repo") not in ("local", "meta"):  # hooks of a repository are added by id
        hooks = ours.get("hooks")
        if not isinstance(hooks, list):
            hooks = ours["hooks"] = CommentedSeq()
        for hook in HOOK_IDS:
            if hook not in present:
                hooks.append(CommentedMap(id=hook))
    ci = document.setdefault("ci", CommentedMap())
    skip = ci.setdefault("skip", CommentedSeq())
    if "machci-sync" not in skip:  # pre-commit.ci has no network while hooks run
        skip.append("machci-sync")
    new_text = edit.dump()
    if new_text == text:
        return Step(path, "kept")
    atomic_write(path, new_text.encode())
    return Step(path, "updated" if text else "created")


def workflow_template() -> str:
    return (resources.files("machci.action") / "templates" / "machci.yml").read_text("utf-8")


def write_workflow(root: Path) -> Step:
    path = root / WORKFLOW
    if path.exists():
        return Step(path, "kept")
    atomic_write(path, workflow_template().encode())
    return Step(path, "created")


def init(
    root: Path,
    requirements: str | None,
    python: str,
    systems: list[str],
    snapshot: str | None = None,
    index: str | None = None,
) -> list[Step]:
    from machci.commands.bump import now

    chosen = requirements or find_requirements(root)
    pin = snapshot or format_snapshot(now())
    return [
        # machci.yaml is committed: credentials stay in netrc (see "Private indexes").
        write_config(root, chosen, python, systems, pin, strip_credentials(index or DEFAULT_INDEX)),
        add_hooks(root),
        write_workflow(root),
    ]


def run(args: argparse.Namespace) -> int:
    parse_python(args.python)
    systems = args.systems or ["x86_64-linux", "aarch64-linux"]
    pin = format_snapshot(parse_snapshot(args.snapshot)) if args.snapshot is not None else None
    index = index_url("--index-url", args.index_url) if args.index_url is not None else None
    for step in init(Path(), args.requirement, args.python, systems, pin, index):
        sys.stdout.write(f"{step.outcome:>8} {step.path}\n")
    sys.stdout.write("next: run `machci sync`, then commit default.nix and these files\n")
    return 0
