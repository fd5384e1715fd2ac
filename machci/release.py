"""machci's releases: the tags, references and URLs derived from the package version.

One repository, machci/action, holds the package, the pre-commit hooks and the GitHub Action, and
each release is one immutable tag, `v<version>`, that all three are used at. A moving tag per
major version (`v0`, as actions have) follows the newest release of that line for workflows that
want it; pre-commit pins the immutable tag.
"""

from __future__ import annotations

from packaging.version import Version

from machci import __version__

REPOSITORY = "machci/action"
REPOSITORY_URL = f"https://github.com/{REPOSITORY}"
# Where machci.yaml's JSON Schema lives in the repository (the package ships the same file).
SCHEMA_PATH = "machci/config/machci.schema.json"


def tag(version: str = __version__) -> str:
    """The release's tag, which never moves: pre-commit's `rev:` and the workflow's `uses:`."""
    return f"v{version}"


def major_tag(version: str = __version__) -> str:
    """The tag that moves to each new release of the major version (`v0` for 0.x)."""
    return f"v{Version(version).major}"


def action_reference(version: str = __version__) -> str:
    """`uses:` of the Action at the release's tag."""
    return f"{REPOSITORY}@{tag(version)}"


def schema_url(version: str = __version__) -> str:
    """machci.yaml's JSON Schema as released with `version`, for the editor line."""
    return f"https://raw.githubusercontent.com/{REPOSITORY}/{tag(version)}/{SCHEMA_PATH}"
