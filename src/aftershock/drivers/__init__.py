"""Adapters, not SDKs: one package per backend behind the ports in ``aftershock.ports``.

Each driver package (``toxiproxy``, ``docker``, ``process``, ``kubernetes``)
binds a handler to every fault and healing action of its target kind in the
catalogs (``faults.py``, ``actions.py``; see ``bindings``), keeps its undo
record typed (``undo.py``; see ``undo``), and wraps the rest around them in
``driver.py``. A backend's SDK is imported only in its own package; errors are
translated into ``aftershock.errors`` at this edge. ``standalone`` holds the
actions with no target. Drivers never import one another.
"""
