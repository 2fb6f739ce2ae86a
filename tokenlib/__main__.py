"""``python -m tokenlib estimate ...`` (see :mod:`tokenlib.cli`)."""

from tokenlib.cli import main

raise SystemExit(main())
