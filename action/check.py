"""`command: check` — is default.nix in sync? Annotates each stale input."""

from __future__ import annotations

import contextlib

from machci.commands.check import inspect_all
from machci.nix.settings import settings_digest

from .workflow import Inputs, add_summary, error, set_output, workspace_path


def run(inputs: Inputs) -> int:
    with contextlib.chdir(inputs.working_directory):
        config, _base = inputs.project()
        settings = settings_digest(config, config.output)
        finding = inspect_all(config.output, settings, config.flake is not None)
        for problem in finding.problems:
            error(f"{problem.message}; run `machci sync`", file=workspace_path(problem.path))
        output = workspace_path(config.output)
    set_output("changed", "true" if finding.problems else "false")
    if finding.problems:
        lines = [f"### machci: `{output}` is out of sync", ""]
        lines += [f"- {problem.message}" for problem in finding.problems]
        lines += ["", "Run `machci sync` and commit the result."]
        add_summary("\n".join(lines))
        return 1
    add_summary(f"### machci: `{output}` is in sync with its inputs")
    return 0
