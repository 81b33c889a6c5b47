"""The ``facilitair`` command: one module per command family (collaborate, sessions, cache,
models), the live renderer (rich) and the headless runner. It never imports the TUI."""
