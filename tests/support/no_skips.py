"""In CI (``AFTERSHOCK_NO_SKIPS=1``) a skipped test fails the session: CI never passes by skipping."""

import os

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Turn a green session with skipped tests into a failure when skips are forbidden."""
    if os.environ.get("AFTERSHOCK_NO_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter is not None:
            reporter.write_line(f"AFTERSHOCK_NO_SKIPS=1: {skipped} test(s) were skipped", red=True)
