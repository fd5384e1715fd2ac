"""Where package data comes from: the index, nixpkgs, pypi-deps-db, local trees; HTTP, cache."""
