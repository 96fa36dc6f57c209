"""``python -m lipdub`` runs the CLI."""

from .cli import main

main()
