"""The embedded Toxiproxy-compatible server.

Package rule: stdlib asyncio only; imports nothing from aftershock except
``aftershock.errors``. It answers the Toxiproxy 2.12 HTTP API the way the real
server does (status codes, bodies, error messages), so a client written for
Toxiproxy works unchanged against it, and proxies TCP with the seven standard
toxics: latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data.

    async with EmbeddedToxiproxy() as toxiproxy:
        url = toxiproxy.api_url  # http://127.0.0.1:<port>
"""

from aftershock.proxy.api import VERSION, ToxiproxyAPI
from aftershock.proxy.server import EmbeddedToxiproxy, serve

__all__ = ["VERSION", "EmbeddedToxiproxy", "ToxiproxyAPI", "serve"]
