"""`command: check` — is default.nix in sync? Annotates each stale input.

It also tells the workflow what to build: machci.yaml's systems and those that get an image, as
JSON arrays (outputs `systems`, `image-systems`) for a build matrix and for jobs that run only
when a system is listed (the macOS job of the workflow template).
"""

from __future__ import annotations

import contextlib
import json

from machci.commands.check import inspect_all
from machci.nix.settings import settings_digest

from .images import image_systems
from .workflow import Inputs, add_summary, error, set_output, workspace_path


def run(inputs: Inputs) -> int:
    with contextlib.chdir(inputs.working_directory):
        config, _base = inputs.project()
        settings = settings_digest(config, config.output)
        locks = [path.name for path in config.lock_outputs]
        finding = inspect_all(config.output, settings, config.flake is not None, locks)
        for problem in finding.problems:
            error(f"{problem.message}; run `machci sync`", file=workspace_path(problem.path))
        output = workspace_path(config.output)
    set_output("systems", json.dumps(list(config.systems)))
    set_output("image-systems", json.dumps(list(image_systems(config.systems))))
    set_output("changed", "true" if finding.problems else "false")
    if finding.problems:
        lines = [f"### machci: `{output}` is out of sync", ""]
        lines += [f"- {problem.message}" for problem in finding.problems]
        lines += ["", "Run `machci sync` and commit the result."]
        add_summary("\n".join(lines))
        return 1
    add_summary(f"### machci: `{output}` is in sync with its inputs")
    return 0
