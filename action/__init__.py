"""GitHub Action front-end: `check`, `build` and `bump`, driven by the composite action.yml."""
