"""The PyPI source: a simple index frozen at a snapshot, its pages, metadata and wheels."""
