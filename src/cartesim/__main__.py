"""``python -m cartesim``: the command line."""

import sys

from cartesim.harness.cli.main import main

sys.exit(main())
