"""``python -m attnmt``: the same as the ``attnmt`` command (and what torchrun runs)."""

import sys

from attnmt.cli.main import main

sys.exit(main())
