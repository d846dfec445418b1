"""`python -m saescope.cli ...`: the saescope command."""

import sys

from saescope.cli import main

sys.exit(main())
