"""`python -m machci`."""

from machci.cli import main

raise SystemExit(main())
