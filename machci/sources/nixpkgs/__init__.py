"""The nixpkgs source: the Python package versions a nixpkgs tree offers."""
