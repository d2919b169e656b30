"""aftershock: chaos experiments and self-healing, booked against SLO error budgets.

Layers, top to bottom (imports only go down; checked by import-linter):
``cli``/``operator``/``scheduling`` → ``runtime`` → ``engine``/``healer``/
``drivers``/``probes``/``journal``/``observability``/``proxy`` → ``slo`` →
``ports``/``loading``/``settings`` → ``model`` → ``errors``.
"""

from typing import Any

__all__ = ["__version__"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aftershock")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    """``__version__`` is read from the installed metadata when first asked for: a
    command that never prints it does not pay for ``importlib.metadata``."""
    if name == "__version__":
        value = _version()
        globals()["__version__"] = value
        return value
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
