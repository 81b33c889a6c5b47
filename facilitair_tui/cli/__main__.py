"""``python -m facilitair_tui.cli`` runs ``facilitair``."""

from facilitair_tui.cli.main import main

main()
