"""``python -m facilitair_tui.tui`` runs ``facilitair-tui``."""

from facilitair_tui.tui.main import main

main()
