"""``python -m aftershock``."""

from aftershock.cli.main import main

main()
