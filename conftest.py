"""Repository-level pytest setup: shared fixtures for real backends live in tests/support."""

pytest_plugins = ["tests.support.no_skips", "tests.support.docker", "tests.support.kube"]
