"""Error-budget arithmetic: pure functions, no I/O, no third-party imports."""
