"""The Textual front end, ``facilitair-tui``: the app, its entry point, screens/, widgets/,
styles/, the session view (events -> what is shown), keymap and command palette. It never
imports the CLI and never calls a provider."""
