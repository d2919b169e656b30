"""One TLS client context for the whole process.

Building an ``ssl.SSLContext`` loads the CA bundle and costs tens of
milliseconds of blocked event loop; HTTP clients are made per probe and per
webhook call, so they share this one instead of building their own.
"""

from __future__ import annotations

import functools
import ssl

__all__ = ["client_context"]


@functools.cache
def client_context() -> ssl.SSLContext:
    """The default-verifying client context, built once."""
    return ssl.create_default_context()
