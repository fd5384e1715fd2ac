"""Spec and sources to Lock: resolvelib's provider, per target system, and what a failure means."""
