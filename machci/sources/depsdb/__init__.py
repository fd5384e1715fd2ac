"""The pypi-deps-db source: mach-nix's dependency database at a pinned commit."""
