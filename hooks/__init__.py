"""pre-commit front-end: the entry points named in .pre-commit-hooks.yaml."""
