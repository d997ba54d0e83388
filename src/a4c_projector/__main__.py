"""``python -m a4c_projector`` is the ``a4c-projector`` command."""

import sys

from a4c_projector.cli import main

sys.exit(main())
