"""The TLS client contexts: one default-verifying context, and none trusted for plain HTTP."""

from __future__ import annotations

import ssl

import pytest

from aftershock.tls import client_context, context_for


def test_https_gets_the_default_verifying_context() -> None:
    assert context_for("https://toxiproxy.example:8474") is client_context()
    assert context_for("HTTPS://toxiproxy.example:8474") is client_context()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8474", "HTTP://localhost", "unix:///x"])
def test_plain_http_gets_a_context_that_trusts_nothing(url: str) -> None:
    context = context_for(url)
    assert context is not client_context()
    # Still verifying: a handshake, were one ever attempted, could only fail.
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0
    assert context_for(url) is context  # built once
