"""One TLS client context for the whole process.

Building an ``ssl.SSLContext`` loads the CA bundle and costs tens of
milliseconds of blocked event loop; HTTP clients are made per probe and per
webhook call, so they share this one instead of building their own.
"""

from __future__ import annotations

import functools
import ssl

__all__ = ["client_context", "context_for"]


@functools.cache
def client_context() -> ssl.SSLContext:
    """The default-verifying client context, built once."""
    return ssl.create_default_context()


@functools.cache
def _no_trust() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, and trusts no certificate


def context_for(base_url: str) -> ssl.SSLContext:
    """The context of a client that talks to ``base_url`` only (no redirects followed).

    ``https``: the default-verifying context. Any other scheme never speaks
    TLS: a context that still verifies but trusts no certificate, so a
    handshake could only fail, and the CA bundle is never loaded for it.
    """
    if base_url.lower().startswith("https:"):
        return client_context()
    return _no_trust()
