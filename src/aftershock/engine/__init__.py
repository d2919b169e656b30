"""The run engine: the plan (a pure generator of steps) and the runner that executes it.

Rule: never imports a concrete driver or probe; it receives them from
``runtime.py`` through the Protocols in ``aftershock.ports``.
"""
