"""GitHub Action front-end: `check`, `build`, `manifest` and `bump`, run by action.yml."""
