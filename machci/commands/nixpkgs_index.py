"""`machci nixpkgs-index`: write which Python package versions a nixpkgs tree offers."""

from __future__ import annotations

import argparse
import sys

from machci.atomic import atomic_write
from machci.config.defaults import parse_python
from machci.sources.nixpkgs.index import dumps_index, evaluate_tree, packages_attr


def run(args: argparse.Namespace) -> int:
    index = evaluate_tree(args.nixpkgs, parse_python(args.python), args.cache_dir)
    atomic_write(args.output, dumps_index(index).encode())
    sys.stderr.write(
        f"machci: wrote {args.output}: {len(index)} packages from {args.nixpkgs}"
        f" ({packages_attr(args.python)})\n"
    )
    return 0
