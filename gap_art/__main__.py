"""``python -m gap_art`` runs the ``gap-art`` command."""

from gap_art.cli import main

main()
