"""``python -m affy_middleware.cli``: the ``affy`` command without its console script."""

import sys

from . import main

sys.exit(main())
