"""`command: bump`, first step — move the data pin and re-resolve, without the token.

Resolving may run sdist build backends, code from the index, so this step gets no token (see
action.yml); it writes machci.yaml and default.nix and hands its result to `publish`, the step
that pushes and opens the pull request.
"""

from __future__ import annotations

import contextlib

from machci.commands.bump import bump
from machci.config.options import SourceOptions

from .result import encode
from .workflow import Inputs, add_summary, set_output


def run(inputs: Inputs) -> int:
    with contextlib.chdir(inputs.working_directory):
        config, project = inputs.project()
        result = bump(config, project, SourceOptions(), details=True, advisories=inputs.advisories)
    set_output("bump", encode(result))
    if result.changed:
        add_summary("### machci: data revision bump\n\n" + result.report())
    else:
        add_summary(f"### machci: the data revision {result.old_revision} is current")
    return 0
