"""``python -m stylize`` (also what ``torchrun -m stylize`` runs)."""

from .cli import main

main()
