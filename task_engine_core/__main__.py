"""`python -m task_engine_core`: the command line."""

import sys

from ._cli import main

sys.exit(main())
