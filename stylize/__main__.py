"""``python -m stylize`` (also what ``torchrun -m stylize`` runs)."""

import sys

from .cli.app import main

sys.exit(main())
