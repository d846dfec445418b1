"""`python -m saescope ...` and `torchrun --nproc-per-node N -m
saescope ...`: the saescope command."""

import sys

from saescope.cli import main

sys.exit(main())
