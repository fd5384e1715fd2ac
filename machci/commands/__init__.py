"""The machci commands: sync, check, lock, why, bump, init and nixpkgs-index."""
