"""Requirement inputs: requirements files and pyproject.toml, merged with the config (Spec)."""
