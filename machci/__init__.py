"""machci: requirements in, a reproducible Nix Python environment out."""

__version__ = "0.1.0"
