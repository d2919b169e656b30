"""The demo: a small HTTP service that ``aftershock demo`` supervises, breaks and heals.

Rule: ``service.py`` uses the standard library only, so it starts fast and
behaves like any third-party service would.
"""
