"""``python -m vpanoptic`` is the ``vpanoptic`` command."""

from .cli import main

raise SystemExit(main())
