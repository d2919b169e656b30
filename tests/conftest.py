"""Suite-wide guards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _structlog_config_is_restored() -> Iterator[None]:
    """A test that runs the CLI in-process configures logging to its own stream.

    ``CliRunner`` closes that stream when the command ends; a later test that
    logs would write to a closed file. Each test gets the configuration it
    started with back.
    """
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
