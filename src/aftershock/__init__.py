"""aftershock: chaos experiments and self-healing, booked against SLO error budgets.

Layers, top to bottom (imports only go down; checked by import-linter):
``cli``/``operator``/``scheduling`` → ``runtime`` → ``engine``/``healer``/
``drivers``/``probes``/``journal``/``observability``/``proxy`` → ``slo`` →
``ports``/``loading``/``settings`` → ``model`` → ``errors``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("aftershock")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
