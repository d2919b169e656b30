"""Entry point: thin typer commands that parse options, wire ``runtime`` and print.

Rule: no domain logic here; typer and rich are imported only in this package.
"""
