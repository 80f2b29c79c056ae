"""``python -m inference.simulate``: see :mod:`inference.simulate.cli`."""

from inference.simulate.cli import main

raise SystemExit(main())
