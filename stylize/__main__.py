"""``python -m stylize`` (also what ``torchrun -m stylize`` runs)."""

import sys

from .cli import main

sys.exit(main())
